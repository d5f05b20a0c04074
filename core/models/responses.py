"""The Responses API adapter: one model turn as ``client.responses.create(stream=True)``.

Stateless on purpose (``store=False``, no ``previous_response_id``): the whole history comes
from tallybot's store in the request items, so a thread survives a provider switch and nothing
depends on OpenAI keeping our conversations.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
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
    ModelReasoningItem,
    ModelRequest,
    ModelTextDelta,
    ModelToolCall,
    Reasoning,
    ToolSpec,
    Usage,
    UserText,
    usage_value,
)
from core.models.errors import STREAM_ERRORS, convert_error, incomplete_error, stream_error
from core.models.reasoning import is_reasoning_model

# Reasoning text arrives as summary deltas (OpenAI) or raw reasoning deltas (gpt-oss servers).
_REASONING_DELTAS = ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")
# Fields of a reasoning item the API takes back as input; ``status`` and the rest it rejects.
_REASONING_FIELDS = ("type", "id", "summary", "encrypted_content", "content")


def input_items(items: tuple[Item, ...] | list[Item]) -> list[dict[str, Any]]:
    """Wire-neutral items as Responses input: a :class:`Reasoning` item expands to the
    provider's reasoning items, in the order the model produced them."""
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, Reasoning):
            out.extend(dict(data) for data in item.items)
        else:
            out.append(input_item(item))
    return out


def reasoning_input(data: dict[str, Any]) -> dict[str, Any]:
    """A finished reasoning output item as the input item that passes it back."""
    kept = {k: v for k, v in data.items() if k in _REASONING_FIELDS and v is not None}
    kept.setdefault("summary", [])
    return kept


def input_item(item: Item) -> dict[str, Any]:
    """One wire-neutral item as a Responses API input item."""
    if isinstance(item, UserText):
        if not item.images:
            return {"role": "user", "content": item.text}
        content: list[dict[str, Any]] = [{"type": "input_text", "text": item.text}]
        content.extend({"type": "input_image", "image_url": i.url} for i in item.images)
        return {"role": "user", "content": content}
    if isinstance(item, AssistantText):
        return {"role": "assistant", "content": item.text}
    if isinstance(item, FunctionCall):
        return {
            "type": "function_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        }
    if isinstance(item, FunctionOutput):
        return {"type": "function_call_output", "call_id": item.call_id, "output": item.output}
    raise TypeError(f"unknown input item {item!r}")


def tool_param(tool: ToolSpec) -> dict[str, Any]:
    """A tool as a Responses function tool."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        # Strict mode would reject any schema without additionalProperties=false on every
        # object; tallybot validates the arguments against the schema itself.
        "strict": False,
    }


class ResponsesModel:
    """:class:`~core.models.base.Model` over the OpenAI Responses API (streaming SSE)."""

    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self.client = client
        self.model = model
        self.name = model

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments for ``responses.create`` (without ``stream``)."""
        kwargs: dict[str, Any] = {
            "model": request.model or self.model,
            "store": False,
            "input": input_items(request.items),
        }
        if request.instructions:
            kwargs["instructions"] = request.instructions
        if request.tools:
            kwargs["tools"] = [tool_param(tool) for tool in request.tools]
        if request.reasoning_effort or is_reasoning_model(kwargs["model"]):
            # Stateless (store=False): the reasoning can only come back encrypted, in our
            # own input items. Non-reasoning models reject this include, so only for these.
            kwargs["include"] = ["reasoning.encrypted_content"]
        if request.reasoning_effort:
            # Summaries (readable reasoning for `runs show`) only when the operator set an
            # effort: some organisations must be verified before they may ask for them.
            kwargs["reasoning"] = {"effort": request.reasoning_effort, "summary": "auto"}
        return kwargs

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream one turn: text deltas, complete tool calls, then exactly one ModelDone."""
        try:
            stream = await self.client.responses.create(stream=True, **self.payload(request))
        except STREAM_ERRORS as exc:
            raise convert_error(exc) from exc

        usage: Usage | None = None
        incomplete: str | None = None
        # Item ids that streamed text; a server that only fills the finished item (no deltas)
        # still gets its text through.
        streamed: set[str] = set()
        args: dict[str, list[str]] = {}
        try:
            async for event in stream:
                kind = getattr(event, "type", None)
                if kind in _REASONING_DELTAS:
                    if getattr(event, "delta", None):
                        yield ModelReasoningDelta(event.delta)
                elif kind == "response.output_text.delta":
                    streamed.add(getattr(event, "item_id", "") or "")
                    if event.delta:
                        yield ModelTextDelta(event.delta)
                elif kind == "response.function_call_arguments.delta":
                    args.setdefault(event.item_id, []).append(event.delta or "")
                elif kind == "response.output_item.done":
                    for out in self._item_done(event.item, streamed, args):
                        yield out
                elif kind == "response.completed":
                    u = getattr(event.response, "usage", None)
                    usage = Usage(
                        usage_value(u, "input_tokens", "prompt_tokens"),
                        usage_value(u, "output_tokens", "completion_tokens"),
                    )
                    # Keep reading to the end of the body so the connection can be reused.
                elif kind == "response.failed":
                    error = getattr(event.response, "error", None)
                    raise stream_error(
                        getattr(error, "code", None), getattr(error, "message", None)
                    )
                elif kind == "response.incomplete":
                    details = getattr(event.response, "incomplete_details", None)
                    reason = getattr(details, "reason", None)
                    if reason == "content_filter":
                        raise incomplete_error(reason)
                    # The text so far stands; the engine keeps it with a note.
                    u = getattr(event.response, "usage", None)
                    usage = Usage(
                        usage_value(u, "input_tokens", "prompt_tokens"),
                        usage_value(u, "output_tokens", "completion_tokens"),
                    )
                    incomplete = reason or "max_output_tokens"
                elif kind == "error":
                    raise stream_error(
                        getattr(event, "code", None), getattr(event, "message", None)
                    )
        except STREAM_ERRORS as exc:
            raise convert_error(exc) from exc
        finally:
            # Also runs on aclose()/cancel: that is what stops the HTTP stream of a cancelled run.
            # A failing close must not hide the turn's outcome (or its real error).
            with contextlib.suppress(*STREAM_ERRORS):
                await stream.close()
        if usage is None:
            raise BrokenStream(
                "model stream ended without response.completed", zh="与模型服务的连接中断，请重试。"
            )
        yield ModelDone(usage, incomplete=incomplete)

    @staticmethod
    def _item_done(item: Any, streamed: set[str], args: dict[str, list[str]]) -> list[ModelEvent]:
        kind = getattr(item, "type", None)
        item_id = getattr(item, "id", None) or ""
        if kind == "function_call":
            arguments = getattr(item, "arguments", None) or "".join(args.pop(item_id, []))
            # Some compatible servers leave call_id out; the item id still pairs the output.
            call_id = getattr(item, "call_id", None) or item_id or f"call_{uuid.uuid4().hex[:12]}"
            name = getattr(item, "name", None) or ""
            return [ModelToolCall(call_id=call_id, name=name, arguments=arguments or "{}")]
        if kind == "reasoning":
            data = item.model_dump() if hasattr(item, "model_dump") else dict(item)
            return [ModelReasoningItem(reasoning_input(data))]
        if kind == "message" and item_id not in streamed:
            text = "".join(
                getattr(part, "text", "") or ""
                for part in getattr(item, "content", None) or []
                if getattr(part, "type", None) == "output_text"
            )
            return [ModelTextDelta(text)] if text else []
        return []
