"""The Assistants API's start-up resume on replicas: under the thread's lease, so an API run a
crash interrupted is resumed once, not by every replica that starts, and never while a live
replica is running it.

In-process replicas (a :class:`Tallybot` with a :class:`Service` each) on one fresh
PostgreSQL database; a crash is a run left ``in_progress`` with its leases gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from core.app import Tallybot
from core.assistants_api import AssistantsApi
from core.config import Settings
from core.domain import RunStatus
from core.models.scripted import Pause, ScriptedModel, text
from core.service import Service

from .harness import pg_database

KEY = "sk-tb-test-key-a"


@pytest.fixture
async def db_url() -> AsyncIterator[str]:
    async with pg_database() as url:
        yield url


async def _replica(
    stack: AsyncExitStack, tmp_path: Path, db_url: str, name: str, turns: list[Any]
) -> tuple[Tallybot, AssistantsApi, ScriptedModel]:
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / name, _env_file=None, database_url=db_url, api_keys=[KEY]
    )
    settings.ensure_dirs()
    model = ScriptedModel(turns, name="scripted-test")
    bot = await Tallybot.open(settings, model=model, channel="api")
    stack.push_async_callback(bot.close)
    service = bot.service = Service(bot)
    service.replica.start()
    stack.push_async_callback(service.replica.stop)
    api = AssistantsApi(bot)
    stack.push_async_callback(api.aclose)
    return bot, api, model


async def _crashed_run(stack: AsyncExitStack, tmp_path: Path, db_url: str) -> tuple[str, str]:
    """(thread id, run id) of an API run left in_progress by a replica that died mid-turn."""
    pause = Pause()
    bot, api, _ = await _replica(stack, tmp_path, db_url, "crashed", [[pause]])
    caller = await api.caller(KEY, None)
    assert caller is not None
    assistant = await api.objects.create_assistant(caller, {"model": "m", "instructions": "i"})
    thread = await api.objects.create_thread(
        caller, {"messages": [{"role": "user", "content": "hello"}]}
    )
    run, _ = await api.runs.create(caller, thread["id"], {"assistant_id": assistant["id"]})
    await asyncio.wait_for(pause.reached.wait(), 10)
    # The process dies: its drive stops mid-turn (a serving engine leaves the run live) and
    # its leases are gone, as once they lapse.
    await api.aclose()
    await bot.service.replica.stop()  # type: ignore[union-attr]
    assert (await bot.store.get_run(run["id"])).status == RunStatus.IN_PROGRESS
    return thread["id"], run["id"]


async def test_two_replicas_starting_at_once_resume_a_crashed_api_run_once(
    tmp_path: Path, db_url: str
) -> None:
    async with AsyncExitStack() as stack:
        _, run_id = await _crashed_run(stack, tmp_path, db_url)
        replicas = [
            await _replica(stack, tmp_path, db_url, name, [text(f"answer from {name}")])
            for name in ("b", "c")
        ]
        await asyncio.gather(*(api.recover() for _, api, _ in replicas))
        for _, api, _ in replicas:
            await asyncio.gather(*list(api.runs.driver._tasks))
        bot = replicas[0][0]
        run = await bot.store.get_run(run_id)
        said = await bot.store.list_messages(run.thread_id, role="assistant")
    assert run.status == RunStatus.COMPLETED
    assert sum(len(model.requests) for _, _, model in replicas) == 1
    assert len(said) == 1 and said[0].text.startswith("answer from ")


async def test_a_replica_starting_beside_a_live_one_leaves_its_api_run_alone(
    tmp_path: Path, db_url: str
) -> None:
    async with AsyncExitStack() as stack:
        thread_id, run_id = await _crashed_run(stack, tmp_path, db_url)
        pause = Pause()
        live_bot, live_api, live_model = await _replica(
            stack, tmp_path, db_url, "live", [[pause, *text("resumed once")]]
        )
        await live_api.recover()
        await asyncio.wait_for(pause.reached.wait(), 10)  # resuming it, lease held
        _, late_api, late_model = await _replica(stack, tmp_path, db_url, "late", [text("no")])
        await late_api.recover()
        await asyncio.sleep(0.5)  # the late replica waits for the lease instead of resuming
        assert late_model.requests == []
        pause.event.set()
        await asyncio.gather(*list(live_api.runs.driver._tasks))
        await asyncio.wait_for(asyncio.gather(*list(late_api.runs.driver._tasks)), 10)
        run = await live_bot.store.get_run(run_id)
        said = await live_bot.store.list_messages(thread_id, role="assistant")
    assert run.status == RunStatus.COMPLETED
    assert [m.text for m in said] == ["resumed once"]
    assert late_model.requests == [] and len(live_model.requests) == 1
