"""The Chat Completions adapter: one model turn as ``client.chat.completions.create(stream=True)``.

This is the wire every OpenAI-compatible server speaks (DeepSeek, Qwen, Ollama, vLLM, llama.cpp),
so it tolerates their differences: tool-call ids or indexes left out, no usage chunk, a usage
chunk after ``finish_reason``, chunks with empty ``choices``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai

from core.errors import BrokenStream
from core.models.base import (
    AssistantText,
    FunctionCall,
    FunctionOutput,
    Item,
    ModelDone,
    ModelEvent,
    ModelReasoningDelta,
    ModelRequest,
    ModelTextDelta,
    ModelToolCall,
    Reasoning,
    ToolSpec,
    Usage,
    UserText,
    usage_value,
)
from core.models.errors import STREAM_ERRORS, convert_error, incomplete_error


def messages(instructions: str, items: tuple[Item, ...] | list[Item]) -> list[dict[str, Any]]:
    """Instructions and wire-neutral items as Chat Completions messages.

    Consecutive function calls become one assistant message with ``tool_calls`` (that is how
    the model produced them, and servers check every call has its ``tool`` answer after it);
    text the model said right before its calls in the same turn goes into that message.
    A :class:`Reasoning` item becomes ``reasoning_content`` on the assistant message after it:
    DeepSeek's thinking mode rejects a tool-call turn without it (Qwen reads it the same way).
    """
    out: list[dict[str, Any]] = []
    if instructions:
        out.append({"role": "system", "content": instructions})
    thought: str | None = None
    for item in items:
        if isinstance(item, Reasoning):
            thought = item.text or None  # for the next assistant message
            continue
        if isinstance(item, UserText):
            out.append({"role": "user", "content": user_content(item)})
        elif isinstance(item, AssistantText):
            out.append({"role": "assistant", "content": item.text})
        elif isinstance(item, FunctionCall):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionOutput):
            out.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
        else:
            raise TypeError(f"unknown input item {item!r}")
        if thought is not None and out[-1]["role"] == "assistant":
            out[-1]["reasoning_content"] = thought
            thought = None
    return out


def user_content(item: UserText) -> str | list[dict[str, Any]]:
    """A user message's content: plain text, or text + ``image_url`` parts (data URLs)."""
    if not item.images:
        return item.text
    parts: list[dict[str, Any]] = [{"type": "text", "text": item.text}]
    parts.extend({"type": "image_url", "image_url": {"url": i.url}} for i in item.images)
    return parts


def tool_param(tool: ToolSpec) -> dict[str, Any]:
    """A tool as a Chat Completions function tool."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def reasoning_delta(delta: Any) -> str:
    """Reasoning text of a chunk: ``reasoning_content`` (DeepSeek, Qwen) or ``reasoning``
    (vLLM, Ollama, OpenRouter); the SDK keeps such unknown fields as extras."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(delta, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


@dataclass
class _PartialCall:
    """A tool call being streamed: id and name come first, arguments in pieces."""

    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChatModel:
    """:class:`~core.models.base.Model` over Chat Completions (streaming SSE)."""

    def __init__(
        self, client: openai.AsyncOpenAI, model: str, *, text_tool_calls: bool = False
    ) -> None:
        self.client = client
        self.model = model
        self.name = model
        # Issue 13: read calls small models write in the text (core.models.text_calls).
        self.text_tool_calls = text_tool_calls

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments for ``chat.completions.create`` (without ``stream``)."""
        kwargs: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": messages(request.instructions, request.items),
            # Without this no usage arrives in a stream; servers that ignore it send none.
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            # Only when there are tools: some servers reject ``tools: []``.
            kwargs["tools"] = [tool_param(tool) for tool in request.tools]
        if request.reasoning_effort:
            kwargs["reasoning_effort"] = request.reasoning_effort
        return kwargs

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream one turn: text deltas, complete tool calls, then exactly one ModelDone."""
        events = self._stream(request)
        if self.text_tool_calls and request.tools:
            from core.models.text_calls import read_text_calls

            return read_text_calls(events, {tool.name for tool in request.tools})
        return events

    async def _stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        try:
            stream = await self.client.chat.completions.create(stream=True, **self.payload(request))
        except STREAM_ERRORS as exc:
            raise convert_error(exc) from exc

        calls: dict[int, _PartialCall] = {}
        finished = False
        incomplete: str | None = None
        usage: Usage | None = None
        try:
            async for chunk in stream:
                u = getattr(chunk, "usage", None)
                if u is not None:
                    usage = Usage(
                        usage_value(u, "prompt_tokens", "input_tokens"),
                        usage_value(u, "completion_tokens", "output_tokens"),
                    )
                for choice in getattr(chunk, "choices", None) or []:
                    if (getattr(choice, "index", 0) or 0) != 0 or finished:
                        continue  # we ask for one choice; nothing counts after it finished
                    delta = getattr(choice, "delta", None)
                    if delta is not None:
                        thought = reasoning_delta(delta)
                        if thought:
                            yield ModelReasoningDelta(thought)
                        content = getattr(delta, "content", None)
                        if content:
                            yield ModelTextDelta(content)
                        for tc in getattr(delta, "tool_calls", None) or []:
                            self._accumulate(calls, tc)
                    reason = getattr(choice, "finish_reason", None)
                    if reason:
                        finished = True
                        if reason == "content_filter":
                            raise incomplete_error(reason)
                        if reason == "length":
                            # Cut at the token limit: the text so far stands, but a call
                            # whose arguments were cut is not a call.
                            incomplete = reason
                            continue
                        # Emitted on finish_reason, not per delta: only then are the
                        # arguments complete. Some servers say "stop" even with tool calls.
                        for index in sorted(calls):
                            yield self._complete(index, calls[index])
        except STREAM_ERRORS as exc:
            raise convert_error(exc) from exc
        finally:
            # Also runs on aclose()/cancel: that is what stops the HTTP stream of a cancelled run.
            # A failing close must not hide the turn's outcome (or its real error).
            with contextlib.suppress(*STREAM_ERRORS):
                await stream.close()
        if not finished:
            raise BrokenStream(
                "model stream ended without a finish_reason", zh="与模型服务的连接中断，请重试。"
            )
        yield ModelDone(usage or Usage(), incomplete=incomplete)

    @staticmethod
    def _accumulate(calls: dict[int, _PartialCall], tc: Any) -> None:
        index = getattr(tc, "index", None)
        call_id = getattr(tc, "id", None)
        if index is None:
            # Some servers omit the index: a new id starts a new call, pieces extend the last.
            known = {c.call_id for c in calls.values()}
            index = len(calls) if (call_id and call_id not in known) or not calls else max(calls)
        partial = calls.setdefault(index, _PartialCall())
        if call_id and not partial.call_id:
            partial.call_id = call_id
        function = getattr(tc, "function", None)
        if function is not None:
            name = getattr(function, "name", None)
            # Servers that repeat the name on every chunk must not make it "echoecho".
            if name and not partial.name:
                partial.name = name
            arguments = getattr(function, "arguments", None)
            if arguments:
                partial.arguments.append(arguments)

    @staticmethod
    def _complete(index: int, partial: _PartialCall) -> ModelToolCall:
        # Some local servers send no call id; the engine needs one to pair the output.
        call_id = partial.call_id or f"call_{index}_{uuid.uuid4().hex[:12]}"
        return ModelToolCall(
            call_id=call_id, name=partial.name, arguments="".join(partial.arguments) or "{}"
        )
