"""Reading a project's objects back: ownership checks and the JSON of runs, steps, messages.

Every read goes through the caller's project: an id that exists under another project is
answered exactly like one that does not exist (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.assistants_api.errors import not_found
from core.assistants_api.shapes import message_out, run_out, step_out
from core.domain import Message, Run, StepType
from core.errors import NotFound
from core.store import Store
from core.store.assistants import ApiObject


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the key's project and the API version of the request (``OpenAI-Beta``)."""

    project: str
    version: str = "v2"


def step_message_ids(run: Run, messages: list[Message]) -> dict[str, str]:
    """Which stored assistant message each ``message_creation`` step of ``run`` made."""
    mine = [m for m in messages if m.run_id == run.id and m.role == "assistant"]
    steps = [s for s in run.steps if s.type == StepType.MESSAGE_CREATION and s.text.strip()]
    return {s.id: m.id for s, m in zip(steps, mine, strict=False)}


class Views:
    """Owned lookups and JSON of one project's threads, runs, steps and messages."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def owned(self, caller: Caller, kind: str, id_: str) -> ApiObject:
        """The caller's ``kind`` row ``id_``, or 404."""
        found = await self.store.get_api_object(kind, id_, caller.project)
        if found is None:
            raise not_found(kind, id_)
        return found

    async def run(self, caller: Caller, thread_id: str, run_id: str) -> tuple[Run, ApiObject]:
        """The caller's run ``run_id`` of thread ``thread_id`` with its steps, or 404."""
        await self.owned(caller, "thread", thread_id)
        obj = await self.owned(caller, "run", run_id)
        if obj.parent != thread_id:
            raise not_found("run", run_id)
        try:
            return await self.store.get_run(run_id), obj
        except NotFound:
            raise not_found("run", run_id) from None

    async def run_json(self, caller: Caller, thread_id: str, run_id: str) -> dict[str, Any]:
        run, obj = await self.run(caller, thread_id, run_id)
        return run_out(run, obj.data, caller.version)

    async def steps_json(self, caller: Caller, run: Run, obj: ApiObject) -> list[dict[str, Any]]:
        """The run's steps, oldest first."""
        ids = step_message_ids(run, await self.store.list_messages(run.thread_id))
        return [step_out(s, run, obj.data, caller.version, ids.get(s.id)) for s in run.steps]

    async def messages_json(self, caller: Caller, thread_id: str) -> list[dict[str, Any]]:
        """The thread's messages, oldest first, with their API fields."""
        extra = {
            o.id: o.data
            for o in await self.store.list_api_objects("message", caller.project, parent=thread_id)
        }
        runs = {
            o.id: o.data.get("assistant_id")
            for o in await self.store.list_api_objects("run", caller.project, parent=thread_id)
        }
        return [
            message_out(
                m,
                extra.get(m.id, {}),
                caller.version,
                runs.get(m.run_id) if m.run_id else None,
            )
            for m in await self.store.list_messages(thread_id)
        ]
