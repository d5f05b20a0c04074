"""Photos and voice notes a person sends on Telegram (issue 13).

A photo (Telegram's compressed JPEG, largest size) or an image document becomes an attached
image the model reads when it can see images. A voice note or audio file is transcribed by the
provider (``Tallybot.transcribe``), shown back as "🎤 …" and handled as the person's text.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from telegram import Audio, Bot, Document, Message, PhotoSize, Voice
from telegram.error import TelegramError

from bots.telegram import documents
from core.app import Incoming
from core.errors import UserError
from core.i18n import t

if TYPE_CHECKING:
    from bots.telegram.host import Host
    from bots.telegram.responder import Responder

log = logging.getLogger(__name__)

Media = Document | PhotoSize | Voice | Audio


def attachment(message: Message) -> tuple[Media, str] | None:
    """The file of ``message`` to attach (document or photo) and its name; None if none."""
    if message.document is not None:
        name = message.document.file_name or f"{message.document.file_unique_id}.bin"
        return message.document, name
    if message.photo:
        largest = message.photo[-1]  # Telegram lists sizes smallest first
        return largest, f"photo_{largest.file_unique_id}.jpg"
    return None


def recording(message: Message) -> tuple[Media, str] | None:
    """The voice note or audio file of ``message`` and a name that says its format."""
    if message.voice is not None:
        return message.voice, f"voice_{message.voice.file_unique_id}.ogg"
    if message.audio is not None:
        return message.audio, message.audio.file_name or f"{message.audio.file_unique_id}.mp3"
    return None


async def download(
    bot: Bot, media: Media, name: str, limit: int | None, responder: Responder, lang: str
) -> bytes | None:
    """The file's bytes; None after telling the person why not (too big, download failed)."""
    try:
        got = await documents.fetch(bot, media, limit, name=name)
    except documents.TooBig as exc:
        await responder.say(exc.message(lang), error=True)
        return None
    except TelegramError as exc:
        log.warning("download of %s failed: %s", name, exc)
        await responder.say(t("run_failed", lang, message=f"{exc.message}"), error=True)
        return None
    return got.data


async def fetch_attachment(
    adapter: Host, bot: Bot, message: Message, responder: Responder, lang: str
) -> Incoming | None | bool:
    """The attached document or photo as :class:`Incoming`; None when there is none, False
    when it could not be fetched (the person was told)."""
    found = attachment(message)
    if found is None:
        return None
    media, name = found
    data = await download(bot, media, name, adapter.download_limit, responder, lang)
    return False if data is None else Incoming(name, data=data)


async def hear(
    adapter: Host, bot: Bot, message: Message, responder: Responder, lang: str
) -> str | None:
    """The transcript of the voice note / audio, shown back as "🎤 …"; None when there is no
    recording or it could not be transcribed (the person was told why)."""
    found = recording(message)
    if found is None:
        return None
    media, name = found
    data = await download(bot, media, name, adapter.download_limit, responder, lang)
    if data is None:
        return None
    try:
        text = await adapter.tallybot.transcribe(name, data, lang)
    except UserError as exc:
        await responder.say(exc.localized(lang), error=True)
        return None
    await responder.say(f"🎤 {text}")
    return text
