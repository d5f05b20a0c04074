"""A fake Telegram Bot API server on 127.0.0.1 for the adapter tests.

It speaks enough of https://core.telegram.org/bots/api for python-telegram-bot to run against it
unchanged (``base_url`` / ``base_file_url``): ``getMe``, ``getUpdates`` (offset confirmation and
long polling), the send/edit methods the adapter uses, ``getFile`` and file downloads, and
webhook set-up. Every call is recorded in :attr:`FakeBotAPI.calls` so a test can assert on what
reached "Telegram". Errors are injected per method with :meth:`FakeBotAPI.fail_next`, and
methods can be made unknown (an older Bot API server) with :attr:`FakeBotAPI.unknown`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token"
BOT_ID = 123456
BOT_USERNAME = "tallybot_test"
TELEGRAM_FILE_LIMIT = 20 * 1024 * 1024

# Form fields python-telegram-bot sends JSON-encoded; everything else stays a string.
_JSON_FIELDS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "commands",
    "scope",
    "allowed_updates",
    "reply_parameters",
    "link_preview_options",
}
_INT_FIELDS = {
    "chat_id",
    "message_id",
    "message_thread_id",
    "draft_id",
    "offset",
    "limit",
    "user_id",
}


@dataclass
class Call:
    """One request the bot made: the method, its decoded parameters and uploaded files."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 200

    @property
    def ok(self) -> bool:
        return self.status == 200


