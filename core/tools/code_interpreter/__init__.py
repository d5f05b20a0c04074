"""The code interpreter: a stateful, sandboxed Python kernel per thread.

Public API:

* :class:`CodeInterpreterTool` -- the ``code_interpreter`` tool (``run``, ``reset``, ``aclose``,
  ``start``, ``describe_files``).
* :func:`describe_files` -- system-prompt text saying where uploads are inside the sandbox.
* :func:`sandbox_mode` -- what local kernels get here: ``"namespaces"`` or ``"audit"``.
* :func:`~.mode.build_interpreter` / :func:`~.mode.resolve_mode` -- ``TALLYBOT_SANDBOX``
  (``auto|namespaces|container|audit|off``) turned into a tool, or None when off.
* :class:`SandboxBackend` / :class:`LocalProcessBackend` / :class:`~.client.ContainerBackend`
  -- where kernels run.

Modules: ``tool`` (model contract, pool, sessions, files), ``mode`` (the setting), ``backend``
(interface), ``local`` (subprocess backend), ``isolation`` (probe, environment), ``process``
(one kernel process), ``staging`` (descriptor-only file work in the sandbox's folder),
``quota`` (per-thread filesystems), ``server``/``client``/``wire`` (container mode),
``kernel`` (the REPL that runs inside the sandbox). What each mode guarantees:
docs/sandbox.md.
"""

from core.tools.code_interpreter.backend import (
    ExecOutcome,
    Kernel,
    KernelDied,
    KernelError,
    KernelStartError,
    KernelTimeout,
    SandboxBackend,
)
from core.tools.code_interpreter.local import LocalProcessBackend, sandbox_mode
from core.tools.code_interpreter.tool import CodeInterpreterTool, describe_files

__all__ = [
    "CodeInterpreterTool",
    "ExecOutcome",
    "Kernel",
    "KernelDied",
    "KernelError",
    "KernelStartError",
    "KernelTimeout",
    "LocalProcessBackend",
    "SandboxBackend",
    "describe_files",
    "sandbox_mode",
]
