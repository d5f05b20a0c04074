"""One local kernel process: its pipes, its uid, freezing it between calls, reading how it
ended, and finding or killing what it started."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from pathlib import Path
from typing import Any

from core.tools.code_interpreter.isolation import Mode


class LocalKernel:
    """One kernel subprocess and its framed pipes."""

    def __init__(self, proc: asyncio.subprocess.Process, mode: Mode, ready: dict[str, Any]):
        self.id = uuid.uuid4().hex[:12]
        self.proc = proc
        self.mode = mode
        self.ready = ready
        self.workdir: Path | None = None
        self.uid: int | None = None
        self.jail_root: Path | None = None
        self.stderr_tail = b""
        # The Python process itself (under ``unshare`` in namespaces mode): frozen between calls.
        self.host_pid: int | None = None
        self._stderr_task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def freeze(self, frozen: bool) -> None:
        """SIGSTOP (or SIGCONT) the kernel process, every thread of it at once."""
        if self.host_pid is not None and self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.host_pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def killed_by(self) -> signal.Signals | None:
        """The signal that ended the process (seen through ``unshare``'s 128 + N), if any."""
        code = self.proc.returncode
        number = -code if code is not None and code < 0 else None
        if number is None and self.mode == "namespaces" and code is not None and code > 128:
            number = code - 128
        try:
            return signal.Signals(number) if number else None
        except ValueError:
            return None

    def describe_exit(self) -> str:
        code = self.proc.returncode
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        if self.mode == "namespaces" and code > 128:
            # unshare reports its child's death by signal N as exit status 128 + N.
            try:
                return f"killed by {signal.Signals(code - 128).name}"
            except ValueError:
                pass
        return f"exited with status {code}"


def _kernel_pid(unshare_pid: int) -> int | None:
    """The host pid of ``unshare``'s only child (the kernel, pid 1 of its namespace)."""
    try:
        with open(f"/proc/{unshare_pid}/task/{unshare_pid}/children") as fh:
            children = fh.read().split()
        if children:
            return int(children[0])
    except (OSError, ValueError):
        pass
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == unshare_pid:
                    return int(entry.name)
            except (OSError, ValueError, IndexError):
                continue
    return None


def _kill_uid(uid: int) -> None:
    """SIGKILL every process owned by ``uid`` (sandbox uids are never shared)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue
