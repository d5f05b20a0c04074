"""The run engine: tallybot's own Assistants runtime.

``Engine.execute`` drives one run, in four steps:

1. ``queued -> in_progress``. The model request is rebuilt from the store on every turn (history
   within budget + this run's tool calls so far), so a run resumed after approval or after a
   crash continues exactly where it stopped.
2. Stream the model. Text deltas go out as :class:`TextDelta` events and into a
   ``message_creation`` step; function calls are collected.
3. No calls: the step completes, the assistant message is stored, the run is ``completed``.
   Calls: a ``tool_calls`` step records them *before* anything runs. Calls that need approval
   put the run in ``requires_action`` and the stream ends; the others run -- once: a call with
   a recorded output is never executed again -- and their outputs are stored. Loop to 2.
4. Past ``max_turns`` the run ``failed`` (``max_turns_exceeded``); model errors fail it with
   ``last_error``; a cancel moves it ``cancelling -> cancelled`` and closes the model stream.

Every status change goes through :meth:`core.store.Store.set_run_status`, which checks the
transition table and persists the timestamp.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from core.assistant import AssistantSpec
from core.config import Settings
from core.domain import (
    Run,
    RunStatus,
    RunStep,
    StepStatus,
    StepType,
    Thread,
    ToolCall,
    new_id,
    utcnow,
)
from core.errors import IllegalTransition, MaxTurnsExceeded, ModelError, NotFound, RunError
from core.events import (
    ApprovalRequired,
    Event,
    FileProduced,
    PendingCall,
    Reply,
    RunFinished,
    StatusChanged,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from core.i18n import t
from core.models.base import (
    AssistantText,
    FunctionCall,
    FunctionOutput,
    Item,
    Model,
    ModelDone,
    ModelRequest,
    ModelTextDelta,
    ModelToolCall,
    UserText,
)
from core.store import Store
from core.tools.base import ToolContext, ToolRegistry, ToolResult

log = logging.getLogger(__name__)

ACTIVE = (RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.REQUIRES_ACTION, RunStatus.CANCELLING)


class _Cancelled(Exception):
    """Internal signal: the run's cancel flag was raised."""


@dataclass
class _Turn:
    """One exchange of the history: user messages, then what the assistant did about them."""

    items: list[Item] = field(default_factory=list)

    def size(self) -> int:
        total = 0
        for item in self.items:
            match item:
                case UserText(text) | AssistantText(text):
                    total += len(text)
                case FunctionCall(arguments=args):
                    total += len(args)
                case FunctionOutput(output=out):
                    total += len(out)
        return total


