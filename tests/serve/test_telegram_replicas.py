"""Telegram under ``tallybot serve``: one poller per bot across replicas; webhook updates."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from bots.serve import serve
from core.config import Settings
from core.errors import ConfigError
from core.store import Store
from tests.telegram.fake_api import TOKEN, FakeBotAPI

from .harness import TELEGRAM_SECRET, free_port


def _settings(tmp_path: Path, api: FakeBotAPI, **extra: object) -> Settings:
    s = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        telegram_bot_token=TOKEN,
        telegram_api_url=api.url,
        **extra,
    )
    s.ensure_dirs()
    return s


async def test_refuses_to_poll_when_another_replica_polls(tmp_path: Path) -> None:
    async with FakeBotAPI() as api:
        settings = _settings(tmp_path, api)
        store = await Store.open(settings.db_url)
        try:
            # Another live replica holds the poller lease of this bot.
            assert await store.take_lease("telegram:123456:poller", "other:1", "other", 60)
        finally:
            await store.close()
        with pytest.raises(ConfigError, match="already long-polling.*TELEGRAM_WEBHOOK_URL"):
            await serve(settings, host="127.0.0.1", port=free_port())
        assert not [c for c in api.calls if c.method == "getUpdates"]


async def test_webhook_updates_need_the_secret_and_are_stored(tmp_path: Path) -> None:
    async with FakeBotAPI() as api:
        port = free_port()
        settings = _settings(
            tmp_path,
            api,
            telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
            telegram_webhook_secret=TELEGRAM_SECRET,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, host="127.0.0.1", port=port, stop=stop))
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(200):
                    try:
                        async with session.get(url + "/readyz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                update = {"update_id": 1, "message": api.message(42, "/help")}
                body = json.dumps(update)
                headers = {"Content-Type": "application/json"}
                async with session.post(url + "/telegram/webhook", data=body, headers=headers) as r:
                    assert r.status == 403  # no secret: refused before anything runs
                headers["X-Telegram-Bot-Api-Secret-Token"] = TELEGRAM_SECRET
                async with session.post(url + "/telegram/webhook", data=body, headers=headers) as r:
                    assert r.status == 200
                async with session.post(url + "/telegram/webhook", data="{", headers=headers) as r:
                    assert r.status == 400
            assert [c for c in api.calls if c.method == "setWebhook"]
            assert api.texts(42), "the /help answer was sent"
        finally:
            stop.set()
            await task
