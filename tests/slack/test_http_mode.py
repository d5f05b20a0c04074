"""HTTP mode: bolt behind aiohttp on 127.0.0.1; signatures checked, retries handled once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from bots.slack import SlackAdapter, http_app
from bots.slack.cli import add_parser, run
from bots.slack.server import check_settings
from core.app import Tallybot
from core.config import Settings
from core.errors import ConfigError
from core.models.scripted import ScriptedModel, text

from . import payloads as p
from .conftest import _assistant
from .fake_slack import FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def sign(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


class Served:
    def __init__(self, url: str, adapter: SlackAdapter, model: ScriptedModel) -> None:
        self.url, self.adapter, self.model = url, adapter, model

    async def post(self, body: str, headers: dict[str, str], content_type: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                self.url, data=body.encode(), headers={**headers, "Content-Type": content_type}
            ) as resp:
                status, text_ = resp.status, await resp.text()
        await self.adapter.idle()
        return status, text_

    async def event(self, payload: dict[str, Any], **sign_kw: Any) -> tuple[int, str]:
        body = json.dumps(payload)
        extra = sign_kw.pop("headers", {})
        return await self.post(body, {**sign(body, **sign_kw), **extra}, "application/json")


@pytest.fixture
async def served(slack_settings: Settings, fake: FakeSlack) -> AsyncIterator[Served]:
    slack_settings.slack_app_token = None
    slack_settings.slack_signing_secret = SECRET
    model = ScriptedModel()
    bot = await Tallybot.open(slack_settings, model=model, assistant=_assistant())
    adapter = SlackAdapter(bot, slack_settings)
    runner = web.AppRunner(http_app(adapter))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Served(f"http://127.0.0.1:{port}/slack/events", adapter, model)
    finally:
        await adapter.idle()
        await runner.cleanup()
        await bot.close()
    _ = fake


async def test_signed_event_is_answered(served: Served, fake: FakeSlack) -> None:
    served.model.add(text("Hi from HTTP mode."))
    mention = p.app_mention("hello over http")
    status, _ = await served.event(mention)
    assert status == 200
    await fake.wait_for(lambda: bool(fake.thread(p.CHANNEL, mention["event"]["ts"])))
    await served.adapter.idle()
    assert fake.thread(p.CHANNEL, mention["event"]["ts"])[0].text == "Hi from HTTP mode."


async def test_bad_or_stale_signatures_are_refused(served: Served) -> None:
    mention = p.app_mention("forged")
    assert (await served.event(mention, secret="not-the-secret"))[0] == 401
    assert (await served.event(mention, timestamp=int(time.time()) - 600))[0] == 401
    assert (await served.post(json.dumps(mention), {}, "application/json"))[0] == 401
    assert served.adapter.stats["received"] == 0 and not served.model.requests


async def test_url_verification_challenge(served: Served) -> None:
    status, body = await served.event(
        {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"}
    )
    assert status == 200 and "3eZbrw1aBm2rZgRNFdxV" in body


async def test_retry_with_retry_num_header_is_handled_once(served: Served, fake: FakeSlack) -> None:
    served.model.add(text("Only once."))
    mention = p.app_mention("count me once")
    assert (await served.event(mention))[0] == 200
    await fake.wait_for(lambda: served.adapter.stats["received"] == 1)
    await served.adapter.idle()
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert (await served.event(mention, headers=retry))[0] == 200
    await fake.wait_for(lambda: served.adapter.stats["received"] == 2)
    await served.adapter.idle()
    assert served.adapter.stats["duplicate"] == 1
    assert len(served.model.requests) == 1


async def test_slash_command_form_body(served: Served, fake: FakeSlack) -> None:
    body = urlencode(p.slash_command("help", response_url=fake.response_url()))
    status, _ = await served.post(body, sign(body), "application/x-www-form-urlencoded")
    assert status == 200
    await fake.wait_for(lambda: served.adapter.stats["received"] == 1)
    await served.adapter.idle()
    assert "/bill" in fake.thread(p.DM, None)[0].text


def test_settings_decide_the_mode() -> None:
    base = {"_env_file": None, "slack_bot_token": "xoxb-1"}
    assert check_settings(Settings(**base, slack_app_token="xapp-1-x")) == "socket"  # type: ignore[arg-type]
    assert check_settings(Settings(**base, slack_signing_secret="s")) == "http"  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        check_settings(Settings(**base))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        check_settings(Settings(_env_file=None, slack_app_token="xapp-1"))  # type: ignore[call-arg]


def test_cli_refuses_to_start_without_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["slack", "--port", "3999"])
    assert args.port == 3999
    assert run(args) == 2
    assert "SLACK_BOT_TOKEN" in capsys.readouterr().err