class FakeBotAPI:
    """The server. Use as ``async with FakeBotAPI() as api:``; ``api.url`` is TELEGRAM_API_URL."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.unknown: set[str] = set()
        self.webhook_url: str | None = None
        self._failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._updates: list[dict[str, Any]] = []
        self._forced: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._files: dict[str, tuple[str, bytes, int]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.url = ""

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> FakeBotAPI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        # End open long polls now instead of letting the shutdown wait out their timeout.
        self._closing = True
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what tests put in ---------------------------------------------------------------

    def fail_next(self, method: str, status: int, description: str, **parameters: Any) -> None:
        """The next call of ``method`` answers ``status`` (e.g. 429 with ``retry_after=1``)."""
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        self._failures.setdefault(method, []).append((status, payload))

    def add_file(self, name: str, data: bytes, *, size: int | None = None) -> dict[str, Any]:
        """Register a downloadable file; returns the Document object a message carries."""
        n = next(self._file_ids)
        file_id = f"file{n}"
        size = len(data) if size is None else size
        self._files[file_id] = (f"documents/{n}_{name}", data, size)
        mime = "text/csv" if name.endswith(".csv") else "application/octet-stream"
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": name,
            "mime_type": mime,
            "file_size": size,
        }

    def message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int = 42,
        language_code: str | None = "en",
        chat_type: str | None = None,
        thread_id: int | None = None,
        document: dict[str, Any] | None = None,
        reply_to_bot: bool = False,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """A Message object as Telegram would send it (entities for commands and mentions)."""
        kind = chat_type or ("private" if chat_id > 0 else "supergroup")
        chat: dict[str, Any] = {"id": chat_id, "type": kind}
        if kind == "private":
            chat["first_name"] = "Ann"
        else:
            chat["title"] = "Shop"
            if thread_id:
                chat["is_forum"] = True
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "Ann"}
        if language_code:
            user["language_code"] = language_code
        msg: dict[str, Any] = {
            "message_id": message_id or next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
        }
        if thread_id:
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
        body_key = "caption" if document else "text"
        if text is not None:
            msg[body_key] = text
            entities = _entities(text)
            if entities:
                msg["caption_entities" if document else "entities"] = entities
        if document:
            msg["document"] = document
        if reply_to_bot:
            msg["reply_to_message"] = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": chat,
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Tally"},
                "text": "earlier answer",
            }
        return msg

    def push(self, payload: dict[str, Any], *, update_id: int | None = None) -> dict[str, Any]:
        """Queue an update (``{"message": ...}`` or ``{"callback_query": ...}``) for getUpdates."""
        update = {"update_id": update_id or next(self._update_ids), **payload}
        self._updates.append(update)
        self._wake()
        return update

    def redeliver(self, update: dict[str, Any]) -> None:
        """Hand out ``update`` again even though it was confirmed, as after a lost offset."""
        self._forced.append(update)
        self._wake()

    def callback(self, approval: Call, data: str, *, user_id: int = 42) -> dict[str, Any]:
        """A callback_query for a button under the message that ``approval`` sent."""
        chat_id = approval.params["chat_id"]
        message_id = self.message_id_of(approval)
        kind = "private" if chat_id > 0 else "supergroup"
        return {
            "callback_query": {
                "id": f"cb{next(self._message_ids)}",
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": "Ann",
                    "language_code": "en",
                },
                "chat_instance": "ci",
                "data": data,
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": kind},
                    "from": {"id": BOT_ID, "is_bot": True, "first_name": "Tally"},
                    "text": approval.params.get("text", ""),
                },
            }
        }

    # --- what tests read -----------------------------------------------------------------

    def sent(self, method: str | None = None, chat_id: int | None = None) -> list[Call]:
        """Successful calls, optionally of one method and to one chat."""
        return [
            c
            for c in self.calls
            if c.ok
            and (method is None or c.method == method)
            and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def texts(self, chat_id: int, thread_id: int | None = None) -> list[str]:
        """Final texts of the messages in a chat (after edits), in the order they were sent."""
        out = []
        for (chat, _mid), msg in sorted(self.messages.items(), key=lambda kv: kv[0][1]):
            if chat == chat_id and (thread_id is None or msg.get("message_thread_id") == thread_id):
                out.append(msg.get("text") or msg.get("caption") or "")
        return out

    def message_id_of(self, call: Call) -> int:
        for (_chat, mid), msg in self.messages.items():
            if msg.get("_call") is call:
                return mid
        raise KeyError("that call created no message")

    async def wait_for(self, predicate: Callable[[FakeBotAPI], Any], within: float = 15.0) -> Any:
        """Wait until ``predicate(self)`` is truthy (checked after every call); return it."""

        async def _wait() -> Any:
            async with self._changed:
                while True:
                    result = predicate(self)
                    if result:
                        return result
                    await self._changed.wait()

        return await asyncio.wait_for(_wait(), within)

    # --- the HTTP side -------------------------------------------------------------------

    def _wake(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params = await request.json()
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                    continue
                text = str(value)
                if key in _JSON_FIELDS:
                    params[key] = json.loads(text)
                elif key in _INT_FIELDS:
                    params[key] = int(text)
                else:
                    params[key] = text
        for key in ("timeout",):
            if key in params:
                params[key] = float(params[key])
        return params, files

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params, files = await self._params(request)
        call = Call(method, params, files)
        self.calls.append(call)
        try:
            if method in self.unknown:
                call.status = 404
                return web.json_response(
                    {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
                )
            queued = self._failures.get(method)
            if queued:
                status, payload = queued.pop(0)
                call.status = status
                return web.json_response(payload, status=status)
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                call.status = 404
                return web.json_response(
                    {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
                )
            result = await handler(call)
            if isinstance(result, web.Response):
                call.status = result.status
                return result
            return web.json_response({"ok": True, "result": result})
        finally:
            self._wake()

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored_path, data, _size in self._files.values():
            if stored_path == path:
                return web.Response(body=data)
        return web.Response(status=404)

    @staticmethod
    def _bad(description: str) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"},
            status=400,
        )

    # --- methods -------------------------------------------------------------------------

    async def _api_getMe(self, call: Call) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Tally",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _api_getUpdates(self, call: Call) -> list[dict[str, Any]]:
        offset = int(call.params.get("offset") or 0)
        limit = int(call.params.get("limit") or 100)
        timeout = float(call.params.get("timeout") or 0)
        # Like Telegram: a positive offset confirms (forgets) every earlier update.
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while not self._updates and not self._forced and not self._closing:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    break
        forced, self._forced = self._forced, []
        return (forced + self._updates)[:limit]

    def _store(self, call: Call, extra: dict[str, Any]) -> dict[str, Any]:
        chat_id = call.params["chat_id"]
        mid = next(self._message_ids)
        msg: dict[str, Any] = {
            "message_id": mid,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Tally"},
            **extra,
        }
        if "message_thread_id" in call.params:
            msg["message_thread_id"] = call.params["message_thread_id"]
        if "reply_markup" in call.params:
            msg["reply_markup"] = call.params["reply_markup"]
        self.messages[(chat_id, mid)] = {**msg, "_call": call}
        return msg

    async def _api_sendMessage(self, call: Call) -> Any:
        text = call.params.get("text", "")
        if not text:
            return self._bad("message text is empty")
        if len(text) > 4096:
            return self._bad("message is too long")
        if call.params.get("parse_mode") == "HTML" and not _balanced_html(text):
            return self._bad("can't parse entities: unclosed tag")
        return self._store(call, {"text": text})

    async def _api_sendMessageDraft(self, call: Call) -> Any:
        if call.params["chat_id"] < 0:
            return self._bad("drafts are available in private chats only")
        if not call.params.get("draft_id"):
            return self._bad("draft_id must be non-zero")
        return True

    async def _api_editMessageText(self, call: Call) -> Any:
        key = (call.params["chat_id"], call.params["message_id"])
        msg = self.messages.get(key)
        if msg is None:
            return self._bad("message to edit not found")
        text = call.params.get("text", "")
        if len(text) > 4096:
            return self._bad("message is too long")
        if call.params.get("parse_mode") == "HTML" and not _balanced_html(text):
            return self._bad("can't parse entities: unclosed tag")
        if text == msg.get("text") and call.params.get("reply_markup") == msg.get("reply_markup"):
            return self._bad(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        msg["text"] = text
        # Like Telegram: an edit without reply_markup drops the inline keyboard.
        msg["reply_markup"] = call.params.get("reply_markup")
        return {k: v for k, v in msg.items() if k != "_call"}

    async def _api_editMessageReplyMarkup(self, call: Call) -> Any:
        key = (call.params["chat_id"], call.params["message_id"])
        msg = self.messages.get(key)
        if msg is None:
            return self._bad("message to edit not found")
        msg["reply_markup"] = call.params.get("reply_markup")
        return {k: v for k, v in msg.items() if k != "_call"}

    async def _api_sendChatAction(self, call: Call) -> bool:
        return True

    async def _api_answerCallbackQuery(self, call: Call) -> bool:
        return True

    async def _api_setMyCommands(self, call: Call) -> bool:
        return True

    async def _api_deleteWebhook(self, call: Call) -> bool:
        self.webhook_url = None
        return True

    async def _api_setWebhook(self, call: Call) -> bool:
        self.webhook_url = call.params.get("url")
        return True

    async def _api_getFile(self, call: Call) -> Any:
        entry = self._files.get(call.params.get("file_id", ""))
        if entry is None:
            return self._bad("invalid file_id")
        path, _data, size = entry
        if size > TELEGRAM_FILE_LIMIT:
            return self._bad("file is too big")
        return {
            "file_id": call.params["file_id"],
            "file_unique_id": f"u{call.params['file_id']}",
            "file_size": size,
            "file_path": path,
        }

    async def _api_sendDocument(self, call: Call) -> Any:
        if "document" not in call.files:
            return self._bad("there is no document in the request")
        return self._store(
            call,
            {
                "document": {"file_id": "sent", "file_unique_id": "s"},
                "caption": call.params.get("caption", ""),
            },
        )

    async def _api_sendPhoto(self, call: Call) -> Any:
        if "photo" not in call.files:
            return self._bad("there is no photo in the request")
        return self._store(
            call,
            {
                "photo": [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}],
                "caption": call.params.get("caption", ""),
            },
        )


def _entities(text: str) -> list[dict[str, Any]]:
    """bot_command and mention entities, the way Telegram marks them."""
    out: list[dict[str, Any]] = []
    for word_start, word in _words(text):
        if word.startswith("/") and word_start == 0:
            out.append(
                {"type": "bot_command", "offset": _utf16(text[:word_start]), "length": _utf16(word)}
            )
        elif word.startswith("@") and len(word) > 1:
            out.append(
                {"type": "mention", "offset": _utf16(text[:word_start]), "length": _utf16(word)}
            )
    return out


def _words(text: str) -> list[tuple[int, str]]:
    out, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isspace() or ch in "，。,":
            if start is not None:
                out.append((start, text[start:i]))
                start = None
        elif start is None:
            start = i
    return out


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _balanced_html(text: str) -> bool:
    """A rough stand-in for Telegram's entity parser: every tag opened is closed in order."""
    import re

    stack: list[str] = []
    for closing, name in re.findall(r"<(/?)([a-z]+)[^>]*>", text):
        if closing:
            if not stack or stack.pop() != name:
                return False
        else:
            stack.append(name)
    return not stack and "<" not in re.sub(r"<(/?)([a-z]+)[^>]*>", "", text)
