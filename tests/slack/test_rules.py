"""Pure translation rules: thread keys, command words, language, mrkdwn, blocks, file hosts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bots.slack.addressing import (
    as_command,
    pick_lang,
    place_for_message,
    place_for_slash,
    slash_text,
    strip_mentions,
)
from bots.slack.blocks import APPROVE_ACTION, DENY_ACTION, approval_blocks, resolved_blocks
from bots.slack.files import SharedFile, host_allowed
from bots.slack.mrkdwn import to_mrkdwn


def test_channel_mention_starts_a_thread_under_itself() -> None:
    place = place_for_message("T1", {"channel": "C1", "ts": "10.1", "channel_type": "channel"})
    assert (place.key, place.reply_ts, place.is_dm) == ("slack:T1:C1:10.1", "10.1", False)
    reply = place_for_message("T1", {"channel": "C1", "ts": "11.0", "thread_ts": "10.1"})
    assert reply.key == "slack:T1:C1:10.1"


def test_dm_top_level_shares_one_thread_and_threads_are_their_own() -> None:
    top = place_for_message("T1", {"channel": "D1", "ts": "10.1", "channel_type": "im"})
    assert (top.key, top.reply_ts, top.in_assistant_thread) == ("slack:T1:D1:dm", None, False)
    threaded = place_for_message(
        "T1", {"channel": "D1", "ts": "12.0", "thread_ts": "11.0", "channel_type": "im"}
    )
    assert (threaded.key, threaded.reply_ts, threaded.in_assistant_thread) == (
        "slack:T1:D1:11.0",
        "11.0",
        True,
    )


def test_slash_places() -> None:
    assert place_for_slash("T1", "D9").key == "slack:T1:D9:dm"
    assert place_for_slash("T1", "C9").key == "slack:T1:C9:channel"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bill", "/bill"),
        ("bill 2024-05-01", "/bill 2024-05-01"),
        ("add 2 向日葵", "/add 2 向日葵"),
        ("Show 3", "/show 3"),
        ("export xlsx", "/export xlsx"),
        ("help", "/help"),
        ("/undo", "/undo"),
        ("show me the profit per flower", "show me the profit per flower"),
        ("help me compute today's profit", "help me compute today's profit"),
        ("add the sunflowers please", "add the sunflowers please"),
    ],
)
def test_dm_command_words(text: str, expected: str) -> None:
    assert as_command(text, words_allowed=True) == expected


def test_command_words_only_in_dms() -> None:
    assert as_command("bill", words_allowed=False) == "bill"


def test_slash_text() -> None:
    assert slash_text("") == "/help"
    assert slash_text("bill 2024-05-01") == "/bill 2024-05-01"
    assert slash_text("ADD 2 向日葵") == "/add 2 向日葵"
    assert slash_text("/show") == "/show"


def test_strip_mentions_keeps_other_people() -> None:
    assert strip_mentions("<@U0TALLY> 统计 <@U0BOB>", "U0TALLY") == "统计 <@U0BOB>"


def test_language_from_message_then_locale() -> None:
    assert pick_lang("统计今天的成本", "en-US") == "zh"
    assert pick_lang("what is the profit today", "zh-CN") == "en"
    assert pick_lang("/bill", "zh-CN") == "zh"
    assert pick_lang("", "zh-CN") == "zh"
    assert pick_lang("ok", None) is None


def test_mrkdwn_conversion() -> None:
    md = "# Total\n**cost** is *12* & [docs](https://x.example/a?b=1)\n- rose\n\n```py\nx<1\n```"
    assert to_mrkdwn(md) == (
        "*Total*\n*cost* is _12_ &amp; <https://x.example/a?b=1|docs>\n• rose\n\n```\nx&lt;1\n```"
    )


def test_markdown_table_becomes_code() -> None:
    out = to_mrkdwn("profit:\n| 花名 | 利润 |\n|---|---|\n| 玫瑰 | 9 |\ndone")
    assert out == "profit:\n```\n| 花名 | 利润 |\n|---|---|\n| 玫瑰 | 9 |\n```\ndone"


def test_approval_blocks_carry_the_run_and_resolve_without_buttons() -> None:
    expires = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    blocks = approval_blocks("run_1", ["保存 2024-05-01 的账单：玫瑰 ×3"], expires, "zh")
    actions = [b for b in blocks if b["type"] == "actions"][0]["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [
        (APPROVE_ACTION, "run_1"),
        (DENY_ACTION, "run_1"),
    ]
    assert "玫瑰 ×3" in blocks[1]["text"]["text"]
    assert "<!date^1714564800^" in blocks[2]["elements"][0]["text"]
    done = resolved_blocks(["x"], "expired", "zh")
    assert all(b["type"] != "actions" for b in done)
    assert "已过期" in done[-1]["elements"][0]["text"]


def test_token_goes_only_to_slack_hosts() -> None:
    api = "https://slack.com/api/"
    assert host_allowed("https://files.slack.com/files-pri/T-F/a.csv", api)
    assert not host_allowed("https://evil.example/files-pri/a.csv", api)
    assert not host_allowed("http://files.slack.com/a.csv", api)
    assert not host_allowed("https://slack.com.evil.example/a.csv", api)
    assert host_allowed("http://127.0.0.1:9/files-pri/a.csv", "http://127.0.0.1:9/api/")


def test_shared_file_skips_tombstones() -> None:
    assert SharedFile.from_event({"id": "F1", "mode": "tombstone"}) is None
    f = SharedFile.from_event(
        {"id": "F1", "name": "a.csv", "url_private": "https://files.slack.com/a", "size": 3}
    )
    assert f is not None and (f.name, f.size) == ("a.csv", 3)
