"""What one turn of a run leads to, and what a run carries from turn to turn.

A turn is one model call plus the tool calls it asked for. Its outcome is a small typed value,
as in openai-agents' ``run_steps.py``; :meth:`core.engine.Engine.execute` dispatches on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any

from core.domain import Run, RunStep, StepType, Thread, new_id
from core.errors import IllegalTransition
from core.events import Event, TextDelta, Thinking
from core.i18n import t
from core.models.base import (
    Model,
    ModelDone,
    ModelEvent,
    ModelReasoningDelta,
    ModelReasoningItem,
    ModelRequest,
    ModelTextDelta,
    ModelToolCall,
)
from core.prompt import PromptMemo
from core.run_timeout import timed_out
from core.store import Store
from core.thinking import TurnReasoning


def step_message_id(step_id: str) -> str:
    """The id of the message a ``message_creation`` step stores. Known from the step's first
    text on, so a stream can name the message before it is stored (the Assistants API's
    ``thread.message.delta`` events do)."""
    return "msg_" + step_id.removeprefix("step_")


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
    # Issue 12: the history window, read on the run's first turn and reused by the others.
    memo: PromptMemo = field(default_factory=PromptMemo)


async def stream_until(
    model: Model,
    request: ModelRequest,
    cancel: asyncio.Event,
    deadline: float | None = None,
    limit: float = 0.0,
) -> AsyncIterator[ModelEvent]:
    """The model's events until done; :class:`RunCancelled` once ``cancel`` is set, and
    :class:`~core.run_timeout.RunTimedOut` past ``deadline`` (the stream is closed either way).

    The stream is read in the caller's own task, a chunk costing no more than the model's
    own ``await``: no reader task, queue or wait per event (issue 12: at 1,000 conversations
    those hand-offs doubled the event loop's work per chunk). Both are checked before every
    event is asked for; a cancel or the deadline that comes while the model is awaited
    interrupts that await (:class:`_Interrupt`), as ``asyncio.timeout`` does."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    events = model.stream(request)
    interrupt = _Interrupt(task)
    waiter = asyncio.ensure_future(cancel.wait())
    waiter.add_done_callback(interrupt.fire)
    timer = None if deadline is None else loop.call_at(deadline, interrupt.fire)
    try:
        while True:
            if cancel.is_set():
                raise RunCancelled
            if deadline is not None and loop.time() >= deadline:
                raise timed_out(limit)
            interrupt.armed = True
            try:
                event: ModelEvent | None = await anext(events)
            except StopAsyncIteration:
                event = None
            except asyncio.CancelledError:
                if not interrupt.taken():
                    raise  # the task itself was cancelled
                continue  # ours: the checks above say which
            finally:
                interrupt.armed = False
            if interrupt.taken():
                continue  # it fired as the event came (the stream swallowed it)
            if event is None:
                return
            yield event
    finally:
        waiter.cancel()
        if timer is not None:
            timer.cancel()
        aclose = getattr(events, "aclose", None)  # async generators: closes the HTTP stream
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


class _Interrupt:
    """Cancels ``task`` on a cancel or the deadline, but only while it awaits the model's
    stream (``armed``): never while the task is elsewhere, e.g. where the event it was
    handed on is being stored or posted. :meth:`taken` takes the cancellation back
    (``Task.uncancel``, as ``asyncio.timeout`` does), so it never reaches the caller."""

    __slots__ = ("task", "base", "armed", "fired")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task, self.base = task, task.cancelling()
        self.armed = self.fired = False

    def fire(self, *_: object) -> None:
        if self.armed and not self.fired:
            self.fired = True
            self.task.cancel()

    def taken(self) -> bool:
        """Whether this fired (taken back now) and no other cancellation of the task is
        pending besides."""
        if not self.fired:
            return False
        self.fired = False
        return self.task.uncancel() <= self.base


def completion(state: RunState) -> dict[str, Any]:
    """The run's columns on completion (besides its status and stamp)."""
    cut = {"reason": state.incomplete} if state.incomplete else None
    return {"required_action": None, "incomplete_details": cut}


async def stream_turn(
    store: Store,
    model: Model,
    limit: float,
    state: RunState,
    request: ModelRequest,
    calls: list[ModelToolCall],
    thought: TurnReasoning,
) -> AsyncIterator[Event]:
    """Stream the model: text into a ``message_creation`` step, calls into ``calls``,
    reasoning into ``thought`` (kept on the turn's first step, never shown)."""
    run = state.run
    message_step: RunStep | None = None
    parts: list[str] = []
    try:
        async for mevent in stream_until(
            model,
            request,
            state.cancel,
            state.deadline,
            limit,
        ):
            match mevent:
                case ModelReasoningDelta() | ModelReasoningItem():
                    if thought.add(mevent) and message_step is None:
                        yield Thinking(run.id)
                case ModelTextDelta(text=delta):
                    if message_step is None:
                        message_step = _message_step(run)
                    parts.append(delta)
                    yield _delta(message_step, delta)
                case ModelToolCall():
                    calls.append(mevent)
                case ModelDone(usage=usage, incomplete=incomplete):
                    if incomplete:
                        state.incomplete = incomplete
                        note = t("answer_cut", state.lang)
                        if message_step is None:
                            message_step = _message_step(run)
                        parts.append(note)
                        yield _delta(message_step, note)
                    # Kept in memory: stored with the turn's next write.
                    run.usage = {
                        "input_tokens": run.usage.get("input_tokens", 0) + usage.input_tokens,
                        "output_tokens": run.usage.get("output_tokens", 0) + usage.output_tokens,
                    }
    except BaseException:
        # Partial text is kept on the step when the stream broke off: stored now, with it.
        if message_step is not None:
            await _stored(run, message_step, store.keep_partial(message_step, "".join(parts)))
        raise
    if message_step is None:
        return
    text = "".join(parts)
    if details := thought.details():
        message_step.details = details
    # No calls: the run is answered, and completes in the same transaction.
    finish = store.finish_message(
        run,
        message_step,
        text,
        message_id=step_message_id(message_step.id) if text.strip() else None,
        usage=run.usage,
        complete=None if calls else completion(state),
    )
    await _stored(run, message_step, finish)
    if text.strip():
        state.text.append(text)


def _message_step(run: Run) -> RunStep:
    """The turn's ``message_creation`` step, made at its first text: in memory only, and
    stored with the answer (:meth:`core.store.Store.finish_message`) or, if the stream breaks
    off, with the text so far (:meth:`core.store.Store.keep_partial`) -- one write per answer
    instead of two (issue 12). A crash in between leaves no step: the resumed run asks the
    model again, as it does after a half-written step (:func:`core.lifecycle.prepare_resume`)."""
    step = RunStep(id=new_id("step"), run_id=run.id, type=StepType.MESSAGE_CREATION)
    run.steps.append(step)
    return step


def _delta(step: RunStep, text: str) -> TextDelta:
    # The step goes along: a stream can announce it before it is stored (Assistants API).
    return TextDelta(step.run_id, text, step_id=step.id, step_created_at=step.created_at)


async def _stored(run: Run, step: RunStep, write: Awaitable[None]) -> None:
    """``write`` stores ``step``; if it fails, the step is dropped from ``run`` as well (the
    run in memory holds what the store holds). A raced completion stored it all the same."""
    try:
        await write
    except IllegalTransition:
        raise
    except BaseException:
        run.steps.remove(step)
        raise
