"""The sandbox backend interface: start a kernel, bind it to a folder, execute code, shut down.

The tool (:mod:`.tool`) owns pooling, per-thread sessions, idle reaping and output shaping; a
backend only knows how to run one Python REPL somewhere isolated. The local-process backend
(:mod:`.local`) is the one implemented.

Adding a container backend (docker / podman)
--------------------------------------------
Implement :class:`SandboxBackend` with these mappings:

* ``prestart()`` -- ``docker run -d --rm --network none --read-only --pids-limit 64
  --memory <sandbox_memory_mb>m --cpus 1 --cap-drop ALL --security-opt no-new-privileges
  --user 65534:65534 --tmpfs /tmp:size=64m <image> sleep infinity`` where ``<image>`` has Python,
  pandas, matplotlib, openpyxl, ``fonts-wqy-microhei`` and a copy of ``kernel.py``. Then start
  the REPL with ``docker exec -i <id> python -I /kernel.py`` as an asyncio subprocess: the wire
  protocol (length-prefixed JSON frames on stdin/stdout, see ``kernel.py``) is unchanged, so
  :class:`~.local.LocalKernel`'s framing code can be reused as is.
* ``bind(kernel, workdir)`` -- a running container cannot gain a bind mount, so either create the
  container at bind time (``-v <workdir>:/mnt/data:rw``, and keep the warm pool at the image
  level), or keep one data volume per warm container and copy the thread's files in. Send the
  ``claim`` frame with ``mode="container"`` so the kernel only chdirs to ``/mnt/data`` (the
  container already is the jail; extend ``kernel.claim`` with that branch).
* ``execute`` -- identical to the local backend (frames over the exec'd process's pipes).
* ``shutdown`` -- ``docker rm -f <id>``.

Report ``mode = "container"`` so ``sandbox_mode()`` callers can tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class KernelError(Exception):
    """The kernel could not run the code; the kernel is gone and its state with it."""

    kind = "kernel_error"


class KernelStartError(KernelError):
    """The sandbox process could not be started or bound to its folder."""

    kind = "start_failed"


class KernelTimeout(KernelError):
    """A call ran past the wall-time limit; the kernel was killed."""

    kind = "timeout"


class KernelDied(KernelError):
    """The kernel process exited mid-call (memory or CPU limit, a crash, or it killed itself)."""

    kind = "died"


class KernelProtocolError(KernelError):
    """The kernel sent something that is not a valid reply (too large or not JSON)."""

    kind = "protocol"


@dataclass(slots=True)
class ExecOutcome:
    """What one ``execute`` produced, before the tool shapes it for the model."""

    stdout: str
    result: str | None
    error: dict[str, str] | None
    figures: list[str] = field(default_factory=list)


@runtime_checkable
class Kernel(Protocol):
    """A handle on one sandboxed REPL process."""

    id: str
    workdir: Path | None

    @property
    def alive(self) -> bool:
        """False once the process has exited."""
        ...


@runtime_checkable
class SandboxBackend(Protocol):
    """Where and how kernels run. All methods are coroutines; none may block the loop."""

    @property
    def mode(self) -> str:
        """The isolation in force: ``namespaces``, ``audit`` (fallback) or ``container``."""
        ...

    async def prestart(self) -> Kernel:
        """Start an unbound, warm kernel (data stack imported, no thread visible to it)."""
        ...

    async def bind(self, kernel: Kernel, workdir: Path) -> None:
        """Confine a warm kernel to ``workdir`` for good (jail, uid, limits)."""
        ...

    async def start(self, workdir: Path) -> Kernel:
        """``prestart`` then ``bind``: a cold start."""
        ...

    async def execute(self, kernel: Kernel, code: str, *, time_limit: float) -> ExecOutcome:
        """Run ``code`` in the kernel's persistent namespace. Raises :class:`KernelError`
        subclasses when the kernel is lost (timeout, death); user exceptions come back in
        ``ExecOutcome.error``."""
        ...

    async def shutdown(self, kernel: Kernel) -> None:
        """Kill the kernel and everything it started. Idempotent."""
        ...

    def info(self) -> dict[str, Any]:
        """Facts worth logging: mode, limits, font."""
        ...
