"""``serve()``, the code behind ``tallybot slack``: Socket Mode through SLACK_API_URL, model-free."""

from __future__ import annotations

import asyncio

from bots.slack.server import serve
from core.config import Settings

from . import payloads as p
from .fake_slack import APP_TOKEN, FakeSlack


async def test_serve_connects_through_the_configured_api_url(
    slack_settings: Settings, fake: FakeSlack
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(slack_settings, expiry_interval=0.05, stop=stop))
    try:
        await asyncio.wait_for(fake.connected.wait(), 20)
        [opened] = fake.calls_to("apps.connections.open")
        assert opened.token == APP_TOKEN  # the app token, sent to the fake, not slack.com
        await fake.send("slash_commands", p.slash_command("help"))
        await fake.wait_for(lambda: bool(fake.thread(p.DM, None)))
        assert "/bill" in fake.thread(p.DM, None)[0].text
        # No model configured: a question gets the model-free help instead of a crash.
        await fake.send("events_api", p.message("what is the profit today"))
        await fake.wait_for(lambda: len(fake.thread(p.DM, None)) >= 2)
        assert "OPENAI_API_KEY" in fake.thread(p.DM, None)[1].text
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
