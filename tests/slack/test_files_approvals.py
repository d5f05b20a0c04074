"""Files in and out, approval buttons, expiry, /tally, the allowlist — over Socket Mode."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import Settings
from core.models.scripted import ScriptedModel, call, text

from . import payloads as p
from .conftest import Harness, close_harness, open_harness
from .fake_slack import FakeSlack, Message

SALES_CSV = "花名,数量,进价,售价\n玫瑰,10,2.5,6\n百合,4,5,12\n向日葵,6,3,8\n".encode()
SAVE = {
    "date": "2024-05-01",
    "items": [
        {"name": "玫瑰", "quantity": 10, "unit_cost": "2.5", "unit_price": 6},
        {"name": "百合", "quantity": 4, "unit_cost": 5, "unit_price": 12},
    ],
}


def approval_message(fake: FakeSlack, channel: str, thread_ts: str | None) -> Message:
    return [
        m for m in fake.thread(channel, thread_ts) if any(b["type"] == "actions" for b in m.blocks)
    ][-1]


def click(msg: Message, action: str, user: str = p.ALICE) -> dict[str, Any]:
    value = [b for b in msg.blocks if b["type"] == "actions"][0]["elements"][0]["value"]
    return p.block_action(
        action,
        value,
        channel=msg.channel,
        message_ts=msg.ts,
        thread_ts=msg.thread_ts,
        user=user,
        blocks=msg.blocks,
    )


def context_text(msg: Message) -> str:
    return msg.blocks[-1]["elements"][0]["text"]


async def test_uploaded_csv_is_downloaded_attached_and_analysed(
    slack: Harness, model: ScriptedModel
) -> None:
    model.add(text("今天成本 45 元，收入 108 元。"))
    shared = slack.fake.host_file("sales.csv", SALES_CSV)
    await slack.event(p.message("统计今天的成本和收入", files=[shared]))
    thread = await slack.bot.store.thread_by_key(f"slack:T0SHOP:{p.DM}:dm")
    assert thread is not None
    [ref] = await slack.bot.store.list_files(thread.id)
    assert ref.name == "sales.csv"
    [answer] = [m for m in slack.fake.thread(p.DM, None) if m.user != "person"]
    assert answer.text == "今天成本 45 元，收入 108 元。"
    assert "sales.csv" in repr(model.requests[0])  # the model is told about the file


async def test_file_on_a_foreign_host_is_refused_without_sending_the_token(slack: Harness) -> None:
    shared = slack.fake.host_file("sales.csv", SALES_CSV)
    shared["url_private"] = shared["url_private_download"] = "https://evil.example/sales.csv"
    await slack.event(p.message("", files=[shared]))
    [warning] = [m for m in slack.fake.thread(p.DM, None) if m.user != "person"]
    assert warning.text.startswith(":warning: Could not download sales.csv")


async def test_export_is_uploaded_back_into_the_thread(slack: Harness) -> None:
    shared = slack.fake.host_file("sales.csv", SALES_CSV)
    mention = p.app_mention("/bill 2024-05-01", files=[shared])
    await slack.event(mention)
    root = mention["event"]["ts"]
    await slack.event(p.app_mention("/export csv", thread_ts=root))
    [upload] = slack.fake.uploads.values()
    assert upload["filename"].endswith(".csv") and upload["thread_ts"] == root
    assert "玫瑰" in upload["data"].decode("utf-8-sig")
    bill_table = slack.fake.thread(p.CHANNEL, root)[0].text
    assert bill_table.startswith("```\n") and "玫瑰" in bill_table


async def test_approve_button_resumes_the_run(slack: Harness, model: ScriptedModel) -> None:
    model.add(
        [*text("好的，保存账单。"), call("save_bill", SAVE, "call_save")],
        text("已保存：成本 45，收入 108。"),
    )
    mention = p.app_mention("保存今天的账单")
    await slack.event(mention)
    root = mention["event"]["ts"]
    ask = approval_message(slack.fake, p.CHANNEL, root)
    assert "玫瑰 ×10" in ask.blocks[1]["text"]["text"]
    assert not await slack.bot.ledger.list()  # nothing written before the click
    await slack.deliver("interactive", click(ask, "tallybot_approve"))
    assert "已确认" in context_text(ask) and "<@U0ALICE>" in context_text(ask)
    assert all(b["type"] != "actions" for b in ask.blocks)
    assert slack.fake.thread(p.CHANNEL, root)[-1].text == "已保存：成本 45，收入 108。"
    [bill] = await slack.bot.ledger.list()
    assert str(bill.to_json()["revenue"]) in ("108", "108.00")


async def test_deny_button_tells_the_model(slack: Harness, model: ScriptedModel) -> None:
    model.add([call("save_bill", SAVE, "call_save")], text("好的，不保存。"))
    mention = p.app_mention("保存今天的账单")
    await slack.event(mention)
    ask = approval_message(slack.fake, p.CHANNEL, mention["event"]["ts"])
    late = click(ask, "tallybot_approve")  # a second client still showing the buttons
    await slack.deliver("interactive", click(ask, "tallybot_deny"))
    assert "已拒绝" in context_text(ask)
    assert not await slack.bot.ledger.list()
    assert slack.fake.thread(p.CHANNEL, mention["event"]["ts"])[-1].text == "好的，不保存。"
    # A second click on the same request is answered privately, and changes nothing.
    await slack.deliver("interactive", late)
    assert slack.fake.ephemeral[-1]["text"] == "此请求已经处理过了。"


async def test_expiry_replaces_the_buttons(
    slack_settings: Settings, fake: FakeSlack, model: ScriptedModel
) -> None:
    slack_settings.run_expires_seconds = 0  # due at once; the sweep below expires it
    h = await open_harness(slack_settings, fake, model)
    try:
        model.add([call("save_bill", SAVE, "call_save")])
        await h.event(p.message("save the bill for today please"))
        ask = approval_message(fake, p.DM, None)
        late = click(ask, "tallybot_approve")
        expired = await h.bot.expire_due()
        assert len(expired) == 1
        assert "Expired." in context_text(ask)
        assert all(b["type"] != "actions" for b in ask.blocks)
        # A click that arrives after expiry is told so, and the run stays expired.
        await h.deliver("interactive", late)
        assert fake.thread(p.DM, None)[-1].text.startswith(":warning:")
        assert not await h.bot.ledger.list()
    finally:
        await close_harness(h)


async def test_slash_command_runs_model_free_commands(slack: Harness, model: ScriptedModel) -> None:
    hook = slack.fake.response_url()
    await slack.deliver("slash_commands", p.slash_command("help", response_url=hook))
    [help_msg] = slack.fake.thread(p.DM, None)
    assert "/bill" in help_msg.text and "/export" in help_msg.text
    assert not model.requests
    # In a DM, command words work without the slash (when they look like the command).
    await slack.event(p.message("show"))
    assert len(slack.fake.thread(p.DM, None)) >= 2
    assert not model.requests


async def test_slash_command_in_a_channel_the_bot_is_not_in_answers_ephemerally(
    slack: Harness,
) -> None:
    slack.fake.error("chat.postMessage", "not_in_channel")
    hook = slack.fake.response_url()
    await slack.deliver(
        "slash_commands", p.slash_command("help", channel=p.CHANNEL, response_url=hook)
    )
    [post] = slack.fake.webhook_posts
    assert post["response_type"] == "ephemeral" and "/bill" in post["text"]


async def test_allowlist_refuses_politely_and_runs_nothing(
    slack_settings: Settings, fake: FakeSlack, model: ScriptedModel
) -> None:
    slack_settings.slack_allowed_users = ["U0BOB"]
    h = await open_harness(slack_settings, fake, model)
    try:
        mention = p.app_mention("统计今天的成本")
        await h.event(mention)
        await h.deliver("slash_commands", p.slash_command("bill"))
        [refusal] = fake.thread(p.CHANNEL, mention["event"]["ts"])
        assert refusal.text == "抱歉，你没有使用此机器人的权限，请联系管理员添加。"
        assert fake.thread(p.DM, None)[0].text.startswith("Sorry, this bot is not enabled")
        assert h.adapter.stats["refused"] == 2 and not model.requests
        assert (
            await h.bot.store.thread_by_key(f"slack:T0SHOP:{p.CHANNEL}:{mention['event']['ts']}")
            is None
        )
    finally:
        await close_harness(h)


async def test_team_allowlist(
    slack_settings: Settings, fake: FakeSlack, model: ScriptedModel
) -> None:
    slack_settings.slack_allowed_teams = ["T0OTHER"]
    h = await open_harness(slack_settings, fake, model)
    try:
        await h.event(p.message("hello there friend"))
        assert h.adapter.stats["refused"] == 1 and not model.requests
    finally:
        await close_harness(h)


def _has_interpreter() -> bool:
    try:
        from core.tools.code_interpreter import CodeInterpreterTool  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_interpreter(), reason="code interpreter not in this tree yet")
async def test_interpreter_chart_is_uploaded_into_the_thread(
    slack: Harness, model: ScriptedModel
) -> None:
    code = (
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "plt.bar(['玫瑰', '百合'], [40, 12])\nplt.title('利润')\nplt.show()\n"
    )
    model.add([call("code_interpreter", {"code": code})], text("图表如上。"))
    mention = p.app_mention("画出各花的利润")
    await slack.event(mention)
    root = mention["event"]["ts"]
    charts = [u for u in slack.fake.uploads.values() if u.get("thread_ts") == root]
    assert charts and charts[0]["data"].startswith(b"\x89PNG")
