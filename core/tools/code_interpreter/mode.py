"""Which isolation the code interpreter runs under (``TALLYBOT_SANDBOX``), and the tool or its
absence that follows from it.

``auto`` picks ``namespaces`` where this process can build the jail, else ``container`` when a
sandbox service is configured (``TALLYBOT_SANDBOX_SOCKET``), else ``off``. ``audit`` is never
picked automatically: it is a Python-level fence, not a security boundary, and choosing it says
so in the log. ``off`` means the model is not offered the code interpreter at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.tools.code_interpreter.local import namespaces_available

if TYPE_CHECKING:
    from core.config import Settings
    from core.tools.code_interpreter.tool import CodeInterpreterTool

log = logging.getLogger(__name__)

ENABLE_HINT = (
    "enable it with TALLYBOT_SANDBOX=namespaces (run as root with util-linux unshare, or give "
    "the container CAP_SYS_ADMIN) or TALLYBOT_SANDBOX=container with a `tallybot sandbox-server` "
    "reached through TALLYBOT_SANDBOX_SOCKET (the default in deploy/); see docs/sandbox.md"
)
# Appended to the instructions when the interpreter is off, so the model tells the person in
# one line instead of pretending to compute.
OFF_NOTE = (
    "The code interpreter is turned off on this server (no safe sandbox is available). If the "
    "person asks for analysis, charts or calculations over a file, say so in one line -- in "
    "Chinese: 「本服务器未启用代码沙箱，暂时无法运行数据分析，请联系管理员开启。」, in English: "
    '"Code analysis is not enabled on this server; ask the administrator to enable the '
    'sandbox." -- and still answer what you can without running code.'
)


class SandboxUnavailable(RuntimeError):
    """The mode set in ``TALLYBOT_SANDBOX`` cannot run on this machine."""


@dataclass(frozen=True, slots=True)
class SandboxChoice:
    """The resolved mode and why it was chosen (for the log)."""

    mode: str
    why: str


def resolve_mode(settings: Settings) -> SandboxChoice:
    """Turn ``settings.sandbox`` into the mode in force; raises :class:`SandboxUnavailable`
    when an explicit mode cannot run here."""
    wanted = settings.sandbox
    ok, why_not = namespaces_available()
    if wanted == "namespaces" and not ok:
        raise SandboxUnavailable(f"TALLYBOT_SANDBOX=namespaces but {why_not}")
    if wanted == "container" and settings.sandbox_socket is None:
        raise SandboxUnavailable("TALLYBOT_SANDBOX=container needs TALLYBOT_SANDBOX_SOCKET")
    if wanted != "auto":
        return SandboxChoice(wanted, "set by TALLYBOT_SANDBOX")
    if ok:
        return SandboxChoice("namespaces", "auto: Linux namespaces are available")
    if settings.sandbox_socket is not None:
        return SandboxChoice("container", f"auto: no namespaces ({why_not}); service configured")
    return SandboxChoice("off", f"auto: no namespaces ({why_not}) and no sandbox service")


def build_interpreter(settings: Settings) -> CodeInterpreterTool | None:
    """The code interpreter in the mode settings ask for, or None when it is off (logged)."""
    from core.tools.code_interpreter.tool import CodeInterpreterTool

    choice = resolve_mode(settings)
    if choice.mode == "off":
        log.warning("code interpreter is off (%s); %s", choice.why, ENABLE_HINT)
        return None
    if choice.mode == "audit":
        log.warning(
            "code interpreter runs in audit mode: a Python audit hook, NOT a security boundary "
            "(code can escape it); use it only with trusted users"
        )
    if choice.mode == "container":
        from core.tools.code_interpreter.client import ContainerBackend

        log.info("code interpreter sandbox: container (%s)", settings.sandbox_socket)
        return CodeInterpreterTool(settings, ContainerBackend(settings))  # type: ignore[arg-type]
    from core.tools.code_interpreter.local import LocalProcessBackend

    log.info("code interpreter sandbox: %s (%s)", choice.mode, choice.why)
    backend = LocalProcessBackend(settings, mode=choice.mode, file_size_mb=settings.sandbox_disk_mb)
    return CodeInterpreterTool(settings, backend)  # type: ignore[arg-type]
