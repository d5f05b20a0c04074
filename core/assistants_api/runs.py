"""Runs of the API: create (and create-with-thread), read, update, cancel, tool outputs, steps.

A run is a tallybot run on the thread (same engine, store and bills as the chat channels).
What the API adds -- its assistant, instructions, tools, model name and limits -- is the run's
``api_objects`` row; each drive of the run builds its engine from it (:meth:`Engine.derive`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.assistant import AssistantSpec
from core.assistants_api import inputs
from core.assistants_api.driver import Driver, Hook, Start
from core.assistants_api.errors import ApiError, bad_request, not_found
from core.assistants_api.objects import Objects
from core.assistants_api.pagination import PageParams, page
from core.assistants_api.shapes import run_out
from core.assistants_api.stream import ApiEvent, Translator
from core.assistants_api.tools import check_tools, run_tools
from core.assistants_api.views import Caller, Views
from core.domain import Run, RunStatus, Thread, new_id, utcnow
from core.engine import ACTIVE, Engine
from core.events import Event, FileProduced, ToolCallFinished
from core.i18n import detect_lang
from core.store.assistants import ApiObject

if TYPE_CHECKING:
    from core.app import Tallybot

Answer = tuple[dict[str, Any], AsyncIterator[ApiEvent] | None]
"""A run's JSON, and the event stream when the request asked for ``stream=true``."""

_OVERRIDES = ("temperature", "top_p", "max_prompt_tokens", "max_completion_tokens")


