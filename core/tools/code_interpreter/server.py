"""``tallybot sandbox-server`` (or ``python -m core.tools.code_interpreter.server``): runs the
kernels for ``TALLYBOT_SANDBOX=container``, in a container of its own.

The bot connects over a unix socket on a volume both containers share (``--socket``); one
connection is one kernel. The bot may only name a thread folder (a plain name, resolved under
this server's own ``<data_dir>/sandbox``) and send code; every other decision -- uid, limits,
time limit ceiling -- is made here. Each thread's kernel runs under a uid of its own with its
folder ``0700``, so one thread cannot read another's even if it gets past the audit hook.

What makes this a boundary is the container around the server (see deploy/ and
docs/sandbox.md): no network, a read-only root, no secrets, no database, pids/memory/cpu
limits. The per-thread uid and the audit hook are layers inside it.

Protocol (client -> server): ``{"op": "claim", "thread": name}`` once, then
``{"op": "exec", "code": str, "time_limit": float}`` and, while a cell runs,
``{"op": "interrupt"}``. Server -> client: ``{"op": "ready", ...}`` on connect, ``{"ok": bool}``
for claim, ``{"op": "result", stdout, result, error, figures}`` or
``{"op": "lost", "kind": ..., "message": ...}`` (the kernel is gone; the server then closes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.config import Settings, load_settings
from core.tools.code_interpreter.backend import KernelError
from core.tools.code_interpreter.local import LocalKernel, LocalProcessBackend
from core.tools.code_interpreter.wire import MAX_REQUEST, FrameError, read_frame, write_frame

log = logging.getLogger(__name__)

THREAD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class SandboxServer:
    """Accepts connections and runs one jailed kernel per connection."""

    def __init__(self, settings: Settings, socket_path: Path) -> None:
        self.settings = settings
        self.socket_path = socket_path
        # Inside the sandbox container: per-thread uid + audit hook + rlimits; the container
        # is the boundary.
        self.backend = LocalProcessBackend(
            settings, mode="audit", file_size_mb=settings.sandbox_disk_mb
        )
        self._connections: set[asyncio.Task[Any]] = set()  # the handlers of open connections

    async def serve(self, started: asyncio.Event | None = None) -> None:
        """Listen until cancelled."""
        self.settings.sandbox_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        server = await asyncio.start_unix_server(self._handle, path=str(self.socket_path))
        os.chmod(self.socket_path, 0o660)
        info = self.backend.info()
        log.info("sandbox server on %s (%s)", self.socket_path, info)
        if not info["drops_uid"]:
            log.warning(
                "kernels keep this server's uid: run the server as root in its container (with "
                "a world-readable Python) so each thread gets a uid of its own"
            )
        if started is not None:
            started.set()
        try:
            async with server:
                try:
                    await server.serve_forever()
                finally:
                    await self._end_connections()
        finally:
            await self.backend.aclose()

    async def _end_connections(self) -> None:
        """End every open connection: its kernel shut down, its socket closed. asyncio's
        ``Server.close`` leaves accepted connections open (and from Python 3.12 its
        ``wait_closed`` waits for them), so a stopped server would otherwise leave their
        kernels running past the backend that unmounts their folders."""
        handlers = list(self._connections)
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def _thread_dir(self, name: object) -> Path:
        if not isinstance(name, str) or not THREAD_NAME.match(name):
            raise ValueError(f"bad thread folder name {name!r}")
        return self.settings.sandbox_dir / name

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kernel: LocalKernel | None = None
        running: asyncio.Task[None] | None = None
        me = asyncio.current_task()
        assert me is not None
        self._connections.add(me)
        me.add_done_callback(self._connections.discard)
        try:
            kernel = await self.backend.prestart()
            await write_frame(writer, {"op": "ready", "mode": "container"})
            while True:
                msg = await read_frame(reader, MAX_REQUEST)
                if msg is None:
                    return
                op = msg.get("op")
                if op == "claim" and kernel.workdir is None:
                    await write_frame(writer, await self._claim(kernel, msg))
                elif op == "exec" and kernel.workdir is not None and not _busy(running):
                    running = asyncio.create_task(self._exec(kernel, msg, writer))
                elif op == "interrupt" and _busy(running):
                    assert running is not None
                    running.cancel()
                    await asyncio.gather(running, return_exceptions=True)
                    await self.backend.interrupt(kernel)
                    return
                else:
                    return  # out of protocol: drop the kernel
        except (FrameError, KernelError, OSError) as exc:
            log.warning("sandbox connection ended: %s", exc)
        finally:
            if running is not None:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
            if kernel is not None:
                await self.backend.shutdown(kernel)
            writer.close()
            with contextlib.suppress(Exception):  # closed for good before the handler ends
                await writer.wait_closed()

    async def _claim(self, kernel: LocalKernel, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            workdir = self._thread_dir(msg.get("thread"))
            await self.backend.prepare(workdir)
            await self.backend.bind(kernel, workdir)
        except (ValueError, KernelError) as exc:
            return {"ok": False, "message": str(exc)}
        return {"ok": True}

    async def _exec(
        self, kernel: LocalKernel, msg: dict[str, Any], writer: asyncio.StreamWriter
    ) -> None:
        asked = msg.get("time_limit")
        limit = self.settings.sandbox_timeout
        if isinstance(asked, (int, float)) and 0 < asked < limit:
            limit = float(asked)
        try:
            outcome = await self.backend.execute(kernel, str(msg.get("code", "")), time_limit=limit)
        except KernelError as exc:
            await write_frame(writer, {"op": "lost", "kind": exc.kind, "message": str(exc)})
            writer.close()
            return
        over = self.backend.over_quota(kernel.workdir) if kernel.workdir else False
        await write_frame(
            writer,
            {
                "op": "result",
                "stdout": outcome.stdout,
                "result": outcome.result,
                "error": outcome.error,
                "figures": outcome.figures,
                "over_quota": over,
            },
        )


def _busy(task: asyncio.Task[None] | None) -> bool:
    return task is not None and not task.done()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m core.tools.code_interpreter.server --socket PATH``."""
    parser = argparse.ArgumentParser(prog="tallybot sandbox-server", description=__doc__)
    parser.add_argument("--socket", type=Path, default=None, help="unix socket to listen on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    socket_path = args.socket or settings.sandbox_socket
    if socket_path is None:
        parser.error("--socket or TALLYBOT_SANDBOX_SOCKET is required")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(SandboxServer(settings, socket_path).serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
