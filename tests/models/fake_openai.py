"""A real HTTP server on 127.0.0.1 that speaks the OpenAI streaming wire formats.

``POST /v1/responses`` answers with Responses API SSE events, ``POST /v1/chat/completions``
with Chat Completions chunks, both rendered from the same script of turns that
:class:`core.models.scripted.ScriptedModel` plays, so a test (or the engine suite) can run the
real ``openai.AsyncOpenAI`` client over a socket against a known conversation::

    async with FakeOpenAI([text("Hi"), [call("echo", {"text": "x"}, "c1")]]) as fake:
        client = AsyncOpenAI(api_key="test", base_url=fake.base_url, max_retries=0)
        ...
        assert fake.requests[0].path == "/v1/responses"
        assert fake.requests[0]["input"][0] == {"role": "user", "content": "hello"}

A turn is one of:
  * a list of ``ModelTextDelta`` / ``ModelToolCall`` (``ModelDone`` optional: it sets usage),
    and ``Pause`` items (the stream stops there until the test sets ``pause.event``),
  * a :class:`Fault` (an HTTP error status, a disconnect, a truncated or malformed stream, an
    error reported inside the stream),
  * a ``ModelError`` instance, played as the HTTP status that produces it,
  * a :class:`RawStream` of hand-written SSE events (to play one server's quirks),
  * a callable ``(request_body) -> turn``.

Every HTTP request consumes one turn, including the SDK's own retries.

Issue 13 additions: ``ModelReasoningDelta`` events stream as Chat ``reasoning_content`` deltas
(DeepSeek/Qwen) or as a Responses ``reasoning`` item (summary deltas, then the item with an
``encrypted_content`` of ``"enc:" + text``); Azure deployment paths
(``/openai/deployments/{name}/chat/completions``, ``.../responses``) answer like the plain
ones; ``POST /v1/audio/transcriptions`` (multipart) answers ``{"text": ...}`` from
``transcripts`` (or a :class:`Fault` status), recording the form fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from openai import AsyncOpenAI

from core.errors import (
    BrokenStream,
    ModelAuthError,
    ModelBadRequest,
    ModelError,
    ModelTimeout,
    RateLimited,
)
from core.models.base import ModelDone, ModelReasoningDelta, ModelTextDelta, ModelToolCall, Usage
from core.models.scripted import Pause

# The events a fault streams before it strikes, when the test gives none.
DEFAULT_FAULT_EVENTS: tuple[Any, ...] = (
    ModelTextDelta("Hello"),
    ModelTextDelta(", "),
    ModelTextDelta("world"),
)


@dataclass(frozen=True)
class Fault:
    """A turn that goes wrong in a chosen way. Build one with the class methods."""

    kind: str
    http_status: int = 0
    message: str = ""
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    after: int = 0
    events: tuple[Any, ...] = DEFAULT_FAULT_EVENTS

    @classmethod
    def status(
        cls,
        status: int,
        *,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        message: str | None = None,
        code: str | None = None,
        should_retry: bool | None = None,
    ) -> Fault:
        """Answer with an HTTP error status and an OpenAI-shaped ``{"error": ...}`` body."""
        headers: list[tuple[str, str]] = []
        if retry_after is not None:
            headers.append(("retry-after", f"{retry_after:g}"))
        if retry_after_ms is not None:
            headers.append(("retry-after-ms", str(retry_after_ms)))
        if should_retry is not None:
            headers.append(("x-should-retry", "true" if should_retry else "false"))
        return cls(
            "status",
            http_status=status,
            message=message or _STATUS_MESSAGES.get(status, f"fake error {status}"),
            code=code,
            headers=tuple(headers),
        )

    @classmethod
    def disconnect_after(cls, n_events: int, events: Sequence[Any] = DEFAULT_FAULT_EVENTS) -> Fault:
        """Send ``n_events`` SSE events of ``events``, then drop the TCP connection."""
        return cls("disconnect", after=n_events, events=tuple(events))

    @classmethod
    def truncate(cls, events: Sequence[Any] = DEFAULT_FAULT_EVENTS) -> Fault:
        """A clean end of the HTTP body, but without the stream's final event(s)
        (Responses: ``response.completed``; Chat: the ``finish_reason`` chunk, usage, [DONE])."""
        return cls("truncate", events=tuple(events))

    @classmethod
    def malformed(cls, after: int = 1, events: Sequence[Any] = DEFAULT_FAULT_EVENTS) -> Fault:
        """A ``data:`` line that is not JSON, after ``after`` good events."""
        return cls("malformed", after=after, events=tuple(events))

    @classmethod
    def failed(
        cls,
        code: str = "server_error",
        message: str = "The model failed to generate a response.",
        events: Sequence[Any] = DEFAULT_FAULT_EVENTS,
    ) -> Fault:
        """The server reports a failure inside the stream: Responses ``response.failed``,
        Chat an ``{"error": ...}`` chunk."""
        return cls("failed", code=code, message=message, events=tuple(events))

    @classmethod
    def error_event(
        cls,
        code: str = "server_error",
        message: str = "An error occurred while processing your request.",
        events: Sequence[Any] = DEFAULT_FAULT_EVENTS,
    ) -> Fault:
        """Responses ``error`` event (Chat: an ``{"error": ...}`` chunk)."""
        return cls("error_event", code=code, message=message, events=tuple(events))

    @classmethod
    def incomplete(
        cls, reason: str = "max_output_tokens", events: Sequence[Any] = DEFAULT_FAULT_EVENTS
    ) -> Fault:
        """The model stopped early: ``response.incomplete`` / Chat ``finish_reason`` "length"
        (or "content_filter")."""
        return cls("incomplete", code=reason, events=tuple(events))

    @classmethod
    def from_error(cls, exc: ModelError) -> Fault:
        """The fault that makes the adapters raise ``exc``'s class (for ScriptedModel scripts
        that hold exception instances)."""
        if isinstance(exc, RateLimited):
            return cls.status(429, retry_after=exc.retry_after, message=exc.message)
        if isinstance(exc, ModelAuthError):
            return cls.status(401, message=exc.message)
        if isinstance(exc, ModelBadRequest):
            return cls.status(400, message=exc.message)
        if isinstance(exc, ModelTimeout):
            return cls.status(408, message=exc.message, should_retry=False)
        if isinstance(exc, BrokenStream):
            return cls.disconnect_after(1)
        return cls.status(500, message=exc.message)


_STATUS_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided.",
    403: "You are not allowed to use this model.",
    404: "The model does not exist.",
    408: "Request timed out.",
    429: "Rate limit reached for requests.",
    500: "The server had an error while processing your request.",
    502: "Bad gateway.",
    503: "The engine is currently overloaded.",
}
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "requests",
}


@dataclass(frozen=True)
class RawStream:
    """A turn sent verbatim, to play a server's quirks: each item is one SSE event, a dict
    (sent as JSON ``data:``), a string (sent as the ``data:`` text) or a ``(event, dict)``
    pair (Responses style ``event:`` + ``data:``)."""

    events: tuple[Any, ...]

    def __init__(self, *events: Any) -> None:
        object.__setattr__(self, "events", events)

    def frames(self) -> list[Part]:
        out: list[Part] = []
        for item in self.events:
            if isinstance(item, tuple):
                name, data = item
                out.append(_Frame(f"event: {name}\ndata: {_json(data)}\n\n".encode()))
            elif isinstance(item, str):
                out.append(_Frame(f"data: {item}\n\n".encode()))
            else:
                out.append(_Frame(f"data: {_json(item)}\n\n".encode()))
        return out


class RecordedRequest(dict[str, Any]):
    """A request's parsed JSON body (a dict) plus where it went: ``path`` and ``headers``."""

    def __init__(
        self,
        body: dict[str, Any],
        path: str,
        headers: dict[str, str],
        query: dict[str, str] | None = None,
    ) -> None:
        super().__init__(body)
        self.path = path
        self.headers = headers
        self.query = query or {}


