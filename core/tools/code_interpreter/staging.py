"""Trusted-side file operations inside a folder the sandbox can write.

Sandboxed code may run at the same time (a background thread, a second process) and can swap
any name in its folder for a symlink between our checks and our actions. So nothing here acts
on a path inside the folder: the folder is opened once as a directory descriptor with
``O_NOFOLLOW``, files are created ``O_EXCL | O_NOFOLLOW`` relative to it, ownership and mode
are set with ``fchown``/``fchmod`` on the open descriptor, and renames and walks are relative
to descriptors (``os.fwalk`` never follows symlinks). Whatever the sandbox swaps in, the worst
it gets is its own file moved or left alone -- never a host file chowned, chmodded or written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def stage_file(workdir: Path, source: Path, name: str) -> bool:
    """Copy ``source`` into ``workdir`` as ``name`` unless that name exists; True if copied.

    The copy is written under a fresh private name, given the folder's owner through its
    descriptor, then renamed over ``name`` relative to the folder's descriptor.
    """
    dfd = os.open(workdir, DIR_FLAGS)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.stat(name, dir_fd=dfd, follow_symlinks=False)
            return False
        owner = os.fstat(dfd)
        tmp = f".upload-{uuid.uuid4().hex}"
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dfd,
        )
        try:
            with os.fdopen(fd, "wb", closefd=False) as fout, open(source, "rb") as fin:
                shutil.copyfileobj(fin, fout)
            # On the descriptor: the inode we created, whatever now sits at ``tmp``.
            with contextlib.suppress(OSError):
                os.fchown(fd, owner.st_uid, owner.st_gid)
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        try:
            # rename never follows a symlink: if ``tmp`` was swapped, the swap is what moves.
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        return True
    finally:
        os.close(dfd)


def chown_tree(workdir: Path, uid: int, gid: int) -> None:
    """Give ``workdir`` and everything under it to ``uid``, following no symlink anywhere."""
    dfd = os.open(workdir, DIR_FLAGS)
    try:
        os.fchown(dfd, uid, gid)
        os.fchmod(dfd, 0o700)
    finally:
        os.close(dfd)
    for _root, dirs, files, rootfd in os.fwalk(workdir, follow_symlinks=False):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                os.chown(name, uid, gid, dir_fd=rootfd, follow_symlinks=False)
