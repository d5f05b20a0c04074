"""Getting updates in and answers out reliably: flood control, once-only processing, the
offset across restarts, webhooks and their secret, and the allowlist."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from core.errors import ConfigError
from core.models.scripted import text
from tests.telegram.conftest import final_text
from tests.telegram.fake_api import BOT_USERNAME, TOKEN

PRIVATE = 42
GROUP = -100123


async def test_flood_control_retry_after_is_honoured(start, api) -> None:
    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    async with start([text("All good.")]):
        api.push({"message": api.message(PRIVATE, "status?")})
        await api.wait_for(final_text(api, PRIVATE, "All good."))
    attempts = [c for c in api.calls if c.method == "sendMessage"]
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[0].params["text"] == attempts[1].params["text"]


async def test_a_redelivered_update_is_not_processed_twice(start, api) -> None:
    async with start([text("first answer"), text("second answer")]) as run:
        first = api.push({"message": api.message(PRIVATE, "question one")})
        await api.wait_for(final_text(api, PRIVATE, "first answer"))
        api.redeliver(first)
        api.push({"message": api.message(PRIVATE, "question two")})
        await api.wait_for(final_text(api, PRIVATE, "second answer"))
    assert len(run.model.requests) == 2
    assert api.texts(PRIVATE) == ["first answer", "second answer"]


async def test_the_offset_survives_a_restart(start, api) -> None:
    async with start([text("before restart")]) as run:
        update = api.push({"message": api.message(PRIVATE, "hello")})
        await api.wait_for(final_text(api, PRIVATE, "before restart"))
        stored = await run.bot.store.kv_get(f"telegram:{TOKEN.split(':')[0]}:offset")
    assert stored == str(update["update_id"] + 1)
    api.calls.clear()
    async with start([text("after restart")]):
        api.push({"message": api.message(PRIVATE, "again")})
        await api.wait_for(final_text(api, PRIVATE, "after restart"))
    polls = [c for c in api.calls if c.method == "getUpdates"]
    # The restarted bot confirms what it handled before it asks for anything new.
    assert polls[0].params["offset"] == update["update_id"] + 1
    assert api.texts(PRIVATE) == ["before restart", "after restart"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_accepts_the_right_secret_and_refuses_others(start, api) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/tg/hook"
    update = {"update_id": 500, "message": api.message(PRIVATE, "via webhook")}
    async with (
        start(
            [text("webhook answer")],
            listen_port=port,
            telegram_webhook_url=url,
            telegram_webhook_secret="s3cret-token",
        ) as run,
        aiohttp.ClientSession() as http,
    ):
        setup = api.sent("setWebhook")[0].params
        assert setup["url"] == url and setup["secret_token"] == "s3cret-token"
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 403
        good = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
        async with http.post(url, json=update, headers=good) as response:
            assert response.status == 200
        await api.wait_for(final_text(api, PRIVATE, "webhook answer"))
        # Telegram retries a webhook delivery it thinks failed; the retry changes nothing.
        async with http.post(url, json=update, headers=good) as response:
            assert response.status == 200
        later = {"update_id": 501, "message": api.message(PRIVATE, "/help")}
        async with http.post(url, json=later, headers=good) as response:
            assert response.status == 200
        await api.wait_for(lambda s: "Commands" in " ".join(s.texts(PRIVATE)))
        assert len(run.model.requests) == 1
    assert not [c for c in api.calls if c.method == "getUpdates"]


async def test_webhook_mode_refuses_to_start_without_a_secret(start, api) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        async with start([], telegram_webhook_url="https://example.org/hook"):
            pass
    assert not api.sent("setWebhook")


async def test_allowlist_refuses_others_politely_and_only_when_addressed(start, api) -> None:
    async with start(
        [text("hi Bob"), text("hi team")],
        telegram_allowed_users="7",
        telegram_allowed_chats=str(GROUP),
    ) as run:
        api.push({"message": api.message(PRIVATE, "let me in", user_id=42)})
        await api.wait_for(final_text(api, PRIVATE, "not enabled for you"))
        api.push({"message": api.message(PRIVATE, "你好", user_id=42, language_code="zh")})
        await api.wait_for(final_text(api, PRIVATE, "没有使用此机器人的权限"))
        api.push({"message": api.message(7, "hello", user_id=7)})
        await api.wait_for(final_text(api, 7, "hi Bob"))
        # A listed group is open to its members; an unlisted group is refused, but only
        # when someone talks to the bot.
        api.push({"message": api.message(GROUP, f"@{BOT_USERNAME} hello", user_id=99)})
        await api.wait_for(final_text(api, GROUP, "hi team"))
        api.push({"message": api.message(-100999, "chatter", user_id=99)})
        api.push({"message": api.message(-100999, f"@{BOT_USERNAME} hi", user_id=99)})
        await api.wait_for(final_text(api, -100999, "not enabled"))
    assert len(run.model.requests) == 2
    assert len(api.texts(-100999)) == 1
    assert not api.sent("getFile")
