"""Test doubles: :class:`ScriptedModel` plays a queue of per-turn outputs and records every call.

Each turn is one of:
  * a list of model events (``ModelTextDelta``, ``ModelToolCall``, ...; ``ModelDone`` is added
    when missing),
  * a callable ``(request) -> list`` for turns that depend on what the engine sent,
  * an exception instance, raised when the turn starts,
  * :class:`Pause` items inside a list: the stream waits on an ``asyncio.Event`` there, so a
    test can cancel or kill a run mid-stream.

Also used by the console demo and CI: ``TALLYBOT_MODEL=scripted:path/to/script.json`` plays a
JSON script (see :func:`load_script`) so the whole product runs with no network.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.models.base import (
    ModelDone,
    ModelEvent,
    ModelReasoningDelta,
    ModelRequest,
    ModelTextDelta,
    ModelToolCall,
)

Turn = Sequence[Any] | Callable[[ModelRequest], Sequence[Any]] | BaseException


@dataclass
class Pause:
    """Inside a turn: block here until ``event`` is set (it is set by the test)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    reached: asyncio.Event = field(default_factory=asyncio.Event)


class ScriptedModel:
    """A queue of per-turn outputs; records every :class:`ModelRequest` it was given."""

    def __init__(self, turns: Sequence[Turn] = (), *, name: str = "scripted") -> None:
        self.name = name
        self.turns: list[Turn] = list(turns)
        self.requests: list[ModelRequest] = []
        self.closed_early = 0

    def add(self, *turns: Turn) -> None:
        self.turns.extend(turns)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        if not self.turns:
            raise AssertionError("ScriptedModel ran out of turns")
        turn = self.turns.pop(0)
        if isinstance(turn, BaseException):
            raise turn
        events = list(turn(request) if callable(turn) else turn)
        if not any(isinstance(e, ModelDone) for e in events) and not any(
            isinstance(e, BaseException) for e in events
        ):
            events.append(ModelDone())
        finished = False
        try:
            for event in events:
                if isinstance(event, Pause):
                    event.reached.set()
                    await event.event.wait()
                    continue
                if isinstance(event, BaseException):
                    raise event
                await asyncio.sleep(0)
                yield event
            finished = True
        finally:
            if not finished:
                self.closed_early += 1


def text(*chunks: str) -> list[ModelEvent]:
    """A turn that streams ``chunks`` as text."""
    return [ModelTextDelta(c) for c in chunks]


def call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> ModelToolCall:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return ModelToolCall(
        call_id=call_id or f"call_{name}_{abs(hash(args)) % 10**8}", name=name, arguments=args
    )


def load_script(path: Path) -> ScriptedModel:
    """Build a ScriptedModel from JSON: ``{"turns": [[{"reasoning": "..."}, {"text": "..."},
    {"call": NAME, "arguments": {...}}], ...]}``. Used for demos and end-to-end checks without a network."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read model script {path}: {exc}") from exc
    turns: list[Turn] = []
    for i, raw_turn in enumerate(data.get("turns", [])):
        events: list[ModelEvent] = []
        for j, item in enumerate(raw_turn):
            if "text" in item:
                events.append(ModelTextDelta(item["text"]))
            elif "reasoning" in item:
                events.append(ModelReasoningDelta(item["reasoning"]))
            elif "call" in item:
                args = item.get("arguments", {})
                events.append(
                    ModelToolCall(
                        call_id=item.get("id", f"call_{i}_{j}"),
                        name=item["call"],
                        arguments=args
                        if isinstance(args, str)
                        else json.dumps(args, ensure_ascii=False),
                    )
                )
            else:
                raise ConfigError(f"model script {path}: turn {i} item {j} has no text or call")
        turns.append(events)
    return ScriptedModel(turns, name=f"scripted:{Path(path).name}")
