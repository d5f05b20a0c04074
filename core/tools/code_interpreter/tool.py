"""``code_interpreter``: a stateful, sandboxed Python kernel per thread, exposed to the model.

Model contract -- arguments ``{"code": str}``, output::

    {"stdout": str, "result": str | null, "error": null | {"type", "message", "traceback"},
     "files": [str], "notice": str (only when the Python state was reset)}

``result`` is the repr of the cell's last expression (truncated), ``files`` the names (relative
to the working folder) of files the cell created or changed, charts included. When a kernel was
lost -- idle for ``sandbox_idle_seconds``, a timeout, a crash, an explicit reset -- the next call
starts a fresh one and says so in ``notice``. ``ToolResult.is_error`` is true whenever ``error``
is set; ``ToolResult.files`` carries copies of the new files (PNG charts as ``image/png``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
import shutil
import stat
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.tools.base import ProducedFile, PromptContext, ToolContext, ToolResult
from core.tools.code_interpreter.backend import (
    Kernel,
    KernelDied,
    KernelError,
    KernelStartError,
    KernelTimeout,
    SandboxBackend,
)
from core.tools.code_interpreter.local import LocalProcessBackend
from core.tools.code_interpreter.staging import stage_file

if TYPE_CHECKING:
    from core.config import Settings
    from core.domain import FileRef

log = logging.getLogger(__name__)

MAX_PRODUCED_FILES = 20
MAX_SCAN_ENTRIES = 2000

DESCRIPTION = (
    # Short on purpose (issue 13): sent on every turn, and small models have small windows.
    "Run Python in a stateful sandbox (like a notebook cell; state survives between calls). "
    "pandas, numpy, matplotlib, openpyxl; no network, no pip. The current folder holds the "
    "uploaded files under their names{mnt}; files you write there and open matplotlib figures "
    "are sent to the user (Chinese labels render). Limits per call: {timeout:g} s, {memory} MiB, "
    "{output} characters of output."
)


@dataclass(slots=True)
class _Session:
    kernel: Kernel
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    busy: bool = False


def describe_files(files: Sequence[FileRef], mode: str = "namespaces") -> str:
    """Text for the system prompt: where each uploaded file is inside the sandbox."""
    if not files:
        return ""
    if mode == "namespaces":
        head = (
            "Files in this conversation, in the code interpreter's working folder (the current "
            "directory, also /mnt/data):"
        )
    else:
        head = "Files in this conversation, in the code interpreter's working folder (the current directory; open them by name):"
    lines = [head]
    for f in files:
        where = f"/mnt/data/{_safe_name(f.name)}" if mode == "namespaces" else _safe_name(f.name)
        lines.append(f"- {where} ({f.kind}, {f.size} bytes)")
    return "\n".join(lines)


def _safe_name(name: str) -> str:
    """A file name that stays inside the folder: last path component, no dot names."""
    base = os.path.basename(name.replace("\\", "/")).strip()
    if base in ("", ".", ".."):
        base = "file"
    return base


class CodeInterpreterTool:
    """The ``code_interpreter`` tool: one kernel per thread, a warm pool, idle reaping.

    ``backend`` defaults to :class:`LocalProcessBackend` in the best isolation mode available
    (see :func:`core.tools.code_interpreter.sandbox_mode`).
    """

    name = "code_interpreter"
    needs_approval = False
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "Python source to run, like a notebook cell."}
        },
        "required": ["code"],
        "additionalProperties": False,
    }

    def __init__(self, settings: Settings, backend: SandboxBackend | None = None) -> None:
        self.settings = settings
        self.backend: SandboxBackend = (
            backend if backend is not None else LocalProcessBackend(settings)  # type: ignore[assignment]
        )
        self.description = DESCRIPTION.format(
            mnt=" and at /mnt/data/<name>" if self.backend.mode == "namespaces" else "",
            timeout=settings.sandbox_timeout,
            memory=settings.sandbox_memory_mb,
            output=settings.sandbox_max_output,
        )
        self._sessions: dict[str, _Session] = {}
        self._thread_locks: dict[str, asyncio.Lock] = {}
        self._notices: dict[str, str] = {}
        self._warm: list[Kernel] = []
        self._warming: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        # No kernels are started here: constructing a tool (as every test bot does) must stay
        # cheap. ``start()`` pre-warms the pool; the first ``run()`` does too.

    # --- public ---------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """The isolation in force (``namespaces`` or ``audit``)."""
        return self.backend.mode

    def describe_files(self, files: Sequence[FileRef]) -> str:
        """:func:`describe_files` for this tool's isolation mode."""
        return describe_files(files, self.backend.mode)

    async def instructions(self, ctx: PromptContext) -> str | None:
        """Where the thread's files are inside the sandbox (``/mnt/data`` or not), if any."""
        return self.describe_files(ctx.files) or None

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        code = str(args.get("code", "")).strip()
        first = code.splitlines()[0] if code else ""
        if len(first) > 80 or "\n" in code:
            first = first[:77] + "..."
        return f"运行 Python 代码：{first}" if lang == "zh" else f"run Python code: {first}"

    async def start(self) -> None:
        """Pre-start the warm pool now; call it at bot start-up so no thread pays a cold start."""
        self._start_background()
        if self._warming:
            await asyncio.gather(*self._warming, return_exceptions=True)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        code = args.get("code")
        if not isinstance(code, str):
            return self._error("ValueError", "`code` must be a string")
        self._start_background()
        thread_id = ctx.thread.id
        workdir = ctx.workdir
        lock = self._thread_locks.setdefault(thread_id, asyncio.Lock())
        async with lock:
            prepare = getattr(self.backend, "prepare", None)  # optional: the disk quota
            if prepare is not None:
                try:
                    await prepare(workdir)
                except KernelError as exc:
                    return self._error("SandboxError", str(exc))
            await asyncio.to_thread(self._stage_uploads, workdir, ctx.files)
            notice: str | None = None
            session = self._sessions.get(thread_id)
            if session is not None and self._idle_expired(session):
                await self._drop(thread_id, f"it was idle for more than {self._idle:g} s")
                session = None
            if session is not None and not session.kernel.alive:
                await self._drop(thread_id, "the Python process had exited")
                session = None
            if session is None:
                notice = self._notices.pop(thread_id, None)
                try:
                    session = _Session(await self._claim(workdir))
                except KernelError as exc:
                    return self._error("SandboxError", str(exc), notice=notice)
                self._sessions[thread_id] = session
            session.busy = True
            try:
                before = await asyncio.to_thread(_snapshot, workdir)
                outcome = await self.backend.execute(
                    session.kernel, code, time_limit=self.settings.sandbox_timeout
                )
            except KernelError as exc:
                self._sessions.pop(thread_id, None)
                self._notices[thread_id] = _lost_reason(exc)
                with contextlib.suppress(Exception):
                    await self.backend.shutdown(session.kernel)
                return self._error(*_lost_error(exc, self.settings), notice=notice)
            except asyncio.CancelledError:
                # The run was stopped mid-call: KeyboardInterrupt the cell so its ``finally``
                # blocks run (half a second at most), then kill the kernel -- its state is
                # mid-cell and a late reply must never answer the next call.
                await asyncio.shield(self._interrupt(thread_id, session))
                raise
            finally:
                session.busy = False
                session.last_used = time.monotonic()
            produced = await asyncio.to_thread(
                self._collect, workdir, before, thread_id, ctx.call_id
            )
            over = getattr(self.backend, "over_quota", None)
            if (
                over is not None
                and outcome.error is None
                and await asyncio.to_thread(over, workdir)
            ):
                outcome.error = _quota_error(self.settings)
        output: dict[str, Any] = {
            "stdout": outcome.stdout,
            "result": outcome.result,
            "error": outcome.error,
            "files": [p.name for p in produced],
        }
        if notice:
            output["notice"] = notice
        return ToolResult(output=output, files=produced, is_error=outcome.error is not None)

    async def reset(self, thread_id: str) -> None:
        """Forget a thread's Python state (the next call starts fresh and is told so)."""
        lock = self._thread_locks.setdefault(thread_id, asyncio.Lock())
        async with lock:
            await self._drop(thread_id, "it was reset")

    async def aclose(self) -> None:
        """Kill every kernel, warm or bound. The tool can still be used afterwards."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(BaseException):
                await self._reaper
            self._reaper = None
        for task in list(self._warming):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        kernels = [s.kernel for s in self._sessions.values()] + self._warm
        self._sessions.clear()
        self._warm.clear()
        await asyncio.gather(*(self.backend.shutdown(k) for k in kernels), return_exceptions=True)
        closer = getattr(self.backend, "aclose", None)
        if closer is not None:
            await closer()

    # --- kernels ----------------------------------------------------------------------------

    @property
    def _idle(self) -> float:
        return float(self.settings.sandbox_idle_seconds)

    def _idle_expired(self, session: _Session) -> bool:
        return not session.busy and time.monotonic() - session.last_used > self._idle

    async def _claim(self, workdir: Path) -> Kernel:
        """A warm kernel bound to ``workdir``; a cold start when the pool is empty."""
        kernel: Kernel | None = None
        while self._warm:
            candidate = self._warm.pop()
            if candidate.alive:
                kernel = candidate
                break
        self._refill()
        if kernel is None:
            kernel = await self.backend.prestart()
        try:
            await self.backend.bind(kernel, workdir)
        except BaseException:
            await asyncio.shield(self.backend.shutdown(kernel))
            raise
        return kernel

    def _start_background(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())
        self._refill()

    def _refill(self) -> None:
        missing = self.settings.sandbox_pool_size - len(self._warm) - len(self._warming)
        for _ in range(max(0, missing)):
            task = asyncio.get_running_loop().create_task(self._warm_one())
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)

    async def _warm_one(self) -> None:
        try:
            kernel = await self.backend.prestart()
        except KernelStartError:
            log.exception("could not pre-start a sandbox kernel")
            return
        self._warm.append(kernel)

    async def _reap_loop(self) -> None:
        """Kill kernels idle for longer than ``sandbox_idle_seconds``."""
        period = max(0.2, min(30.0, self._idle / 3))
        while True:
            await asyncio.sleep(period)
            for thread_id, session in list(self._sessions.items()):
                lock = self._thread_locks.get(thread_id)
                if self._idle_expired(session) and not (lock and lock.locked()):
                    await self._drop(thread_id, f"it was idle for more than {self._idle:g} s")

    async def _interrupt(self, thread_id: str, session: _Session) -> None:
        interrupt = getattr(self.backend, "interrupt", None)
        if interrupt is not None:
            with contextlib.suppress(Exception):
                await interrupt(session.kernel)
        self._sessions.pop(thread_id, None)
        self._notices[thread_id] = _reset_notice("the previous call was cancelled")
        await self.backend.shutdown(session.kernel)

    async def _drop(self, thread_id: str, why: str) -> None:
        session = self._sessions.pop(thread_id, None)
        if session is None:
            return
        self._notices[thread_id] = _reset_notice(why)
        await self.backend.shutdown(session.kernel)

    # --- files ------------------------------------------------------------------------------

    @staticmethod
    def _stage_uploads(workdir: Path, files: Sequence[FileRef]) -> None:
        """Copy the thread's uploads into the folder under their original names, once.

        Copies, not hard links: the sandbox may write to its files, and a hard link would let
        it change the stored original under the data dir. The folder is writable by sandboxed
        code that may still be running, and we may be root here, so every operation goes
        through descriptors (see :mod:`.staging`): nothing is followed or chowned by name.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        for ref in files:
            try:
                stage_file(workdir, Path(ref.path), _safe_name(ref.name))
            except OSError:
                log.warning("could not stage %s into %s", ref.path, workdir, exc_info=True)

    def _collect(
        self, workdir: Path, before: dict[str, tuple[int, int]], thread_id: str, call_id: str
    ) -> list[ProducedFile]:
        """Copy new or changed regular files out of the folder for the channel to post.

        The copy is opened with O_NOFOLLOW and checked to be a regular file, so code that
        leaves a symlink (to /etc/shadow, say) cannot make the bot post a host file -- and
        sandboxed code still running in the background cannot swap it later.
        """
        after = _snapshot(workdir)
        changed = [name for name, sig in after.items() if before.get(name) != sig]
        outbox = self.settings.sandbox_dir / ".outbox" / thread_id / (call_id or uuid.uuid4().hex)
        produced: list[ProducedFile] = []
        root = os.path.realpath(workdir) + os.sep
        for name in sorted(changed)[:MAX_PRODUCED_FILES]:
            src = workdir / name
            dest = outbox / name
            try:
                fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_size > self.settings.file_max_bytes:
                    continue
                # O_NOFOLLOW guards the last component only; a parent folder swapped for a
                # symlink would still lead out, so check where the open file really is.
                if not os.readlink(f"/proc/self/fd/{fd}").startswith(root):
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with os.fdopen(os.dup(fd), "rb") as fin, open(dest, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
            except OSError:
                continue
            finally:
                os.close(fd)
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            produced.append(ProducedFile(path=str(dest), name=name, mime=mime))
        return produced

    def _error(self, type_: str, message: str, notice: str | None = None) -> ToolResult:
        output: dict[str, Any] = {
            "stdout": "",
            "result": None,
            "error": {"type": type_, "message": message, "traceback": ""},
            "files": [],
        }
        if notice:
            output["notice"] = notice
        return ToolResult(output=output, is_error=True)


def _snapshot(workdir: Path) -> dict[str, tuple[int, int]]:
    """name (relative) -> (mtime_ns, size) for regular files, hidden folders skipped."""
    out: dict[str, tuple[int, int]] = {}
    if not workdir.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(workdir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out[os.path.relpath(path, workdir)] = (st.st_mtime_ns, st.st_size)
            if len(out) >= MAX_SCAN_ENTRIES:
                return out
    return out


def _quota_error(settings: Settings) -> dict[str, str]:
    return {
        "type": "DiskQuotaExceeded",
        "message": f"The working folder holds more than its {settings.sandbox_disk_mb} MiB "
        "quota: delete files you no longer need before writing more.",
        "traceback": "",
    }


def _reset_notice(why: str) -> str:
    return (
        f"The Python state was reset because {why}: variables, imports and loaded data from "
        "earlier calls are gone -- re-run the setup code. Files in the working folder are kept."
    )


def _lost_reason(exc: KernelError) -> str:
    if isinstance(exc, KernelTimeout):
        return _reset_notice("the previous call timed out")
    if isinstance(exc, KernelDied):
        return _reset_notice("the previous call crashed the Python process")
    return _reset_notice("the previous call failed")


def _lost_error(exc: KernelError, settings: Settings) -> tuple[str, str]:
    if isinstance(exc, KernelTimeout):
        return (
            "TimeoutError",
            f"The code ran longer than {settings.sandbox_timeout:g} s and was stopped. The "
            "Python state was lost; make the code faster (or work on a sample) and re-run the "
            "setup it needs.",
        )
    if isinstance(exc, KernelDied):
        return (
            "SandboxCrash",
            f"The Python process stopped: {exc}. This usually means a resource limit "
            f"({settings.sandbox_memory_mb} MiB memory, CPU time) was hit. The state was "
            "lost; re-run the setup with less data or a cheaper approach.",
        )
    return ("SandboxError", f"The sandbox failed: {exc}. The state was lost.")
