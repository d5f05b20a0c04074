"""The Tallybot facade: per-thread ordering, commands vs. model, recovery after a crash."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.app import Incoming, Tallybot
from core.domain import RunStatus
from core.events import ApprovalRequired, Reply, RunFinished
from core.models.base import FunctionOutput, ModelTextDelta, UserText
from core.models.scripted import Pause, ScriptedModel, call, text

ROOT = Path(__file__).resolve().parents[2]
FLOWERS = ROOT / "examples" / "flower_sales.csv"


async def collect(stream) -> list:
    return [e async for e in stream]


async def test_messages_during_a_run_wait_and_are_answered_together_in_order(settings) -> None:
    pause = Pause()
    model = ScriptedModel([[ModelTextDelta("first answer"), pause], text("second answer")])
    async with await Tallybot.open(settings, model=model) as bot:
        first = asyncio.create_task(collect(bot.handle("console:t", "message one")))
        await pause.reached.wait()
        second = asyncio.create_task(collect(bot.handle("console:t", "message two")))
        third = asyncio.create_task(collect(bot.handle("console:t", "message three")))
        thread = await bot.store.thread_by_key("console:t")

        async def stored() -> list[str]:
            return [m.text for m in await bot.store.list_messages(thread.id, role="user")]

        # Stored while the first run still streams (a busy machine may take a while).
        for _ in range(400):
            if len(await stored()) == 3:
                break
            await asyncio.sleep(0.025)
        assert await stored() == ["message one", "message two", "message three"]
        assert len(model.requests) == 1  # nothing ran in parallel on the thread
        pause.event.set()
        e1, e2, e3 = await asyncio.gather(first, second, third)
    assert e1[-1].status == RunStatus.COMPLETED
    assert isinstance(e2[-1], RunFinished) and e2[-1].text == "second answer"
    assert e3 == []  # answered by the run of message two
    users = [i.text for i in model.requests[1].items if isinstance(i, UserText)]
    assert users == ["message one", "message two", "message three"]
    async with await Tallybot.open(settings, model=ScriptedModel()) as bot:
        runs = await bot.store.list_runs(thread_id=thread.id)
    assert len(runs) == 2
    assert runs[1].started_at >= runs[0].completed_at


async def test_no_model_free_text_explains_configuration_in_user_language(settings) -> None:
    async with await Tallybot.open(settings) as bot:
        assert not bot.model_ready
        zh = await collect(bot.handle("console:x", "今天卖了多少？"))
        en = await collect(bot.handle("console:x", "how much did we sell?"))
    assert (
        isinstance(zh[0], Reply)
        and "OPENAI_API_KEY" in zh[0].text
        and "还没有配置模型" in zh[0].text
    )
    assert "OPENAI_BASE_URL" in en[0].text and "No model is configured" in en[0].text


async def test_bookkeeping_without_model(settings) -> None:
    async with await Tallybot.open(settings) as bot:
        events = await collect(
            bot.handle(
                "console:shop", "/bill 2026-11-24", files=[Incoming(FLOWERS.name, path=FLOWERS)]
            )
        )
        bill = [e for e in events if isinstance(e, Reply)][-1]
        assert bill.kind == "bill", bill.text
        first = bill.bill
        assert first["revision"] == 1 and first["date"] == "2026-11-24"
        added = (await collect(bot.handle("console:shop", "/add 2 向日葵")))[-1]
        assert added.kind == "bill", added.text
        sunflower = {i["name"]: i for i in added.bill["items"]}["向日葵"]
        before = {i["name"]: i for i in first["items"]}["向日葵"]
        from decimal import Decimal

        assert Decimal(sunflower["quantity"]) == Decimal(before["quantity"]) + 2
        assert Decimal(added.bill["revenue"]) == Decimal(first["revenue"]) + 2 * Decimal(
            before["unit_price"]
        )
        undone = (await collect(bot.handle("console:shop", "/undo")))[-1]
        assert undone.bill["revision"] == 3 and undone.bill["revenue"] == first["revenue"]
        shown = (await collect(bot.handle("console:shop", "/show")))[-1]
        assert shown.bill["revision"] == 3
        exported = await collect(bot.handle("console:shop", "/export csv"))
        path = Path(exported[0].path)
        assert path.name in exported[1].text and str(path.parent) not in exported[1].text
        assert path.exists() and "向日葵" in path.read_text(encoding="utf-8-sig")
        unknown = (await collect(bot.handle("console:shop", "/frobnicate")))[-1]
        assert unknown.kind == "error" and "/help" in unknown.text
        help_zh = (await collect(bot.handle("console:shop", "/help", lang="zh")))[-1]
        assert "撤销" in help_zh.text
        new = (await collect(bot.handle("console:shop", "/new")))[-1]
        assert "new conversation" in new.text
        fresh = (await collect(bot.handle("console:shop", "/show")))[-1]
        assert fresh.bill is None and "No bill yet" in fresh.text


async def test_bill_without_file_and_bad_add_are_clear_errors(settings) -> None:
    async with await Tallybot.open(settings) as bot:
        no_file = (await collect(bot.handle("console:e", "/bill")))[-1]
        assert no_file.kind == "error" and "Attach a CSV" in no_file.text
        no_bill = (await collect(bot.handle("console:e", "/add 2 向日葵")))[-1]
        assert no_bill.kind == "error" and "/bill" in no_bill.text


async def test_rejected_file_is_reported_and_message_still_answered(settings, tmp_path) -> None:
    junk = tmp_path / "sales.csv"
    junk.write_bytes(b"\x00\x01\x02\x03\xff\xfe" * 100)
    model = ScriptedModel([text("I could not read that file.")])
    async with await Tallybot.open(settings, model=model) as bot:
        events = await collect(
            bot.handle("console:r", "what did we sell?", files=[Incoming(junk.name, path=junk)])
        )
        thread = await bot.store.thread_by_key("console:r")
        msgs = await bot.store.list_messages(thread.id, role="user")
    assert isinstance(events[0], Reply) and events[0].kind == "error"
    assert events[-1].status == RunStatus.COMPLETED
    assert [m.text for m in msgs] == ["what did we sell?"]


async def test_new_message_cancels_run_waiting_for_approval(settings) -> None:
    settings.approve_writes = True
    items = [{"name": "玫瑰", "quantity": 3, "unit_cost": 2, "unit_price": 5}]
    model = ScriptedModel(
        [[call("save_bill", {"date": "2026-11-24", "items": items}, "s1")], text("never mind then")]
    )
    async with await Tallybot.open(settings, model=model) as bot:
        closed: list[tuple[str, RunStatus]] = []

        async def listener(run) -> None:
            closed.append((run.id, run.status))

        bot.on_expired(listener)
        first = await collect(bot.handle("console:a", "save it"))
        assert isinstance(first[-1], ApprovalRequired)
        second = await collect(bot.handle("console:a", "actually, don't"))
        assert isinstance(second[0], Reply) and "cancelled" in second[0].text
        # The channel is told, so it can take the approval buttons away.
        assert closed == [(first[-1].run_id, RunStatus.CANCELLED)]
        assert second[-1].status == RunStatus.COMPLETED
        run = await bot.store.get_run(first[-1].run_id)
        assert run.status == RunStatus.CANCELLED
        assert await bot.ledger.list() == []
        late = await collect(bot.submit_tool_outputs(run.id, True))
        assert late[0].kind == "error"


async def test_expiry_listener_is_called(settings) -> None:
    from datetime import timedelta

    from core.domain import utcnow

    settings.approve_writes = True
    items = [{"name": "玫瑰", "quantity": 3, "unit_cost": 2, "unit_price": 5}]
    model = ScriptedModel([[call("save_bill", {"date": "2026-11-24", "items": items}, "s1")]])
    seen: list[str] = []
    async with await Tallybot.open(settings, model=model) as bot:

        async def listener(run) -> None:
            seen.append(run.id)

        bot.on_expired(listener)
        events = await collect(bot.handle("console:x", "save"))
        run = await bot.store.get_run(events[-1].run_id)
        await bot.store.update_run(run, expires_at=utcnow() - timedelta(seconds=1))
        await bot.expire_due()
    assert seen == [run.id]


# --- crash recovery -------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from core.config import Settings
    from core.app import Tallybot
    from core.models.scripted import ScriptedModel, Pause, call
    from core.tools.base import ToolRegistry
    from core.bills import Ledger
    from core.tools.bills import bill_tools

    mode, data_dir = sys.argv[1], Path(sys.argv[2])
    items = [{"name": "玫瑰", "quantity": 10, "unit_cost": "2.5", "unit_price": "6"}]

    class CrashAfterWrite:
        # The real save_bill, then the process "dies" before the output is recorded.
        def __init__(self, real):
            self.real = real
            self.name, self.description = real.name, real.description
            self.parameters, self.needs_approval = real.parameters, real.needs_approval
        def describe_call(self, args, lang):
            return self.real.describe_call(args, lang)
        async def run(self, args, ctx):
            await self.real.run(args, ctx)
            print("WROTE", flush=True)
            await asyncio.Event().wait()

    async def main():
        settings = Settings(data_dir=data_dir, _env_file=None)
        model = ScriptedModel([
            [call("save_bill", {"date": "2026-11-24", "items": items}, "c1")],
            [Pause()],  # the second model turn hangs: the parent kills us here
        ])
        tools = None
        if mode == "during_tool":
            from core.store import Store
            store = await Store.open(settings.db_url)
            real = {t.name: t for t in bill_tools(Ledger(store, settings))}
            tools = ToolRegistry([CrashAfterWrite(real["save_bill"])])
        bot = await Tallybot.open(settings, model=model, tools=tools)
        async for event in bot.handle("console:crash", "save today's bill"):
            if type(event).__name__ == "ToolCallFinished":
                print("TOOL_DONE", flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("mode", ["after_tool", "during_tool"])
async def test_crash_mid_run_resumes_without_double_write(settings, mode) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TALLYBOT_"))}
    env["PYTHONPATH"] = str(ROOT)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(settings.data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    marker = "TOOL_DONE" if mode == "after_tool" else "WROTE"
    line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
    assert line.strip() == marker, child.stderr.read() if child.poll() is not None else line
    child.send_signal(signal.SIGKILL)  # no cleanup, no finally: a real crash
    child.wait(10)

    model = ScriptedModel([text("Saved: cost 25.00, revenue 60.00.")])
    async with await Tallybot.open(settings, model=model) as bot:
        assert len(bot.recovery) == 1
        await asyncio.wait_for(asyncio.gather(*bot.recovery), 30)
        runs = await bot.store.list_runs()
        assert [r.status for r in runs] == [RunStatus.COMPLETED]
        run = await bot.store.get_run(runs[0].id)
        calls = [c for s in run.steps for c in s.tool_calls]
        assert [c.id for c in calls] == ["c1"] and calls[0].output is not None
        bills = await bot.ledger.list()
        assert len(bills) == 1 and bills[0].revision == 1
        assert str(bills[0].revenue) in ("60", "60.00")
        history = await bot.ledger.history(bills[0].id)
        assert len(history) == 1
    outputs = [i for i in model.requests[0].items if isinstance(i, FunctionOutput)]
    assert [o.call_id for o in outputs] == ["c1"]
    assert json.loads(outputs[0].output)["bill_id"] == bills[0].id
    texts = [e for e in model.requests[0].items if isinstance(e, UserText)]
    assert [t.text for t in texts] == ["save today's bill"]


async def test_recovery_without_model_fails_cleanly(settings) -> None:
    pause = Pause()
    model = ScriptedModel([[ModelTextDelta("half"), pause]])
    bot = await Tallybot.open(settings, model=model)
    task = asyncio.create_task(collect(bot.handle("console:c", "question")))
    await pause.reached.wait()
    task.cancel()  # simulate the process going away: the run is left behind
    # The engine records a task cancellation as a cancelled run; put it back to in_progress
    # the way a hard crash would have left it.
    import sqlalchemy as sa

    from core.store.tables import runs

    await asyncio.gather(task, return_exceptions=True)
    async with bot.store.engine.begin() as conn:
        await conn.execute(sa.update(runs).values(status="in_progress", cancelled_at=None))
    await bot.close()
    async with await Tallybot.open(settings) as again:
        assert again.recovery == []
        (run,) = await again.store.list_runs()
        assert run.status == RunStatus.FAILED and run.last_error["code"] == "interrupted"


async def test_stop_withdraws_a_waiting_run_and_acknowledges(settings) -> None:
    settings.approve_writes = True
    items = [{"name": "玫瑰", "quantity": 3, "unit_cost": 2, "unit_price": 5}]
    model = ScriptedModel([[call("save_bill", {"date": "2026-11-24", "items": items}, "s1")]])
    async with await Tallybot.open(settings, model=model) as bot:
        closed: list[RunStatus] = []

        async def listener(run) -> None:
            closed.append(run.status)

        bot.on_expired(listener)
        await collect(bot.handle("console:s", "save"))
        stop = await collect(bot.handle("console:s", "/stop"))
        again = await collect(bot.handle("console:s", "/stop"))
    assert stop[-1].text == "OK, stopping." and closed == [RunStatus.CANCELLED]
    assert again[-1].text == "Nothing is running."


async def test_instructions_list_files_with_summary_and_language(settings) -> None:
    model = ScriptedModel([text("好的")])
    async with await Tallybot.open(settings, model=model) as bot:
        await collect(
            bot.handle("console:f", "看看这个文件", files=[Incoming(FLOWERS.name, path=FLOWERS)])
        )
    instructions = model.requests[0].instructions
    assert "flower_sales.csv" in instructions and "working folder" in instructions
    assert "花名" in instructions  # the intake summary's columns reach the model
    assert "answer in Chinese" in instructions
    assert model.requests[0].items[-1] == UserText("看看这个文件")


async def test_serving_channels_warm_the_interpreter_but_one_shot_use_does_not(settings) -> None:
    from core.tools.code_interpreter import CodeInterpreterTool

    async with await Tallybot.open(settings, model=ScriptedModel()) as bot:
        interpreter = bot.engine.tools.get("code_interpreter")
        assert isinstance(interpreter, CodeInterpreterTool)
        assert interpreter._warm == []  # opening a bot starts no kernel
        bot.start_background(interval=3600)
        await asyncio.wait_for(asyncio.gather(*bot._warm_up), 60)
        assert len(interpreter._warm) >= 1  # a kernel waits for the first analysis


async def test_recovery_is_limited_to_the_process_channel(settings) -> None:
    import sqlalchemy as sa

    from core.store.tables import runs

    pause = Pause()
    bot = await Tallybot.open(settings, model=ScriptedModel([[ModelTextDelta("x"), pause]]))
    task = asyncio.create_task(collect(bot.handle("slack:T:C:1.0", "question")))
    await pause.reached.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with bot.store.engine.begin() as conn:  # as a hard crash would have left it
        await conn.execute(sa.update(runs).values(status="in_progress", cancelled_at=None))
    await bot.close()
    telegram = await Tallybot.open(settings, model=ScriptedModel(), channel="telegram")
    assert telegram.recovery == []
    (run,) = await telegram.store.list_runs()
    assert run.status == RunStatus.IN_PROGRESS  # left for the Slack process
    await telegram.close()
    async with await Tallybot.open(
        settings, model=ScriptedModel([text("done")]), channel="slack"
    ) as slack:
        await asyncio.wait_for(asyncio.gather(*slack.recovery), 30)
        (run,) = await slack.store.list_runs()
    assert run.status == RunStatus.COMPLETED
