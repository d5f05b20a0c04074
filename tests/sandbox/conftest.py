"""Sandbox fixtures: one tool per isolation mode, shared by a test module.

Every test runs twice: ``auto`` (the best isolation this machine gives -- ``namespaces`` when
root with util-linux ``unshare``, else the fallback) and ``audit`` (the fallback, forced). Tests
assert the containment of whichever mode is active, so a machine without namespaces still
checks the documented fallback instead of skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.config import Settings
from core.domain import FileRef, Thread
from core.tools.base import ToolContext, ToolResult
from core.tools.code_interpreter import CodeInterpreterTool, LocalProcessBackend
from core.tools.code_interpreter.client import ContainerBackend
from core.tools.code_interpreter.server import SandboxServer

MODES = ("auto", "audit")
DB_SECRET = "SECRET-DATABASE-CONTENT"
OTHER_SECRET = "SECRET-OTHER-THREAD"
FILE_SIZE_MB = 8


def make_settings(root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "sandbox_timeout": 4.0,
        "sandbox_pool_size": 1,
        "sandbox_max_output": 4096,
        "sandbox_memory_mb": 1024,
    }
    values.update(overrides)
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    settings.ensure_dirs()
    (settings.data_dir / "tallybot.db").write_text(DB_SECRET)
    other = settings.sandbox_dir / "thread_other"
    other.mkdir(parents=True, exist_ok=True)
    (other / "secret.txt").write_text(OTHER_SECRET)
    return settings


def make_tool(settings: Settings, mode: str) -> CodeInterpreterTool:
    backend = LocalProcessBackend(settings, mode=mode, file_size_mb=FILE_SIZE_MB)
    return CodeInterpreterTool(settings, backend)


@dataclass
class Sandbox:
    """A tool plus the helpers tests need to call it like the engine does."""

    tool: CodeInterpreterTool
    settings: Settings

    @property
    def mode(self) -> str:
        return self.tool.mode

    def workdir(self, thread: str) -> Path:
        return self.settings.sandbox_dir / thread

    async def call(
        self, code: str, thread: str = "thread_main", files: Sequence[FileRef] = ()
    ) -> ToolResult:
        ctx = ToolContext(
            settings=self.settings,
            store=None,  # type: ignore[arg-type]  # the interpreter never touches the store
            thread=Thread(id=thread, key=f"test:{thread}"),
            run_id="run_1",
            call_id=f"call_{hashlib.sha1(code.encode()).hexdigest()[:8]}",
            files=list(files),
        )
        return await self.tool.run({"code": code}, ctx)

    async def out(self, code: str, thread: str = "thread_main", **kw: Any) -> dict[str, Any]:
        result = await self.call(code, thread, **kw)
        assert isinstance(result.output, dict)
        return result.output

    async def works(self, thread: str = "thread_main") -> None:
        """A normal call still gives the right answer."""
        out = await self.out("sum(range(10))", thread)
        assert out["error"] is None and out["result"] == "45", out


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=MODES)
async def sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Sandbox]:
    settings = make_settings(tmp_path_factory.mktemp(f"sandbox-{request.param}"))
    tool = make_tool(settings, request.param)
    await tool.start()
    try:
        yield Sandbox(tool, settings)
    finally:
        await tool.aclose()


@contextlib.asynccontextmanager
async def served() -> AsyncIterator[tuple[Settings, asyncio.Task[None]]]:
    """A real ``SandboxServer`` on a unix socket in this loop: its settings (container mode,
    ``sandbox_socket``) and the task serving it, cancelled at the end if still running."""
    # Not under pytest's 0700 base: a dropped uid must be able to reach its folder.
    root = Path(tempfile.mkdtemp(prefix="tallybot-container-"))
    os.chmod(root, 0o711)
    sock = root / "sandbox.sock"
    settings = make_settings(root, sandbox_socket=sock, sandbox="container", sandbox_pool_size=1)
    started = asyncio.Event()
    task = asyncio.create_task(SandboxServer(settings, sock).serve(started))
    try:
        await asyncio.wait_for(started.wait(), 10)
        yield settings, task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote() -> AsyncIterator[Sandbox]:
    """Container mode: :func:`served`, the tool on ``ContainerBackend`` (no container around
    it here: that part is deploy's)."""
    async with served() as (settings, _):
        tool = CodeInterpreterTool(settings, ContainerBackend(settings))  # type: ignore[arg-type]
        try:
            yield Sandbox(tool, settings)
        finally:
            await tool.aclose()
