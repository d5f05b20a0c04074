"""Voice notes as text: the configured provider's audio transcription API (issue 13).

``TALLYBOT_TRANSCRIBE_MODEL`` names the model (``whisper-1``, ``gpt-4o-mini-transcribe``, or
whatever an OpenAI-compatible server such as a local whisper server or vLLM serves) on the
same client as the chat model (``OPENAI_BASE_URL`` / Azure). Unset, voice notes get a clear
reply instead. The transcript is handled as the person's text.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from core.config import Settings
from core.errors import UserError
from core.i18n import t

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

AUDIO_MAX_BYTES = 25 * 1024 * 1024  # the OpenAI transcription upload limit


class Transcriber:
    """Turns audio bytes into text through ``client.audio.transcriptions.create``."""

    def __init__(self, settings: Settings, client: openai.AsyncOpenAI | None = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def configured(self) -> bool:
        return bool(self.settings.transcribe_model)

    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            from core.models.provider import build_client

            self._client = build_client(self.settings)
        return self._client

    async def transcribe(self, name: str, data: bytes, lang: str | None = None) -> str:
        """The text of ``data`` (``name`` tells the server its format, e.g. ``voice.ogg``).
        ``lang`` is not sent: the spoken language is the server's to detect.

        Raises :class:`UserError` (en + zh) when unconfigured, too big, failed or empty.
        """
        if not self.configured:
            raise UserError(t("no_transcribe", "en"), zh=t("no_transcribe", "zh"))
        if len(data) > AUDIO_MAX_BYTES:
            size = f"{len(data) // (1024 * 1024)} MB > 25 MB"
            raise UserError(
                t("transcribe_failed", "en", error=size),
                zh=t("transcribe_failed", "zh", error=size),
            )
        # The OpenAI SDK is imported by the first voice note, not by every process start.
        from core.models.errors import STREAM_ERRORS, convert_error

        try:
            result = await self.client().audio.transcriptions.create(
                model=self.settings.transcribe_model or "",
                file=(name, data),
            )
        except STREAM_ERRORS as exc:
            error = convert_error(exc)
            log.warning("transcription failed: %s", error.message)
            raise UserError(
                t("transcribe_failed", "en", error=error.message),
                zh=t("transcribe_failed", "zh", error=error.localized("zh")),
            ) from exc
        text = (getattr(result, "text", None) or "").strip()
        if not text:
            raise UserError(t("voice_empty", "en"), zh=t("voice_empty", "zh"))
        return text
