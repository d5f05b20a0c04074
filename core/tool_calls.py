"""A run's tool calls: recorded before they run, run once, or put to a person for approval.

A call with a recorded output is never executed again, so a run resumed after a crash or an
approval picks up exactly the calls still open. Calls of tools that ``need_approval`` (with
``approve_writes`` on) wait as ``pending`` and move the run to ``requires_action``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from core.config import Settings
from core.domain import Run, RunStatus, RunStep, StepStatus, StepType, ToolCall, new_id, utcnow
from core.events import (
    ApprovalRequired,
    Event,
    FileProduced,
    PendingCall,
    StatusChanged,
    ToolCallFinished,
    ToolCallStarted,
)
from core.i18n import t
from core.models.base import ModelToolCall
from core.prompt import cut
from core.repeat_guard import earlier_call, repeated_output
from core.store import Store
from core.store.turns import TurnContext
from core.tools.base import ToolContext, ToolRegistry, ToolResult
from core.turn import AwaitingApproval, NextStep, RunAgain, RunCancelled, RunState

log = logging.getLogger(__name__)


class ToolCalls:
    """Records, runs and asks approval for the tool calls of runs."""

    def __init__(self, settings: Settings, store: Store, tools: ToolRegistry) -> None:
        self.settings = settings
        self.store = store
        self.tools = tools

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

    def _needs_approval(self, name: str, images: bool = False) -> bool:
        tool = self.tools.get(name)
        if getattr(tool, "external", False):
            return True  # the API client runs it: the run waits for its output
        # A write the model read off an image is always shown first (issue 13): reading a
        # photo of a handwritten sheet is the likeliest place for a wrong number.
        return bool(
            (self.settings.approve_writes or images) and tool is not None and tool.needs_approval
        )

    async def record(
        self,
        run: Run,
        calls: list[ModelToolCall],
        *,
        details: dict[str, Any] | None = None,
        images: bool = False,
    ) -> TurnContext:
        """A ``tool_calls`` step with every call the model asked for, before any of them runs;
        returns the thread and its files, read in the same transaction, for the first call.

        ``details``: the turn's reasoning when no text step came first; ``images``: the model
        saw images this turn, so writes wait for approval whatever ``approve_writes`` says.
        """
        step = RunStep(id=new_id("step"), run_id=run.id, type=StepType.TOOL_CALLS)
        step.details = details or {}
        # In memory first (ids must be unique within the run, this step's calls included),
        # then stored in one transaction with the run's usage so far (issue 12).
        run.steps.append(step)
        for mcall in calls:
            call = ToolCall(
                id=self._unique_call_id(run, mcall.call_id),
                run_id=run.id,
                step_id=step.id,
                name=mcall.name,
                arguments=mcall.arguments,
            )
            # A repeat is answered from the earlier result, so nobody is asked twice.
            if self._needs_approval(mcall.name, images) and not earlier_call(
                run, call, self._writes
            ):
                call.approval = "pending"
            step.tool_calls.append(call)
        try:
            return await self.store.record_calls(run, step, step.tool_calls, usage=run.usage)
        except BaseException:
            run.steps.remove(step)
            raise

    def _writes(self, name: str) -> bool:
        tool = self.tools.get(name)
        return bool(tool is not None and tool.needs_approval)

    async def finish_open(self, state: RunState) -> AsyncIterator[Event | NextStep]:
        """Run the open tool_calls step: execute calls without output, or ask for approval."""
        run = state.run
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
        open_calls = [c for c in step.tool_calls if c.output is None and c.approval != "pending"]
        waits = any(c.approval == "pending" and c.output is None for c in step.tool_calls)
        for call in open_calls:
            # The last output completes the step in the same transaction.
            last = call is open_calls[-1] and not waits
            async for event in self._run_call(state, call, step if last else None):
                yield event
        pending = [c for c in step.tool_calls if c.approval == "pending" and c.output is None]
        if pending:
            async for event in self._ask_approval(state, pending):
                yield event
            yield AwaitingApproval(tuple(c.id for c in pending))
            return
        if step.status != StepStatus.COMPLETED:
            await self.store.set_step_status(step, StepStatus.COMPLETED)
        yield RunAgain()

    async def _run_call(
        self, state: RunState, call: ToolCall, complete: RunStep | None
    ) -> AsyncIterator[Event]:
        """Execute one call (or record its denial) and store the output (``complete``: the
        step this call is the last open one of, completed with it)."""
        run = state.run
        if call.approval == "denied":
            await self._store(
                state,
                call,
                json.dumps({"error": {"code": "denied", "message": t("denied_by_user", "en")}}),
                True,
                complete,
            )
            yield ToolCallFinished(run.id, call.id, call.name, call.output or "", True)
            return
        if (earlier := earlier_call(run, call, self._writes)) is not None:
            # Not executed again: the model gets the earlier result and is told to answer.
            output = repeated_output(earlier)
            await self._store(state, call, output, False, complete)
            yield ToolCallFinished(run.id, call.id, call.name, output, False)
            return
        yield ToolCallStarted(run.id, call.id, call.name, call.arguments)
        result = await self._call_tool(call, state)
        output = cut(result.output_text(), self.settings.tool_output_limit * 4)
        await self._store(state, call, output, result.is_error, complete)
        state.bills.extend(b for b in result.bills_changed if b not in state.bills)
        yield ToolCallFinished(run.id, call.id, call.name, output, result.is_error)
        for produced in result.files:
            yield FileProduced(run.id, produced.path, produced.name, produced.mime)

    async def _store(
        self, state: RunState, call: ToolCall, output: str, error: bool, complete: RunStep | None
    ) -> None:
        # The thread and files read with the output serve the next call or model request.
        state.memo.fresh = await self.store.store_output(
            call, output, is_error=error, complete=complete, thread_id=state.thread.id
        )

    async def _ask_approval(self, state: RunState, pending: list[ToolCall]) -> AsyncIterator[Event]:
        """Put the run in ``requires_action`` (once) and ask for a decision on ``pending``."""
        run = state.run
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
                PendingCall(c.id, c.name, c.arguments, self._describe(c, state.lang))
                for c in pending
            ),
            run.expires_at,
        )

    def _describe(self, call: ToolCall, lang: str) -> str:
        tool = self.tools.get(call.name)
        try:
            args = json.loads(call.arguments or "{}")
            if tool is not None and isinstance(args, dict):
                return tool.describe_call(args, lang)
        except Exception:  # a description must never break the approval prompt
            log.debug("describe_call failed for %s", call.name, exc_info=True)
        return f"{call.name}({call.arguments})"

    async def _call_tool(self, call: ToolCall, state: RunState) -> ToolResult:
        # Read with the last write (the current bill may have moved, files may have come),
        # or now, when a resumed run has not written yet.
        now = state.memo.fresh or await self.store.turn_context(state.thread.id)
        state.memo.fresh = None
        ctx = ToolContext(
            self.settings, self.store, now.thread, state.run.id, call.id, state.lang, now.files
        )
        # /stop and Ctrl-C must not wait for a long tool call: the call is cancelled (the
        # code interpreter interrupts its cell) and the run ends cancelled.
        call_task = asyncio.ensure_future(self.tools.call(call.name, call.arguments, ctx))
        stop = asyncio.ensure_future(state.cancel.wait())
        try:
            await asyncio.wait({call_task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not call_task.done():
                call_task.cancel()
                await asyncio.gather(call_task, return_exceptions=True)
        if call_task.cancelled():
            raise RunCancelled
        return call_task.result()
