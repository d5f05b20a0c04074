"""Bill tools through the ToolRegistry: schemas, outputs, errors as results, idempotency."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from core.bills import Ledger
from core.config import Settings
from core.domain import Thread
from core.store import Store
from core.tools.base import Tool, ToolContext, ToolRegistry
from core.tools.bills import bill_tools


@pytest.fixture
def registry(ledger: Ledger) -> ToolRegistry:
    return ToolRegistry(bill_tools(ledger))


@pytest.fixture
def ctx(settings: Settings, store: Store, thread: Thread) -> ToolContext:
    return ToolContext(
        settings=settings, store=store, thread=thread, run_id="run_1", call_id="call_1"
    )


async def call(registry: ToolRegistry, ctx: ToolContext, name: str, args: Any) -> Any:
    result = await registry.call(name, json.dumps(args, ensure_ascii=False), ctx)
    return result


SAVE = {
    "date": "2024-05-01",
    "items": [
        {"name": "向日葵", "quantity": 2, "unit_cost": 5, "unit_price": "12.5", "total": 25},
        {"name": "玫瑰", "quantity": "1.5", "unit_cost": 0.1, "unit_price": 0.2},
    ],
}


def test_names_protocol_and_schemas(ledger: Ledger) -> None:
    tools = bill_tools(ledger)
    assert [t.name for t in tools] == ["save_bill", "amend_bill", "get_bill", "list_bills"]
    assert [t.needs_approval for t in tools] == [True, True, False, False]
    for tool in tools:
        assert isinstance(tool, Tool)
        jsonschema.Draft202012Validator.check_schema(tool.parameters)
        assert tool.description
    save = tools[0].parameters
    assert save["oneOf"] == [{"required": ["items"]}, {"required": ["file"]}]  # issue 9
    assert set(save["properties"]["items"]["items"]["properties"]) == {
        "name", "quantity", "unit_cost", "unit_price",
    }  # fmt: skip
    assert "ignored" in tools[0].description  # the model is told totals are not taken


async def test_save_bill_output(registry: ToolRegistry, ctx: ToolContext) -> None:
    result = await call(registry, ctx, "save_bill", SAVE)
    assert not result.is_error
    out = result.output
    assert set(out) == {
        "bill_id", "revision", "items", "cost", "revenue", "profit", "date", "replaced",
    }  # fmt: skip
    assert out["revision"] == 1 and out["replaced"] is False
    assert (out["cost"], out["revenue"], out["profit"]) == ("10.15", "25.30", "15.15")
    assert out["items"][1] == {
        "name": "玫瑰",
        "quantity": "1.5",
        "unit_cost": "0.10",
        "unit_price": "0.20",
        "cost": "0.15",
        "revenue": "0.30",
    }
    assert result.bills_changed == [out["bill_id"]]
    json.loads(result.output_text())  # serialisable as is


async def test_replayed_tool_call_writes_once(
    registry: ToolRegistry, ctx: ToolContext, ledger: Ledger
) -> None:
    first = await call(registry, ctx, "save_bill", SAVE)
    again = await call(registry, ctx, "save_bill", SAVE)
    assert again.output == first.output
    assert len(await ledger.list()) == 1
    ctx.call_id = "call_2"
    add = {"add": [{"name": "向日葵", "quantity": 1}]}
    a1 = await call(registry, ctx, "amend_bill", add)
    a2 = await call(registry, ctx, "amend_bill", add)
    assert a1.output == a2.output and a1.output["revision"] == 2
    assert len(await ledger.history(first.output["bill_id"])) == 2


@pytest.mark.parametrize(
    ("name", "args", "code"),
    [
        # Issue 9: date is optional (default today); exactly one of items or file.
        ("save_bill", {"date": "2024-05-01"}, "invalid_arguments"),  # neither
        ("save_bill", {**SAVE, "file": "sales.csv"}, "invalid_arguments"),  # both
        ("save_bill", {"date": "2024-05-01", "items": []}, "invalid_arguments"),
        ("save_bill", {"date": "May 1", "items": SAVE["items"]}, "invalid_arguments"),
        (
            "save_bill",
            {"date": "2024-05-01", "items": [{"name": "a", "quantity": 0}]},
            "invalid_arguments",
        ),
        (
            "save_bill",
            {"date": "2024-05-01", "items": [{"name": "a", "quantity": -1}]},
            "invalid_arguments",
        ),
        (
            "save_bill",
            {"date": "2024-05-01", "items": [{"name": "a", "quantity": "abc"}]},
            "invalid_arguments",
        ),
        ("save_bill", {"date": "2024-05-01", "items": [{"name": "a"}]}, "invalid_arguments"),
        (
            "save_bill",
            {"date": "2024-05-01", "items": [{"name": "a", "quantity": True}]},
            "invalid_arguments",
        ),
        ("save_bill", {"date": "2024-05-01", "items": "2 roses"}, "invalid_arguments"),
        ("amend_bill", {}, "invalid_arguments"),
        ("amend_bill", {"add": []}, "invalid_arguments"),
        (
            "amend_bill",
            {"bill_id": "one", "add": [{"name": "a", "quantity": 1}]},
            "invalid_arguments",
        ),
        ("list_bills", {"date_from": "yesterday"}, "invalid_arguments"),
        # Past the schema, the ledger's own checks still answer as tool errors:
        ("save_bill", {"date": "2024-02-30", "items": SAVE["items"]}, "invalid_date"),
        (
            "save_bill",
            {"date": "2024-05-01", "items": [{"name": "a", "quantity": "0"}]},
            "invalid_quantity",
        ),
        (
            "save_bill",
            {"date": "2024-05-01", "items": [{"name": "a", "quantity": 1}]},
            "unknown_price",
        ),
        (
            "amend_bill",
            {"add": [{"name": "a", "quantity": 1, "unit_cost": 1, "unit_price": 2}]},
            "not_found",
        ),
        ("get_bill", {}, "not_found"),
        ("get_bill", {"bill_id": 42}, "not_found"),
    ],
)
async def test_bad_calls_become_error_results(
    registry: ToolRegistry, ctx: ToolContext, name: str, args: dict[str, Any], code: str
) -> None:
    result = await call(registry, ctx, name, args)
    assert result.is_error
    assert result.output["error"]["code"] == code
    assert result.output["error"]["message"]
    assert result.bills_changed == []


async def test_unknown_price_message_for_the_model(
    registry: ToolRegistry, ctx: ToolContext
) -> None:
    result = await call(
        registry,
        ctx,
        "save_bill",
        {"date": "2024-05-01", "items": [{"name": "郁金香", "quantity": 1}]},
    )
    assert result.output["error"]["message"] == "no known price for 郁金香; ask the user"


async def test_amend_get_list(registry: ToolRegistry, ctx: ToolContext, store: Store) -> None:
    saved = (await call(registry, ctx, "save_bill", SAVE)).output
    ctx.call_id = "call_2"
    amended = await call(
        registry,
        ctx,
        "amend_bill",
        {
            "add": [{"name": " 向日葵 ", "quantity": "2", "unit_price": None}],
            "remove": [{"name": "玫瑰"}],
        },
    )
    assert not amended.is_error
    assert amended.output["revision"] == 2
    assert [(i["name"], i["quantity"]) for i in amended.output["items"]] == [("向日葵", "4")]
    assert amended.bills_changed == [saved["bill_id"]]

    got = await call(registry, ctx, "get_bill", {})
    assert got.output["id"] == saved["bill_id"] and got.output["revision"] == 2
    assert got.output["thread"] == "console:default"
    assert (
        await call(registry, ctx, "get_bill", {"bill_id": saved["bill_id"]})
    ).output == got.output

    ctx.call_id = "call_3"
    await call(registry, ctx, "save_bill", {**SAVE, "date": "2024-05-02", "currency": "usd"})
    listed = (await call(registry, ctx, "list_bills", {})).output
    assert [(b["date"], b["currency"], b["item_count"]) for b in listed["bills"]] == [
        ("2024-05-01", "CNY", 1),
        ("2024-05-02", "USD", 2),
    ]
    assert set(listed["totals"]) == {"CNY", "USD"}
    assert listed["totals"]["CNY"] == {"cost": "20.00", "revenue": "50.00", "profit": "30.00"}
    only = (await call(registry, ctx, "list_bills", {"date_from": "2024-05-02"})).output
    assert len(only["bills"]) == 1

    # Another conversation sees none of it.
    other = await store.get_or_create_thread("telegram:9:9")
    ctx.thread = other
    assert (await call(registry, ctx, "list_bills", {})).output["bills"] == []
    hidden = await call(registry, ctx, "get_bill", {"bill_id": saved["bill_id"]})
    assert hidden.is_error and hidden.output["error"]["code"] == "not_found"


def test_describe_call(ledger: Ledger) -> None:
    save, amend, get, list_ = bill_tools(ledger)
    assert save.describe_call(SAVE, "en") == "Save the bill for 2024-05-01: 向日葵 ×2, 玫瑰 ×1.5"
    assert save.describe_call(SAVE, "zh") == "保存 2024-05-01 的账单：向日葵 ×2、玫瑰 ×1.5"
    args = {"add": [{"name": "向日葵", "quantity": 2}], "remove": [{"name": "玫瑰"}]}
    assert amend.describe_call(args, "en") == "Change the current bill: add 向日葵 ×2; remove 玫瑰"
    assert (
        amend.describe_call({**args, "bill_id": 3}, "zh")
        == "修改账单 #3：添加 向日葵 ×2；删除 玫瑰（全部）"
    )
    assert get.describe_call({}, "zh") == "查看当前账单"
    assert get.describe_call({"bill_id": 7}, "en") == "Show bill #7"
    assert list_.describe_call({"date_from": "2024-05-01"}, "en") == (
        "List this conversation's bills from 2024-05-01 to now"
    )
    many = {"date": "2024-05-01", "items": [{"name": f"f{i}", "quantity": 1} for i in range(8)]}
    assert save.describe_call(many, "en").endswith("+3 more")
    assert save.describe_call({}, "en")  # malformed args still give a line, never raise
