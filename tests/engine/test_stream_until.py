"""core.turn.stream_until: the model's stream bounded by the run's cancel flag and deadline.

One reader task per stream hands the model's events on through a queue; a cancel or the
deadline is checked before every event, even when events are already waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from core.errors import ModelError
from core.models.base import ModelDone, ModelEvent, ModelRequest, ModelTextDelta
from core.run_timeout import RunTimedOut
from core.turn import RunCancelled, stream_until

REQUEST = ModelRequest("m", "", ())


class Flood:
    """A model that streams ``n`` deltas with no pause (or ``pause`` between them), then
    done or ``fail``; it records whether its stream was closed."""

    name = "flood"

    def __init__(self, n: int, pause: float = 0.0, fail: Exception | None = None) -> None:
        self.n, self.pause, self.fail = n, pause, fail
        self.closed = False

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        try:
            for i in range(self.n):
                if self.pause:
                    await asyncio.sleep(self.pause)
                yield ModelTextDelta(str(i))
            if self.fail is not None:
                raise self.fail
            yield ModelDone()
        finally:
            self.closed = True


async def test_events_in_order_then_the_stream_is_closed() -> None:
    model = Flood(100)
    got = [e async for e in stream_until(model, REQUEST, asyncio.Event())]
    assert [e.text for e in got[:-1]] == [str(i) for i in range(100)]  # type: ignore[union-attr]
    assert isinstance(got[-1], ModelDone)
    assert model.closed


async def test_cancel_stops_before_the_next_event_even_when_events_wait() -> None:
    model, cancel = Flood(1000), asyncio.Event()
    seen = 0
    with pytest.raises(RunCancelled):
        async for _ in stream_until(model, REQUEST, cancel):
            seen += 1
            await asyncio.sleep(0.01)  # the reader has queued everything meanwhile
            cancel.set()
    assert seen == 1
    assert model.closed


async def test_cancel_wakes_a_stream_that_waits_for_the_model() -> None:
    model, cancel = Flood(5, pause=30), asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, cancel.set)
    with pytest.raises(RunCancelled):
        async for _ in stream_until(model, REQUEST, cancel):
            pass
    assert model.closed  # the model's stream was closed, not left waiting


async def test_deadline_while_waiting_and_while_events_flow() -> None:
    loop = asyncio.get_running_loop()
    slow = Flood(5, pause=30)
    with pytest.raises(RunTimedOut):
        async for _ in stream_until(slow, REQUEST, asyncio.Event(), loop.time() + 0.05, 0.05):
            pass
    assert slow.closed
    flowing = Flood(10_000, pause=0.001)
    with pytest.raises(RunTimedOut):
        async for _ in stream_until(flowing, REQUEST, asyncio.Event(), loop.time() + 0.1, 0.1):
            pass
    assert flowing.closed


async def test_the_models_error_reaches_the_caller_as_it_was_raised() -> None:
    model = Flood(3, fail=ModelError("the server said no"))
    seen: list[ModelEvent] = []
    with pytest.raises(ModelError, match="the server said no"):
        async for event in stream_until(model, REQUEST, asyncio.Event()):
            seen.append(event)
    assert len(seen) == 3


async def test_a_consumer_that_stops_early_closes_the_models_stream() -> None:
    model = Flood(1000, pause=0.001)
    agen = stream_until(model, REQUEST, asyncio.Event())
    async for _ in agen:
        break
    await agen.aclose()  # type: ignore[attr-defined]
    assert model.closed
