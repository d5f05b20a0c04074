"""The code interpreter: a stateful, sandboxed Python kernel per thread.

Public API:

* :class:`CodeInterpreterTool` -- the ``code_interpreter`` tool (``run``, ``reset``, ``aclose``,
  ``start``, ``describe_files``).
* :func:`describe_files` -- system-prompt text saying where uploads are inside the sandbox.
* :func:`sandbox_mode` -- ``"namespaces"`` (Linux namespaces jail) or ``"audit"`` (fallback).
* :class:`SandboxBackend` / :class:`LocalProcessBackend` -- where kernels run; see
  :mod:`.backend` for adding a container backend.

Modules: ``tool`` (model contract, pool, sessions, files), ``backend`` (interface), ``local``
(subprocess backend, isolation modes), ``kernel`` (the REPL that runs inside the sandbox).
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
