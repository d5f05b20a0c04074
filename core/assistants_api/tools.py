"""One run's tools: tallybot's own, plus the functions the API client runs itself.

* ``code_interpreter`` and ``file_search`` (v1 ``retrieval``) are tallybot's sandbox and file
  search over the thread's files.
* A ``function`` named like one of tallybot's bill tools and given without ``parameters``
  (``{"type": "function", "function": {"name": "save_bill"}}``) is that bill tool.
* Any other ``function`` is a :class:`ClientFunction`: ``external``, so the engine puts the
  run in ``requires_action`` and waits for ``submit_tool_outputs`` instead of running it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from core.assistants_api.errors import bad_request
from core.errors import ToolError
from core.tools.base import Tool, ToolContext, ToolRegistry, ToolResult

BILL_TOOLS = ("save_bill", "amend_bill", "get_bill", "list_bills")
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(slots=True)
class ClientFunction:
    """A function the API client declared and runs: its output comes from the client."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: dict(EMPTY_SCHEMA))
    needs_approval: bool = False
    external: bool = True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        # Never reached: external calls wait for the client (core.tool_calls).
        raise ToolError(f"{self.name} is run by the API client", code="external_tool")

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        return f"{self.name}({json.dumps(args, ensure_ascii=False)})"


def check_tools(tools: list[dict[str, Any]]) -> None:
    """Refuse (400) function schemas no JSON Schema validator accepts."""
    for i, tool in enumerate(tools):
        params = tool.get("function", {}).get("parameters")
        if params is None:
            continue
        try:
            jsonschema.Draft202012Validator.check_schema(params)
        except jsonschema.SchemaError as exc:
            raise bad_request(
                f"Invalid 'tools[{i}].function.parameters': {exc.message}",
                param=f"tools[{i}].function.parameters",
            ) from exc


def run_tools(builtin: ToolRegistry, tools: list[dict[str, Any]]) -> ToolRegistry:
    """The registry one run offers the model, from its stored ``tools``."""
    chosen: list[Tool] = []
    for tool in tools:
        kind = tool["type"]
        if kind in ("code_interpreter", "file_search"):
            found = builtin.get(kind)
            if found is not None:
                chosen.append(found)
            continue
        fn = tool["function"]
        name = fn["name"]
        if name in BILL_TOOLS and fn.get("parameters") is None and builtin.get(name):
            chosen.append(builtin.get(name))  # type: ignore[arg-type]
            continue
        chosen.append(
            ClientFunction(
                name=name,
                description=fn.get("description") or "",
                parameters=fn.get("parameters") or dict(EMPTY_SCHEMA),
            )
        )
    registry = ToolRegistry()
    for item in chosen:
        if item.name not in registry:
            registry.register(item)
    return registry
