"""Per-thread disk quota: each thread folder is its own small filesystem.

Where the bot runs as root (the ``namespaces`` mode needs that anyway) the folder is a loop
mount of a sparse ext4 image of ``TALLYBOT_SANDBOX_DISK_MB`` under ``<sandbox_dir>/.disks``
(a path the jail hides). The kernel writes into that filesystem only, so a thread can never
use more than its image on the data volume -- the database keeps its space -- and a full image
is an ordinary ``ENOSPC`` inside the cell. The image is mounted on the host (the kernel's
jail binds the mounted folder), lives on across kernels and bot restarts, and is unmounted
when the tool closes.

Without root there is no mount: :func:`folder_bytes` checked after every call plus the
per-file ``RLIMIT_FSIZE`` are a soft limit only (a single call can overshoot by what it writes
before it returns); see docs/sandbox.md.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# Every mount this process made and has not undone: a tool used again after ``aclose`` (or
# never closed) must still not leave mounts behind when the process exits.
_MADE: set[str] = set()
# Warm-up and a first call may set up the same folder from two worker threads at once.
_LOCK = threading.Lock()


def _forget_all() -> None:
    for point in sorted(_MADE, key=len, reverse=True):  # nested mounts first
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    _MADE.clear()


atexit.register(_forget_all)

MKFS = ("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "root_owner=0:0")
MOUNT_OPTIONS = "loop,nosuid,nodev"


def _run(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise OSError(f"{cmd[0]} failed: {proc.stderr.decode(errors='replace').strip()[:300]}")


@functools.cache
def loop_mounts_available() -> tuple[bool, str]:
    """Probe once whether this process can make and loop-mount an ext4 image."""
    if os.geteuid() != 0:
        return False, "not root"
    if not (shutil.which("mkfs.ext4") and shutil.which("mount") and shutil.which("umount")):
        return False, "mkfs.ext4/mount missing (e2fsprogs, util-linux)"
    with tempfile.TemporaryDirectory(prefix="tallybot-quota-") as tmp:
        image, point = Path(tmp) / "probe.img", Path(tmp) / "mnt"
        point.mkdir()
        try:
            with open(image, "wb") as fh:
                fh.truncate(4 * 1024 * 1024)
            _run(*MKFS, str(image))
            _run("mount", "-o", MOUNT_OPTIONS, str(image), str(point))
            _run("umount", str(point))
        except (OSError, subprocess.SubprocessError) as exc:
            return False, str(exc)
    return True, "ok"


def is_mount_point(path: Path) -> bool:
    """Whether ``path`` is a mount point, bind mounts included (``os.path.ismount`` misses a
    folder bound onto itself)."""
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                point = line.split()[4]
                # mountinfo escapes space, tab, newline and backslash as octal.
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), point)
                if point == target:
                    return True
    except OSError:
        return os.path.ismount(path)
    return False


def make_shared(sandbox_dir: Path) -> bool:
    """Make ``sandbox_dir`` a shared mount (a bind onto itself) so folder mounts made after a
    warm kernel started still propagate into its namespace (``unshare --propagation slave``);
    True when this call created the bind."""
    sandbox_dir.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        created = False
        if not is_mount_point(sandbox_dir):
            _run("mount", "--bind", str(sandbox_dir), str(sandbox_dir))
            _MADE.add(os.path.realpath(sandbox_dir))
            created = True
        _run("mount", "--make-shared", str(sandbox_dir))
        return created


def ensure_mounted(workdir: Path, disks_dir: Path, size_mb: int) -> bool:
    """Make ``workdir`` the mount point of its own ``size_mb`` image; True when it is one.

    Whatever was in an unmounted ``workdir`` (an older version's folder) is copied in.
    """
    with _LOCK:
        return _ensure_mounted(workdir, disks_dir, size_mb)


def _ensure_mounted(workdir: Path, disks_dir: Path, size_mb: int) -> bool:
    if is_mount_point(workdir):
        return True
    disks_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(disks_dir, 0o700)
    image = disks_dir / f"{workdir.name}.img"
    if not image.exists():
        with open(image, "wb") as fh:
            fh.truncate(size_mb * 1024 * 1024)  # sparse: blocks are used only as written
        _run(*MKFS, str(image))
    old: Path | None = None
    if workdir.exists() and any(workdir.iterdir()):
        old = workdir.with_name(f".{workdir.name}.pre-quota")
        os.rename(workdir, old)
    workdir.mkdir(parents=True, exist_ok=True)
    _run("mount", "-o", MOUNT_OPTIONS, str(image), str(workdir))
    _MADE.add(os.path.realpath(workdir))
    with contextlib.suppress(OSError):
        (workdir / "lost+found").rmdir()  # e2fsck recreates it; the kernel need not see it
    if old is not None:
        shutil.copytree(old, workdir, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(old, ignore_errors=True)
    return True


def unmount(workdir: Path) -> None:
    """Detach the folder's image (lazily: a process still inside only delays it)."""
    with _LOCK:
        _unmount(workdir)


def _unmount(workdir: Path) -> None:
    if is_mount_point(workdir):
        try:
            _run("umount", "-l", str(workdir))
            _MADE.discard(os.path.realpath(workdir))
        except OSError:
            log.warning("could not unmount %s", workdir, exc_info=True)


def folder_bytes(workdir: Path, stop_at: int) -> int:
    """Bytes used by regular files under ``workdir`` (no symlink followed), stopping early
    once past ``stop_at``."""
    total = 0
    for _root, _dirs, files, rootfd in os.fwalk(workdir, follow_symlinks=False):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(name, dir_fd=rootfd, follow_symlinks=False).st_blocks * 512
        if total > stop_at:
            break
    return total
