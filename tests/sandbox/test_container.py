"""Container mode end to end on this machine: a real ``SandboxServer`` on a unix socket (in
this process's loop), the tool talking to it through ``ContainerBackend``. What the container
itself adds (no network, read-only root, no DB) is deploy's job; this checks the protocol and
the per-thread uid separation inside the server."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.domain import FileRef
from core.tools.code_interpreter import CodeInterpreterTool, LocalProcessBackend
from core.tools.code_interpreter.client import ContainerBackend
from core.tools.code_interpreter.server import SandboxServer
from tests.sandbox.conftest import OTHER_SECRET, Sandbox, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    # Not under pytest's 0700 base: a dropped uid must be able to reach its folder.
    root = Path(tempfile.mkdtemp(prefix="tallybot-container-"))
    os.chmod(root, 0o711)
    sock = root / "sandbox.sock"
    settings = make_settings(root, sandbox_socket=sock, sandbox="container", sandbox_pool_size=1)
    server = SandboxServer(settings, sock)
    started = asyncio.Event()
    task = asyncio.create_task(server.serve(started))
    await asyncio.wait_for(started.wait(), 10)
    tool = CodeInterpreterTool(settings, ContainerBackend(settings))  # type: ignore[arg-type]
    try:
        yield Sandbox(tool, settings)
    finally:
        await tool.aclose()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        shutil.rmtree(root, ignore_errors=True)


async def test_runs_code_and_keeps_state(remote: Sandbox) -> None:
    assert remote.mode == "container"
    await remote.out("x = 41", "thread_c")
    out = await remote.out("x + 1", "thread_c")
    assert out["result"] == "42", out


async def test_files_go_in_and_come_out(remote: Sandbox, tmp_path: Path) -> None:
    src = tmp_path / "sales.csv"
    src.write_text("flower,qty\nrose,3\n")
    ref = FileRef(
        id="f1",
        thread_id="thread_c",
        name="sales.csv",
        path=str(src),
        sha256="0",
        size=20,
        mime="text/csv",
        kind="table",
    )
    out = await remote.out(
        "import pandas as pd\nd = pd.read_csv('sales.csv')\nd.to_csv('out.csv')\nint(d.qty.sum())",
        "thread_c",
        files=[ref],
    )
    assert out["result"] == "3" and out["files"] == ["out.csv"], out


async def test_other_thread_is_unreadable(remote: Sandbox) -> None:
    out = await remote.out("open('../thread_other/secret.txt').read()", "thread_c")
    assert out["error"] is not None and OTHER_SECRET not in str(out)
    if LocalProcessBackend(remote.settings, mode="audit").info()["drops_uid"]:
        # A uid of its own (needs root and a world-readable Python, as in deploy's image): the folder itself is closed to every other kernel.
        st = os.stat(remote.workdir("thread_c"))
        assert st.st_uid != 0 and st.st_mode & 0o077 == 0


async def test_time_limit_and_cancel(remote: Sandbox) -> None:
    out = await remote.out("while True: pass", "thread_t")
    assert out["error"]["type"] == "TimeoutError", out
    task = asyncio.create_task(remote.call("import time\ntime.sleep(20)", "thread_t"))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    out = await remote.out("'fresh'", "thread_t")
    assert out["result"] == "'fresh'" and "cancelled" in out["notice"], out
