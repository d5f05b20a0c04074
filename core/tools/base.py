"""The Tool protocol and the registry that validates arguments and contains tool failures.

A tool never crashes a run: invalid arguments and any exception it raises become a tool error
output (``{"error": {"code", "message"}}``) that goes back to the model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from core.errors import ToolArgumentsInvalid, ToolError
from core.models.base import ToolSpec

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from core.config import Settings
    from core.domain import FileRef, Thread
    from core.store import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ProducedFile:
    path: str
    name: str
    mime: str


@dataclass(slots=True)
class ToolResult:
    """What a tool returns: JSON-serialisable ``output`` plus side products."""

    output: Any
    files: list[ProducedFile] = field(default_factory=list)
    bills_changed: list[int] = field(default_factory=list)
    is_error: bool = False

    def output_text(self) -> str:
        if isinstance(self.output, str):
            return self.output
        return json.dumps(self.output, ensure_ascii=False, default=str)


@dataclass(slots=True)
class ToolContext:
    """Everything a tool may touch for one call. Idempotency key: (run_id, call_id)."""

    settings: Settings
    store: Store
    thread: Thread
    run_id: str
    call_id: str
    lang: str = "en"
    files: list[FileRef] = field(default_factory=list)

    @property
    def workdir(self) -> Path:
        return self.settings.sandbox_dir / self.thread.id


@dataclass(slots=True)
class PromptContext:
    """What a tool may read to add prompt text for one turn: the thread, its files, language."""

    thread: Thread
    lang: str = "en"
    files: list[FileRef] = field(default_factory=list)


@runtime_checkable
class Tool(Protocol):
    """A model-facing tool. It may also give prompt text: see :class:`GivesInstructions`."""

    name: str
    description: str
    parameters: dict[str, Any]
    # Writes that need a person's yes when ``approve_writes`` is on.
    needs_approval: bool

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult: ...

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        """One line saying what this call will do, for approval prompts."""
        ...


@runtime_checkable
class GivesInstructions(Protocol):
    """Optional extra of a :class:`Tool`: text for the system prompt of every turn.

    The prompt builder looks for this method on each registered tool (``getattr``), so a tool
    that has nothing to say simply does not define it.
    """

    async def instructions(self, ctx: PromptContext) -> str | None:
        """Prompt text for this turn, or None to add nothing."""
        ...


# Keywords that only bound what a call may carry. Calls are validated against the full schema
# (ToolRegistry.parse); sending them costs every request tokens a small model's window lacks
# (issue 13) and tells the model nothing it needs to write a call.
_VALIDATION_ONLY = frozenset({"pattern", "minLength", "maxLength", "minItems", "maxItems"})


def model_schema(schema: Any) -> Any:
    """``schema`` without :data:`_VALIDATION_ONLY` keywords, at any depth (a new object)."""
    if isinstance(schema, dict):
        return {
            k: model_schema(v)
            for k, v in schema.items()
            if not (k in _VALIDATION_ONLY and not isinstance(v, dict))
        }
    if isinstance(schema, list):
        return [model_schema(v) for v in schema]
    return schema


class ToolRegistry:
    """Registered tools by name; validates arguments and turns failures into tool errors.

    Each schema is checked (and its validator built) when the tools are first shown to the
    model or a call is first parsed, not at registration: a model-free command such as
    ``/help`` builds the registry but never needs jsonschema (issue 12, start-up time).
    """

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._specs: tuple[ToolSpec, ...] | None = None
        self._validators: dict[str, Validator] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        self._tools[tool.name] = tool
        self._specs = None
        self._validators.pop(tool.name, None)

    def _validator(self, tool: Tool) -> Validator:
        """The tool's argument validator; raises jsonschema.SchemaError for a bad schema."""
        validator = self._validators.get(tool.name)
        if validator is None:
            import jsonschema

            jsonschema.Draft202012Validator.check_schema(tool.parameters)
            validator = jsonschema.Draft202012Validator(tool.parameters)
            self._validators[tool.name] = validator
        return validator

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def names(self) -> tuple[str, ...]:
        """The registered tool names, in registration order."""
        return tuple(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def specs(self) -> tuple[ToolSpec, ...]:
        """What the model is shown: each schema without its validation-only keywords (built
        once per set of tools: every turn's request asks for them)."""
        if self._specs is None:
            for tool in self._tools.values():
                self._validator(tool)  # the model is never shown a schema that is not valid
            self._specs = tuple(
                ToolSpec(t.name, t.description, model_schema(t.parameters))
                for t in self._tools.values()
            )
        return self._specs

    def parse(self, name: str, arguments: str) -> tuple[Tool, dict[str, Any]]:
        """Look up and validate a call. Raises ToolError / ToolArgumentsInvalid."""
        tool = self._tools.get(name)
        if tool is None:
            raise ToolError(
                f"unknown tool {name!r}; available: {', '.join(self._tools)}", code="unknown_tool"
            )
        try:
            args = json.loads(arguments or "{}")
        except ValueError as exc:
            raise ToolArgumentsInvalid(f"arguments are not valid JSON: {exc}") from exc
        if not isinstance(args, dict):
            raise ToolArgumentsInvalid("arguments must be a JSON object")
        errors = sorted(self._validator(tool).iter_errors(args), key=lambda e: list(e.path))
        if errors:
            detail = "; ".join(
                f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5]
            )
            raise ToolArgumentsInvalid(f"arguments do not match the schema: {detail}")
        return tool, args

    async def call(self, name: str, arguments: str, ctx: ToolContext) -> ToolResult:
        """Validate and run. Never raises for tool-side problems: returns an error result."""
        try:
            tool, args = self.parse(name, arguments)
            return await tool.run(args, ctx)
        except ToolError as exc:
            return ToolResult(output={"error": exc.to_dict()}, is_error=True)
        except Exception as exc:  # a tool bug must not crash the run
            log.exception("tool %s failed", name)
            return ToolResult(
                output={
                    "error": {"code": "tool_crashed", "message": f"{type(exc).__name__}: {exc}"}
                },
                is_error=True,
            )
