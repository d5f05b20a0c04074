"""Issue 13: the built-in instructions plus tool schemas stay under 1,500 tokens, so a request
fits the 2,048-4,096-token windows local servers default to. Run with ``-s`` to see the figures.

The count is :func:`core.context_window.estimate_tokens` (ASCII characters / 4, one token per
other character) over the instructions as sent on a first turn and each tool as JSON.
"""

from __future__ import annotations

from core.assistant import load_assistant
from core.bills import Ledger
from core.config import Settings
from core.context_window import estimate_tokens, tools_tokens
from core.domain import Run
from core.prompt import Prompt
from core.store import Store
from core.tools import registry

BUDGET = 1500


async def test_builtin_instructions_and_tools_fit_the_budget(
    settings: Settings, store: Store
) -> None:
    spec = load_assistant(None)
    tools, closeable = registry.build_tools(
        spec.tools, registry.ToolDeps(settings, store, Ledger(store, settings))
    )
    thread = await store.get_or_create_thread("console:budget")
    prompt = Prompt(settings, store, tools, spec)
    request = await prompt.request(
        Run(id="run_x", thread_id=thread.id, model="m"), thread, "zh", "m"
    )
    instructions = estimate_tokens(request.instructions)
    schemas = tools_tokens(request.tools)
    per_tool = {t.name: tools_tokens((t,)) for t in request.tools}
    print(
        f"\ninstructions {instructions} + tool schemas {schemas} = {instructions + schemas} tokens"
    )
    print("per tool:", per_tool)
    for item in closeable:
        await item.aclose()
    assert instructions + schemas < BUDGET
