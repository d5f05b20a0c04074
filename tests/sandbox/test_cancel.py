"""/stop and Ctrl-C interrupt a running cell (KeyboardInterrupt, then kill) and the run ends
cancelled; an infinite loop always reads as the time limit."""

from __future__ import annotations

import asyncio

import pytest

from tests.sandbox.conftest import Sandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_cancel_interrupts_the_cell_first(sandbox: Sandbox) -> None:
    thread = "thread_int"
    task = asyncio.create_task(
        sandbox.call(
            "import time\ntry:\n    time.sleep(20)\nfinally:\n"
            "    open('interrupted.txt', 'w').write('yes')",
            thread,
        )
    )
    while thread not in sandbox.tool._sessions:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The KeyboardInterrupt reached the cell: its finally block ran before the kill.
    assert (sandbox.workdir(thread) / "interrupted.txt").read_text() == "yes"


async def test_infinite_loop_reads_as_the_time_limit(sandbox: Sandbox) -> None:
    for code in ("while True: pass", "x = 0\nwhile True:\n    x += 1"):
        out = await sandbox.out(code, "thread_loop")
        assert out["error"]["type"] == "TimeoutError", out
