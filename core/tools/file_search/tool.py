"""The model-facing ``file_search`` tool over the current thread's files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.tools.base import ToolContext, ToolResult
from core.tools.file_search.index import DEFAULT_RESULTS, MAX_RESULTS, index_missing, search
from core.tools.file_search.segment import query_terms

if TYPE_CHECKING:
    from core.store import Store


class FileSearchTool:
    """The model-facing ``file_search`` tool over the current thread's files."""

    name = "file_search"
    description = (
        "Search the text of the attached files (text, Markdown, CSV, PDF) for passages with "
        "file name and location; cite them as (file, location). For calculations over a "
        "table, use the code interpreter."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "What to look for: keywords or a short question.",
            },
            "max_results": {
                "type": "integer",
                "description": f"How many passages to return (default {DEFAULT_RESULTS}, "
                f"at most {MAX_RESULTS}).",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    needs_approval = False

    def __init__(self, store: Store | None = None) -> None:
        # The store comes with every call (ctx.store); this one is only a default for callers
        # that build the tool without a context's store in mind.
        self.store = store

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Search the thread's files; no match is an empty list with a hint, not an error."""
        store = ctx.store
        query = str(args.get("query", ""))
        # Out-of-range counts are clamped, not rejected: a model asking for 50 should get 20.
        try:
            limit = int(args.get("max_results") or DEFAULT_RESULTS)
        except (TypeError, ValueError):
            limit = DEFAULT_RESULTS
        await index_missing(store, ctx.thread.id)
        hits = await search(store, ctx.thread.id, query, limit=limit)
        if hits:
            return ToolResult(output={"results": [h.to_dict() for h in hits]})
        return ToolResult(output={"results": [], "hint": await self._hint(store, ctx, query)})

    @staticmethod
    async def _hint(store: Store, ctx: ToolContext, query: str) -> str:
        if not query_terms(query):
            return "The query has no words to search for; use keywords from the file."
        counts = await store.search_chunk_counts(ctx.thread.id)
        searchable = {file_id for file_id, chunks in counts.items() if chunks}
        names = [f.name for f in await store.list_files(ctx.thread.id) if f.id in searchable]
        if not names:
            return (
                "No searchable files in this conversation (text, CSV or PDF). Ask the user to "
                "attach one, or answer without file search."
            )
        listed = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        return (
            f"No passage matched. Searchable files: {listed}. Try other keywords (the file's "
            "own wording, fewer words, or the other language: Chinese/English); do not guess."
        )

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        """One line for approval prompts and step logs."""
        query = " ".join(str(args.get("query", "")).split())
        if len(query) > 80:
            query = query[:79] + "…"
        if lang == "zh":
            return f"在本对话的文件中搜索“{query}”"
        return f'Search this conversation\'s files for "{query}"'