@dataclass
class _Frame:
    """One SSE event ready to send; ``final`` marks the stream's terminating events."""

    data: bytes
    final: bool = False


Turn = Any
Part = _Frame | Pause


class FakeOpenAI:
    """An OpenAI-compatible streaming server on 127.0.0.1 (random port), played from turns."""

    def __init__(self, turns: Sequence[Turn] = (), *, send_usage: bool = True) -> None:
        self.turns: list[Turn] = list(turns)
        self.requests: list[RecordedRequest] = []
        # Ollama and llama.cpp send no usage chunk in Chat streams; False plays them.
        self.send_usage = send_usage
        self.disconnected = asyncio.Event()
        """Set when a client closed its connection in the middle of a stream."""
        self.disconnects = 0
        self.base_url = ""
        self.origin = ""  # http://127.0.0.1:PORT (Azure endpoints have no /v1)
        self.transcripts: list[Any] = []
        """Answers of /v1/audio/transcriptions, in order: a text, or a Fault status."""
        self._runner: web.AppRunner | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._seq = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/responses", self._handle)
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/openai/deployments/{name}/chat/completions", self._handle)
        app.router.add_post("/openai/deployments/{name}/responses", self._handle)
        app.router.add_post("/openai/v1/responses", self._handle)
        app.router.add_post("/openai/responses", self._handle)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        app.router.add_post("/openai/deployments/{name}/audio/transcriptions", self._transcribe)
        # A short shutdown: a test that leaves a paused stream behind must not hang teardown.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]  # port 0: the OS picked a free one
        self.origin = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.origin}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._handlers):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def add(self, *turns: Turn) -> None:
        """Queue more turns."""
        self.turns.extend(turns)

    def client(self, **kwargs: Any) -> AsyncOpenAI:
        """A real ``openai.AsyncOpenAI`` pointed at this server (no retries unless asked)."""
        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("max_retries", 0)
        return AsyncOpenAI(base_url=self.base_url, **kwargs)

    # --- HTTP ----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            return await self._serve(request)
        except asyncio.CancelledError:
            # aiohttp may cancel a handler whose client went away (handler_cancellation).
            if self._closing_transport(request):
                self._mark_disconnected()
            raise
        finally:
            self._handlers.discard(task)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error_response(400, "Request body is not JSON.", None, ())
        self.requests.append(
            RecordedRequest(body, request.path, dict(request.headers), dict(request.query))
        )
        if not self.turns:
            return _error_response(
                500, "FakeOpenAI ran out of turns", "fake_exhausted", (("x-should-retry", "false"),)
            )
        turn = self.turns.pop(0)
        if callable(turn):
            turn = turn(body)
        if isinstance(turn, ModelError):
            turn = Fault.from_error(turn)
        if isinstance(turn, Fault) and turn.kind == "status":
            return _error_response(turn.http_status, turn.message, turn.code, turn.headers)
        if not body.get("stream"):
            return _error_response(400, "FakeOpenAI only streams: send stream=true.", None, ())

        fault = turn if isinstance(turn, Fault) else None
        events = list(fault.events if fault else turn) if not isinstance(turn, RawStream) else []
        self._seq += 1
        if isinstance(turn, RawStream):
            parts = turn.frames()
        elif request.path.endswith("/responses"):
            parts = _render_responses(events, body, self._seq, fault)
        else:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            parts = _render_chat(events, body, self._seq, fault, self.send_usage and include_usage)

        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        sent = 0
        for part in parts:
            if isinstance(part, Pause):
                part.reached.set()
                if not await self._wait(request, part.event):
                    return response
                continue
            if fault is not None and fault.kind == "disconnect" and sent >= fault.after:
                transport = request.transport
                if transport is not None:
                    transport.close()  # no terminating chunk: the client sees a cut body
                return response
            try:
                await response.write(part.data)
            except (ConnectionError, RuntimeError):
                self._mark_disconnected()
                return response
            sent += 1
        if fault is not None and fault.kind == "disconnect":
            transport = request.transport
            if transport is not None:
                transport.close()
            return response
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof()
        return response

    async def _transcribe(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields: dict[str, Any] = {}
        for name, value in form.items():
            if isinstance(value, web.FileField):
                fields[name] = {"filename": value.filename, "size": len(value.file.read())}
            else:
                fields[name] = value
        self.requests.append(
            RecordedRequest(fields, request.path, dict(request.headers), dict(request.query))
        )
        if not self.transcripts:
            return _error_response(500, "FakeOpenAI has no transcript", None, ())
        answer = self.transcripts.pop(0)
        if isinstance(answer, Fault):
            return _error_response(answer.http_status, answer.message, answer.code, answer.headers)
        return web.json_response({"text": answer})

    async def _wait(self, request: web.Request, event: asyncio.Event) -> bool:
        """Block on a Pause until the test releases it; False if the client went away first."""
        while not event.is_set():
            if self._closing_transport(request):
                self._mark_disconnected()
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), 0.01)
        return True

    @staticmethod
    def _closing_transport(request: web.Request) -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    def _mark_disconnected(self) -> None:
        self.disconnects += 1
        self.disconnected.set()


