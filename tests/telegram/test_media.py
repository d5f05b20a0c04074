"""Issue 13 on Telegram: photos reach the model as images (and a bill read off one waits for
approval), voice notes are transcribed by the provider and shown back as "🎤 …"."""

from __future__ import annotations

import base64
from typing import Any

from core.models.base import ModelRequest, UserText
from core.models.scripted import call, text
from tests.models.fake_openai import FakeOpenAI, Fault
from tests.telegram.conftest import final_text

PRIVATE = 42
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200 + b"\xff\xd9"
ITEMS = [{"name": "玫瑰", "quantity": 3, "unit_cost": "2.5", "unit_price": "6"}]


def photo_message(api: Any, caption: str | None) -> dict[str, Any]:
    doc = api.add_file("p.jpg", JPEG)
    msg = api.message(PRIVATE, None)
    small = {"file_id": "small", "file_unique_id": "us", "width": 90, "height": 60, "file_size": 10}
    big = {k: doc[k] for k in ("file_id", "file_unique_id", "file_size")}
    msg["photo"] = [small, {**big, "width": 1280, "height": 960}]
    if caption:
        msg["caption"] = caption
    return msg


def voice_message(api: Any) -> dict[str, Any]:
    doc = api.add_file("v.ogg", b"OggS" + b"\x00" * 100)
    msg = api.message(PRIVATE, None)
    msg["voice"] = {
        "file_id": doc["file_id"],
        "file_unique_id": doc["file_unique_id"],
        "duration": 3,
        "mime_type": "audio/ogg",
        "file_size": doc["file_size"],
    }
    return msg


def sees_photo(request: ModelRequest) -> list[Any]:
    (user,) = [i for i in request.items if isinstance(i, UserText)]
    (image,) = user.images
    assert image.url == "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
    return [call("save_bill", {"date": "2026-12-01", "items": ITEMS}, "c1")]


async def test_photo_reaches_the_model_and_its_bill_waits_for_approval(start, api) -> None:
    async with start([sees_photo, text("saved")], vision="on", approve_writes=False) as run:
        api.push({"message": photo_message(api, "记账")})
        await api.wait_for(
            lambda s: (
                s.sent("sendMessage")
                and any("reply_markup" in c.params for c in s.sent("sendMessage"))
            )
        )
        thread = await run.bot.store.thread_by_key(f"telegram:{PRIVATE}:0")
        (stored,) = await run.bot.store.list_files(thread.id)
        runs = await run.bot.store.list_runs(thread_id=thread.id)
    # The largest size was downloaded, stored as an image; nothing saved before approval.
    assert [c.params["file_id"] for c in api.sent("getFile")] != ["small"]
    assert stored.kind == "image" and stored.name.startswith("photo_")
    assert runs[-1].status.value == "requires_action"


async def test_photo_without_vision_gets_a_clear_reply(start, api) -> None:
    async with start([text("ok")], vision="off") as run:
        api.push({"message": photo_message(api, "what is this?")})
        await api.wait_for(final_text(api, PRIVATE, "cannot read images"))
        await api.wait_for(final_text(api, PRIVATE, "ok"))
    (request,) = run.model.requests
    assert all(not getattr(i, "images", ()) for i in request.items)


async def test_voice_note_is_transcribed_and_answered(start, api) -> None:
    async with FakeOpenAI() as fake:
        fake.transcripts.append("今天卖了三支玫瑰")
        settings = {"transcribe_model": "whisper-1", "openai_base_url": fake.base_url}
        async with start([text("好的，三支玫瑰。")], **settings) as run:
            api.push({"message": voice_message(api)})
            await api.wait_for(final_text(api, PRIVATE, "三支玫瑰。"))
        (request,) = [r for r in fake.requests if r.path == "/v1/audio/transcriptions"]
    assert request["model"] == "whisper-1"
    assert request["file"]["filename"].endswith(".ogg") and request["file"]["size"] == 104
    assert any(t.startswith("🎤 今天卖了三支玫瑰") for t in api.texts(PRIVATE))
    (model_request,) = run.model.requests
    users = [i.text for i in model_request.items if isinstance(i, UserText)]
    assert users == ["今天卖了三支玫瑰"]


async def test_voice_without_transcription_model_is_a_clear_reply(start, api) -> None:
    async with start([]) as run:
        api.push({"message": voice_message(api)})
        await api.wait_for(final_text(api, PRIVATE, "TALLYBOT_TRANSCRIBE_MODEL"))
    assert run.model.requests == []


async def test_transcription_error_loses_nothing_and_says_so(start, api) -> None:
    async with FakeOpenAI() as fake:
        fake.transcripts.append(Fault.status(400, message="Invalid file format."))
        settings = {"transcribe_model": "whisper-1", "openai_base_url": fake.base_url}
        async with start([], model_max_retries=0, **settings) as run:
            api.push({"message": voice_message(api)})
            await api.wait_for(final_text(api, PRIVATE, "could not transcribe"))
    assert run.model.requests == []
