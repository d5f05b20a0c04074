"""Issue 13 on Slack: an image file shared in a message reaches a model that sees as image
input; one that cannot see gets a clear reply."""

from __future__ import annotations

from typing import Any

from core.config import Settings
from core.models.base import ModelRequest, UserText
from core.models.scripted import ScriptedModel, text

from . import payloads as p
from .conftest import close_harness, open_harness
from .fake_slack import FakeSlack

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\x00\x00\x00\x10" * 2 + b"\x00" * 40


def sees(request: ModelRequest) -> list[Any]:
    (user,) = [i for i in request.items if isinstance(i, UserText)]
    (image,) = user.images
    assert image.url.startswith("data:image/png;base64,iVBORw0KGgo")
    return text("A receipt with 3 roses.")


async def test_shared_image_is_image_input(slack_settings: Settings, fake: FakeSlack) -> None:
    settings = slack_settings.model_copy(update={"vision": "on"})
    model = ScriptedModel([sees])
    h = await open_harness(settings, fake, model)
    try:
        shared = fake.host_file("receipt.png", PNG)
        await h.event(p.message("what is on this receipt?", files=[shared]))
        answers = [m.text for m in fake.thread(p.DM, None) if m.user != "person"]
    finally:
        await close_harness(h)
    assert answers == ["A receipt with 3 roses."]


async def test_model_that_cannot_see_is_said_so(slack_settings: Settings, fake: FakeSlack) -> None:
    model = ScriptedModel([text("Please type the numbers.")])
    h = await open_harness(slack_settings, fake, model)  # vision auto, model "scripted"
    try:
        shared = fake.host_file("receipt.png", PNG)
        await h.event(p.message("what is on this receipt?", files=[shared]))
        answers = [m.text for m in fake.thread(p.DM, None) if m.user != "person"]
    finally:
        await close_harness(h)
    assert any("cannot read images" in a for a in answers)
    assert not model.requests[0].items[0].images  # type: ignore[union-attr]
