"""The responder against the fake Slack: throttled streaming, chat.update fallback, splitting,
rate limits. No bot here: events are fed in directly; the clock is moved by hand."""

from __future__ import annotations

from datetime import UTC, datetime

from bots.slack.addressing import Place
from bots.slack.client import make_client
from bots.slack.responder import MESSAGE_LIMIT, Responder
from core.config import Settings
from core.domain import RunStatus
from core.events import (
    ApprovalRequired,
    FileProduced,
    PendingCall,
    Reply,
    RunFinished,
    TextDelta,
    ToolCallStarted,
)

from .conftest import FakeClock
from .fake_slack import TEAM, FakeSlack
from .payloads import ALICE

CHANNEL_THREAD = Place("slack:T:C1:100.1", "C1", "100.1", False)
DM_TOP = Place("slack:T:D1:dm", "D1", None, True)
ASSISTANT = Place("slack:T:D1:200.2", "D1", "200.2", True)


def _responder(settings: Settings, place: Place, clock: FakeClock, **kw: object) -> Responder:
    return Responder(
        make_client(settings),
        place,
        team=TEAM,
        user=ALICE,
        lang="zh",
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


async def test_stream_is_throttled_by_the_clock(slack_settings: Settings, fake: FakeSlack) -> None:
    clock = FakeClock()
    r = _responder(slack_settings, CHANNEL_THREAD, clock, message_ts="100.1")
    await r.begin()
    for piece in ("今天", "成本", "120"):
        await r.render(TextDelta("run", piece))
    # First delta opens the stream at once; the next two wait for the throttle.
    assert [c.method for c in fake.calls if "Stream" in c.method] == ["chat.startStream"]
    clock.advance(1.0)
    await r.render(TextDelta("run", " 元"))
    assert [c.method for c in fake.calls if "Stream" in c.method] == [
        "chat.startStream",
        "chat.appendStream",
    ]
    await r.render(RunFinished("run", RunStatus.COMPLETED, "今天成本120 元"))
    await r.end()
    [msg] = fake.thread("C1", "100.1")
    assert (msg.text, msg.streaming, msg.streamed) == ("今天成本120 元", False, True)
    start = fake.calls_to("chat.startStream")[0].args
    assert (start["recipient_team_id"], start["recipient_user_id"]) == (TEAM, ALICE)
    # The reaction showed work in progress and is gone afterwards.
    assert [c.method for c in fake.calls if c.method.startswith("reactions")] == [
        "reactions.add",
        "reactions.remove",
    ]


async def test_falls_back_to_edits_when_streaming_is_refused(
    slack_settings: Settings, fake: FakeSlack
) -> None:
    fake.error("chat.startStream", "not_allowed_token_type")
    clock = FakeClock()
    r = _responder(slack_settings, CHANNEL_THREAD, clock)
    await r.render(TextDelta("run", "**利润** "))
    clock.advance(0.5)
    await r.render(TextDelta("run", "是 "))
    clock.advance(2.0)
    await r.render(TextDelta("run", "30"))
    await r.end()
    [msg] = fake.thread("C1", "100.1")
    assert msg.text == "*利润* 是 30"  # Markdown converted, because chat.update shows mrkdwn
    assert not msg.streamed
    assert len(fake.calls_to("chat.update")) == 1  # the 0.5 s delta waited for the throttle


async def test_dm_top_level_edits_and_splits_long_answers(
    slack_settings: Settings, fake: FakeSlack
) -> None:
    clock = FakeClock()
    r = _responder(slack_settings, DM_TOP, clock)
    long = ("玫瑰 3 支，单价 5 元。\n" * 600).strip()
    await r.render(TextDelta("run", long))
    await r.render(RunFinished("run", RunStatus.COMPLETED, long))
    await r.end()
    msgs = fake.thread("D1", None)
    assert len(msgs) >= 2 and all(len(m.text) <= MESSAGE_LIMIT for m in msgs)
    assert "".join(m.text for m in msgs).replace("\n", "") == long.replace("\n", "")
    assert not fake.calls_to("chat.startStream")  # no thread to stream into


async def test_failed_run_message_and_assistant_status(
    slack_settings: Settings, fake: FakeSlack
) -> None:
    r = _responder(slack_settings, ASSISTANT, FakeClock())
    await r.begin()
    await r.render(ToolCallStarted("run", "c1", "save_bill", "{}"))
    await r.render(RunFinished("run", RunStatus.FAILED, "抱歉，处理失败：模型超时"))
    await r.end()
    statuses = [c.args["status"] for c in fake.calls_to("assistant.threads.setStatus")]
    assert statuses == ["正在分析数据…", "正在更新账单…", ""]
    [msg] = fake.thread("D1", "200.2")
    assert msg.text == "抱歉，处理失败：模型超时"


async def test_replies_files_and_approvals(
    slack_settings: Settings, fake: FakeSlack, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, str]] = []

    async def remember(event: ApprovalRequired, ts: str, place: Place) -> None:
        seen.append((event.run_id, ts))

    r = _responder(slack_settings, CHANNEL_THREAD, FakeClock(), on_approval=remember)
    await r.render(Reply("账单 #1\n玫瑰  3  2.00  5.00", kind="bill"))
    await r.render(Reply("没有找到账单", kind="error"))
    chart = tmp_path / "profit.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    await r.render(FileProduced("run", str(chart), "profit.png", "image/png"))
    call = PendingCall("c1", "save_bill", "{}", "保存 2024-05-01 的账单：玫瑰 ×3")
    await r.render(ApprovalRequired("run_9", "th", (call,), datetime(2024, 5, 1, tzinfo=UTC)))
    await r.end()
    texts = [m.text for m in fake.thread("C1", "100.1")]
    assert texts[0] == "```\n账单 #1\n玫瑰  3  2.00  5.00\n```"
    assert texts[1] == ":warning: 没有找到账单"
    [upload] = fake.uploads.values()
    assert (upload["filename"], upload["data"], upload["thread_ts"]) == (
        "profit.png",
        b"\x89PNG\r\n\x1a\nfake",
        "100.1",
    )
    approval = fake.thread("C1", "100.1")[-1]
    assert approval.blocks[-1]["elements"][0]["value"] == "run_9"
    assert seen == [("run_9", approval.ts)]


async def test_rate_limited_call_is_retried_after_retry_after(
    slack_settings: Settings, fake: FakeSlack
) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=0)
    r = _responder(slack_settings, CHANNEL_THREAD, FakeClock())
    await r.post("hello")
    assert len(fake.calls_to("chat.postMessage")) == 2
    assert [m.text for m in fake.thread("C1", "100.1")] == ["hello"]
