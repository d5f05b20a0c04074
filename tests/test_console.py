"""The console channel: streamed text, bill tables, y/n approval, Ctrl-C cancel."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console

from bots.console import ConsoleChannel
from core.app import Tallybot
from core.models.base import ModelTextDelta
from core.models.scripted import Pause, ScriptedModel, call, text

ROOT = Path(__file__).resolve().parents[1]
ITEMS = [{"name": "玫瑰", "quantity": 3, "unit_cost": "2.5", "unit_price": "6"}]


def channel(bot: Tallybot, answers: list[str] | None = None) -> tuple[ConsoleChannel, io.StringIO]:
    buf = io.StringIO()
    replies = iter(answers or [])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(replies)

    ch = ConsoleChannel(bot, "t", console=Console(file=buf, width=100), ask=ask)
    ch.prompts = prompts  # type: ignore[attr-defined]
    return ch, buf


async def test_streamed_answer_and_tool_run(settings) -> None:
    model = ScriptedModel(
        [
            [call("save_bill", {"date": "2026-11-24", "items": ITEMS}, "c1")],
            text("已保存。", "利润 10.50"),
        ]
    )
    async with await Tallybot.open(settings, model=model) as bot:
        ch, buf = channel(bot)
        result = await ch.turn("保存账单")
    assert result.status == "completed" and result.bills_changed == [1]
    assert "".join(result.text) == "已保存。利润 10.50"
    assert "已保存。利润 10.50" in buf.getvalue()


async def test_approval_yes_and_no(settings) -> None:
    settings.approve_writes = True
    model = ScriptedModel(
        [
            [call("save_bill", {"date": "2026-11-24", "items": ITEMS}, "c1")],
            text("saved"),
            [call("save_bill", {"date": "2026-11-25", "items": ITEMS}, "c2")],
            text("not saved"),
        ]
    )
    async with await Tallybot.open(settings, model=model) as bot:
        ch, buf = channel(bot, ["y", "n"])
        yes = await ch.turn("save it")
        no = await ch.turn("save tomorrow too")
        bills = await bot.ledger.list()
    assert yes.status == "completed" and yes.bills_changed == [1]
    assert no.status == "completed" and no.bills_changed == []
    assert [b.date for b in bills] == ["2026-11-24"]
    assert len(ch.prompts) == 2 and "Approve" in ch.prompts[0]  # type: ignore[attr-defined]
    assert "→ Save the bill for 2026-11-24" in buf.getvalue()


async def test_interrupt_cancels_running_answer(settings) -> None:
    pause = Pause()
    model = ScriptedModel([[ModelTextDelta("partial"), pause, ModelTextDelta(" never")]])
    async with await Tallybot.open(settings, model=model) as bot:
        ch, buf = channel(bot)
        task = asyncio.create_task(ch.turn("long question"))
        await pause.reached.wait()
        ch._interrupt()  # what Ctrl-C calls
        result = await asyncio.wait_for(task, 10)
    assert result.status == "cancelled"
    assert "never" not in buf.getvalue() and "Stopped" in buf.getvalue()


async def test_bill_command_renders_table(settings) -> None:
    async with await Tallybot.open(settings) as bot:
        ch, buf = channel(bot)
        result = await ch.turn("/bill 2026-11-24", [ROOT / "examples" / "flower_sales.csv"])
    out = buf.getvalue()
    assert result.bills_changed == [1] and not result.error
    assert "Bill #1" in out and "玫瑰" in out and "Profit" in out
