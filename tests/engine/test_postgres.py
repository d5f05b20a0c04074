"""The engine's store paths on PostgreSQL: the same schema and queries as on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.domain import RunStatus, StepType
from core.models.scripted import ScriptedModel, call, text
from core.store import Store
from tests.engine.helpers import Harness
from tests.pg import pg_store


@pytest.fixture
async def pg() -> AsyncIterator[Store]:
    async for store in pg_store():
        yield store


async def test_tool_run_with_approval_on_postgresql(settings, pg: Store) -> None:
    settings.approve_writes = True
    model = ScriptedModel(
        [[call("echo", {"text": "a"}, "c1"), call("write", {"value": 3}, "w1")], text("done")]
    )
    h = Harness(settings, pg, model)
    events = await h.send("go")
    run = await pg.get_run(events[-1].run_id)
    assert run.status == RunStatus.REQUIRES_ACTION
    assert run.required_action["submit_tool_outputs"]["tool_calls"][0]["id"] == "w1"
    rest = await h.collect(h.engine.submit_tool_outputs(run.id, True, await h.thread(), "en"))
    assert rest[-1].status == RunStatus.COMPLETED and rest[-1].bills_changed == (3,)
    run = await pg.get_run(run.id)
    assert [s.type for s in run.steps] == [StepType.TOOL_CALLS, StepType.MESSAGE_CREATION]
    assert [c.id for c in run.steps[0].tool_calls] == ["c1", "w1"]
    logged = [s for step, s, _ in await pg.status_history(run.id) if step is None]
    assert logged == ["queued", "in_progress", "requires_action", "in_progress", "completed"]
    assert run.started_at.tzinfo is not None and run.completed_at >= run.started_at


async def test_dedupe_and_kv_on_postgresql(pg: Store) -> None:
    assert await pg.mark_processed("slack", "Ev1")
    assert not await pg.mark_processed("slack", "Ev1")
    await pg.kv_set("telegram:offset", "41")
    await pg.kv_set("telegram:offset", "42")
    assert await pg.kv_get("telegram:offset") == "42"
    thread = await pg.get_or_create_thread("slack:T:C:1.2")
    assert (await pg.get_or_create_thread("slack:T:C:1.2")).id == thread.id
