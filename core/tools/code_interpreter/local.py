"""The local-process backend: one Python subprocess per thread, jailed with Linux namespaces
when the OS allows, fenced by an audit hook when it does not.

Isolation modes (see :func:`sandbox_mode`):

``namespaces``
    Needs Linux, root (or CAP_SYS_ADMIN) and the util-linux ``unshare`` command. Each kernel
    gets fresh mount, network, pid, ipc and uts namespaces; a new root made of read-only bind
    mounts (/usr, the Python install), a synthetic /etc, /dev/{null,zero,random,urandom,full},
    its own /proc, a 64 MiB private /tmp and the thread folder at ``/mnt/data`` (also its cwd
    and HOME). It then runs as a uid of its own (no capabilities, ``no_new_privs``, nosuid
    mounts) under RLIMIT_AS/CPU/NPROC/FSIZE/NOFILE. The network namespace has only a loopback
    that is down, so nothing can be reached, not even the host's 127.0.0.1.

``audit``
    The fallback everywhere else (not root, no ``unshare``, a container without
    CAP_SYS_ADMIN). Same resource limits, same scrubbed environment, cwd = the thread folder, a
    uid of its own when running as root and the Python install is world-readable, plus a
    ``sys.addaudithook`` fence that refuses sockets, process creation, signals to other
    processes, ctypes and file access outside the folder (symlinks are resolved first).
    An audit hook is not a security boundary against a determined attacker (it is Python-level
    only); it stops accidents and casual attempts. ``/mnt/data`` does not exist in this mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import os
import shutil
import signal
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.tools.code_interpreter.backend import (
    ExecOutcome,
    KernelDied,
    KernelProtocolError,
    KernelStartError,
    KernelTimeout,
)
from core.tools.code_interpreter.isolation import (
    UNSHARE_ARGS,
    Mode,
    _world_traversable,
    namespaces_available,
    sandbox_mode,
    scrubbed_env,
)
from core.tools.code_interpreter.process import LocalKernel, _kernel_pid, _kill_uid
from core.tools.code_interpreter.quota import (
    ensure_mounted,
    folder_bytes,
    loop_mounts_available,
    make_shared,
    unmount,
)
from core.tools.code_interpreter.staging import chown_tree

if TYPE_CHECKING:
    from core.config import Settings

log = logging.getLogger(__name__)

KERNEL_SCRIPT = Path(__file__).with_name("kernel.py")
# Kernels run as uids nobody else uses, one per kernel, so the per-uid process limit and file
# ownership separate them. Far above the usual 1000-60000 range of real accounts.
UID_BASE = 2_000_000
UID_SLOTS = 50_000
START_TIMEOUT = 60.0  # a cold start imports pandas + matplotlib; slow disks need the margin
LIFETIME_CPU_SECONDS = 6 * 3600  # hard RLIMIT_CPU over a kernel's whole life
NPROC_LIMIT = 64

__all__ = [
    "LocalKernel",
    "LocalProcessBackend",
    "namespaces_available",
    "sandbox_mode",
    "scrubbed_env",
]


class LocalProcessBackend:
    """Kernels as local subprocesses (see the module docstring for the two isolation modes)."""

    def __init__(
        self,
        settings: Settings,
        *,
        mode: str = "auto",
        file_size_mb: int = 256,
        nproc: int = NPROC_LIMIT,
    ) -> None:
        self.settings = settings
        self._mode: Mode = sandbox_mode(mode)
        self.file_size_mb = file_size_mb
        self.nproc = nproc
        self._uids = itertools.cycle(range(UID_BASE, UID_BASE + UID_SLOTS))
        self._uids_in_use: set[int] = set()
        self.staging_dir = settings.sandbox_dir / ".staging"
        self.disk_mb = settings.sandbox_disk_mb
        self.disks_dir = settings.sandbox_dir / ".disks"
        self._mounted: set[Path] = set()
        self._shared: bool | None = None  # None: not set up yet; True: we made the bind
        self.mplconfig_dir = settings.sandbox_dir / ".mplconfig"
        # Largest reply frame accepted: stdout and result are capped inside, JSON escaping can
        # grow text up to 6x (\uXXXX); anything beyond is a misbehaving kernel.
        self.max_frame = 6 * (settings.sandbox_max_output + 16_000) + 64_000

    # --- facts ----------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    def info(self) -> dict[str, Any]:
        return {
            "mode": self._mode,
            "why_not_namespaces": None if self._mode == "namespaces" else namespaces_available()[1],
            "memory_mb": self.settings.sandbox_memory_mb,
            "timeout_s": self.settings.sandbox_timeout,
            "file_size_mb": self.file_size_mb,
            "nproc": self.nproc,
            "disk_mb": self.disk_mb,
            "disk_quota": "loop mount" if loop_mounts_available()[0] else "checked after calls",
            # Audit mode keeps the bot's uid when the new uid could not reach Python.
            "drops_uid": self._drops_uid(),
        }

    def _drops_uid(self) -> bool:
        if os.geteuid() != 0:
            return False
        if self._mode == "namespaces":
            return True
        # Audit mode: the new uid must still reach Python and the thread folder on the host.
        prefixes = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve()}
        return all(_world_traversable(p) for p in prefixes) and _world_traversable(
            self.settings.sandbox_dir
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def prestart(self) -> LocalKernel:
        """Start a warm kernel in an empty staging folder (it sees no thread until bound)."""
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.mplconfig_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-I", str(KERNEL_SCRIPT)]
        if self._mode == "namespaces":
            unshare = shutil.which("unshare") or "unshare"
            # slave: a thread folder's quota mount made after this warm start still shows up
            # inside; the kernel makes everything private when it is claimed.
            await asyncio.to_thread(self._quota_mounts)
            cmd = [unshare, *UNSHARE_ARGS, "--propagation", "slave", "--", *cmd]
        env = scrubbed_env(str(self.staging_dir), str(self.mplconfig_dir), None)
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.staging_dir,
                env=env,
                # Own process group: the kernel cannot signal ours by group, and we can kill
                # the whole group (unshare + kernel) at once.
                start_new_session=True,
            )
        except OSError as exc:
            raise KernelStartError(f"could not start the Python sandbox: {exc}") from exc
        kernel = LocalKernel(proc, self._mode, {})
        kernel._stderr_task = asyncio.create_task(self._drain_stderr(kernel))
        try:
            ready = await asyncio.wait_for(self._recv(kernel), START_TIMEOUT)
        except asyncio.CancelledError:
            # Cancelled mid-start (aclose during warm-up): never leave the process behind.
            await asyncio.shield(self.shutdown(kernel))
            raise
        except (TimeoutError, KernelDied, KernelProtocolError) as exc:
            await self.shutdown(kernel)
            raise KernelStartError(
                f"the Python sandbox did not start ({exc or type(exc).__name__}): "
                f"{kernel.stderr_tail.decode(errors='replace')[-500:]}"
            ) from exc
        if ready.get("op") != "ready":
            await self.shutdown(kernel)
            raise KernelStartError(f"the Python sandbox sent {ready!r} instead of ready")
        kernel.ready = ready
        kernel.host_pid = _kernel_pid(proc.pid) if self._mode == "namespaces" else proc.pid
        return kernel

    def _quota_mounts(self) -> bool:
        """Whether folders get their own filesystem; sets up mount propagation once."""
        if not loop_mounts_available()[0]:
            return False
        if self._shared is None:
            try:
                self._shared = make_shared(self.settings.sandbox_dir.resolve())
            except OSError:
                log.warning(
                    "no mount propagation: disk quota checked after calls only", exc_info=True
                )
                self._shared = False
                return False
        return True

    async def prepare(self, workdir: Path) -> None:
        """Give ``workdir`` its disk quota (its own filesystem) before anything is put in it."""
        workdir = workdir.resolve()
        if workdir in self._mounted or not await asyncio.to_thread(self._quota_mounts):
            workdir.mkdir(parents=True, exist_ok=True)
            return
        try:
            await asyncio.to_thread(ensure_mounted, workdir, self.disks_dir, self.disk_mb)
        except OSError as exc:
            raise KernelStartError(f"could not set up the working folder's quota: {exc}") from exc
        self._mounted.add(workdir)

    def over_quota(self, workdir: Path) -> bool:
        """After a call: whether a folder without its own filesystem grew past the quota."""
        if workdir.resolve() in self._mounted:
            return False  # the filesystem itself refused the excess
        limit = self.disk_mb * 1024 * 1024
        return folder_bytes(workdir, limit) > limit

    async def aclose(self) -> None:
        """Unmount every folder image this backend mounted (kernels must be shut down)."""
        mounted, self._mounted = self._mounted, set()
        for workdir in mounted:
            await asyncio.to_thread(unmount, workdir)
        if self._shared:
            await asyncio.to_thread(unmount, self.settings.sandbox_dir.resolve())
        self._shared = None

    async def bind(self, kernel: LocalKernel, workdir: Path) -> None:  # type: ignore[override]
        """Jail a warm kernel into ``workdir``: after this it only ever sees that folder."""
        workdir = workdir.resolve()
        uid = self._next_uid() if self._drops_uid() else None
        await asyncio.to_thread(self._prepare_workdir, workdir, uid)
        jail_root: Path | None = None
        if self._mode == "namespaces":
            jail_root = self.staging_dir / f"jail-{kernel.id}"
            jail_root.mkdir(parents=True, exist_ok=True)
        home = "/mnt/data" if self._mode == "namespaces" else str(workdir)
        tmpdir = "/tmp" if self._mode == "namespaces" else None
        read_roots = sorted(
            {
                sys.prefix,
                sys.base_prefix,
                sys.exec_prefix,
                os.path.dirname(os.path.realpath(sys.executable)),
                str(self.mplconfig_dir),
                "/usr/share",
                "/usr/lib",
                "/usr/local/share/fonts",
                "/dev/urandom",
                "/dev/null",
                "/proc/self",
            }
        )
        req = {
            "op": "claim",
            "mode": self._mode,
            "workdir": str(workdir),
            "jail_root": str(jail_root) if jail_root else None,
            "uid": uid,
            "gid": uid,
            "env": scrubbed_env(
                home, "/tmp/matplotlib" if tmpdir else str(self.mplconfig_dir), tmpdir
            ),
            "memory_mb": self.settings.sandbox_memory_mb,
            "cpu_seconds": LIFETIME_CPU_SECONDS,
            "fsize_mb": self.file_size_mb,
            "disk_mb": self.disk_mb,
            "nproc": self.nproc if uid is not None else None,
            # Namespaces mode: what to bind read-only into the new root, what to hide there.
            "ro_paths": sorted({sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix)}),
            "hide_paths": [str(self.settings.data_dir.resolve())],
            # Audit mode: what the hook lets the code read besides its folder, and never.
            "read_roots": read_roots,
            "deny_roots": [str(self.settings.data_dir.resolve())],
        }
        kernel.workdir = workdir
        kernel.uid = uid
        kernel.jail_root = jail_root
        try:
            await self._send(kernel, req)
            reply = await asyncio.wait_for(self._recv(kernel), START_TIMEOUT)
        except (TimeoutError, KernelDied, KernelProtocolError, OSError) as exc:
            await self.shutdown(kernel)
            raise KernelStartError(f"could not confine the Python sandbox: {exc}") from exc
        if not reply.get("ok"):
            await self.shutdown(kernel)
            raise KernelStartError(f"could not confine the Python sandbox: {reply.get('message')}")

    async def start(self, workdir: Path) -> LocalKernel:
        kernel = await self.prestart()
        await self.bind(kernel, workdir)
        return kernel

    async def execute(  # type: ignore[override]
        self, kernel: LocalKernel, code: str, *, time_limit: float
    ) -> ExecOutcome:
        req = {
            "op": "exec",
            "code": code,
            "max_output": self.settings.sandbox_max_output,
            "max_result": min(8000, self.settings.sandbox_max_output),
            # A backstop behind the wall-clock limit, with margin: on a loaded machine the
            # parent's timer can fire late, and the wall limit should be what the user sees.
            "cpu_seconds": math.ceil(time_limit) + 5,
        }
        started = asyncio.get_running_loop().time()
        try:
            kernel.freeze(False)
            await self._send(kernel, req)
            reply = await asyncio.wait_for(self._recv(kernel), time_limit)
            # No code runs between calls: threads the cell left behind stop with the process.
            kernel.freeze(True)
        except TimeoutError:
            await self.shutdown(kernel)
            raise KernelTimeout(f"the code ran longer than {time_limit:g} s") from None
        except (KernelDied, OSError) as exc:
            await self.shutdown(kernel)
            ran = asyncio.get_running_loop().time() - started
            if kernel.killed_by() == signal.SIGXCPU or ran >= time_limit:
                # The CPU-time backstop fired (or the kernel died only once its time was up):
                # to the user this is the same time limit, never "a crash".
                raise KernelTimeout(f"the code ran longer than {time_limit:g} s") from exc
            raise KernelDied(f"the Python process {kernel.describe_exit()}") from exc
        except KernelProtocolError:
            await self.shutdown(kernel)
            raise
        if "stdout" not in reply:
            await self.shutdown(kernel)
            raise KernelProtocolError(f"unexpected reply from the kernel: {str(reply)[:200]}")
        return ExecOutcome(
            stdout=str(reply.get("stdout") or ""),
            result=reply.get("result"),
            error=reply.get("error"),
            figures=[str(f) for f in reply.get("figures") or []],
        )

    async def interrupt(self, kernel: LocalKernel, grace: float = 0.5) -> bool:
        """KeyboardInterrupt the running cell; True when the kernel answered within ``grace``
        seconds and can be kept (else the caller kills it)."""
        if not kernel.alive or kernel.host_pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(kernel.host_pid, signal.SIGINT)
        try:
            reply = await asyncio.wait_for(self._recv(kernel), grace)
        except (TimeoutError, KernelDied, KernelProtocolError):
            return False
        kernel.freeze(True)
        return "stdout" in reply

    async def shutdown(self, kernel: LocalKernel) -> None:  # type: ignore[override]
        proc = kernel.proc
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 10)
        if kernel.uid is not None:
            # A child that escaped the process group (setsid) still runs as this uid; in
            # namespaces mode the pid namespace already took it down with the kernel.
            await asyncio.to_thread(_kill_uid, kernel.uid)
            self._uids_in_use.discard(kernel.uid)
        if kernel._stderr_task is not None:
            kernel._stderr_task.cancel()
            with contextlib.suppress(BaseException):
                await kernel._stderr_task
        if kernel.jail_root is not None:
            with contextlib.suppress(OSError):
                kernel.jail_root.rmdir()

    # --- helpers ------------------------------------------------------------------------------

    def _next_uid(self) -> int:
        for _ in range(UID_SLOTS):
            uid = next(self._uids)
            if uid not in self._uids_in_use:
                self._uids_in_use.add(uid)
                return uid
        raise KernelStartError("no free sandbox uid")

    @staticmethod
    def _prepare_workdir(workdir: Path, uid: int | None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        if uid is None:
            return
        # The kernel's uid owns the folder (and only it may enter); root, the bot, still can.
        # An earlier kernel may have left symlinks or be racing us: descriptors only.
        chown_tree(workdir, uid, uid)

    async def _send(self, kernel: LocalKernel, msg: dict[str, Any]) -> None:
        stdin = kernel.proc.stdin
        if stdin is None or not kernel.alive:
            raise KernelDied("kernel is not running")
        data = json.dumps(msg, ensure_ascii=False).encode("utf-8")
        stdin.write(struct.pack(">I", len(data)) + data)
        try:
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise KernelDied("kernel closed its input") from exc

    async def _recv(self, kernel: LocalKernel) -> dict[str, Any]:
        stdout = kernel.proc.stdout
        assert stdout is not None
        try:
            header = await stdout.readexactly(4)
            (size,) = struct.unpack(">I", header)
            if size > self.max_frame:
                raise KernelProtocolError(f"reply of {size} bytes exceeds {self.max_frame}")
            body = await stdout.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(kernel.proc.wait(), 5)
            raise KernelDied(kernel.describe_exit()) from exc
        try:
            msg = json.loads(body.decode("utf-8"))
        except ValueError as exc:
            raise KernelProtocolError("reply is not JSON") from exc
        if not isinstance(msg, dict):
            raise KernelProtocolError("reply is not an object")
        return msg

    @staticmethod
    async def _drain_stderr(kernel: LocalKernel) -> None:
        """Keep the last few KiB of whatever reaches the real stderr (start-up failures)."""
        stream = kernel.proc.stderr
        if stream is None:
            return
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return
            kernel.stderr_tail = (kernel.stderr_tail + chunk)[-4096:]