class Runs:
    """The run endpoints of one bot."""

    def __init__(self, bot: Tallybot, objects: Objects) -> None:
        self.bot = bot
        self.store = bot.store
        self.objects = objects
        self.views = Views(bot.store)
        self.driver = Driver(bot)
        self._creating = asyncio.Lock()

    # --- create ----------------------------------------------------------------------------

    def _run_data(self, assistant: ApiObject, body: dict[str, Any]) -> dict[str, Any]:
        a = assistant.data
        data: dict[str, Any] = {
            "assistant_id": assistant.id,
            "model": body.get("model") or a.get("model"),
            "instructions": body["instructions"]
            if body.get("instructions") is not None
            else a.get("instructions") or "",
            "additional_instructions": body.get("additional_instructions") or "",
            "tools": inputs.tools_in(body["tools"])
            if body.get("tools") is not None
            else a.get("tools", []),
            "file_ids": list(a.get("file_ids", [])),
            "metadata": inputs.metadata_in(body.get("metadata")),
            "response_format": body.get("response_format") or a.get("response_format"),
            "tool_choice": body.get("tool_choice"),
        }
        for key in _OVERRIDES:
            data[key] = body.get(key, a.get(key))
        check_tools(data["tools"])
        return data

    def _check_model(self) -> None:
        if not self.bot.model_ready:
            raise bad_request(
                "tallybot has no model configured: set OPENAI_API_KEY or OPENAI_BASE_URL "
                "(and TALLYBOT_MODEL) for the server, then start it again.",
                code="no_model",
            )

    async def create(self, caller: Caller, thread_id: str, body: dict[str, Any]) -> Answer:
        """Store a queued run on the thread and start it; 409 while another run is active."""
        self._check_model()
        await self.views.owned(caller, "thread", thread_id)
        if not isinstance(body.get("assistant_id"), str):
            raise bad_request("Missing required parameter: 'assistant_id'.", param="assistant_id")
        assistant = await self.objects.assistant(caller, body["assistant_id"])
        data = self._run_data(assistant, body)
        extra = body.get("additional_messages") or []
        if not isinstance(extra, list):
            raise bad_request("Invalid 'additional_messages': expected an array.")
        async with self._creating:  # one check-then-create at a time: no two active runs
            await self._check_free(caller, thread_id)
            for item in extra:
                await self.objects.add_message(caller, thread_id, item)
            thread = await self.store.get_thread(thread_id)
            await self._attach_files(caller, thread, data)
            users = await self.store.list_messages(thread_id, role="user")
            run = Run(
                id=new_id("run"),
                thread_id=thread_id,
                model=self.bot.engine.model_name,
                upto_seq=users[-1].seq if users else 0,
                # As the API does: a run not started by then expires (the engine renews it).
                expires_at=utcnow() + timedelta(seconds=self.bot.settings.run_expires_seconds),
            )
            await self.store.create_run(run)
            await self.store.put_api_object("run", run.id, caller.project, data, parent=thread_id)
        lang = detect_lang(users[-1].text if users else "", default=thread.lang or "en")

        async def start(engine: Engine) -> AsyncIterator[Any]:
            fresh = await self.store.get_run(run.id)  # a cancel may have come first
            if fresh.status.terminal:
                return
            async for event in engine.execute(fresh, thread, lang):
                yield event

        return await self._start(caller, thread, run.id, start, body)

    async def create_thread_and_run(self, caller: Caller, body: dict[str, Any]) -> Answer:
        """``POST /threads/runs``: a thread from ``body.thread``, then a run on it."""
        self._check_model()
        spec = body.get("thread") or {}
        if not isinstance(spec, dict):
            raise bad_request("Invalid 'thread': expected an object.", param="thread")
        if not isinstance(body.get("assistant_id"), str):
            raise bad_request("Missing required parameter: 'assistant_id'.", param="assistant_id")
        await self.objects.assistant(caller, body["assistant_id"])
        thread = await self.objects.create_thread(caller, spec)
        return await self.create(caller, thread["id"], body)

    async def _check_free(self, caller: Caller, thread_id: str) -> None:
        active = await self.store.list_runs(thread_id=thread_id, statuses=ACTIVE)
        if active:
            raise ApiError(
                409,
                f"Thread {thread_id} already has an active run {active[-1].id}.",
                code="thread_busy",
            )
        mine = 0
        for run in await self.store.list_runs(statuses=ACTIVE):
            if await self.store.get_api_object("run", run.id, caller.project) is not None:
                mine += 1
        if mine >= self.bot.settings.api_max_active_runs:
            raise ApiError(
                429,
                f"Too many active runs ({mine}); the limit is "
                f"{self.bot.settings.api_max_active_runs} (TALLYBOT_API_MAX_ACTIVE_RUNS). "
                "Wait for one to finish.",
                type="rate_limit_error",
                code="rate_limit_exceeded",
            )

    async def _attach_files(self, caller: Caller, thread: Thread, data: dict[str, Any]) -> None:
        """Copy the run's files (assistant, thread, messages) into the thread, once each."""
        tobj = await self.views.owned(caller, "thread", thread.id)
        wanted = [*data.get("file_ids", []), *tobj.data.get("file_ids", [])]
        for msg in await self.store.list_messages(thread.id):
            wanted.extend(msg.file_ids)
        done = set(tobj.data.get("attached", []))
        todo = [f for f in dict.fromkeys(wanted) if f not in done]
        if not todo:
            return
        from core.app import Incoming

        for file_id in todo:
            fobj = await self.store.get_api_object("file", file_id, caller.project)
            if fobj is None:
                continue  # deleted since: the run goes on without it
            name = str(fobj.data.get("filename") or file_id)
            await self.bot.attach(thread, Incoming(name, path=Path(fobj.data["path"])))
            done.add(file_id)
        new = {**tobj.data, "attached": sorted(done)}
        await self.store.put_api_object("thread", thread.id, caller.project, new)

    def engine_for(self, data: dict[str, Any]) -> Engine:
        """The engine for one run: its own tools and instructions, tallybot's model."""
        tools = run_tools(self.bot.engine.tools, data.get("tools", []))
        instructions = data.get("instructions") or ""
        if data.get("additional_instructions"):
            instructions = f"{instructions}\n\n{data['additional_instructions']}".strip()
        model = data.get("model") if self.bot.settings.api_pass_model else None
        spec = AssistantSpec("api", instructions, tools.names(), model=model or None)
        return self.bot.engine.derive(tools, spec)

    async def _start(
        self, caller: Caller, thread: Thread, run_id: str, start: Start, body: dict[str, Any]
    ) -> Answer:
        run, obj = await self.views.run(caller, thread.id, run_id)
        translator = (
            Translator(self.views, caller, thread.id, run_id) if body.get("stream") else None
        )
        opening = await translator.created() if translator is not None else []
        engine = self.engine_for(obj.data)
        hook = self._keep_files(caller.project, thread.id, run_id)
        job = self.driver.start(thread.id, engine, start, translator, opening, hook)
        if translator is not None:
            return run_out(run, obj.data, caller.version), job.events()
        return run_out(run, obj.data, caller.version), None

    async def recover(self) -> int:
        """Resume API runs a crash left ``queued``/``in_progress`` with their own tools.

        :meth:`core.app.Tallybot.open` leaves ``api:`` threads to this, because only the
        run's API row knows its instructions and client functions. Returns how many drives were
        started (each re-reads its run under the thread's lease before resuming it)."""
        resumed = 0
        for run in await self.bot.engine.interrupted_runs():
            thread = await self.store.get_thread(run.thread_id)
            if not thread.key.startswith("api:"):
                continue
            project = thread.key.split(":")[1]
            obj = await self.store.get_api_object("run", run.id, project)
            if obj is None:
                continue
            engine = self.engine_for(obj.data)
            hook = self._keep_files(project, thread.id, run.id)
            # Checked and resumed under the thread's lease (when serving): a run a live
            # replica is running is left to it, and of two replicas starting at once only
            # the first resumes a crashed run (the second then finds it finished or live).
            start = _resume(run.id, thread, thread.lang or "en")
            self.driver.start(thread.id, engine, start, None, (), hook)
            resumed += 1
        return resumed

    def _keep_files(self, project: str, thread_id: str, run_id: str) -> Hook:
        """A hook that makes every file a run produces an API file of the project (purpose
        ``assistants_output``); images (charts) are listed under the call that made them, as
        ``code_interpreter`` image outputs."""
        last_call: list[str] = [""]

        async def hook(event: Event) -> None:
            if isinstance(event, ToolCallFinished):
                last_call[0] = event.call_id
            if not isinstance(event, FileProduced):
                return
            path = Path(event.path)
            file_id = new_id("file")
            info = {
                "filename": event.name,
                "bytes": path.stat().st_size if path.exists() else 0,
                "purpose": "assistants_output",
                "path": str(path),
                "mime": event.mime,
            }
            await self.store.put_api_object("file", file_id, project, info)
            obj = await self.store.get_api_object("run", run_id, project)
            if obj is None or not event.is_image:
                return  # other files are listed by files.list only
            produced = dict(obj.data.get("produced", {}))
            produced[last_call[0]] = [*produced.get(last_call[0], []), file_id]
            data = {**obj.data, "produced": produced}
            await self.store.put_api_object("run", run_id, project, data, parent=thread_id)

        return hook

    # --- read and change -------------------------------------------------------------------

    async def get(self, caller: Caller, thread_id: str, run_id: str) -> dict[str, Any]:
        """The run now; a ``requires_action`` run past ``expires_at`` is expired first."""
        run, _ = await self.views.run(caller, thread_id, run_id)
        if (
            run.status == RunStatus.REQUIRES_ACTION
            and run.expires_at
            and run.expires_at <= utcnow()
        ):
            await self.bot.expire_due()
        return await self.views.run_json(caller, thread_id, run_id)

    async def list(self, caller: Caller, thread_id: str, params: PageParams) -> dict[str, Any]:
        await self.views.owned(caller, "thread", thread_id)
        rows = {
            o.id: o
            for o in await self.store.list_api_objects("run", caller.project, parent=thread_id)
        }
        items = [
            run_out(r, rows[r.id].data, caller.version)
            for r in await self.store.list_runs(thread_id=thread_id)
            if r.id in rows
        ]
        return page(items, params)

    async def update(
        self, caller: Caller, thread_id: str, run_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        _, obj = await self.views.run(caller, thread_id, run_id)
        data = {**obj.data, "metadata": inputs.metadata_in(body.get("metadata"))}
        await self.store.put_api_object("run", run_id, caller.project, data, parent=thread_id)
        return await self.views.run_json(caller, thread_id, run_id)

    async def cancel(self, caller: Caller, thread_id: str, run_id: str) -> dict[str, Any]:
        """Cancel: a waiting run at once, a streaming one at its next event (``cancelling``)."""
        run, obj = await self.views.run(caller, thread_id, run_id)
        if run.status.terminal or run.status == RunStatus.CANCELLING:
            raise bad_request(f"Cannot cancel run with status '{run.status.value}'.")
        waiting = run.status in (RunStatus.QUEUED, RunStatus.REQUIRES_ACTION)
        await self.bot.engine.cancel(run)
        data = await self.views.run_json(caller, thread_id, run_id)
        if not waiting and data["status"] == RunStatus.IN_PROGRESS.value:
            data["status"] = RunStatus.CANCELLING.value  # the engine stops at its next event
        return data

    async def submit_tool_outputs(
        self, caller: Caller, thread_id: str, run_id: str, body: dict[str, Any]
    ) -> Answer:
        """Answer a ``requires_action`` run's function calls and let it go on."""
        run, obj = await self.views.run(caller, thread_id, run_id)
        if (
            run.status == RunStatus.REQUIRES_ACTION
            and run.expires_at
            and run.expires_at <= utcnow()
        ):
            await self.bot.expire_due()
            run, obj = await self.views.run(caller, thread_id, run_id)
        if run.status != RunStatus.REQUIRES_ACTION:
            raise bad_request(
                f"Runs in status '{run.status.value}' do not accept tool outputs.",
                param="tool_outputs",
            )
        self._check_model()
        outputs = _tool_outputs(body.get("tool_outputs"))
        asked = [c["id"] for c in run.required_action["submit_tool_outputs"]["tool_calls"]]  # type: ignore[index]
        if sorted(outputs) != sorted(asked):
            raise bad_request(
                f"Expected tool outputs for call_ids {asked}, got {sorted(outputs)}.",
                param="tool_outputs",
            )
        thread = await self.store.get_thread(thread_id)
        lang = thread.lang or "en"

        def start(engine: Engine) -> AsyncIterator[Any]:
            return engine.submit_tool_outputs(run_id, {}, thread, lang, outputs=outputs)

        translator = (
            Translator(self.views, caller, thread_id, run_id) if body.get("stream") else None
        )
        hook = self._keep_files(caller.project, thread_id, run_id)
        job = self.driver.start(thread_id, self.engine_for(obj.data), start, translator, (), hook)
        if translator is not None:
            return await self.views.run_json(caller, thread_id, run_id), job.events()
        await job.started.wait()  # so a poll right after sees the run going again
        return await self.views.run_json(caller, thread_id, run_id), None

    # --- steps -----------------------------------------------------------------------------

    async def steps(
        self, caller: Caller, thread_id: str, run_id: str, params: PageParams
    ) -> dict[str, Any]:
        run, obj = await self.views.run(caller, thread_id, run_id)
        return page(await self.views.steps_json(caller, run, obj), params)

    async def step(
        self, caller: Caller, thread_id: str, run_id: str, step_id: str
    ) -> dict[str, Any]:
        run, obj = await self.views.run(caller, thread_id, run_id)
        for item in await self.views.steps_json(caller, run, obj):
            if item["id"] == step_id:
                return item
        raise not_found("run step", step_id)


def _resume(run_id: str, thread: Thread, lang: str) -> Start:
    """Resume a run a crash interrupted, deciding from its state read under the lease."""

    async def start(engine: Engine) -> AsyncIterator[Any]:
        run = await engine.store.get_run(run_id)
        if run.status.terminal:
            return  # another process resumed and finished it
        await engine.prepare_resume(run)
        if run.status.terminal:
            return
        if engine.model is None:
            await engine.fail_interrupted(run, lang)
            return
        async for event in engine.execute(run, thread, lang):
            yield event

    return start


def _tool_outputs(raw: Any) -> dict[str, str]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("Missing required parameter: 'tool_outputs'.", param="tool_outputs")
    found: dict[str, str] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("tool_call_id"), str):
            raise bad_request(
                f"Missing required parameter: 'tool_outputs[{i}].tool_call_id'.",
                param=f"tool_outputs[{i}].tool_call_id",
            )
        output = item.get("output", "")
        found[item["tool_call_id"]] = output if isinstance(output, str) else str(output)
    return found
