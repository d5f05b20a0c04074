"""Issue 13, the scenario from the issue: a small local model (Qwen2.5-Coder 1.5B on llama.cpp)
writes save_bill as a fenced JSON block, then repeats it -- over the real Chat Completions
wire, with the model built from settings the way `tallybot` builds it."""

from __future__ import annotations

import json

from core.app import Tallybot
from core.config import Settings
from core.domain import RunStatus
from core.events import RunFinished, TextDelta
from core.models.base import ModelTextDelta
from core.models.provider import build_model
from tests.models.fake_openai import FakeOpenAI

ITEMS = [{"name": "玫瑰", "quantity": 3, "unit_cost": "2.5", "unit_price": "6"}]
BLOCK = (
    "```json\n"
    + json.dumps(
        {"name": "save_bill", "arguments": {"date": "2026-12-01", "items": ITEMS}},
        ensure_ascii=False,
    )
    + "\n```"
)


async def test_fenced_save_bill_runs_once_and_the_turn_ends(settings: Settings) -> None:
    turns = [[ModelTextDelta(BLOCK)], [ModelTextDelta(BLOCK)], [ModelTextDelta("已保存。")]]
    async with FakeOpenAI(turns, send_usage=False) as fake:
        settings = settings.model_copy(
            update={
                "openai_base_url": fake.base_url,
                "model": "qwen2.5-coder:1.5b",
                "model_max_retries": 0,
                "context_tokens": 4096,
            }
        )
        model = build_model(settings)
        async with await Tallybot.open(settings, model=model) as bot:
            events = [e async for e in bot.handle("console:shop", "记账：玫瑰3支，进价2.5，售价6")]
            bills = await bot.ledger.list(
                thread_id=(await bot.store.thread_by_key("console:shop")).id
            )
    final = events[-1]
    assert isinstance(final, RunFinished) and final.status == RunStatus.COMPLETED
    assert final.bills_changed == (1,)
    assert len(bills) == 1 and bills[0].revision == 1  # saved once, not twice
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert shown == "已保存。"  # the JSON block is not shown as text
    second_output = [m for m in fake.requests[2]["messages"] if m["role"] == "tool"][-1]
    assert "already done, answer the user" in second_output["content"]
    assert len(fake.requests) == 3
