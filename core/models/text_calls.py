"""Tool calls written in the message text, for small local models (issue 13).

With their stock chat templates, small models on llama.cpp or Ollama (Qwen2.5-Coder 1.5B, for
one) write a tool call as text instead of sending ``tool_calls``::

    ```json
    {"name": "save_bill", "arguments": {"items": [...]}}
    ```

or in Hermes/Qwen tags: ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``, or as the
whole message, a bare JSON object. :class:`TextToolCalls` wraps a model and turns such text
into :class:`ModelToolCall` events -- only for the names of the request's tools, so a JSON
example in an answer stays text. Text streams as usual up to a possible call; from there it
is held until the turn ends, then sent as text if it was not a call after all.

Enabled by ``TALLYBOT_TEXT_TOOL_CALLS`` (``auto``: Chat Completions servers that are not
OpenAI's).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from core.models.base import (
    Model,
    ModelDone,
    ModelEvent,
    ModelRequest,
    ModelTextDelta,
    ModelToolCall,
)

MARKERS = ("```", "<tool_call>")
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)
_FENCED = re.compile(r"```[ \t]*(?:json|tool_call|tool)?[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)


def _calls_in(value: Any, names: set[str]) -> list[tuple[str, str]] | None:
    """(name, arguments JSON) of every call in a parsed block; None if it is not all calls."""
    objects = value if isinstance(value, list) else [value]
    calls = []
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("name") not in names:
            return None
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args or "{}")
            except ValueError:
                return None
        if not isinstance(args, dict):
            return None
        calls.append((obj["name"], json.dumps(args, ensure_ascii=False)))
    return calls or None


def parse_text_calls(text: str, names: set[str]) -> tuple[str, list[tuple[str, str]]]:
    """Split ``text`` into what is left of it and the tool calls written in it."""
    calls: list[tuple[str, str]] = []

    def take(match: re.Match[str]) -> str:
        try:
            found = _calls_in(json.loads(match.group(1)), names)
        except ValueError:
            found = None
        if found is None:
            return match.group(0)
        calls.extend(found)
        return ""

    rest = _TAGGED.sub(take, text)
    rest = _FENCED.sub(take, rest)
    stripped = rest.strip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            found = _calls_in(json.loads(stripped), names)
        except ValueError:
            found = None
        if found:
            calls.extend(found)
            rest = ""
    return rest.strip() if calls else rest, calls


def _held_from(text: str, at_start: bool) -> int:
    """Where text that might be a call starts: a marker, a marker's beginning at the end,
    or (at the start of the turn) a bare JSON object; ``len(text)`` when none."""
    positions = [text.find(m) for m in MARKERS if m in text]
    if positions:
        return min(positions)
    if at_start and text.lstrip()[:1] in ("{", "["):
        return 0
    for marker in MARKERS:
        for size in range(len(marker) - 1, 0, -1):
            if text.endswith(marker[:size]):
                return len(text) - size
    return len(text)


async def read_text_calls(
    events: AsyncIterator[ModelEvent], names: set[str]
) -> AsyncIterator[ModelEvent]:
    """``events`` with calls written in the text turned into :class:`ModelToolCall` events.

    Closing this iterator closes ``events`` (that is what stops a cancelled run's stream).
    """
    pending = ""  # text not yet sent: it may be (the start of) a call
    sent = False
    holding = False
    try:
        async for event in events:
            if isinstance(event, ModelTextDelta):
                pending += event.text
                if holding or (not sent and not pending.strip()):
                    continue
                cut = _held_from(pending, at_start=not sent)
                if cut > 0:
                    yield ModelTextDelta(pending[:cut])
                    sent, pending = True, pending[cut:]
                holding = pending.startswith(MARKERS) or (
                    not sent and pending.lstrip()[:1] in ("{", "[")
                )
                continue
            if isinstance(event, ModelDone):
                rest, calls = parse_text_calls(pending, names)
                if rest:
                    yield ModelTextDelta(rest)
                for name, arguments in calls:
                    yield ModelToolCall(f"call_text_{uuid.uuid4().hex[:12]}", name, arguments)
            yield event
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


class TextToolCalls:
    """Any :class:`~core.models.base.Model`, also reading tool calls written as text
    (:class:`core.models.chat.ChatModel` does this itself with ``text_tool_calls=True``)."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.name = inner.name

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """The inner model's events, with text-written calls turned into tool calls."""
        events = self.inner.stream(request)
        names = {tool.name for tool in request.tools}
        return read_text_calls(events, names) if names else events
