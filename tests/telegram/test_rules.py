"""The pure rules: Markdown → Telegram HTML, who a message is for, keys, languages, buttons."""

from __future__ import annotations

from typing import Any

from telegram import Message, User

from bots.channel import Allowlist
from bots.telegram.addressing import body_for_bot, is_addressed, reply_lang, thread_key, topic_of
from bots.telegram.documents import BOT_API_DOWNLOAD_LIMIT, download_limit
from bots.telegram.markup import to_html
from bots.telegram.responder import approval_data, parse_approval_data
from tests.telegram.fake_api import BOT_ID, BOT_USERNAME, FakeBotAPI

ME = User(BOT_ID, "Tally", is_bot=True, username=BOT_USERNAME)


def msg(payload: dict[str, Any]) -> Message:
    return Message.de_json(payload, None)  # type: ignore[arg-type, return-value]


def test_markdown_becomes_telegram_html() -> None:
    md = (
        "# Today\n**Revenue** is `856.00` & profit <b>up</b>\n"
        "```python\nprint(1 < 2)\n```\n"
        "| 花名 | 数量 |\n|---|---|\n| 玫瑰 | 40 |\nsee [docs](https://example.org/a?b=1&c=2)"
    )
    assert to_html(md) == (
        "<b>Today</b>\n<b>Revenue</b> is <code>856.00</code> &amp; profit &lt;b&gt;up&lt;/b&gt;\n"
        '<pre><code class="language-python">print(1 &lt; 2)</code></pre>\n'
        "<pre>| 花名 | 数量 |\n| 玫瑰 | 40 |</pre>\n"
        'see <a href="https://example.org/a?b=1&amp;c=2">docs</a>'
    )


def test_arithmetic_stars_are_not_italics() -> None:
    assert to_html("2*3*4 = 24 and *really*") == "2*3*4 = 24 and <i>really</i>"


def test_group_messages_for_the_bot() -> None:
    api = FakeBotAPI()
    group = -100123
    assert is_addressed(msg(api.message(42, "hi")), ME)  # private: always
    assert not is_addressed(msg(api.message(group, "hi all")), ME)
    assert is_addressed(msg(api.message(group, f"hey @{BOT_USERNAME} totals?")), ME)
    assert not is_addressed(msg(api.message(group, "ask @someone_else")), ME)
    assert is_addressed(msg(api.message(group, "/bill")), ME)
    assert is_addressed(msg(api.message(group, f"/bill@{BOT_USERNAME}")), ME)
    assert not is_addressed(msg(api.message(group, "/bill@other_bot")), ME)
    assert is_addressed(msg(api.message(group, "and today?", reply_to_bot=True)), ME)


def test_body_without_the_mention_or_command_suffix() -> None:
    api = FakeBotAPI()
    group = -100123
    assert body_for_bot(msg(api.message(group, f"@{BOT_USERNAME}, 今天呢？")), ME) == "今天呢？"
    assert body_for_bot(msg(api.message(group, f"/add@{BOT_USERNAME} 2 向日葵")), ME) == (
        "/add 2 向日葵"
    )


def test_thread_key_per_chat_and_topic() -> None:
    api = FakeBotAPI()
    assert thread_key(42, None) == "telegram:42:0"
    assert topic_of(msg(api.message(-100123, "x", thread_id=7))) == 7
    plain = api.message(-100123, "x")
    plain["message_thread_id"] = 55  # a reply thread in a normal supergroup, not a topic
    assert topic_of(msg(plain)) is None


def test_reply_language() -> None:
    zh_user = User(1, "A", is_bot=False, language_code="zh-hans")
    en_user = User(2, "B", is_bot=False, language_code="en")
    assert reply_lang("/help", zh_user) == "zh"
    assert reply_lang("today's revenue?", zh_user) == "en"
    assert reply_lang("/add 2 向日葵", en_user) == "zh"
    assert reply_lang("", None) is None


def test_allowlist_user_or_chat() -> None:
    assert Allowlist([], []).allows(1, 2)
    rule = Allowlist(["7"], ["-100"])
    assert rule.allows(7, 5) and rule.allows(8, -100)
    assert not rule.allows(8, 5)


def test_button_data_round_trip_and_limits() -> None:
    data = approval_data("run_0123456789abcdef01234567", True)
    assert len(data.encode()) <= 64
    assert parse_approval_data(data) == ("run_0123456789abcdef01234567", True)
    assert parse_approval_data("tb:run_x:maybe") is None
    assert parse_approval_data("other") is None


def test_download_limit_only_for_the_public_api() -> None:
    assert download_limit("https://api.telegram.org/") == BOT_API_DOWNLOAD_LIMIT
    assert download_limit("http://localhost:8081") is None


def test_closed_approval_text_says_why() -> None:
    from bots.telegram.approval import closed_text
    from core.domain import Run, RunStatus

    expired = Run(id="run_1", thread_id="t", model="m", status=RunStatus.EXPIRED)
    withdrawn = Run(id="run_2", thread_id="t", model="m", status=RunStatus.CANCELLED)
    assert "已过期" in closed_text("保存账单", expired, "zh")
    assert closed_text("Save", withdrawn, "en").endswith(
        "Cancelled: a new message came in, or the conversation was stopped."
    )
