"""The one list of built-in tools: name -> how to build it, plus what channels show for it.

Adding a tool means one entry in :data:`TOOLS` (and the tool's module). The assistant file's
``tools`` are checked against it, :func:`build_tools` builds from it, and channels read the
status line to show while a call runs (:func:`activity`) from it. Builders import their tool's
module when called, so importing this list loads no pandas, sandbox or search code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.tools.base import Tool, ToolRegistry

if TYPE_CHECKING:
    from core.bills import Ledger
    from core.config import Settings
    from core.domain import FileRef
    from core.store import Store

IngestHook = Callable[["FileRef"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolDeps:
    """What builders may hand to a tool: the process's settings, store and ledger."""

    settings: Settings
    store: Store
    ledger: Ledger


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """One built-in tool: its builder and the per-tool facts channels and intake need."""

    name: str
    # None: the tool cannot be offered here (e.g. no safe sandbox); it is left out.
    build: Callable[[ToolDeps], Tool | None]
    # Key of the status line a channel shows while the call runs ("thinking" = nothing special).
    activity: str = "thinking"
    # Called for every file stored in a thread while this tool is on (e.g. to index it).
    on_ingested: Callable[[Store], IngestHook] | None = None


def _code_interpreter(deps: ToolDeps) -> Tool | None:
    # TALLYBOT_SANDBOX decides the isolation; "off" (or auto with no safe sandbox) gives None.
    from core.tools.code_interpreter.mode import build_interpreter

    return build_interpreter(deps.settings)


def _file_search(deps: ToolDeps) -> Tool:
    from core.tools.file_search import FileSearchTool

    return FileSearchTool(deps.store)


def _index_files(store: Store) -> IngestHook:
    async def _index(ref: FileRef) -> None:
        from core.tools.file_search import index_file

        await index_file(store, ref)

    return _index


def _bill_tool(name: str) -> Callable[[ToolDeps], Tool]:
    def build(deps: ToolDeps) -> Tool:
        from core.tools.bills import bill_tools

        return next(tool for tool in bill_tools(deps.ledger) if tool.name == name)

    return build


def _bill_report(deps: ToolDeps) -> Tool:
    from core.tools.bill_report import BillReportTool

    return BillReportTool(deps.ledger)


# Order is the order the model sees the tools in.
TOOLS: dict[str, ToolInfo] = {
    info.name: info
    for info in (
        ToolInfo("code_interpreter", _code_interpreter, activity="running_code"),
        ToolInfo("file_search", _file_search, activity="searching", on_ingested=_index_files),
        ToolInfo("save_bill", _bill_tool("save_bill"), activity="updating_bill"),
        ToolInfo("amend_bill", _bill_tool("amend_bill"), activity="updating_bill"),
        ToolInfo("get_bill", _bill_tool("get_bill")),
        ToolInfo("list_bills", _bill_tool("list_bills")),
        ToolInfo("bill_report", _bill_report),
    )
}
TOOL_NAMES = frozenset(TOOLS)
"""Every tool an assistant file may name."""


def activity(name: str) -> str:
    """The status-line key for a running call of ``name`` (``"thinking"`` when unknown)."""
    info = TOOLS.get(name)
    return info.activity if info is not None else "thinking"


def build_tools(names: Iterable[str], deps: ToolDeps) -> tuple[ToolRegistry, list[Any]]:
    """The registry for ``names``, plus the tools that hold resources to close (``aclose``)."""
    wanted = set(names)
    registry = ToolRegistry()
    closeable: list[Any] = []
    for info in TOOLS.values():
        if info.name not in wanted:
            continue
        tool = info.build(deps)
        if tool is None:
            continue
        registry.register(tool)
        if hasattr(tool, "aclose"):
            closeable.append(tool)
    return registry, closeable


def ingest_hooks(names: Iterable[str], store: Store) -> list[IngestHook]:
    """What file intake calls for each stored file, for the tools in ``names``."""
    hooks = []
    for name in names:
        info = TOOLS.get(name)
        if info is not None and info.on_ingested is not None:
            hooks.append(info.on_ingested(store))
    return hooks
