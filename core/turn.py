"""What one turn of a run leads to, and what a run carries from turn to turn.

A turn is one model call plus the tool calls it asked for. Its outcome is a small typed value,
as in openai-agents' ``run_steps.py``; :meth:`core.engine.Engine.execute` dispatches on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from core.domain import Run, Thread
from core.models.base import Model, ModelEvent, ModelRequest
from core.run_timeout import next_event


@dataclass(frozen=True, slots=True)
class Completed:
    """The turn ended without tool calls: the run is ``completed``."""


@dataclass(frozen=True, slots=True)
class RunAgain:
    """The turn's tool calls ran and their outputs are stored: ask the model again."""


@dataclass(frozen=True, slots=True)
class AwaitingApproval:
    """Calls wait for a person's decision: the run is ``requires_action`` and the stream ends."""

    call_ids: tuple[str, ...]


class RunCancelled(Exception):
    """Control signal, not an error: the run's cancel flag was raised mid-turn."""


NextStep = Completed | RunAgain | AwaitingApproval
"""What one turn leads to; :meth:`core.engine.Engine.execute`'s loop dispatches on it."""


@dataclass(slots=True)
class RunState:
    """What one ``execute`` call carries from turn to turn."""

    run: Run
    thread: Thread
    lang: str
    cancel: asyncio.Event
    bills: list[int] = field(default_factory=list)  # bill ids changed, in first-change order
    text: list[str] = field(default_factory=list)  # the assistant messages stored so far
    # Issue 13: why the model stopped early (run still completes), and the wall-time bound.
    incomplete: str | None = None
    deadline: float | None = None  # loop.time() after which the run fails (TALLYBOT_RUN_TIMEOUT)


async def stream_until(
    model: Model,
    request: ModelRequest,
    cancel: asyncio.Event,
    deadline: float | None = None,
    limit: float = 0.0,
) -> AsyncIterator[ModelEvent]:
    """The model's events until done; :class:`RunCancelled` once ``cancel`` is set, and
    :class:`~core.run_timeout.RunTimedOut` past ``deadline`` (the stream is closed either way)."""
    agen = model.stream(request)
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        while True:
            nxt = asyncio.ensure_future(agen.__anext__())
            if not await next_event(nxt, waiter, deadline, limit):
                raise RunCancelled
            try:
                event = nxt.result()
            except StopAsyncIteration:
                return
            yield event
    finally:
        waiter.cancel()
        aclose = getattr(agen, "aclose", None)  # async generators: closes the HTTP stream
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()