def _error_response(
    status: int, message: str, code: str | None, headers: Sequence[tuple[str, str]]
) -> web.Response:
    body = {
        "error": {
            "message": message,
            "type": _STATUS_TYPES.get(status, "server_error"),
            "param": None,
            "code": code,
        }
    }
    return web.json_response(body, status=status, headers=dict(headers))


# --- rendering -------------------------------------------------------------------------------


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _pieces(text: str, n: int = 3) -> list[str]:
    """Split ``text`` into up to ``n`` non-empty pieces, as servers stream arguments."""
    if not text:
        return []
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage_for(events: Sequence[Any], body: dict[str, Any]) -> Usage:
    for event in events:
        if isinstance(event, ModelDone):
            return event.usage
    # Deterministic stand-ins: about four characters a token.
    produced = sum(
        len(e.text) if isinstance(e, ModelTextDelta) else len(e.arguments) + len(e.name)
        for e in events
        if isinstance(e, ModelTextDelta | ModelToolCall)
    )
    return Usage(max(1, len(_json(body)) // 4), max(1, produced // 4))


def _apply_fault(parts: list[Part], fault: Fault | None, failure: list[_Frame]) -> list[Part]:
    """Cut, corrupt or replace the end of a rendered stream as ``fault`` says."""
    if fault is None or fault.kind == "disconnect":
        return parts
    body = [p for p in parts if isinstance(p, Pause) or not p.final]
    if fault.kind == "truncate":
        return body
    if fault.kind == "malformed":
        bad = _Frame(b'data: {"type": "response.output_text.delta", "delta": "unterminated\n\n')
        return parts[: fault.after] + [bad] + parts[fault.after :]
    if fault.kind in ("failed", "error_event", "incomplete"):
        return body + list(failure)
    raise ValueError(f"unknown fault kind {fault.kind!r}")


def _render_responses(
    events: Sequence[Any], body: dict[str, Any], seq: int, fault: Fault | None
) -> list[Part]:
    """Responses API SSE: created, in_progress, per output item added → deltas → done,
    then completed (or failed / incomplete / error)."""
    counter = iter(range(1_000_000))
    parts: list[Part] = []
    response_id = f"resp_fake{seq}"
    model = body.get("model", "fake-model")

    def frame(kind: str, final: bool = False, **fields: Any) -> _Frame:
        data = {"type": kind, "sequence_number": next(counter), **fields}
        return _Frame(f"event: {kind}\ndata: {_json(data)}\n\n".encode(), final)

    def response(status: str, output: list[Any], **extra: Any) -> dict[str, Any]:
        return {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": body.get("tools", []),
            "instructions": body.get("instructions"),
            "store": body.get("store", True),
            "error": None,
            "incomplete_details": None,
            "usage": None,
            **extra,
        }

    parts.append(frame("response.created", response=response("in_progress", [])))
    parts.append(frame("response.in_progress", response=response("in_progress", [])))

    output: list[dict[str, Any]] = []
    message: dict[str, Any] | None = None

    def close_message() -> None:
        nonlocal message
        if message is None:
            return
        index = len(output)
        text = message["content"][0]["text"]
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        parts.append(
            frame(
                "response.output_text.done",
                item_id=message["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
        )
        parts.append(
            frame(
                "response.content_part.done",
                item_id=message["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
        )
        message = {**message, "status": "completed", "content": [part]}
        parts.append(frame("response.output_item.done", output_index=index, item=message))
        output.append(message)
        message = None

    thought: dict[str, Any] | None = None

    def close_reasoning() -> None:
        nonlocal thought
        if thought is None:
            return
        index = len(output)
        text = thought["summary"][0]["text"]
        parts.append(
            frame(
                "response.reasoning_summary_text.done",
                item_id=thought["id"],
                output_index=index,
                summary_index=0,
                text=text,
            )
        )
        item = {**thought, "status": "completed", "encrypted_content": "enc:" + text}
        parts.append(frame("response.output_item.done", output_index=index, item=item))
        output.append(item)
        thought = None

    for event in events:
        if not isinstance(event, ModelReasoningDelta | Pause):
            close_reasoning()
        if isinstance(event, Pause):
            parts.append(event)
        elif isinstance(event, ModelReasoningDelta):
            if thought is None:
                thought = {
                    "id": f"rs_fake{seq}_{len(output)}",
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": ""}],
                }
                parts.append(
                    frame(
                        "response.output_item.added",
                        output_index=len(output),
                        item={**thought, "summary": []},
                    )
                )
            thought["summary"][0]["text"] += event.text
            parts.append(
                frame(
                    "response.reasoning_summary_text.delta",
                    item_id=thought["id"],
                    output_index=len(output),
                    summary_index=0,
                    delta=event.text,
                )
            )
        elif isinstance(event, ModelTextDelta):
            if message is None:
                message = {
                    "id": f"msg_fake{seq}_{len(output)}",
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                }
                parts.append(
                    frame("response.output_item.added", output_index=len(output), item=message)
                )
                empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                parts.append(
                    frame(
                        "response.content_part.added",
                        item_id=message["id"],
                        output_index=len(output),
                        content_index=0,
                        part=empty,
                    )
                )
                message = {**message, "content": [dict(empty)]}
            message["content"][0]["text"] += event.text
            parts.append(
                frame(
                    "response.output_text.delta",
                    item_id=message["id"],
                    output_index=len(output),
                    content_index=0,
                    delta=event.text,
                    logprobs=[],
                )
            )
        elif isinstance(event, ModelToolCall):
            close_message()
            index = len(output)
            item = {
                "id": f"fc_fake{seq}_{index}",
                "type": "function_call",
                "status": "in_progress",
                "call_id": event.call_id,
                "name": event.name,
                "arguments": "",
            }
            parts.append(frame("response.output_item.added", output_index=index, item=item))
            for piece in _pieces(event.arguments):
                parts.append(
                    frame(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=piece,
                    )
                )
            parts.append(
                frame(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=event.name,
                    arguments=event.arguments,
                )
            )
            item = {**item, "status": "completed", "arguments": event.arguments}
            parts.append(frame("response.output_item.done", output_index=index, item=item))
            output.append(item)
    close_reasoning()
    close_message()

    usage = _usage_for(events, body)
    usage_json = {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
    parts.append(
        frame(
            "response.completed",
            final=True,
            response=response("completed", output, usage=usage_json),
        )
    )

    failure: list[_Frame] = []
    if fault is not None and fault.kind == "failed":
        error = {"code": fault.code, "message": fault.message}
        failure.append(frame("response.failed", response=response("failed", output, error=error)))
    elif fault is not None and fault.kind == "error_event":
        failure.append(frame("error", code=fault.code, message=fault.message, param=None))
    elif fault is not None and fault.kind == "incomplete":
        details = {"reason": fault.code}
        failure.append(
            frame(
                "response.incomplete",
                response=response(
                    "incomplete", output, incomplete_details=details, usage=usage_json
                ),
            )
        )
    return _apply_fault(parts, fault, failure)


def _render_chat(
    events: Sequence[Any],
    body: dict[str, Any],
    seq: int,
    fault: Fault | None,
    include_usage: bool,
) -> list[Part]:
    """Chat Completions SSE: a role chunk, content / tool_calls deltas (a call's id and name
    first, its arguments over several chunks), a finish_reason chunk, a usage chunk, [DONE]."""
    completion_id = f"chatcmpl-fake{seq}"
    created = int(time.time())
    model = body.get("model", "fake-model")
    parts: list[Part] = []

    def chunk(
        delta: dict[str, Any] | None, finish: str | None = None, final: bool = False, **extra: Any
    ) -> _Frame:
        data: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None  # OpenAI sends null usage on every chunk but the last
        data.update(extra)
        return _Frame(f"data: {_json(data)}\n\n".encode(), final)

    parts.append(chunk({"role": "assistant", "content": "", "refusal": None}))
    n_calls = 0
    for event in events:
        if isinstance(event, Pause):
            parts.append(event)
        elif isinstance(event, ModelReasoningDelta):
            parts.append(chunk({"content": None, "reasoning_content": event.text}))
        elif isinstance(event, ModelTextDelta):
            parts.append(chunk({"content": event.text}))
        elif isinstance(event, ModelToolCall):
            index = n_calls
            n_calls += 1
            head = {
                "index": index,
                "id": event.call_id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            parts.append(chunk({"tool_calls": [head]}))
            for piece in _pieces(event.arguments):
                parts.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )

    reason = "tool_calls" if n_calls else "stop"
    failure: list[_Frame] = []
    if fault is not None and fault.kind in ("failed", "error_event"):
        error = {
            "message": fault.message,
            "type": "server_error",
            "param": None,
            "code": fault.code,
        }
        failure.append(_Frame(f"data: {_json({'error': error})}\n\n".encode()))
    elif fault is not None and fault.kind == "incomplete":
        reason = "content_filter" if fault.code == "content_filter" else "length"

    usage = _usage_for(events, body)
    ending = [chunk({}, reason, final=True)]
    if include_usage:
        usage_json = {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
        }
        ending.append(chunk(None, final=True, usage=usage_json))
    ending.append(_Frame(b"data: [DONE]\n\n", final=True))
    if fault is not None and fault.kind == "incomplete":
        failure = [_Frame(f.data) for f in ending]  # the same ending, kept by _apply_fault
    return _apply_fault([*parts, *ending], fault, failure)
