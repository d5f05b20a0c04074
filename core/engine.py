"""The run engine: tallybot's own Assistants runtime.

``Engine.execute`` drives one run as a bounded loop over turns. A turn is one model call and the
tool calls it asked for; its outcome is a :data:`core.turn.NextStep` --
``Completed | RunAgain | AwaitingApproval`` -- and the loop dispatches on it:

1. ``queued -> in_progress`` (a run from :meth:`Engine.start_run` is created so). Calls a crash
   or an approval left open are finished first. The model request is built from the store's
   history window and the run as the engine holds it (:mod:`core.prompt`: history within
   budget + this run's tool calls so far); everything it is built from is written before the
   next model call, so a resumed run continues exactly where it stopped.
2. Stream the model. Text deltas go out as :class:`TextDelta` events and into a
   ``message_creation`` step, made in memory at the first text; function calls are collected.
3. The step is stored with the whole text, completed, with the assistant message (or, if the
   stream breaks off, with the text so far). No calls -> ``Completed``: the run is
   ``completed`` in the same write. Calls (:mod:`core.tool_calls`): a ``tool_calls`` step
   records them *before* anything runs. Calls that need approval -> ``AwaitingApproval``: the
   run is ``requires_action`` and the stream ends; the others run -- once: a call with a
   recorded output is never executed again -- and their outputs are stored -> ``RunAgain``:
   back to 2.
4. Past ``max_turns`` the run ``failed`` (``max_turns_exceeded``); model errors fail it with
   ``last_error``; a cancel moves it ``cancelling -> cancelled`` and closes the model stream.

Every status change is checked against the transition table and persisted with its timestamp
and a status-log row (:meth:`core.store.Store.set_run_status`, or one of the combined writes of
:mod:`core.store.turns`). Issue 12: a turn writes where crash recovery needs it -- run started,
calls recorded, each output, the answer (its step included) with the run's completion -- each
one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta

from core import lifecycle
from core.assistant import AssistantSpec
from core.config import Settings
from core.domain import (
    Run,
    RunStatus,
    StepStatus,
    StepType,
    Thread,
    new_id,
    utcnow,
)
from core.errors import (
    MaxTurnsExceeded,
    ModelError,
    RunError,
    StoreUnavailable,
)
from core.events import (
    Event,
    Reply,
    RunFinished,
    StatusChanged,
)
from core.i18n import t
from core.models.base import (
    Model,
    ModelToolCall,
)
from core.prompt import ExchangeCache, Prompt
from core.run_timeout import check_deadline, deadline_after
from core.store import Store
from core.store.turns import TurnContext
from core.thinking import TurnReasoning
from core.tool_calls import ToolCalls
from core.tools.base import ToolRegistry
from core.turn import (
    AwaitingApproval,
    Completed,
    NextStep,
    RunAgain,
    RunCancelled,
    RunState,
    completion,
    step_message_id,
    stream_turn,
)
from core.vision import request_has_images

log = logging.getLogger(__name__)

__all__ = ["ACTIVE", "Engine", "step_message_id"]

ACTIVE = (RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.REQUIRES_ACTION, RunStatus.CANCELLING)


# Raised by the stream and by a tool call that a cancel interrupted.
_Cancelled = RunCancelled


class Engine:
    """Creates, runs, resumes, cancels and expires runs. One instance per process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        model: Model | None,
        tools: ToolRegistry,
        assistant: AssistantSpec,
    ) -> None:
        self.settings = settings
        self.store = store
        self.model = model
        self.tools = tools
        self.assistant = assistant
        self._cancel: dict[str, asyncio.Event] = {}
        # Runs start_run created in_progress: execute still announces the status change, and
        # the first request uses what start_run's transaction read for it (issue 12).
        self._started: dict[str, TurnContext | None] = {}
        # Runs that broke while the store refused writes: failed once it is writable again.
        self.unsettled: dict[str, dict[str, str]] = {}
        self.keep_interrupted = False  # set by core.service; see execute
        # Finished runs' history exchanges, built once for all later runs (core.prompt).
        self.exchanges: ExchangeCache | None = ExchangeCache()

    def derive(self, tools: ToolRegistry, assistant: AssistantSpec) -> Engine:
        """The same engine with one run's own tools and instructions (the Assistants API).

        Cancel flags are shared, so a cancel through either engine reaches the run."""
        other = Engine(self.settings, self.store, self.model, tools, assistant)
        other._cancel, other._started = self._cancel, self._started
        other.exchanges = self.exchanges
        other.keep_interrupted = self.keep_interrupted
        return other

    @property
    def model_name(self) -> str:
        """The assistant file's model wins; else the model's own name (TALLYBOT_MODEL)."""
        if self.assistant.model:
            return self.assistant.model
        return self.model.name if self.model is not None else self.settings.model

    @property
    def calls(self) -> ToolCalls:
        """The tool-call runner, over the current tools."""
        return ToolCalls(self.settings, self.store, self.tools)

    @property
    def prompt(self) -> Prompt:
        """The request builder, over the current assistant spec and tools."""
        return Prompt(self.settings, self.store, self.tools, self.assistant, self.exchanges)

    # --- creation ------------------------------------------------------------------------

    async def create_run(self, thread: Thread) -> Run | None:
        """A queued run answering every user message not yet answered; None if there are none."""
        return (await self.store.start_run(self._new_run(thread), expires_at=None)).run

    async def start_run(
        self, thread: Thread, *, check_waiting: bool = True
    ) -> tuple[Run | None, Run | None]:
        """``(waiting, run)``: a run of ``thread`` that waits for approval (nothing created;
        unless ``check_waiting`` is False), or
        a new run answering every unanswered user message, already ``in_progress`` -- created
        and started in one transaction (issue 12), which also reads (on PostgreSQL: right
        after it) the thread, its files and the history window for the run's first request;
        None if there is nothing to answer."""
        expires = utcnow() + timedelta(seconds=self.settings.run_expires_seconds)
        waiting, run, context = await self.store.start_run(
            self._new_run(thread),
            expires_at=expires,
            stop_at_waiting=check_waiting,
            window=self.settings.history_max_messages,
        )
        if run is not None:
            self._started[run.id] = context  # execute announces in_progress and uses it
        return waiting, run

    def _new_run(self, thread: Thread) -> Run:
        return Run(id=new_id("run"), thread_id=thread.id, model=self.model_name)

    # --- the loop ------------------------------------------------------------------------

    async def execute(self, run: Run, thread: Thread, lang: str) -> AsyncIterator[Event]:
        """Drive ``run`` until it finishes or waits for approval, yielding events."""
        if self.model is None:
            raise RuntimeError("Engine.execute needs a model")
        state = RunState(run, thread, lang, self._cancel.setdefault(run.id, asyncio.Event()))
        state.deadline = deadline_after(self.settings.run_timeout)
        try:
            async for event in self._loop(state):
                yield event
        except _Cancelled:
            async for event in self._finish_cancel(run, lang):
                yield event
        except (ModelError, RunError) as exc:
            async for event in self._fail(run, exc, lang, state.bills, state.text):
                yield event
        except Exception as exc:  # issue 10: the store (or a bug) broke the run mid-way
            log.exception("run %s broke", run.id)
            async for event in self._fail_broken(run, exc, lang):
                yield event
        except asyncio.CancelledError:
            # The task itself was cancelled: Ctrl-C records it; a serving process shutting
            # down leaves the run live for the next one to adopt (``keep_interrupted``).
            with contextlib.suppress(Exception):
                if not self.keep_interrupted:
                    await asyncio.shield(self._mark_cancelled(run))
            raise
        finally:
            if run.status.terminal:
                self._cancel.pop(run.id, None)

    async def _loop(self, state: RunState) -> AsyncIterator[Event]:
        """Steps 1-4 of the module docstring: a bounded loop over one turn's outcome."""
        run = state.run
        if run.status == RunStatus.QUEUED:
            await self.store.set_run_status(
                run,
                RunStatus.IN_PROGRESS,
                expires_at=utcnow() + timedelta(seconds=self.settings.run_expires_seconds),
            )
            yield StatusChanged(run.id, run.status)
        elif run.id in self._started:
            state.memo.start(self._started.pop(run.id))
            yield StatusChanged(run.id, run.status)
        # Calls a crash or an approval left open are finished before the model is asked again.
        steps: AsyncIterator[Event | NextStep] = self.calls.finish_open(state)
        last = run.steps[-1] if run.steps else None
        if last and last.type == StepType.MESSAGE_CREATION and last.status == StepStatus.COMPLETED:
            # A crash after the answer was stored, before the run completed: that answer is
            # the run's (issue 10: delivered on recovery, not asked for again).
            state.text.append(last.text)
            steps = _completed()
        while True:
            next_step: NextStep = RunAgain()
            async for item in steps:
                if isinstance(item, (Completed, RunAgain, AwaitingApproval)):
                    next_step = item
                else:
                    yield item
            match next_step:
                case Completed():
                    if run.status != RunStatus.COMPLETED:  # else stored with the answer
                        await self.store.set_run_status(
                            run, RunStatus.COMPLETED, usage=run.usage, **completion(state)
                        )
                    yield StatusChanged(run.id, run.status)
                    yield RunFinished(
                        run.id,
                        run.status,
                        "\n\n".join(state.text),
                        bills_changed=tuple(state.bills),
                    )
                    return
                case AwaitingApproval():
                    return  # the run waits in requires_action; a button or expiry goes on
                case RunAgain():
                    if state.cancel.is_set():
                        raise _Cancelled
                    self._check_turns(run)
                    check_deadline(state.deadline, self.settings.run_timeout)
                    steps = self._turn(state)

    def _check_turns(self, run: Run) -> None:
        turns = sum(1 for s in run.steps if s.type == StepType.TOOL_CALLS)
        if turns >= self.settings.max_turns:
            raise MaxTurnsExceeded(
                f"the assistant used tools {turns} times without finishing "
                f"(limit TALLYBOT_MAX_TURNS={self.settings.max_turns})",
                zh=f"助手调用工具 {turns} 次仍未完成（上限 TALLYBOT_MAX_TURNS="
                f"{self.settings.max_turns}），已停止。",
            )

    async def _turn(self, state: RunState) -> AsyncIterator[Event | NextStep]:
        """One model turn: stream it, keep its text, then record and run its calls."""
        run = state.run
        request = await self.prompt.request(
            run, state.thread, state.lang, self.model_name, memo=state.memo
        )
        calls: list[ModelToolCall] = []
        thought = TurnReasoning()
        model = self._require_model()
        stream = stream_turn(
            self.store, model, self.settings.run_timeout, state, request, calls, thought
        )
        async for event in stream:
            yield event
        if not calls:
            yield Completed()
            return
        state.memo.fresh = await self.calls.record(
            run, calls, details=thought.details(), images=request_has_images(request)
        )
        async for item in self.calls.finish_open(state):
            yield item

    def _require_model(self) -> Model:
        assert self.model is not None
        return self.model

    # --- approval, cancel, expiry, failure -----------------------------------------------

    async def submit_tool_outputs(
        self,
        run_id: str,
        decisions: Mapping[str, bool] | bool,
        thread: Thread,
        lang: str,
        *,
        outputs: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Event]:
        """Approve or deny the pending calls of a ``requires_action`` run and continue it.

        ``outputs`` answers calls of external tools (run by the API client) by call id: the
        output is stored as the call's result, so the call itself never runs here."""
        run = await self.store.get_run(run_id)
        if (
            run.status == RunStatus.REQUIRES_ACTION
            and run.expires_at
            and run.expires_at <= utcnow()
        ):
            await lifecycle.expire(self.store, run)
        if run.status != RunStatus.REQUIRES_ACTION:
            key = "run_expired" if run.status == RunStatus.EXPIRED else "nothing_running"
            yield Reply(t(key, lang), kind="error")
            return
        pending = [c for s in run.steps for c in s.tool_calls if c.approval == "pending"]
        for call in pending:
            if outputs is not None and call.id in outputs:
                await self.store.set_tool_output(call, outputs[call.id], is_error=False)
                await self.store.set_tool_approval(call, "approved")
                continue
            ok = decisions if isinstance(decisions, bool) else decisions.get(call.id)
            if ok is None:
                continue
            await self.store.set_tool_approval(call, "approved" if ok else "denied")
        if any(c.approval == "pending" for c in pending):
            yield Reply("some calls still wait for a decision", kind="error")
            return
        await self.store.set_run_status(run, RunStatus.IN_PROGRESS, required_action=None)
        yield StatusChanged(run.id, run.status)
        async for event in self.execute(run, thread, lang):
            yield event

    def request_cancel(self, run_id: str) -> None:
        self._cancel.setdefault(run_id, asyncio.Event()).set()

    async def cancel(self, run: Run) -> bool:
        """Cancel ``run``. A streaming run stops at its next event; a waiting one at once."""
        if run.status.terminal:
            return False
        if (
            run.status in (RunStatus.QUEUED, RunStatus.REQUIRES_ACTION)
            or run.id not in self._cancel
        ):
            await self._mark_cancelled(run)
            return True
        self.request_cancel(run.id)
        return True

    async def _finish_cancel(self, run: Run, lang: str) -> AsyncIterator[Event]:
        await self.store.set_run_status(run, RunStatus.CANCELLING)
        yield StatusChanged(run.id, run.status)
        await self._mark_cancelled(run)
        yield StatusChanged(run.id, run.status)
        yield RunFinished(run.id, run.status, t("run_cancelled", lang))

    async def _fail(
        self, run: Run, exc: ModelError | RunError, lang: str, bills: list[int], text: list[str]
    ) -> AsyncIterator[Event]:
        error = exc.to_dict()
        fresh = await self.store.get_run(run.id)
        for step in fresh.steps:
            if step.status == StepStatus.IN_PROGRESS:
                await self.store.set_step_status(step, StepStatus.FAILED)
        if fresh.status.terminal:
            return
        await self.store.set_run_status(
            fresh, RunStatus.FAILED, last_error=error, required_action=None, usage=run.usage
        )
        run.status, run.last_error = fresh.status, error
        yield StatusChanged(run.id, run.status)
        yield RunFinished(
            run.id,
            run.status,
            t("run_failed", lang, message=exc.localized(lang)),
            last_error=error,
            bills_changed=tuple(bills),
        )

    async def _fail_broken(self, run: Run, exc: Exception, lang: str) -> AsyncIterator[Event]:
        """Fail a run an unexpected error broke; if the store cannot record that now, the run
        is kept in :attr:`unsettled` and failed by :meth:`settle_broken` later."""
        stored = type(exc).__module__.startswith("sqlalchemy") or isinstance(exc, OSError)
        error = StoreUnavailable(
            f"{type(exc).__name__}: {exc}"[:500], code="store_error" if stored else "internal_error"
        )
        try:
            async for event in self._fail(run, error, lang, [], []):
                yield event
            return
        except Exception:
            log.exception("could not record the failure of run %s; will retry", run.id)
            self.unsettled[run.id] = error.to_dict()
        yield RunFinished(
            run.id,
            RunStatus.FAILED,
            t("run_failed", lang, message=t("store_unavailable", lang)),
            last_error=error.to_dict(),
        )

    async def settle_broken(self) -> int:
        """Record the failure of runs that broke while the store was not writable."""
        settled = 0
        for run_id, error in list(self.unsettled.items()):
            try:
                run = await self.store.get_run(run_id)
                if not run.status.terminal:
                    exc = StoreUnavailable(error.get("message", ""), code=error.get("code"))
                    async for _ in self._fail(run, exc, "en", [], []):
                        pass
            except Exception:
                log.debug("store still not writable for run %s", run_id, exc_info=True)
                continue
            self.unsettled.pop(run_id, None)
            settled += 1
        return settled

    async def fail_interrupted(self, run: Run, lang: str) -> None:
        """Fail a run a restart interrupted when no model is configured to resume it."""
        error = RunError(
            "interrupted by a restart and no model is configured to resume it",
            code="interrupted",
        )
        async for _ in self._fail(run, error, lang, [], []):
            pass

    async def _mark_cancelled(self, run: Run) -> None:
        await lifecycle.mark_cancelled(self.store, run)

    async def expire_due(self) -> list[Run]:
        """Move ``requires_action`` runs past ``expires_at`` to ``expired``."""
        return await lifecycle.expire_due(self.store)

    async def interrupted_runs(self) -> list[Run]:
        """Runs a crash left ``queued``, ``in_progress`` or ``cancelling`` (for recovery)."""
        return await lifecycle.interrupted_runs(self.store)

    async def prepare_resume(self, run: Run) -> None:
        """Make a crashed run resumable: half-written text steps fail, cancelling completes."""
        await lifecycle.prepare_resume(self.store, run)


async def _completed() -> AsyncIterator[Completed]:
    yield Completed()
