"""Limits added by issue 11: the per-thread disk quota, nothing running between calls, a cell
interrupted on cancel, an infinite loop reported as the time limit."""

from __future__ import annotations

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