def cut(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters with a marker saying how much was dropped."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n…[cut {len(text) - limit} characters]"


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

    @property
    def model_name(self) -> str:
        """The assistant file's model wins; else the model's own name (TALLYBOT_MODEL)."""
        if self.assistant.model:
            return self.assistant.model
        return self.model.name if self.model is not None else self.settings.model

    # --- creation ------------------------------------------------------------------------

    async def create_run(self, thread: Thread) -> Run | None:
        """A queued run answering every user message not yet answered; None if there are none."""
        last = await self.store.list_runs(thread_id=thread.id)
        answered = max((r.upto_seq for r in last), default=0)
        pending = await self.store.list_messages(thread.id, after_seq=answered, role="user")
        if not pending:
            return None
        run = Run(
            id=new_id("run"),
            thread_id=thread.id,
            model=self.model_name,
            upto_seq=pending[-1].seq,
        )
        return await self.store.create_run(run)

    # --- the loop ------------------------------------------------------------------------

    async def execute(self, run: Run, thread: Thread, lang: str) -> AsyncIterator[Event]:
        """Drive ``run`` until it finishes or waits for approval, yielding events."""
        if self.model is None:
            raise RuntimeError("Engine.execute needs a model")
        cancel = self._cancel.setdefault(run.id, asyncio.Event())
        bills: list[int] = []
        text_out: list[str] = []
        try:
            if run.status == RunStatus.QUEUED:
                await self.store.set_run_status(
                    run,
                    RunStatus.IN_PROGRESS,
                    expires_at=utcnow() + timedelta(seconds=self.settings.run_expires_seconds),
                )
                yield StatusChanged(run.id, run.status)
            async for event in self._finish_open_calls(run, thread, lang, bills):
                yield event
            while True:
                if cancel.is_set():
                    raise _Cancelled
                turns = sum(1 for s in run.steps if s.type == StepType.TOOL_CALLS)
                if turns >= self.settings.max_turns:
                    raise MaxTurnsExceeded(
                        f"the assistant used tools {turns} times without finishing "
                        f"(limit TALLYBOT_MAX_TURNS={self.settings.max_turns})",
                        zh=f"助手调用工具 {turns} 次仍未完成（上限 TALLYBOT_MAX_TURNS="
                        f"{self.settings.max_turns}），已停止。",
                    )
                request = await self._request(run, thread, lang)
                message_step: RunStep | None = None
                parts: list[str] = []
                calls: list[ModelToolCall] = []
                try:
                    async for mevent in self._stream(request, cancel):
                        match mevent:
                            case ModelTextDelta(text=delta):
                                if message_step is None:
                                    message_step = await self.store.add_step(
                                        run, StepType.MESSAGE_CREATION
                                    )
                                parts.append(delta)
                                yield TextDelta(run.id, delta)
                            case ModelToolCall():
                                calls.append(mevent)
                            case ModelDone(usage=usage):
                                await self.store.update_run(
                                    run,
                                    usage={
                                        "input_tokens": run.usage.get("input_tokens", 0)
                                        + usage.input_tokens,
                                        "output_tokens": run.usage.get("output_tokens", 0)
                                        + usage.output_tokens,
                                    },
                                )
                finally:
                    # Partial text is kept on the step even when the stream broke off.
                    if message_step is not None and parts:
                        await self.store.set_step_text(message_step, "".join(parts))
                text = "".join(parts)
                if message_step is not None:
                    await self.store.set_step_status(message_step, StepStatus.COMPLETED, text=text)
                    if text.strip():
                        await self.store.add_message(thread.id, "assistant", text, run_id=run.id)
                        text_out.append(text)
                if not calls:
                    await self.store.set_run_status(run, RunStatus.COMPLETED, required_action=None)
                    yield StatusChanged(run.id, run.status)
                    yield RunFinished(
                        run.id, run.status, "\n\n".join(text_out), bills_changed=tuple(bills)
                    )
                    return
                step = await self.store.add_step(run, StepType.TOOL_CALLS)
                for mcall in calls:
                    needs = self._needs_approval(mcall.name)
                    await self.store.add_tool_call(
                        step,
                        ToolCall(
                            id=self._unique_call_id(run, mcall.call_id),
                            run_id=run.id,
                            step_id=step.id,
                            name=mcall.name,
                            arguments=mcall.arguments,
                            approval="pending" if needs else None,
                        ),
                    )
                async for event in self._finish_open_calls(run, thread, lang, bills):
                    yield event
                if run.status == RunStatus.REQUIRES_ACTION:
                    return
        except _Cancelled:
            async for event in self._finish_cancel(run, lang):
                yield event
        except (ModelError, RunError) as exc:
            async for event in self._fail(run, exc, lang, bills, text_out):
                yield event
        except asyncio.CancelledError:
            # The task itself was cancelled (Ctrl-C, shutdown): record it, then let it go.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._mark_cancelled(run))
            raise
        finally:
            if run.status.terminal:
                self._cancel.pop(run.id, None)

    def _unique_call_id(self, run: Run, call_id: str) -> str:
        # Some local servers reuse ids like "call_0" every turn; the id must be unique per run.
        taken = {c.id for s in run.steps for c in s.tool_calls}
        if call_id and call_id not in taken:
            return call_id
        base = call_id or "call"
        n = 1
        while f"{base}_{n}" in taken:
            n += 1
        return f"{base}_{n}"

    def _needs_approval(self, name: str) -> bool:
        tool = self.tools.get(name)
        return bool(self.settings.approve_writes and tool is not None and tool.needs_approval)

    async def _finish_open_calls(
        self, run: Run, thread: Thread, lang: str, bills: list[int]
    ) -> AsyncIterator[Event]:
        """Run the open tool_calls step: execute calls without output, or ask for approval."""
        step = next(
            (
                s
                for s in reversed(run.steps)
                if s.type == StepType.TOOL_CALLS and s.status == StepStatus.IN_PROGRESS
            ),
            None,
        )
        if step is None:
            return
        for call in step.tool_calls:
            if call.output is not None or call.approval == "pending":
                continue
            if call.approval == "denied":
                await self.store.set_tool_output(
                    call,
                    json.dumps({"error": {"code": "denied", "message": t("denied_by_user", "en")}}),
                    is_error=True,
                )
                yield ToolCallFinished(run.id, call.id, call.name, call.output or "", True)
                continue
            yield ToolCallStarted(run.id, call.id, call.name, call.arguments)
            result = await self._call_tool(call, thread, run, lang)
            output = cut(result.output_text(), self.settings.tool_output_limit * 4)
            await self.store.set_tool_output(call, output, is_error=result.is_error)
            bills.extend(b for b in result.bills_changed if b not in bills)
            yield ToolCallFinished(run.id, call.id, call.name, output, result.is_error)
            for produced in result.files:
                yield FileProduced(run.id, produced.path, produced.name, produced.mime)
        pending = [c for c in step.tool_calls if c.approval == "pending" and c.output is None]
        if pending:
            if run.status != RunStatus.REQUIRES_ACTION:
                await self.store.set_run_status(
                    run,
                    RunStatus.REQUIRES_ACTION,
                    expires_at=utcnow() + timedelta(seconds=self.settings.run_expires_seconds),
                    required_action={
                        "type": "submit_tool_outputs",
                        "submit_tool_outputs": {
                            "tool_calls": [
                                {
                                    "id": c.id,
                                    "type": "function",
                                    "function": {"name": c.name, "arguments": c.arguments},
                                }
                                for c in pending
                            ]
                        },
                    },
                )
                yield StatusChanged(run.id, run.status)
            yield ApprovalRequired(
                run.id,
                run.thread_id,
                tuple(
                    PendingCall(c.id, c.name, c.arguments, self._describe(c, lang)) for c in pending
                ),
                run.expires_at,
            )
            return
        await self.store.set_step_status(step, StepStatus.COMPLETED)

    def _describe(self, call: ToolCall, lang: str) -> str:
        tool = self.tools.get(call.name)
        try:
            args = json.loads(call.arguments or "{}")
            if tool is not None and isinstance(args, dict):
                return tool.describe_call(args, lang)
        except Exception:  # a description must never break the approval prompt
            log.debug("describe_call failed for %s", call.name, exc_info=True)
        return f"{call.name}({call.arguments})"

    async def _call_tool(self, call: ToolCall, thread: Thread, run: Run, lang: str) -> ToolResult:
        files = await self.store.list_files(thread.id)
        fresh = await self.store.get_thread(thread.id)  # current bill may have moved
        ctx = ToolContext(self.settings, self.store, fresh, run.id, call.id, lang, files)
        # /stop and Ctrl-C must not wait for a long tool call: the call is cancelled (the
        # code interpreter interrupts its cell) and the run ends cancelled.
        call_task = asyncio.ensure_future(self.tools.call(call.name, call.arguments, ctx))
        stop = asyncio.ensure_future(self._cancel.setdefault(run.id, asyncio.Event()).wait())
        try:
            await asyncio.wait({call_task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not call_task.done():
                call_task.cancel()
                await asyncio.gather(call_task, return_exceptions=True)
        if call_task.cancelled():
            raise _Cancelled
        return call_task.result()

    async def _stream(self, request: ModelRequest, cancel: asyncio.Event) -> AsyncIterator:  # type: ignore[type-arg]
        """The model's events until done, or until ``cancel`` is set (then the stream closes)."""
        assert self.model is not None
        agen = self.model.stream(request)
        waiter = asyncio.ensure_future(cancel.wait())
        try:
            while True:
                nxt = asyncio.ensure_future(agen.__anext__())
                done, _ = await asyncio.wait({nxt, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    nxt.cancel()
                    with contextlib.suppress(BaseException):
                        await nxt
                    raise _Cancelled
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

    # --- history -------------------------------------------------------------------------

    async def _request(self, run: Run, thread: Thread, lang: str) -> ModelRequest:
        return ModelRequest(
            model=self.model_name,
            instructions=await self._instructions(thread, lang),
            items=tuple(await self.history(thread, run)),
            tools=self.tools.specs(),
        )

    async def _instructions(self, thread: Thread, lang: str) -> str:
        fresh = await self.store.get_thread(thread.id)
        files = await self.store.list_files(thread.id)
        parts = [self.assistant.instructions, "", f"Today is {date.today().isoformat()}."]
        parts.append(
            "The person writes Chinese: answer in Chinese."
            if lang == "zh"
            else "Answer in the language the person writes in."
        )
        if files:
            # The interpreter knows where files really are in its sandbox (/mnt/data or not).
            interpreter = self.tools.get("code_interpreter")
            describe = getattr(interpreter, "describe_files", None)
            parts.append(
                describe(files)
                if describe
                else "\n".join(
                    ["Files in this conversation:"]
                    + [f"- {f.name} ({f.kind}, {f.size} bytes)" for f in files]
                )
            )
            summaries = [(f.name, f.summary) for f in files if f.summary]
            if summaries:
                parts.append("What the files contain:")
                for name, summary in summaries:
                    parts.append(f"## {name}\n" + cut(summary, 2000))
        if fresh.current_bill_id:
            parts.append(
                f"The current bill of this conversation is #{fresh.current_bill_id}; "
                "amend_bill changes it unless you pass another bill_id."
            )
        return "\n".join(parts)

    async def history(self, thread: Thread, run: Run) -> list[Item]:
        """The thread as model items, oldest turns dropped first to fit the budget."""
        runs = [r for r in await self.store.list_runs(thread_id=thread.id) if r.upto_seq]
        # Only the newest runs can fit the budget; older ones are not even loaded.
        window = self.settings.history_max_messages
        prev = 0
        if len(runs) > window:
            prev = max(r.upto_seq for r in runs[:-window])
            runs = runs[-window:]
        messages = await self.store.list_messages(
            thread.id, upto_seq=run.upto_seq, after_seq=prev, role="user"
        )
        earlier = [r for r in runs if r.id != run.id and r.created_at <= run.created_at]
        await self.store.load_steps(earlier)  # two queries, however long the thread
        turns: list[_Turn] = []
        for r in runs:
            if r.created_at > run.created_at and r.id != run.id:
                break
            turn = _Turn([UserText(m.text) for m in messages if prev < m.seq <= r.upto_seq])
            prev = max(prev, r.upto_seq)
            turn.items.extend(self._run_items(run if r.id == run.id else r))
            if turn.items:
                turns.append(turn)
            if r.id == run.id:
                break
        limit_msgs = self.settings.history_max_messages
        budget = self.settings.history_budget_chars
        kept: list[_Turn] = []
        used = 0
        count = 0
        for turn in reversed(turns):
            n = sum(1 for i in turn.items if isinstance(i, (UserText, AssistantText)))
            if kept and (used + turn.size() > budget or count + n > limit_msgs):
                break
            kept.append(turn)
            used += turn.size()
            count += n
        return [item for turn in reversed(kept) for item in turn.items]

    def _run_items(self, run: Run) -> list[Item]:
        items: list[Item] = []
        limit = self.settings.tool_output_limit
        for step in run.steps:
            if step.type == StepType.MESSAGE_CREATION:
                if step.status == StepStatus.COMPLETED and step.text.strip():
                    items.append(AssistantText(step.text))
                continue
            # Only calls with an output: an unanswered call would be rejected by every API.
            done = [c for c in step.tool_calls if c.output is not None]
            items.extend(FunctionCall(c.id, c.name, c.arguments) for c in done)
            items.extend(FunctionOutput(c.id, cut(c.output or "", limit)) for c in done)
        return items

    # --- approval, cancel, expiry, failure -----------------------------------------------

    async def submit_tool_outputs(
        self, run_id: str, decisions: Mapping[str, bool] | bool, thread: Thread, lang: str
    ) -> AsyncIterator[Event]:
        """Approve or deny the pending calls of a ``requires_action`` run and continue it."""
        run = await self.store.get_run(run_id)
        if (
            run.status == RunStatus.REQUIRES_ACTION
            and run.expires_at
            and run.expires_at <= utcnow()
        ):
            await self._expire(run)
        if run.status != RunStatus.REQUIRES_ACTION:
            key = "run_expired" if run.status == RunStatus.EXPIRED else "nothing_running"
            yield Reply(t(key, lang), kind="error")
            return
        pending = [c for s in run.steps for c in s.tool_calls if c.approval == "pending"]
        for call in pending:
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

    async def _mark_cancelled(self, run: Run) -> None:
        current = await self.store.get_run(run.id)
        if current.status.terminal:
            run.status = current.status
            return
        if current.status != RunStatus.CANCELLING:
            await self.store.set_run_status(current, RunStatus.CANCELLING)
        for step in current.steps:
            if step.status == StepStatus.IN_PROGRESS:
                await self.store.set_step_status(step, StepStatus.CANCELLED)
        await self.store.set_run_status(current, RunStatus.CANCELLED, required_action=None)
        run.status = current.status

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
            fresh, RunStatus.FAILED, last_error=error, required_action=None
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

    async def _expire(self, run: Run) -> None:
        for step in run.steps:
            if step.status == StepStatus.IN_PROGRESS:
                await self.store.set_step_status(step, StepStatus.EXPIRED)
        await self.store.set_run_status(run, RunStatus.EXPIRED, required_action=None)

    async def expire_due(self) -> list[Run]:
        """Move ``requires_action`` runs past ``expires_at`` to ``expired``."""
        now = utcnow()
        expired = []
        for run in await self.store.list_runs(statuses=[RunStatus.REQUIRES_ACTION]):
            if run.expires_at and run.expires_at <= now:
                full = await self.store.get_run(run.id)
                try:
                    await self._expire(full)
                except IllegalTransition:
                    continue  # answered at the same moment
                expired.append(full)
        return expired

    async def interrupted_runs(self) -> list[Run]:
        """Runs a crash left ``queued``, ``in_progress`` or ``cancelling`` (for recovery)."""
        runs = await self.store.list_runs(
            statuses=[RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.CANCELLING]
        )
        result = []
        for run in runs:
            try:
                result.append(await self.store.get_run(run.id))
            except NotFound:
                continue
        return result

    async def prepare_resume(self, run: Run) -> None:
        """Make a crashed run resumable: half-written text steps fail, cancelling completes."""
        if run.status == RunStatus.CANCELLING:
            await self._mark_cancelled(run)
            return
        for step in run.steps:
            if step.type == StepType.MESSAGE_CREATION and step.status == StepStatus.IN_PROGRESS:
                await self.store.set_step_status(step, StepStatus.FAILED)
