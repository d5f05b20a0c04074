"""Test tools and a harness that builds an Engine over a real store with any Model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from core.assistant import AssistantSpec
from core.config import Settings
from core.domain import Thread
from core.engine import Engine
from core.events import Event
from core.models.base import Model
from core.store import Store
from core.tools.base import ToolContext, ToolRegistry, ToolResult


@dataclass
class EchoTool:
    """Returns its text argument; records every call."""

    name: str = "echo"
    description: str = "Echo the text back."
    parameters: dict[str, Any] = field(
        default_factory=lambda: {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
            "additionalProperties": False,
        }
    )
    needs_approval: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.calls.append((ctx.call_id, args["text"]))
        return ToolResult(output={"echo": args["text"]})

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        return f"echo {args.get('text')}"


@dataclass
class BoomTool:
    name: str = "boom"
    description: str = "Always raises."
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    needs_approval: bool = False

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise ZeroDivisionError("division by zero inside the tool")

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        return "boom"


@dataclass
class WriteTool:
    """A write that needs approval; counts real executions per (run, call)."""

    name: str = "write"
    description: str = "Write a value."
    parameters: dict[str, Any] = field(
        default_factory=lambda: {
            "type": "object",
            "properties": {"value": {"type": "integer"}},
            "required": ["value"],
        }
    )
    needs_approval: bool = True
    executions: list[tuple[str, str, int]] = field(default_factory=list)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.executions.append((ctx.run_id, ctx.call_id, args["value"]))
        return ToolResult(output={"written": args["value"]}, bills_changed=[args["value"]])

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        return f"写入 {args.get('value')}" if lang == "zh" else f"write {args.get('value')}"


SPEC = AssistantSpec(name="test", instructions="You are a test assistant.", tools=())


class Harness:
    """An Engine on a real store; ``send`` stores a user message and runs it to the end."""

    def __init__(self, settings: Settings, store: Store, model: Model) -> None:
        self.settings = settings
        self.store = store
        self.model = model
        self.echo, self.boom, self.write = EchoTool(), BoomTool(), WriteTool()
        self.tools = ToolRegistry([self.echo, self.boom, self.write])
        self.engine = Engine(settings, store, model, self.tools, SPEC)

    async def thread(self, key: str = "test:1") -> Thread:
        return await self.store.get_or_create_thread(key)

    async def send(self, text: str, key: str = "test:1", lang: str = "en") -> list[Event]:
        thread = await self.thread(key)
        await self.store.add_message(thread.id, "user", text)
        run = await self.engine.create_run(thread)
        assert run is not None
        return [e async for e in self.engine.execute(run, thread, lang)]

    async def collect(self, stream: AsyncIterator[Event]) -> list[Event]:
        return [e async for e in stream]
