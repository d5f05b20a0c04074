"""Container mode, bot side: kernels that live in ``tallybot sandbox-server`` (see
:mod:`.server`), one unix-socket connection each. The bot still stages uploads into and
collects files from the thread folder, on a volume it shares with the server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.tools.code_interpreter.backend import (
    ExecOutcome,
    KernelDied,
    KernelError,
    KernelProtocolError,
    KernelStartError,
    KernelTimeout,
)
from core.tools.code_interpreter.local import START_TIMEOUT
from core.tools.code_interpreter.quota import folder_bytes
from core.tools.code_interpreter.wire import FrameError, read_frame, write_frame

if TYPE_CHECKING:
    from core.config import Settings

LOST = {"timeout": KernelTimeout, "died": KernelDied, "protocol": KernelProtocolError}


class RemoteKernel:
    """One connection to the sandbox server = one kernel there."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.workdir: Path | None = None
        self.reader, self.writer = reader, writer
        self.over_quota = False

    @property
    def alive(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()


class ContainerBackend:
    """:class:`~.backend.SandboxBackend` speaking to ``TALLYBOT_SANDBOX_SOCKET``."""

    mode = "container"

    def __init__(self, settings: Settings) -> None:
        if settings.sandbox_socket is None:
            raise KernelStartError("container mode needs TALLYBOT_SANDBOX_SOCKET")
        self.settings = settings
        self.socket = settings.sandbox_socket
        self.max_frame = 6 * (settings.sandbox_max_output + 16_000) + 64_000

    def info(self) -> dict[str, Any]:
        return {"mode": self.mode, "socket": str(self.socket)}

    async def prestart(self) -> RemoteKernel:
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.socket))
        except OSError as exc:
            raise KernelStartError(f"the sandbox service is not reachable: {exc}") from exc
        kernel = RemoteKernel(reader, writer)
        try:
            ready = await asyncio.wait_for(read_frame(reader, self.max_frame), START_TIMEOUT)
        except (TimeoutError, FrameError, OSError) as exc:
            await self.shutdown(kernel)
            raise KernelStartError(f"the sandbox service did not start a kernel: {exc}") from exc
        if not ready or ready.get("op") != "ready":
            await self.shutdown(kernel)
            raise KernelStartError(f"the sandbox service sent {ready!r} instead of ready")
        return kernel

    async def bind(self, kernel: RemoteKernel, workdir: Path) -> None:  # type: ignore[override]
        try:
            await write_frame(kernel.writer, {"op": "claim", "thread": workdir.name})
            reply = await asyncio.wait_for(read_frame(kernel.reader, self.max_frame), START_TIMEOUT)
        except (TimeoutError, FrameError, OSError) as exc:
            await self.shutdown(kernel)
            raise KernelStartError(f"could not confine the Python sandbox: {exc}") from exc
        if not reply or not reply.get("ok"):
            await self.shutdown(kernel)
            why = reply.get("message") if reply else "connection closed"
            raise KernelStartError(f"could not confine the Python sandbox: {why}")
        kernel.workdir = workdir

    async def start(self, workdir: Path) -> RemoteKernel:
        kernel = await self.prestart()
        await self.bind(kernel, workdir)
        return kernel

    async def execute(  # type: ignore[override]
        self, kernel: RemoteKernel, code: str, *, time_limit: float
    ) -> ExecOutcome:
        try:
            await write_frame(kernel.writer, {"op": "exec", "code": code, "time_limit": time_limit})
            # The server enforces the limit; the margin covers its kill and the reply.
            reply = await asyncio.wait_for(
                read_frame(kernel.reader, self.max_frame), time_limit + 15
            )
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(write_frame(kernel.writer, {"op": "interrupt"}), 1)
            await self.shutdown(kernel)
            raise
        except TimeoutError:
            await self.shutdown(kernel)
            raise KernelTimeout(f"the code ran longer than {time_limit:g} s") from None
        except (FrameError, OSError) as exc:
            await self.shutdown(kernel)
            raise KernelDied(f"the sandbox connection broke: {exc}") from exc
        if reply is None:
            await self.shutdown(kernel)
            raise KernelDied("the sandbox service closed the connection")
        if reply.get("op") == "lost":
            await self.shutdown(kernel)
            error: type[KernelError] = LOST.get(str(reply.get("kind")), KernelError)
            raise error(str(reply.get("message")))
        kernel.over_quota = bool(reply.get("over_quota"))
        return ExecOutcome(
            stdout=str(reply.get("stdout") or ""),
            result=reply.get("result"),
            error=reply.get("error"),
            figures=[str(f) for f in reply.get("figures") or []],
        )

    def over_quota(self, workdir: Path) -> bool:
        """The folder's size against the quota (the server has no filesystem of its own per
        thread in a container without CAP_SYS_ADMIN; size the shared volume to bound it)."""
        limit = self.settings.sandbox_disk_mb * 1024 * 1024
        return folder_bytes(workdir, limit) > limit

    async def shutdown(self, kernel: RemoteKernel) -> None:  # type: ignore[override]
        kernel.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(kernel.writer.wait_closed(), 5)
