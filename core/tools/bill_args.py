"""The JSON-schema pieces and helpers the bill tools share (one definition, one wording)."""

from __future__ import annotations

from typing import Any

from core.bills import Bill
from core.errors import ToolError, UserError

DECIMAL_TEXT = r"^\s*\d+(\.\d+)?\s*$"
DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "YYYY-MM-DD"}
QUANTITY = {
    "type": ["number", "string"],
    "exclusiveMinimum": 0,
    "pattern": DECIMAL_TEXT,
    "description": "Positive number.",
}


def unit(what: str) -> dict[str, Any]:
    return {
        "type": ["number", "string", "null"],
        "minimum": 0,
        "pattern": DECIMAL_TEXT,
        "description": f"{what} per unit; omit to use the known price.",
    }


ITEM = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "quantity": QUANTITY,
        "unit_cost": unit("Purchase cost"),
        "unit_price": unit("Selling price"),
    },
    "required": ["name", "quantity"],
    # Models like to add "total"; it is accepted and ignored, totals are computed in code.
    "additionalProperties": True,
}
REMOVE_ITEM = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "quantity": {
            **QUANTITY,
            "description": "Omit to remove the whole line.",
        },
    },
    "required": ["name"],
    "additionalProperties": True,
}
BILL_ID = {
    "type": "integer",
    "minimum": 1,
    "description": "Omit for the current bill.",
}
NOTE = {"type": "string", "maxLength": 2000}


def write_output(bill: Bill) -> dict[str, Any]:
    data = bill.to_json()
    return {
        "bill_id": bill.id,
        "revision": bill.revision,
        "items": data["items"],
        "cost": data["cost"],
        "revenue": data["revenue"],
        "profit": data["profit"],
    }


def as_tool_error(exc: UserError) -> ToolError:
    # The registry turns ToolErrors into {"error": ...} for the model; a NotFound or
    # CommandError must reach the model the same way instead of crashing the call.
    return ToolError(exc.message, code=exc.code, zh=exc.zh)


def items_phrase(items: Any, lang: str, limit: int = 5) -> str:
    if not isinstance(items, list):
        return ""
    parts = []
    for item in items[:limit]:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name", "?"))
        qty = item.get("quantity")
        if qty is None:
            parts.append(name if lang != "zh" else f"{name}（全部）")
        else:
            parts.append(f"{name} ×{qty}")
    more = len(items) - limit
    if more > 0:
        parts.append(f"+{more} more" if lang != "zh" else f"等另外 {more} 项")
    return ("、" if lang == "zh" else ", ").join(parts)
