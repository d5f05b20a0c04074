"""Limits added by issue 11: the per-thread disk quota, nothing running between calls, a cell
interrupted on cancel, an infinite loop reported as the time limit."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from core.tools.code_interpreter.quota import loop_mounts_available
from tests.sandbox.conftest import MODES, Sandbox, make_settings, make_tool

pytestmark = pytest.mark.asyncio(loop_scope="module")

DISK_MB = 16
FILL = """
import os
written = 0
try:
    for i in range(64):
        with open(f'fill_{i}.bin', 'wb') as fh:
            fh.write(os.urandom(1024 * 1024))
        written += 1
finally:
    print('written', written)
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=MODES)
async def small(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Sandbox]:
    root = tmp_path_factory.mktemp(f"limits-{request.param}")
    settings = make_settings(root, sandbox_disk_mb=DISK_MB, sandbox_pool_size=0)
    tool = make_tool(settings, request.param)
    try:
        yield Sandbox(tool, settings)
    finally:
        await tool.aclose()


async def test_disk_quota_is_a_clear_error_and_bounds_the_volume(small: Sandbox) -> None:
    out = await small.out(FILL, "thread_disk")
    assert out["error"] is not None and out["error"]["type"] == "DiskQuotaExceeded", out
    assert f"{DISK_MB} MiB" in out["error"]["message"]
    image = small.settings.sandbox_dir / ".disks" / "thread_disk.img"
    if loop_mounts_available()[0]:
        # A hard bound: the image on the data volume never holds more than its size.
        assert image.stat().st_blocks * 512 <= DISK_MB * 1024 * 1024
        assert "written 64" not in out["stdout"]
    # Freeing space makes the folder usable again.
    out = await small.out(
        "import glob, os\nfor p in glob.glob('fill_*'): os.remove(p)\n"
        "open('ok.txt', 'w').write('fine')",
        "thread_disk",
    )
    assert out["error"] is None, out


async def test_quota_folder_keeps_files_across_kernels(small: Sandbox) -> None:
    await small.out("open('keep.txt', 'w').write('kept')", "thread_keep")
    await small.tool.reset("thread_keep")
    out = await small.out("open('keep.txt').read()", "thread_keep")
    assert out["result"] == "'kept'", out
    assert (
        "lost+found" not in (await small.out("import os\nos.listdir('.')", "thread_keep"))["result"]
    )


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _uid_pids(uid: int) -> set[int]:
    pids = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    pids.add(int(entry.name))
    return pids


async def test_a_thread_left_behind_burns_no_cpu_between_calls(small: Sandbox) -> None:
    thread = "thread_spin"
    out = await small.out(
        "import threading\ndef spin():\n    while True: pass\n"
        "threading.Thread(target=spin, daemon=True).start()\n'started'",
        thread,
    )
    assert out["result"] == "'started'", out
    kernel = small.tool._sessions[thread].kernel
    pid = kernel.host_pid  # type: ignore[attr-defined]
    assert pid is not None
    start = _cpu_seconds(pid)
    await asyncio.sleep(1.0)
    assert _cpu_seconds(pid) - start < 0.1
    await small.works(thread)  # the kernel still answers (thawed for the call)


async def test_a_process_left_behind_is_killed_when_the_call_returns(small: Sandbox) -> None:
    if small.mode != "namespaces":
        pytest.skip("the audit hook refuses process creation outright")
    thread = "thread_child"
    out = await small.out(
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\np.pid",
        thread,
    )
    assert out["error"] is None, out
    kernel = small.tool._sessions[thread].kernel
    assert _uid_pids(kernel.uid) == {kernel.host_pid}  # type: ignore[attr-defined]
