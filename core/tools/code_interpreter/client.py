"""Container mode, parent side: placeholder until the sandbox service exists (see
docs/sandbox.md); choosing it fails loudly instead of silently running unconfined."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.tools.code_interpreter.mode import SandboxUnavailable

if TYPE_CHECKING:
    from core.config import Settings


class ContainerBackend:
    """Kernels run by ``tallybot sandbox-server`` behind a unix socket."""

    def __init__(self, settings: Settings) -> None:
        raise SandboxUnavailable("container mode is not implemented yet")
