"""What isolation this machine can give local kernels, and the environment they get.

``namespaces`` needs Linux, root (or CAP_SYS_ADMIN) and util-linux ``unshare``; the probe runs
once per process. ``audit`` is the Python-level fallback (not a boundary, see docs/sandbox.md).
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Literal

Mode = Literal["namespaces", "audit"]
UNSHARE_ARGS = ("--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child")


@functools.cache
def namespaces_available() -> tuple[bool, str]:
    """Probe once whether this process can build the namespaces jail."""
    if not sys.platform.startswith("linux"):
        return False, "not Linux"
    if os.geteuid() != 0:
        return False, "not running as root (mount namespaces and uid changes need it)"
    unshare = shutil.which("unshare")
    if unshare is None:
        return False, "the util-linux 'unshare' command is missing"
    try:
        probe = subprocess.run(
            [unshare, *UNSHARE_ARGS, "--mount-proc", "--", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"unshare failed: {exc}"
    if probe.returncode != 0:
        return False, f"unshare failed: {probe.stderr.decode(errors='replace').strip()[:200]}"
    return True, "ok"


def sandbox_mode(preference: str = "auto") -> Mode:
    """The isolation this machine gives: ``namespaces`` when possible, else ``audit``.

    ``preference`` ``"audit"`` forces the fallback; ``"namespaces"`` insists and raises
    :class:`RuntimeError` when the OS cannot provide it.
    """
    if preference == "audit":
        return "audit"
    ok, why = namespaces_available()
    if preference == "namespaces" and not ok:
        raise RuntimeError(f"namespaces sandbox unavailable: {why}")
    return "namespaces" if ok else "audit"


def _world_traversable(path: Path) -> bool:
    """Whether another uid could reach ``path`` (every ancestor o+x)."""
    path = path.resolve()
    for part in [path, *path.parents]:
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def scrubbed_env(home: str, mplconfig: str, tmpdir: str | None) -> dict[str, str]:
    """The whole environment a kernel gets: nothing inherited, so no keys or tokens."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": mplconfig,
        # One BLAS thread: each extra thread costs address space under RLIMIT_AS and counts
        # against RLIMIT_NPROC.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_MAX_THREADS": "1",
    }
    if tmpdir:
        env["TMPDIR"] = tmpdir
    return env
