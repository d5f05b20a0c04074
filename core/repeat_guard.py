"""The repeat guard: an identical tool call repeated within a run is not executed again.

Small local models (issue 13) repeat the same ``save_bill`` call turn after turn until
``max_turns``. A call with the same tool and the same arguments (compared as parsed JSON, so
key order and spacing do not matter) as an earlier answered call of the same run gets that
call's output back with a note telling the model to answer the person instead.

A write in between (a different call of a tool that changes things, such as ``amend_bill``)
makes the earlier result stale, so ``get_bill`` after an amendment still runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from core.domain import Run, ToolCall

ALREADY_DONE = "already done, answer the user"


def _key(name: str, arguments: str) -> tuple[str, str]:
    try:
        canonical = json.dumps(json.loads(arguments or "{}"), sort_keys=True, ensure_ascii=False)
    except ValueError:
        canonical = arguments.strip()
    return name, canonical


def earlier_call(
    run: Run, call: ToolCall, writes: Callable[[str], bool] = lambda name: False
) -> ToolCall | None:
    """An answered, successful call of ``run`` identical to ``call`` with no other write
    after it (``writes(name)``: the tool changes things); None if there is none."""
    key = _key(call.name, call.arguments)
    found: ToolCall | None = None
    for step in run.steps:
        for done in step.tool_calls:
            if done.id == call.id or done.output is None:
                continue
            if _key(done.name, done.arguments) == key:
                found = None if done.is_error else done
            elif writes(done.name) and not done.is_error:
                found = None
    return found


def repeated_output(earlier: ToolCall) -> str:
    """The output a repeated call gets: the earlier result and the note."""
    result: Any
    try:
        result = json.loads(earlier.output or "null")
    except ValueError:
        result = earlier.output
    return json.dumps(
        {"note": ALREADY_DONE, "earlier_call": earlier.id, "result": result}, ensure_ascii=False
    )
