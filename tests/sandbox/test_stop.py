"""/stop during a long code cell: the engine cancels the tool call, the cell is interrupted and
the run ends ``cancelled`` long before the cell would have finished."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from core.domain import RunStatus
from core.models.base import ModelToolCall
from core.models.scripted import ScriptedModel
from core.store import Store
from tests.engine.helpers import Harness
from tests.sandbox.conftest import make_settings, make_tool


async def test_stop_during_a_long_cell_cancels_the_run(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path / "sb", sandbox_timeout=30.0, sandbox_pool_size=0)
    tool = make_tool(settings, "auto")
    model = ScriptedModel(
        [[ModelToolCall("call_1", "code_interpreter", '{"code": "import time; time.sleep(20)"}')]]
    )
    h = Harness(settings, store, model)
    h.engine.tools.register(tool)
    thread = await h.thread()
    await store.add_message(thread.id, "user", "analyse")
    run = await h.engine.create_run(thread)
    events: list = []

    async def consume() -> None:
        async for e in h.engine.execute(run, thread, "en"):
            events.append(e)

    task = asyncio.create_task(consume())
    try:
        while not tool._sessions:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        assert await h.engine.cancel(await store.get_run(run.id))
        await asyncio.wait_for(task, 10)
        waited = time.monotonic() - started
    finally:
        await tool.aclose()
    assert (await store.get_run(run.id)).status == RunStatus.CANCELLED
    assert waited < 5, waited  # the 20 s cell did not run to its end
