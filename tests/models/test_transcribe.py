"""Issue 13: voice notes through the provider's audio transcription API (the fake server's
/v1/audio/transcriptions), on a plain OpenAI-compatible server and on Azure."""

from __future__ import annotations

import pytest

from core.config import Settings
from core.errors import UserError
from core.transcribe import Transcriber
from tests.models.fake_openai import FakeOpenAI, Fault

OGG = b"OggS" + b"\x00" * 60


async def test_transcript_on_an_openai_compatible_server() -> None:
    async with FakeOpenAI() as fake:
        fake.transcripts.append(" 玫瑰三支 ")
        settings = Settings(openai_base_url=fake.base_url, transcribe_model="whisper-1")  # type: ignore[call-arg]
        assert await Transcriber(settings).transcribe("voice.ogg", OGG) == "玫瑰三支"
    (request,) = fake.requests
    assert request.path == "/v1/audio/transcriptions"
    assert request["model"] == "whisper-1"
    assert request["file"] == {"filename": "voice.ogg", "size": len(OGG)}


async def test_transcript_on_azure_goes_to_the_deployment() -> None:
    async with FakeOpenAI() as fake:
        fake.transcripts.append("ok")
        settings = Settings(  # type: ignore[call-arg]
            azure_openai_endpoint=fake.origin,
            azure_openai_api_key="k",
            openai_api_version="2024-10-21",
            transcribe_model="my-whisper",
        )
        assert await Transcriber(settings).transcribe("voice.ogg", OGG) == "ok"
    (request,) = fake.requests
    assert request.path == "/openai/deployments/my-whisper/audio/transcriptions"
    assert request.query == {"api-version": "2024-10-21"} and request.headers["api-key"] == "k"


async def test_unconfigured_failed_and_empty_are_clear() -> None:
    with pytest.raises(UserError, match="TALLYBOT_TRANSCRIBE_MODEL") as info:
        await Transcriber(Settings()).transcribe("v.ogg", OGG)
    assert "TALLYBOT_TRANSCRIBE_MODEL" in info.value.localized("zh")
    async with FakeOpenAI() as fake:
        fake.transcripts += [Fault.status(400, message="Invalid file format."), "  "]
        settings = Settings(  # type: ignore[call-arg]
            openai_base_url=fake.base_url, transcribe_model="whisper-1", model_max_retries=0
        )
        with pytest.raises(UserError, match="Invalid file format"):
            await Transcriber(settings).transcribe("v.ogg", OGG)
        with pytest.raises(UserError, match="heard nothing"):
            await Transcriber(settings).transcribe("v.ogg", OGG)
