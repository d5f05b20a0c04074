"""Recovery delivers: a crashed run's answer reaches its conversation, a message that waited
behind it gets its own run, and a run whose lease is alive is left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.app import Tallybot
from core.config import Settings
from core.domain import RunStatus
from core.events import Event, RunFinished
from core.models.scripted import ScriptedModel, text
from core.service import Service
from tests.slack.conftest import _assistant


class Delivered:
    def __init__(self) -> None:
        self.runs: list[tuple[str, RunFinished]] = []

    async def __call__(self, key: str, events: AsyncIterator[Event]) -> None:
        async for event in events:
            if isinstance(event, RunFinished):
                self.runs.append((key, event))


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[Tallybot]:
    model = ScriptedModel([text("answer one"), text("answer two")])
    bot = await Tallybot.open(settings, model=model, assistant=_assistant(), recover=False)
    bot.service = Service(bot)
    try:
        yield bot
    finally:
        await bot.service.replica.stop()
        await bot.close()


async def _crashed(bot: Tallybot) -> Any:
    """A thread as a kill -9 leaves it: a run in progress, another message waiting."""
    thread = await bot.thread("console:shop")
    await bot.store.add_message(thread.id, "user", "first")
    run = await bot.engine.create_run(thread)
    assert run is not None
    await bot.store.set_run_status(run, RunStatus.IN_PROGRESS)
    await bot.store.add_message(thread.id, "user", "second")
    return thread, run


async def test_live_lease_is_left_alone_then_recovered_and_delivered(bot: Tallybot) -> None:
    service = bot.service
    assert service is not None
    delivered = Delivered()
    service.on_deliver("console", delivered)
    thread, run = await _crashed(bot)
    # Another replica is alive and holds the thread: start-up recovery must not touch it.
    assert await bot.store.take_lease(f"thread:{thread.id}", "other:1", "other", 60)
    assert await service.sweep(min_age=0) == 0
    assert (await bot.store.get_run(run.id)).status == RunStatus.IN_PROGRESS
    # It died; its lease is gone (lapsed): the run is resumed and the waiting message answered.
    await bot.store.release_lease(f"thread:{thread.id}", "other:1")
    assert await service.sweep(min_age=0) == 1
    await service.idle()
    assert [(k, e.text) for k, e in delivered.runs] == [
        ("console:shop", "answer one"),
        ("console:shop", "answer two"),
    ]
    runs = await bot.store.list_runs(thread_id=thread.id)
    assert [r.status for r in runs] == [RunStatus.COMPLETED, RunStatus.COMPLETED]
    assert runs[0].upto_seq < runs[1].upto_seq


async def test_a_new_message_adopts_the_orphan_first(bot: Tallybot) -> None:
    service = bot.service
    assert service is not None
    delivered = Delivered()
    service.on_deliver("console", delivered)
    thread, run = await _crashed(bot)
    bot.engine.model.add(text("answer three"))  # type: ignore[union-attr]
    events = [e async for e in bot.handle("console:shop", "third")]
    # The orphan was delivered to its conversation first; the new message's run answered the
    # waiting one and the new one together.
    assert [e.text for _k, e in delivered.runs] == ["answer one"]
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert [e.text for e in finished] == ["answer two"]
    assert (await bot.store.get_run(run.id)).status == RunStatus.COMPLETED


async def test_a_new_message_posts_an_answer_left_unposted_first(bot: Tallybot) -> None:
    """A process finished a run and was killed before its answer went out (the outbox still
    says pending). The next message in that thread gets the old answer posted first, then its
    own: a re-sent answer follows itself, never a newer one (the replica acceptance test's
    rule). Nothing is posted twice afterwards by the sweep."""
    from core.service import OUTBOX

    service = bot.service
    assert service is not None
    delivered = Delivered()
    service.on_deliver("console", delivered)
    thread = await bot.thread("console:shop")
    await bot.store.add_message(thread.id, "user", "first")
    run = await bot.engine.create_run(thread)
    assert run is not None
    async for _ in bot.engine.execute(run, thread, "en"):
        pass  # answered "answer one" ...
    await bot.store.kv_set(f"{OUTBOX}{run.id}", "pending")  # ... and killed before posting it
    events = [e async for e in bot.handle("console:shop", "second")]
    assert [(k, e.text) for k, e in delivered.runs] == [("console:shop", "answer one")]
    assert [e.text for e in events if isinstance(e, RunFinished)] == ["answer two"]
    assert await bot.store.kv_get(f"{OUTBOX}{run.id}") == ""
    await service.sweep(min_age=0)
    await service.idle()
    assert len(delivered.runs) == 1
