"""Issue 13 on the wire: reasoning deltas, cut-off answers, images, reasoning effort -- both
adapters through the real openai client against the fake server."""

from __future__ import annotations

from typing import Any

import pytest

from core.models.base import (
    ImagePart,
    ModelDone,
    ModelReasoningDelta,
    ModelReasoningItem,
    ModelRequest,
    ModelTextDelta,
    UserText,
)
from core.models.chat import ChatModel
from core.models.responses import ResponsesModel
from core.models.scripted import call
from tests.models.fake_openai import FakeOpenAI, Fault
from tests.models.test_wire import HELLO, WITH_TOOLS, play

Adapter = type[ResponsesModel] | type[ChatModel]


@pytest.fixture(params=[ResponsesModel, ChatModel], ids=["responses", "chat"])
def adapter(request: pytest.FixtureRequest) -> Adapter:
    return request.param


async def test_reasoning_streams_apart_from_text(adapter: Adapter) -> None:
    turn = [ModelReasoningDelta("think "), ModelReasoningDelta("more"), ModelTextDelta("Hi")]
    events, _ = await play(adapter, [turn])
    thoughts = [e.text for e in events if isinstance(e, ModelReasoningDelta)]
    assert "".join(thoughts) == "think more"
    assert [e for e in events if isinstance(e, ModelTextDelta)] == [ModelTextDelta("Hi")]
    items = [e for e in events if isinstance(e, ModelReasoningItem)]
    if adapter is ResponsesModel:
        (item,) = items
        assert item.data["type"] == "reasoning"
        assert item.data["encrypted_content"] == "enc:think more"
    else:
        assert items == []


async def test_length_keeps_the_text_so_far(adapter: Adapter) -> None:
    """Cut at the token limit: the text stands, the turn ends with ``incomplete`` (no error)."""
    events, _ = await play(adapter, [Fault.incomplete("max_output_tokens")], WITH_TOOLS)
    assert events[:3] == [ModelTextDelta("Hello"), ModelTextDelta(", "), ModelTextDelta("world")]
    done = events[-1]
    assert isinstance(done, ModelDone)
    assert done.incomplete == ("max_output_tokens" if adapter is ResponsesModel else "length")


async def test_length_drops_a_call_cut_mid_arguments() -> None:
    fault = Fault.incomplete("length", events=[ModelTextDelta("ok"), call("echo", {"text": "x"})])
    events, _ = await play(ChatModel, [fault], WITH_TOOLS)
    assert [type(e).__name__ for e in events] == ["ModelTextDelta", "ModelDone"]


async def test_images_go_as_data_url_parts(adapter: Adapter) -> None:
    url = "data:image/jpeg;base64,/9j/AAAA"
    request = ModelRequest(
        model="gpt-4o", instructions="x", items=(UserText("read this", (ImagePart(url),)),)
    )
    _, fake = await play(adapter, [[ModelTextDelta("ok")]], request)
    body = fake.requests[0]
    if adapter is ChatModel:
        assert body["messages"][1] == {
            "role": "user",
            "content": [
                {"type": "text", "text": "read this"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    else:
        assert body["input"][0] == {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "read this"},
                {"type": "input_image", "image_url": url},
            ],
        }


async def test_plain_requests_do_not_change(adapter: Adapter) -> None:
    _, fake = await play(adapter, [[ModelTextDelta("ok")]], HELLO)
    body: dict[str, Any] = fake.requests[0]
    assert "reasoning_effort" not in body and "include" not in body and "reasoning" not in body


async def test_fake_records_query_and_origin() -> None:
    async with FakeOpenAI() as fake:
        assert fake.base_url == fake.origin + "/v1"
