"""A fake Slack on 127.0.0.1: Web API (``/api/<method>``), Socket Mode WebSocket, file hosting
and the upload URLs of ``files_upload_v2`` — enough for the real slack_sdk/slack-bolt clients.

It keeps conversations like Slack does (messages by channel and ts, streamed messages growing
with ``chat.appendStream``), records every call, and can answer a method with an error or an
HTTP 429 + Retry-After to exercise the client's handling.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-1-test-bot-token"
APP_TOKEN = "xapp-1-A0TALLY-1-test-app-token"
TEAM = "T0SHOP"
BOT_USER = "U0TALLY"
BOT_ID = "B0TALLY"
APP_ID = "A0TALLY"
_JSON_FIELDS = ("blocks", "prompts", "chunks", "files", "attachments", "metadata")


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class Message:
    """A message in the fake's conversations."""

    channel: str
    ts: str
    text: str
    user: str
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    streaming: bool = False
    streamed: bool = False
    edits: int = 0
    reactions: list[str] = field(default_factory=list)


class FakeSlack:
    """Start with ``await fake.start()``; point ``SLACK_API_URL`` at :attr:`api_url`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: list[Message] = []
        self.hosted: dict[str, tuple[str, bytes, str]] = {}  # file id -> (name, bytes, mime)
        self.uploads: dict[str, dict[str, Any]] = {}
        self.locales: dict[str, str] = {}
        self.ephemeral: list[dict[str, Any]] = []
        self.webhook_posts: list[dict[str, Any]] = []
        self._queued: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = {}
        self._errors: dict[str, str] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.connected = asyncio.Event()
        # Set: every Web API call is recorded, then left unanswered (Slack stopped answering).
        self.frozen = False
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/link", self._socket)
        app.router.add_get("/files-pri/{file_id}/{name}", self._file)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/hooks/{hook}", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self) -> str:
        return f"{self.url}/hooks/{next(self._ids)}"

    # --- test controls -------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 0,
        error: str = "ratelimited",
    ) -> None:
        """Answer the next call of ``method`` with ``status`` (429 + Retry-After by default)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._queued.setdefault(method, []).append((status, headers, {"ok": False, "error": error}))

    def error(self, method: str, error: str) -> None:
        """Answer every call of ``method`` with ``{"ok": false, "error": error}``."""
        self._errors[method] = error

    def host_file(self, name: str, data: bytes, mimetype: str = "text/csv") -> dict[str, Any]:
        """Keep a file as if someone uploaded it; returns the Slack file object for events."""
        file_id = f"F{next(self._ids):07d}"
        self.hosted[file_id] = (name, data, mimetype)
        url = f"{self.url}/files-pri/{TEAM}-{file_id}/{name}"
        return {
            "id": file_id,
            "created": 1714550400,
            "timestamp": 1714550400,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1],
            "pretty_type": name.rsplit(".", 1)[-1].upper(),
            "user": "U0ALICE",
            "user_team": TEAM,
            "editable": False,
            "size": len(data),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": url,
            "url_private_download": url + "?download=1",
            "permalink": f"https://tallyshop.slack.com/files/U0ALICE/{file_id}/{name}",
            "is_starred": False,
            "has_rich_preview": False,
            "file_access": "visible",
        }

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str | None) -> list[Message]:
        """Messages the bot posted in a thread (``None``: the channel's top level)."""
        return [
            m
            for m in self.messages
            if m.channel == channel and m.thread_ts == thread_ts and m.user == BOT_USER
        ]

    def find(self, channel: str, ts: str) -> Message:
        for m in self.messages:
            if m.channel == channel and m.ts == ts:
                return m
        raise KeyError(f"no message {channel}/{ts}")

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (a condition, not a timing assertion)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("condition not reached on the fake Slack server")
            await asyncio.sleep(0.01)

    # --- Socket Mode ---------------------------------------------------------------------

    async def send(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0
    ) -> dict[str, Any]:
        """Push one envelope (``events_api``, ``slash_commands``, ``interactive``) to the
        connected app and wait for its ack."""
        await asyncio.wait_for(self.connected.wait(), 10)
        envelope_id = str(uuid.uuid4())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return await asyncio.wait_for(future, 10)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        self.connected.set()
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = self._acks.pop(data.get("envelope_id", ""), None)
            if future is not None and not future.done():
                future.set_result(data)
        return ws

    # --- HTTP endpoints ------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        for key in _JSON_FIELDS:
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    pass
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth else params.get("token")
        self.calls.append(Call(method, params, token))
        if self.frozen:
            while self.frozen:
                await asyncio.sleep(0.05)
            return web.json_response({"ok": False, "error": "fatal_error"})  # never applied
        queued = self._queued.get(method)
        if queued:
            status, headers, body = queued.pop(0)
            return web.json_response(body, status=status, headers=headers)
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method in self._errors:
            return web.json_response({"ok": False, "error": self._errors[method]})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result = handler(params)
        if "error" in result:
            return web.json_response({"ok": False, **result})
        return web.json_response({"ok": True, **result})

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"].split("-", 1)[-1]
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            # Slack answers a request without a valid token with its sign-in page.
            return web.Response(text="<html>sign in</html>", content_type="text/html")
        name, data, mime = self.hosted[file_id]
        return web.Response(body=data, content_type=mime)

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads[request.match_info["file_id"]]
        upload["data"] = await request.read()
        return web.Response(text="OK - " + str(len(upload["data"])))

    async def _hook(self, request: web.Request) -> web.Response:
        self.webhook_posts.append(await request.json())
        return web.Response(text="ok")

    # --- Web API methods -----------------------------------------------------------------

    def _next_ts(self) -> str:
        return f"1714550400.{next(self._ts):06d}"

    def _post(self, channel: str, text: str, thread_ts: str | None, **extra: Any) -> Message:
        msg = Message(channel, self._next_ts(), text, BOT_USER, thread_ts or None, **extra)
        self.messages.append(msg)
        return msg

    def m_auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://tallyshop.slack.com/",
            "team": "Tally Flower Shop",
            "user": "tallybot",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def m_apps_connections_open(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.url.replace("http://", "ws://") + "/link?ticket=fake"}

    def m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = p["user"]
        return {
            "user": {
                "id": user,
                "team_id": TEAM,
                "name": user.lower(),
                "is_bot": False,
                "locale": self.locales.get(user, "en-US"),
            }
        }

    def m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._post(
            p["channel"], p.get("text", ""), p.get("thread_ts"), blocks=p.get("blocks") or []
        )
        return {"channel": msg.channel, "ts": msg.ts, "message": {"text": msg.text, "ts": msg.ts}}

    def m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        self.ephemeral.append(p)
        return {"message_ts": self._next_ts()}

    def m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self.find(p["channel"], p["ts"])
        msg.text = p.get("text", msg.text)
        if "blocks" in p:
            msg.blocks = p["blocks"] or []
        msg.edits += 1
        return {"channel": msg.channel, "ts": msg.ts, "text": msg.text}

    @staticmethod
    def _chunk_text(p: dict[str, Any]) -> str:
        text = p.get("markdown_text") or ""
        for chunk in p.get("chunks") or []:
            if chunk.get("type") == "markdown_text":
                text += chunk.get("text", "")
        return text

    def m_chat_startStream(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("thread_ts"):
            return {"error": "invalid_arguments"}
        msg = self._post(
            p["channel"], self._chunk_text(p), p["thread_ts"], streaming=True, streamed=True
        )
        return {"channel": msg.channel, "ts": msg.ts}

    def m_chat_appendStream(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self.find(p["channel"], p["ts"])
        if not msg.streaming:
            return {"error": "message_not_in_streaming_state"}
        msg.text += self._chunk_text(p)
        return {"channel": msg.channel, "ts": msg.ts}

    def m_chat_stopStream(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self.find(p["channel"], p["ts"])
        if not msg.streaming:
            return {"error": "message_not_in_streaming_state"}
        msg.text += self._chunk_text(p)
        msg.streaming = False
        if p.get("blocks"):
            msg.blocks = p["blocks"]
        return {"channel": msg.channel, "ts": msg.ts, "message": {"text": msg.text}}

    def m_reactions_add(self, p: dict[str, Any]) -> dict[str, Any]:
        self._reactions(p).append(p["name"])
        return {}

    def m_reactions_remove(self, p: dict[str, Any]) -> dict[str, Any]:
        reactions = self._reactions(p)
        if p["name"] not in reactions:
            return {"error": "no_reaction"}
        reactions.remove(p["name"])
        return {}

    def _reactions(self, p: dict[str, Any]) -> list[str]:
        # People's messages are not stored by the fake; their reactions live on a stub.
        try:
            return self.find(p["channel"], p["timestamp"]).reactions
        except KeyError:
            stub = Message(p["channel"], p["timestamp"], "", "person")
            self.messages.append(stub)
            return stub.reactions

    def m_assistant_threads_setStatus(self, _: dict[str, Any]) -> dict[str, Any]:
        return {}

    def m_assistant_threads_setSuggestedPrompts(self, _: dict[str, Any]) -> dict[str, Any]:
        return {}

    def m_assistant_threads_setTitle(self, _: dict[str, Any]) -> dict[str, Any]:
        return {}

    def m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):07d}"
        self.uploads[file_id] = {"filename": p["filename"], "length": int(p["length"])}
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = []
        for item in p["files"]:
            upload = self.uploads[item["id"]]
            upload["title"] = item.get("title")
            upload["channel"] = p.get("channel_id")
            upload["thread_ts"] = p.get("thread_ts")
            files.append({"id": item["id"], "name": upload["filename"], "title": item.get("title")})
        if p.get("channel_id"):
            self._post(
                p["channel_id"], p.get("initial_comment", ""), p.get("thread_ts"), files=files
            )
        return {"files": files}
