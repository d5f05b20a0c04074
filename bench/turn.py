"""The benchmark turn every runtime plays, and the small statistics the scripts print.

One user message -> the model double calls ``save_bill`` once -> the tool returns the totals ->
the model double answers with text. Every runtime gets the same message, the same arguments and
the same tool body (:func:`bill_totals`), so what differs is only the runtime around them.
"""

from __future__ import annotations

import json
import statistics
from decimal import Decimal
from typing import Any

INSTRUCTIONS = "You keep a flower shop's bills. Save the bill the person describes, then confirm."
MESSAGE = "Today I sold 10 roses at 5 (cost 3) and 4 lilies at 8 (cost 5). Save the bill."
BILL_ARGS: dict[str, Any] = {
    "date": "2026-12-01",
    "items": [
        {"name": "rose", "quantity": 10, "unit_cost": 3, "unit_price": 5},
        {"name": "lily", "quantity": 4, "unit_cost": 5, "unit_price": 8},
    ],
}
BILL_ARGS_JSON = json.dumps(BILL_ARGS)
ANSWER = "Saved the bill for 2026-12-01: cost 50.00, revenue 82.00, profit 32.00."
SAVE_BILL_DESCRIPTION = "Save the bill for one day from its line items; returns the totals."
SAVE_BILL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "date": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "quantity": {"type": "number"},
                    "unit_cost": {"type": "number"},
                    "unit_price": {"type": "number"},
                },
                "required": ["name", "quantity", "unit_cost", "unit_price"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["date", "items"],
    "additionalProperties": False,
}


def bill_totals(date: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The tool body every runtime calls: totals in Decimal, nothing persisted."""
    cost = sum(
        (Decimal(str(i["quantity"])) * Decimal(str(i["unit_cost"])) for i in items), Decimal()
    )
    revenue = sum(
        (Decimal(str(i["quantity"])) * Decimal(str(i["unit_price"])) for i in items), Decimal()
    )
    return {"date": date, "cost": str(cost), "revenue": str(revenue), "profit": str(revenue - cost)}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank on the sorted values."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values)
