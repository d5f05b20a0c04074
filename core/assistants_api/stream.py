"""Engine events as the API's server-sent events (``stream=true``).

The engine yields tallybot's own events (:mod:`core.events`); :class:`Translator` turns them
into the API's: ``thread.run.<status>`` with the run object on every status change,
``thread.run.step.created|in_progress|delta|completed|...`` as steps appear, get their tool
calls and finish (read back from the store, so the step objects are exactly what
``steps.list`` returns; a message's step, stored only with its answer, is announced from the
first text delta, which names it),
``thread.message.created|in_progress|delta|completed`` around streamed text, and ``done``.

A message's id comes from its step (:func:`core.engine.step_message_id`), so the created and
delta events already carry the id ``messages.list`` will show.
"""

from __future__ import annotations

from typing import Any

from core.assistants_api.shapes import run_out, step_out, ts
from core.assistants_api.views import Caller, Views, step_message_ids
from core.domain import RunStatus, RunStep, StepStatus, StepType, utcnow
from core.engine import step_message_id
from core.events import Event, StatusChanged, TextDelta

ApiEvent = tuple[str, Any]
"""(event name, JSON data) of one server-sent event."""

DONE: ApiEvent = ("done", "[DONE]")


class Translator:
    """Turns one run's engine events into API events, in order."""

    def __init__(self, views: Views, caller: Caller, thread_id: str, run_id: str) -> None:
        self.views = views
        self.caller = caller
        self.thread_id = thread_id
        self.run_id = run_id
        self._steps: dict[str, StepStatus] = {}
        self._calls: set[str] = set()
        self._message_step = ""
        self._message: dict[str, Any] | None = None
        self._text: list[str] = []

    async def run_event(self, status: RunStatus | None = None) -> ApiEvent:
        """``thread.run.<status>`` with the run as stored now."""
        run, obj = await self.views.run(self.caller, self.thread_id, self.run_id)
        return f"thread.run.{(status or run.status).value}", run_out(
            run, obj.data, self.caller.version
        )

    async def created(self) -> list[ApiEvent]:
        """What a new run's stream starts with."""
        name, data = await self.run_event()
        return [("thread.run.created", data), ("thread.run.queued", data)]

    async def on(self, event: Event) -> list[ApiEvent]:
        """The API events for one engine event."""
        out: list[ApiEvent] = []
        if isinstance(event, TextDelta):
            if self._message is None:
                out += await self.sync_steps(opening=event)
                out += self._open_message(step_message_id(self._message_step))
            self._text.append(event.text)
            out.append(("thread.message.delta", self._delta(event.text)))
            return out
        out += await self.close_message()
        out += await self.sync_steps()
        if isinstance(event, StatusChanged):
            out.append(await self.run_event(event.status))
        return out

    async def finish(self) -> list[ApiEvent]:
        """Whatever is still open when the engine's stream ends, then ``done``."""
        return [*await self.close_message(), *await self.sync_steps(), DONE]

    async def sync_steps(self, opening: TextDelta | None = None) -> list[ApiEvent]:
        """Step events for steps that appeared or changed status since the last look.

        ``opening``: the first text of a message, whose ``message_creation`` step is not
        stored before the answer is (issue 12); the event names it, and it is announced as
        the store will hold it (``in_progress``, no message yet)."""
        run, obj = await self.views.run(self.caller, self.thread_id, self.run_id)
        ids = step_message_ids(run, await self.views.store.list_messages(self.thread_id))
        steps = run.steps
        if opening is not None and opening.step_id and opening.step_id not in {s.id for s in steps}:
            live = RunStep(id=opening.step_id, run_id=run.id, type=StepType.MESSAGE_CREATION)
            live.created_at = opening.step_created_at or live.created_at
            steps = [*steps, live]
        out: list[ApiEvent] = []
        for step in steps:
            if step.type == StepType.MESSAGE_CREATION:
                self._message_step = step.id  # the newest: the one text streams into
            data = step_out(step, run, obj.data, self.caller.version, ids.get(step.id))
            seen = self._steps.get(step.id)
            if seen is None:
                created = {**data, "status": "in_progress", "completed_at": None}
                if step.type == StepType.TOOL_CALLS:  # the calls follow as deltas
                    created["step_details"] = {"type": "tool_calls", "tool_calls": []}
                out.append(("thread.run.step.created", created))
                out.append(("thread.run.step.in_progress", created))
            if step.type == StepType.TOOL_CALLS:
                out += self._call_deltas(step.id, data["step_details"]["tool_calls"])
            if step.status != StepStatus.IN_PROGRESS and seen != step.status:
                out.append((f"thread.run.step.{step.status.value}", data))
            self._steps[step.id] = step.status
        return out

    def _call_deltas(self, step_id: str, calls: list[dict[str, Any]]) -> list[ApiEvent]:
        """One ``thread.run.step.delta`` per call not announced yet (the SDK's
        ``on_tool_call_created`` fires on them)."""
        out: list[ApiEvent] = []
        for index, item in enumerate(calls):
            if item["id"] in self._calls:
                continue
            self._calls.add(item["id"])
            delta = {"type": "tool_calls", "tool_calls": [{**item, "index": index}]}
            out.append(
                (
                    "thread.run.step.delta",
                    {
                        "id": step_id,
                        "object": "thread.run.step.delta",
                        "delta": {"step_details": delta},
                    },
                )
            )
        return out

    def _open_message(self, message_id: str) -> list[ApiEvent]:
        self._text = []
        self._message = {
            "id": message_id,
            "object": "thread.message",
            "created_at": ts(utcnow()),
            "thread_id": self.thread_id,
            "role": "assistant",
            "content": [],
            "assistant_id": None,
            "run_id": self.run_id,
            "metadata": {},
            "status": "in_progress",
            "attachments": [],
            "file_ids": [],
            "completed_at": None,
            "incomplete_at": None,
            "incomplete_details": None,
        }
        return [
            ("thread.message.created", self._message),
            ("thread.message.in_progress", self._message),
        ]

    def _delta(self, text: str) -> dict[str, Any]:
        assert self._message is not None
        first = len(self._text) == 1
        part: dict[str, Any] = {"index": 0, "type": "text", "text": {"value": text}}
        if first:
            part["text"]["annotations"] = []
        return {
            "id": self._message["id"],
            "object": "thread.message.delta",
            "delta": {"role": "assistant", "content": [part]},
        }

    async def close_message(self) -> list[ApiEvent]:
        """``thread.message.completed`` with the stored message, once its text ended."""
        if self._message is None:
            return []
        message_id, self._message = self._message["id"], None
        messages = await self.views.messages_json(self.caller, self.thread_id)
        mine = [m for m in messages if m["id"] == message_id]
        if not mine:
            return []  # the text was blank or the stream broke off: nothing was stored
        return [("thread.message.completed", mine[0])]
