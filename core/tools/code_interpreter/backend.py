"""The sandbox backend interface: start a kernel, bind it to a folder, execute code, shut down.

The tool (:mod:`.tool`) owns pooling, per-thread sessions, idle reaping and output shaping; a
backend only knows how to run one Python REPL somewhere isolated. The local-process backend
(:mod:`.local`) is the one implemented.

Container mode
--------------
:class:`~.client.ContainerBackend` talks to ``tallybot sandbox-server`` (:mod:`.server`) over a
unix socket: one connection per kernel, the server runs :class:`~.local.LocalProcessBackend`
inside its own locked-down container. Optional methods a backend may add, used by the tool
when present: ``prepare(workdir)`` (quota set-up before staging), ``over_quota(workdir)``,
``interrupt(kernel)`` (KeyboardInterrupt on cancel) and ``aclose()``.

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
