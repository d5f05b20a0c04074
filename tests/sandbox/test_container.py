"""Container mode end to end on this machine: a real ``SandboxServer`` on a unix socket (in
this process's loop), the tool talking to it through ``ContainerBackend``. What the container
itself adds (no network, read-only root, no DB) is deploy's job; this checks the protocol and
the per-thread uid separation inside the server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from core.domain import FileRef
from core.tools.code_interpreter import LocalProcessBackend
from core.tools.code_interpreter.wire import read_frame, write_frame
from tests.sandbox.conftest import OTHER_SECRET, Sandbox, served

MAX = 1 << 20

pytestmark = pytest.mark.asyncio(loop_scope="module")


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


async def test_stopping_the_server_ends_its_connections() -> None:
    """A server stopped with a client still connected shuts that connection's kernel down and
    closes its socket before it ends (asyncio's ``Server.close`` leaves accepted connections
    open: their kernels would outlive the server's backend)."""
    async with served() as (settings, serving):
        assert settings.sandbox_socket is not None
        reader, writer = await asyncio.open_unix_connection(str(settings.sandbox_socket))
        assert (await asyncio.wait_for(read_frame(reader, MAX), 30) or {}).get("op") == "ready"
        await write_frame(writer, {"op": "claim", "thread": "thread_stop"})
        assert (await asyncio.wait_for(read_frame(reader, MAX), 30) or {}).get("ok")
        await write_frame(writer, {"op": "exec", "code": "import os\nos.getpid()", "time_limit": 5})
        reply = await asyncio.wait_for(read_frame(reader, MAX), 30) or {}
        pid = int(reply["result"])
        os.kill(pid, 0)  # the connection's kernel runs

        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)

        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped
        writer.close()
