"""core.turn.stream_until: the model's stream bounded by the run's cancel flag and deadline.

The stream is read in the caller's task; a cancel or the deadline is checked before every
event and interrupts a wait for the model, but never the caller's own awaits between events,
and it is taken back from the task (``Task.uncancel``) so it never leaks as a cancellation."""

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


async def test_a_cancel_never_interrupts_what_the_caller_awaits_between_events() -> None:
    # The event the caller holds is being stored or posted: that must finish.
    model, cancel = Flood(5, pause=0.001), asyncio.Event()
    finished = []
    with pytest.raises(RunCancelled):
        async for _ in stream_until(model, REQUEST, cancel):
            asyncio.get_running_loop().call_later(0.01, cancel.set)
            await asyncio.sleep(0.05)  # would raise CancelledError if the cancel hit it
            finished.append(True)
    assert finished == [True]
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # taken back
    await asyncio.sleep(0)  # and nothing is still pending on the task


async def test_a_deadline_never_interrupts_the_caller_either() -> None:
    loop = asyncio.get_running_loop()
    finished = []
    with pytest.raises(RunTimedOut):
        async for _ in stream_until(Flood(5), REQUEST, asyncio.Event(), loop.time() + 0.02, 0.02):
            await asyncio.sleep(0.05)
            finished.append(True)
    assert finished == [True]
    await asyncio.sleep(0)


async def test_the_task_itself_cancelled_is_a_cancellation_not_a_run_cancel() -> None:
    model = Flood(5, pause=30)

    async def consume() -> None:
        async for _ in stream_until(model, REQUEST, asyncio.Event()):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.closed


async def test_a_cancel_and_the_task_cancelled_at_once_still_cancel_the_task() -> None:
    model, cancel = Flood(5, pause=30), asyncio.Event()

    async def consume() -> None:
        async for _ in stream_until(model, REQUEST, cancel):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.02)
    cancel.set()
    await asyncio.sleep(0)  # the cancel flag's waiter finishes...
    task.cancel()  # ...and the task is cancelled before the interrupt lands
    with pytest.raises(asyncio.CancelledError):
        await task


class Stubborn:
    """A stream that swallows the cancellation of its wait and goes on."""

    name = "stubborn"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        for i in range(3):
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                pass
            yield ModelTextDelta(str(i))
        yield ModelDone()


async def test_a_stream_that_swallows_the_interrupt_still_stops_and_leaves_no_cancel() -> None:
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.02, cancel.set)
    seen = []
    with pytest.raises(RunCancelled):
        async for event in stream_until(Stubborn(), REQUEST, cancel):
            seen.append(event)
    assert seen == []  # the event that came after the interrupt is not handed on
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # no stray CancelledError
