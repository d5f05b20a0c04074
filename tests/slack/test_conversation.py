"""Scenarios over Socket Mode: the real bolt app and slack_sdk clients against the fake Slack."""

from __future__ import annotations

from core.models.base import ModelRequest, UserText
from core.models.scripted import ScriptedModel, text

from . import payloads as p
from .conftest import Harness
from .fake_slack import BOT_TOKEN


def user_texts(request: ModelRequest) -> list[str]:
    return [item.text for item in request.items if isinstance(item, UserText)]


async def test_mention_streams_the_answer_in_its_thread(
    slack: Harness, model: ScriptedModel
) -> None:
    model.add(text("今天", "的成本是 ", "**120** 元。"))
    mention = p.app_mention("统计今天的成本")
    ack = await slack.event(mention)
    assert ack["envelope_id"]
    mention_ts = mention["event"]["ts"]
    [answer] = slack.fake.thread(p.CHANNEL, mention_ts)
    assert answer.streamed and not answer.streaming
    assert answer.text == "今天的成本是 **120** 元。"
    # The model got the request without the bot's mention, in one tallybot thread.
    assert user_texts(model.requests[0])[-1].strip() == "统计今天的成本"
    thread = await slack.bot.store.thread_by_key(f"slack:T0SHOP:{p.CHANNEL}:{mention_ts}")
    assert thread is not None and thread.lang == "zh"
    # Every call used the configured API URL and the bot token (auth.test included).
    assert {c.token for c in slack.fake.calls if c.method != "apps.connections.open"} == {BOT_TOKEN}


async def test_thread_replies_continue_the_conversation(
    slack: Harness, model: ScriptedModel
) -> None:
    model.add(text("Revenue is 300."), text("Profit is 180."))
    mention = p.app_mention("what is today's revenue?")
    await slack.event(mention)
    root = mention["event"]["ts"]
    # A reply in the thread without a mention arrives as a plain channel message event.
    await slack.event(
        p.message("and the profit?", channel=p.CHANNEL, channel_type="channel", thread_ts=root)
    )
    texts = [m.text for m in slack.fake.thread(p.CHANNEL, root)]
    assert texts == ["Revenue is 300.", "Profit is 180."]
    history = "\n".join(user_texts(model.requests[1]))
    assert "what is today's revenue?" in history and "and the profit?" in history


async def test_channel_chatter_outside_tallybot_threads_is_ignored(slack: Harness) -> None:
    await slack.event(p.message("lunch?", channel=p.CHANNEL, channel_type="channel"))
    await slack.event(
        p.message(
            "unrelated thread", channel=p.CHANNEL, channel_type="channel", thread_ts="1.000001"
        )
    )
    assert not slack.fake.calls_to("chat.postMessage")
    assert not slack.fake.calls_to("chat.startStream")


async def test_dm_top_level_messages_share_one_thread(slack: Harness, model: ScriptedModel) -> None:
    model.add(text("Hello! Send me a sales file."), text("Sure."))
    await slack.event(p.message("hi there tallybot"))
    await slack.event(p.message("thanks a lot"))
    answers = slack.fake.thread(p.DM, None)
    assert [m.text for m in answers if m.user != "person"] == [
        "Hello! Send me a sales file.",
        "Sure.",
    ]
    assert not slack.fake.calls_to("chat.startStream")  # a DM's top level has no thread
    assert "hi there tallybot" in "\n".join(user_texts(model.requests[1]))


async def test_assistant_thread_prompts_title_and_status(
    slack: Harness, model: ScriptedModel
) -> None:
    slack.fake.locales[p.ALICE] = "zh-CN"
    started = p.assistant_thread_started()
    await slack.event(started)
    thread_ts = started["event"]["assistant_thread"]["thread_ts"]
    [prompts] = slack.fake.calls_to("assistant.threads.setSuggestedPrompts")
    assert prompts.args["thread_ts"] == thread_ts
    assert [x["title"] for x in prompts.args["prompts"]][:2] == [
        "统计今天的成本和收入",
        "画出各花的利润",
    ]

    model.add(text("今天的成本是 120 元。"))
    await slack.event(p.message("统计今天的成本和收入", thread_ts=thread_ts))
    [title] = slack.fake.calls_to("assistant.threads.setTitle")
    assert title.args["title"] == "统计今天的成本和收入"
    statuses = [c.args["status"] for c in slack.fake.calls_to("assistant.threads.setStatus")]
    assert statuses[0] == "正在分析数据…" and statuses[-1] == ""
    [answer] = slack.fake.thread(p.DM, thread_ts)
    assert answer.streamed and answer.text == "今天的成本是 120 元。"


async def test_retried_event_is_handled_once(slack: Harness, model: ScriptedModel) -> None:
    model.add(text("Once."))
    mention = p.app_mention("how much did we sell?")
    await slack.event(mention)
    await slack.event(mention, retry_attempt=1)  # Slack retries with the same event_id
    assert slack.adapter.stats["duplicate"] == 1
    assert len(model.requests) == 1
    assert [m.text for m in slack.fake.thread(p.CHANNEL, mention["event"]["ts"])] == ["Once."]


async def test_mention_and_message_for_one_post_answer_once(
    slack: Harness, model: ScriptedModel
) -> None:
    model.add(text("First."), text("Second."))
    mention = p.app_mention("start")
    await slack.event(mention)
    root = mention["event"]["ts"]
    # A mention inside a known thread arrives twice: as app_mention and as message.
    again = p.app_mention("more please", thread_ts=root)
    twin = p.message(
        again["event"]["text"],
        channel=p.CHANNEL,
        channel_type="channel",
        thread_ts=root,
        message_ts=again["event"]["ts"],
    )
    await slack.event(again)
    await slack.event(twin)
    assert len(model.requests) == 2
    assert [m.text for m in slack.fake.thread(p.CHANNEL, root)] == ["First.", "Second."]


async def test_assistant_context_change_is_acked_and_changes_nothing(slack: Harness) -> None:
    changed = p.assistant_thread_started()
    changed["event"]["type"] = "assistant_thread_context_changed"
    ack = await slack.event(changed)
    assert ack["envelope_id"] and slack.adapter.stats["failed"] == 0
    assert not [c for c in slack.fake.calls if c.method.startswith(("chat.", "assistant."))]
