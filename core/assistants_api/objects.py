"""Assistants, files, threads and messages of the API, kept in tallybot's store.

A thread of the API is a tallybot thread (channel key ``api:<project>:<id>``), so its runs,
steps and bills are the same rows the chat channels make. Uploaded files go through
tallybot's file intake into the project's file shelf (``api:<project>:files``) and are copied
into a thread when a run needs them.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.assistants_api import inputs
from core.assistants_api.errors import ApiError, bad_request, not_found
from core.assistants_api.pagination import PageParams, page
from core.assistants_api.shapes import assistant_out, file_out, thread_out
from core.assistants_api.tools import check_tools
from core.assistants_api.views import Caller, Views
from core.domain import new_id, utcnow
from core.engine import ACTIVE
from core.errors import FileRejected
from core.store.assistants import ApiObject

if TYPE_CHECKING:
    from core.app import Tallybot

BUILTIN_ASSISTANT = "asst_tallybot"


class Objects:
    """CRUD of assistants, files, threads and messages for one bot."""

    def __init__(self, bot: Tallybot) -> None:
        self.bot = bot
        self.store = bot.store
        self.views = Views(bot.store)

    # --- assistants ------------------------------------------------------------------------

    def builtin(self) -> ApiObject:
        """tallybot's own assistant (its assistant file and every tool it has), read-only."""
        spec = self.bot.engine.assistant
        tools = [
            {"type": n} if n in ("code_interpreter", "file_search") else _named(n)
            for n in self.bot.engine.tools.names()
        ]
        data = {"name": spec.name, "instructions": spec.instructions, "tools": tools}
        data["model"] = self.bot.engine.model_name
        return ApiObject(BUILTIN_ASSISTANT, "assistant", "", None, data, utcnow())

    def _assistant_data(self, body: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
        data = dict(old)
        for key in ("name", "description", "instructions", "model", "temperature", "top_p"):
            if key in body:
                data[key] = body[key]
        if "response_format" in body:
            data["response_format"] = body["response_format"]
        if "tools" in body:
            data["tools"] = inputs.tools_in(body["tools"])
            check_tools(data["tools"])
        if (ids := inputs.file_ids_in(body)) is not None:
            data["file_ids"] = ids
        if (stores := inputs.vector_store_ids_in(body)) is not None:
            data["vector_store_ids"] = stores
        if "metadata" in body:
            data["metadata"] = inputs.metadata_in(body["metadata"])
        return data

    async def create_assistant(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise bad_request("Missing required parameter: 'model'.", param="model")
        data = self._assistant_data(body, {"tools": [], "file_ids": [], "metadata": {}})
        await self._check_files(caller, data.get("file_ids", []))
        obj = await self.store.put_api_object("assistant", new_id("asst"), caller.project, data)
        return assistant_out(obj, caller.version)

    async def assistant(self, caller: Caller, assistant_id: str) -> ApiObject:
        if assistant_id == BUILTIN_ASSISTANT:
            return self.builtin()
        return await self.views.owned(caller, "assistant", assistant_id)

    async def get_assistant(self, caller: Caller, assistant_id: str) -> dict[str, Any]:
        return assistant_out(await self.assistant(caller, assistant_id), caller.version)

    async def update_assistant(
        self, caller: Caller, assistant_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        if assistant_id == BUILTIN_ASSISTANT:
            raise bad_request("The built-in assistant is read-only; create your own.")
        old = await self.views.owned(caller, "assistant", assistant_id)
        data = self._assistant_data(body, old.data)
        await self._check_files(caller, data.get("file_ids", []))
        obj = await self.store.put_api_object("assistant", assistant_id, caller.project, data)
        return assistant_out(obj, caller.version)

    async def delete(self, caller: Caller, kind: str, id_: str) -> dict[str, Any]:
        """Delete an assistant, file or thread of the caller's project."""
        await self.views.owned(caller, kind, id_)
        await self.store.delete_api_object(kind, id_, caller.project)
        return {"id": id_, "object": f"{kind}.deleted", "deleted": True}

    async def list_assistants(self, caller: Caller, params: PageParams) -> dict[str, Any]:
        rows = await self.store.list_api_objects("assistant", caller.project)
        return page([assistant_out(r, caller.version) for r in rows], params)

    # --- files -----------------------------------------------------------------------------

    async def upload(
        self, caller: Caller, filename: str, data: bytes, purpose: str
    ) -> dict[str, Any]:
        """Store an upload through file intake; refusals are 400 with intake's reason."""
        if purpose != "assistants":
            raise bad_request(
                f"Invalid 'purpose': {purpose!r}; tallybot accepts 'assistants'.", param="purpose"
            )
        shelf = await self.bot.thread(f"api:{caller.project}:files")
        try:
            ref = await self.bot.intake.ingest(shelf.id, filename or "upload", data)
        except FileRejected as exc:
            raise ApiError(400, exc.message, param="file", code="invalid_file") from exc
        info = {"filename": filename, "bytes": ref.size, "purpose": purpose, "path": ref.path}
        obj = await self.store.put_api_object("file", ref.id, caller.project, info)
        return file_out(obj)

    async def get_file(self, caller: Caller, file_id: str) -> dict[str, Any]:
        return file_out(await self.views.owned(caller, "file", file_id))

    async def list_files(self, caller: Caller, params: PageParams) -> dict[str, Any]:
        rows = await self.store.list_api_objects("file", caller.project)
        return page([file_out(r) for r in rows], params)

    async def file_content(self, caller: Caller, file_id: str) -> tuple[bytes, str]:
        """The uploaded bytes and file name."""
        obj = await self.views.owned(caller, "file", file_id)
        return Path(obj.data["path"]).read_bytes(), str(obj.data.get("filename") or file_id)

    async def _check_files(self, caller: Caller, file_ids: list[str]) -> None:
        for file_id in file_ids:
            if await self.store.get_api_object("file", file_id, caller.project) is None:
                raise bad_request(f"No file found with id '{file_id}'.", param="file_ids")

    # --- threads ---------------------------------------------------------------------------

    async def create_thread(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        """A thread, with its initial ``messages`` stored in order."""
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise bad_request("Invalid 'messages': expected an array.", param="messages")
        for item in messages:  # every message is checked before anything is stored
            self._message_fields(item if isinstance(item, dict) else {})
        file_ids = inputs.file_ids_in(body) or []
        await self._check_files(caller, file_ids)
        data = {"metadata": inputs.metadata_in(body.get("metadata")), "file_ids": file_ids}
        thread = await self.bot.thread(f"api:{caller.project}:{secrets.token_hex(8)}")
        obj = await self.store.put_api_object("thread", thread.id, caller.project, data)
        for item in messages:
            await self.add_message(caller, thread.id, item)
        return thread_out(obj, caller.version)

    async def get_thread(self, caller: Caller, thread_id: str) -> dict[str, Any]:
        return thread_out(await self.views.owned(caller, "thread", thread_id), caller.version)

    async def update_thread(
        self, caller: Caller, thread_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        obj = await self.views.owned(caller, "thread", thread_id)
        data = dict(obj.data)
        if "metadata" in body:
            data["metadata"] = inputs.metadata_in(body["metadata"])
        if (ids := inputs.file_ids_in(body)) is not None:
            await self._check_files(caller, ids)
            data["file_ids"] = ids
        obj = await self.store.put_api_object("thread", thread_id, caller.project, data)
        return thread_out(obj, caller.version)

    # --- messages --------------------------------------------------------------------------

    @staticmethod
    def _message_fields(body: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
        return (
            inputs.role_in(body.get("role")),
            inputs.content_in(body.get("content")),
            inputs.attachments_in(body),
        )

    async def add_message(
        self, caller: Caller, thread_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Store one message (the thread must be free: no active run)."""
        await self.views.owned(caller, "thread", thread_id)
        role, text, attachments = self._message_fields(body)
        await self._check_files(caller, [a["file_id"] for a in attachments])
        active = await self.bot.store.list_runs(thread_id=thread_id, statuses=ACTIVE)
        if active:
            raise bad_request(
                f"Can't add messages to {thread_id} while a run {active[-1].id} is active."
            )
        file_ids = [a["file_id"] for a in attachments]
        msg = await self.store.add_message(thread_id, role, text, file_ids=file_ids)
        data = {"metadata": inputs.metadata_in(body.get("metadata")), "attachments": attachments}
        await self.store.put_api_object("message", msg.id, caller.project, data, parent=thread_id)
        return await self.get_message(caller, thread_id, msg.id)

    async def list_messages(
        self, caller: Caller, thread_id: str, params: PageParams, run_id: str | None = None
    ) -> dict[str, Any]:
        await self.views.owned(caller, "thread", thread_id)
        items = await self.views.messages_json(caller, thread_id)
        if run_id:
            items = [m for m in items if m["run_id"] == run_id]
        return page(items, params)

    async def get_message(self, caller: Caller, thread_id: str, message_id: str) -> dict[str, Any]:
        await self.views.owned(caller, "thread", thread_id)
        for item in await self.views.messages_json(caller, thread_id):
            if item["id"] == message_id:
                return item
        raise not_found("message", message_id)

    async def update_message(
        self, caller: Caller, thread_id: str, message_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        found = await self.get_message(caller, thread_id, message_id)
        obj = await self.store.get_api_object("message", message_id, caller.project)
        data = dict(obj.data) if obj else {"attachments": []}
        data["metadata"] = inputs.metadata_in(body.get("metadata", found["metadata"]))
        await self.store.put_api_object(
            "message", message_id, caller.project, data, parent=thread_id
        )
        return await self.get_message(caller, thread_id, message_id)


def _named(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": ""}}
