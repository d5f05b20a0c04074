"""Faults: a store that refuses writes, guards that cannot check. Nothing is acknowledged as
handled unless stored, no run is left live, no guard lets an update through on error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from telegram.ext import ApplicationHandlerStop

from core.app import Tallybot
from core.config import Settings
from core.domain import RunStatus
from core.events import RunFinished
from core.models.scripted import ScriptedModel, text
from tests.slack import payloads as p
from tests.slack.conftest import _assistant

from .conftest import Served


def disk_full(*_: Any, **__: Any) -> Any:
    raise OperationalError("INSERT", {}, Exception("database or disk is full"))


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[Tallybot]:
    bot = await Tallybot.open(settings, model=ScriptedModel(), assistant=_assistant())
    try:
        yield bot
    finally:
        await bot.close()


async def test_a_store_error_inside_a_run_fails_it_cleanly(
    bot: Tallybot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot.engine.model.add(text("never stored"))  # type: ignore[union-attr]
    # The answer (its step, message and the run's completion) is the run's first write.
    monkeypatch.setattr(bot.store, "finish_message", disk_full)
    events = [e async for e in bot.handle("console:shop", "how did we do?")]
    [finished] = [e for e in events if isinstance(e, RunFinished)]
    assert finished.status == RunStatus.FAILED
    assert "try again" in finished.text
    [run] = await bot.store.list_runs()
    assert run.status == RunStatus.FAILED and run.last_error is not None
    assert run.last_error["code"] == "store_error"


async def test_a_run_is_failed_once_the_store_is_writable_again(
    bot: Tallybot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot.engine.model.add(text("never stored"))  # type: ignore[union-attr]
    with monkeypatch.context() as m:
        m.setattr(bot.store, "finish_message", disk_full)
        m.setattr(bot.store, "set_step_status", disk_full)
        real = bot.store.set_run_status

        async def refuse_failing(run: Any, new: RunStatus, **kw: Any) -> Any:
            if new == RunStatus.FAILED:
                disk_full()
            return await real(run, new, **kw)

        m.setattr(bot.store, "set_run_status", refuse_failing)
        events = [e async for e in bot.handle("console:shop", "how did we do?")]
        assert any(isinstance(e, RunFinished) and "try again" in e.text for e in events)
        [run] = await bot.store.list_runs()
        assert run.status == RunStatus.IN_PROGRESS and run.id in bot.engine.unsettled
    assert await bot.engine.settle_broken() == 1
    run = await bot.store.get_run(run.id)
    assert run.status == RunStatus.FAILED and run.last_error["code"] == "store_error"
    assert not bot.engine.unsettled


async def test_a_message_that_cannot_be_stored_is_not_acknowledged(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.model.add(text("Stored this time."))
    event = p.message("save this please")
    with monkeypatch.context() as m:
        m.setattr(served.bot.store, "add_message", disk_full)
        assert await served.post_event(event) == 503  # Slack will deliver it again
    told = [m.text for m in served.fake.thread(p.DM, None)]
    assert any("try again" in t for t in told)
    assert not await served.bot.store.list_runs()
    # The retry (same event id) is handled once the store is writable.
    assert await served.post_event(event) == 200
    thread = await served.bot.store.thread_by_key(f"slack:{p.TEAM}:{p.DM}:dm")
    assert thread is not None
    users = await served.bot.store.list_messages(thread.id, role="user")
    assert [u.text for u in users] == ["save this please"]
    assert served.fake.thread(p.DM, None)[-1].text == "Stored this time."
    # And a third delivery of it is a duplicate.
    assert await served.post_event(event) == 200
    assert len(await served.bot.store.list_messages(thread.id, role="user")) == 1


async def test_telegram_guard_fails_closed(settings: Settings) -> None:
    from bots.telegram import guard

    class Broken:
        async def first(self, _key: str) -> bool:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    class Host:
        deliveries = Broken()

    handler = guard.build(Host())  # type: ignore[arg-type]

    class Update:
        update_id = 7

    with pytest.raises(ApplicationHandlerStop):
        await handler.callback(Update(), None)  # type: ignore[arg-type]


async def test_slack_guard_error_refuses_the_event(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.model.add(text("should not be sent"))
    with monkeypatch.context() as m:
        m.setattr(served.bot.store, "was_processed", disk_full)
        assert await served.post_event(p.message("hello")) == 503
    assert not served.model.requests
    assert not [m for m in served.fake.thread(p.DM, None) if "should not" in m.text]
