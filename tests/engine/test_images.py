"""Issue 13: an image a person attaches (console --file x.jpg, Slack, Telegram all go through
``Tallybot.handle``) reaches a model that sees as image input; a bill read from it waits for
approval whatever approve_writes says; a model that cannot see gets a clear reply."""

from __future__ import annotations

from openai import AsyncOpenAI

from core.app import Incoming, Tallybot
from core.config import Settings
from core.events import ApprovalRequired, Reply, RunFinished
from core.models.chat import ChatModel
from core.models.scripted import call, text
from tests.models.fake_openai import FakeOpenAI

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
ITEMS = [{"name": "百合", "quantity": 2, "unit_cost": "6", "unit_price": "18"}]


async def _handle(
    settings: Settings, model_name: str, turns: list, message: str
) -> tuple[list, FakeOpenAI]:
    async with FakeOpenAI(turns) as fake:
        client = AsyncOpenAI(api_key="t", base_url=fake.base_url, max_retries=0)
        async with await Tallybot.open(settings, model=ChatModel(client, model_name)) as bot:
            files = [Incoming("sheet.jpg", data=JPEG)]
            events = [e async for e in bot.handle("console:img", message, files=files, lang="en")]
        await client.close()
    return events, fake


async def test_image_goes_as_image_url_and_the_bill_waits(settings: Settings) -> None:
    turns = [[call("save_bill", {"date": "2026-12-01", "items": ITEMS}, "c1")]]
    events, fake = await _handle(settings, "gpt-4o", turns, "")
    (request,) = fake.requests
    user = request["messages"][1]
    assert user["role"] == "user"
    text_part, image_part = user["content"]
    assert (
        text_part["type"] == "text" and "image" in text_part["text"]
    )  # no caption: asked to read it
    assert image_part["type"] == "image_url"
    assert image_part["image_url"]["url"].startswith("data:image/jpeg;base64,/9j/")
    assert not settings.approve_writes
    assert any(isinstance(e, ApprovalRequired) for e in events)  # shown before it is saved


async def test_model_that_cannot_see_gets_no_image_and_the_person_is_told(
    settings: Settings,
) -> None:
    events, fake = await _handle(settings, "qwen2.5-coder:1.5b", [text("ok")], "how much?")
    (notice,) = [e for e in events if isinstance(e, Reply)]
    assert "cannot read images" in notice.text and "qwen2.5-coder" in notice.text
    assert fake.requests[0]["messages"][1] == {"role": "user", "content": "how much?"}
    assert isinstance(events[-1], RunFinished)


async def test_vision_on_forces_images(settings: Settings) -> None:
    settings = settings.model_copy(update={"vision": "on"})
    events, fake = await _handle(settings, "some-local-model", [text("ok")], "read it")
    assert isinstance(fake.requests[0]["messages"][1]["content"], list)


async def test_images_of_earlier_runs_are_not_resent(settings: Settings) -> None:
    async with FakeOpenAI([text("one"), text("two")]) as fake:
        client = AsyncOpenAI(api_key="t", base_url=fake.base_url, max_retries=0)
        async with await Tallybot.open(settings, model=ChatModel(client, "gpt-4o")) as bot:
            files = [Incoming("sheet.jpg", data=JPEG)]
            [e async for e in bot.handle("console:i2", "read", files=files, lang="en")]
            [e async for e in bot.handle("console:i2", "and now?", lang="en")]
        await client.close()
    second = fake.requests[1]["messages"]
    assert second[1] == {"role": "user", "content": "read"}
