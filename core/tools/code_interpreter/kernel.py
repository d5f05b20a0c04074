"""The REPL server that runs inside a sandbox process. Standard library only at module level.

This file is executed as a script (``python -I kernel.py``) by the local backend; it must not
import anything from ``core`` because the jail it builds does not contain the project tree.

Life of a kernel:

1. **warm** -- started by the pool in an empty staging folder, it pre-imports numpy, pandas and
   matplotlib (Agg backend, CJK font) and says ``ready``. No user code runs in this state, so a
   warm kernel has nothing to show of any thread.
2. **claim** -- the parent binds it to one thread folder. In ``namespaces`` mode the kernel is
   still root inside fresh mount/net/pid/ipc/uts namespaces (the ``unshare`` command made them):
   it builds a new root from read-only bind mounts (/usr, the Python install), a synthetic /etc,
   a few device nodes, a small private /tmp and the thread folder at ``/mnt/data``, pivots into
   it, drops to an unprivileged uid and sets resource limits. In ``audit`` mode (no namespaces)
   it chdirs into the folder, optionally drops the uid, sets the limits and installs an audit
   hook that refuses sockets, processes, ctypes and file access outside the folder.
3. **exec** -- runs code like a notebook cell: the last expression's repr is the result; open
   matplotlib figures are saved as PNG files into the folder and closed.

Wire protocol on two private pipe fds (the original stdin/stdout, duplicated at start-up):
frames of a 4-byte big-endian length followed by UTF-8 JSON. fd 0 becomes /dev/null and fds
1/2 become a capture pipe, so anything user code (or a C library, or a child process) prints
is collected -- bounded -- into the call's ``stdout`` instead of corrupting the protocol.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import re
import signal
import struct
import sys
import threading
import traceback
from typing import Any

KERNEL_PID = os.getpid()
_TRUNC = "\n[output truncated: {n} more characters not shown]\n"

# ---------------------------------------------------------------------------------------------
# protocol
# ---------------------------------------------------------------------------------------------

_RFD = os.dup(0)  # requests from the parent (os.dup makes it non-inheritable: not for children)
_WFD = os.dup(1)  # replies to the parent


def _read_exact(n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(_RFD, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def recv() -> dict[str, Any]:
    (size,) = struct.unpack(">I", _read_exact(4))
    return json.loads(_read_exact(size).decode("utf-8"))


def send(msg: dict[str, Any]) -> None:
    data = json.dumps(msg, ensure_ascii=False, default=str).encode("utf-8", "replace")
    data = struct.pack(">I", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[os.write(_WFD, view) :]


# ---------------------------------------------------------------------------------------------
# bounded output capture (Python-level writes and fd 1/2 writes land in the same buffer)
# ---------------------------------------------------------------------------------------------


class Capture:
    """A text sink that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self) -> None:
        self.limit = 64 * 1024
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0
        self.lock = threading.Lock()

    def reset(self, limit: int) -> None:
        with self.lock:
            self.limit, self.parts, self.kept, self.dropped = limit, [], 0, 0

    def add(self, text: str) -> None:
        with self.lock:
            room = self.limit - self.kept
            if room > 0:
                piece = text[:room]
                self.parts.append(piece)
                self.kept += len(piece)
                self.dropped += len(text) - len(piece)
            else:
                self.dropped += len(text)

    def value(self) -> str:
        with self.lock:
            out = "".join(self.parts)
            return out + _TRUNC.format(n=self.dropped) if self.dropped else out


CAPTURE = Capture()


class CaptureStream:
    """``sys.stdout`` / ``sys.stderr`` replacement writing into :data:`CAPTURE`."""

    encoding = "utf-8"
    errors = "replace"

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        CAPTURE.add(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1  # the capture pipe: faulthandler, subprocess and friends still get captured


_PIPE_R, _PIPE_W = os.pipe()
os.dup2(_PIPE_W, 1)
os.dup2(_PIPE_W, 2)
os.close(_PIPE_W)
_devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(_devnull, 0)
os.close(_devnull)
_fd_seen = threading.Event()
_fd_token = b""


def _drain_fd_output() -> None:
    """Read fds 1/2 forever so a writer never blocks; bytes beyond the cap are only counted."""
    pending = b""
    while True:
        chunk = os.read(_PIPE_R, 65536)
        if not chunk:
            return
        pending += chunk
        token = _fd_token
        if token and token in pending:
            before, _, after = pending.partition(token)
            CAPTURE.add(before.decode("utf-8", "replace"))
            pending = after
            _fd_seen.set()
            continue
        # Keep a tail that could be the start of a token split across reads.
        keep = len(token) if token else 0
        if len(pending) > keep:
            cut = len(pending) - keep
            CAPTURE.add(pending[:cut].decode("utf-8", "replace"))
            pending = pending[cut:]


threading.Thread(target=_drain_fd_output, name="fd-capture", daemon=True).start()
sys.stdout = CaptureStream()  # type: ignore[assignment]
sys.stderr = CaptureStream()  # type: ignore[assignment]


def _sync_fd_output() -> None:
    """Wait until everything written to fds 1/2 so far has been captured."""
    global _fd_token
    _fd_token = os.urandom(16).hex().encode()
    _fd_seen.clear()
    try:
        os.write(1, _fd_token)
    except OSError:
        return
    _fd_seen.wait(2.0)
    _fd_token = b""


# ---------------------------------------------------------------------------------------------
# warm-up: the expensive imports happen before any thread is bound
# ---------------------------------------------------------------------------------------------

CJK_FAMILIES = [
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
]


# Fonts shipped as Python packages (a dependency of tallybot), so a plain ``pip install``
# renders Chinese labels without any system font package: (module, file inside it).
PACKAGED_FONTS = [("noto_cjk_sans_otc", "NotoSansCJK-Regular.ttc")]


def _add_packaged_fonts(font_manager: Any) -> None:
    import importlib.util

    for module, filename in PACKAGED_FONTS:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            path = os.path.join(folder, filename)
            if os.path.exists(path):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue


# What still gets through when user code resets the warning filters: the warning line and
# the source line Python prints under it.
_FONT_NOISE = re.compile(
    r"^.*(?:[Gg]lyph \d+ .*missing from|findfont: |[Ff]ont family .* not found).*\n(?:  .*\n)?",
    re.MULTILINE,
)


def quiet_font_warnings() -> None:
    """Glyph and font-lookup warnings are noise to the model: they never reach the output."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=r".*[Gg]lyph .* missing from")
    warnings.filterwarnings("ignore", message=r".*[Ff]ont family .* not found")
    warnings.filterwarnings("ignore", module=r"matplotlib\.font_manager")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    logging.getLogger("matplotlib.mathtext").setLevel(logging.ERROR)


def warm_up() -> dict[str, Any]:
    """Import the data stack and pick a CJK font; returns facts for the ``ready`` message."""
    info: dict[str, Any] = {"font": None}
    try:
        import numpy  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as exc:
        info["import_error"] = str(exc)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: F401
        from matplotlib import font_manager

        _add_packaged_fonts(font_manager)
        names = {f.name for f in font_manager.fontManager.ttflist}
        if not names.intersection(CJK_FAMILIES):
            # The font cache predates the font package: rescan once.
            font_manager.fontManager = font_manager._load_fontmanager(try_read_cache=False)  # type: ignore[attr-defined]
            names = {f.name for f in font_manager.fontManager.ttflist}
        found = [n for n in CJK_FAMILIES if n in names]
        matplotlib.rcParams["font.family"] = "sans-serif"
        matplotlib.rcParams["font.sans-serif"] = found + ["DejaVu Sans"]
        # CJK fonts often lack U+2212; a hyphen keeps negative tick labels readable.
        matplotlib.rcParams["axes.unicode_minus"] = False
        info["font"] = found[0] if found else None
    except ImportError as exc:
        info["import_error"] = str(exc)
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        pass
    return info


# ---------------------------------------------------------------------------------------------
# claim: jail, privileges, limits
# ---------------------------------------------------------------------------------------------

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None) -> None:
    import ctypes

    libc = _libc()
    enc = [None if s is None else s.encode() for s in (src, dst, fstype, data)]
    if libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {src} -> {dst}: {os.strerror(err)}")


def _bind(src: str, dst: str, *, writable: bool = False) -> None:
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    _mount(src, dst, None, MS_BIND | MS_REC, None)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID
    if not writable:
        flags |= MS_RDONLY
    if not src.startswith("/dev/"):
        flags |= MS_NODEV
    _mount(None, dst, None, flags, None)


def _pivot(root: str) -> None:
    import ctypes
    import platform

    os.chdir(root)
    os.makedirs(".old", exist_ok=True)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    libc = _libc()
    if number is not None and libc.syscall(number, b".", b".old") == 0:
        os.chdir("/")
        if libc.umount2(b"/.old", MNT_DETACH) != 0:
            raise OSError(ctypes.get_errno(), "umount old root")
        os.rmdir("/.old")
    else:
        # Unknown architecture: chroot is as good once we drop every capability below.
        os.rmdir(".old")
        os.chroot(root)
        os.chdir("/")


def build_jail(req: dict[str, Any]) -> None:
    """Namespaces mode: a new root holding only what the Python stack needs."""
    workdir, root, uid, gid = req["workdir"], req["jail_root"], req["uid"], req["gid"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)  # never leak our mounts to the host
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    # The private /tmp first: a Python install or venv that lives under /tmp (a CI checkout)
    # is then bound on top of it instead of being hidden by it.
    os.makedirs(root + "/tmp")
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + name
        if os.path.islink(host):
            os.symlink(os.readlink(host), os.path.join(root, name))
        elif os.path.isdir(host):
            _bind(host, root + host)
    _bind("/usr", root + "/usr")
    for path in req.get("ro_paths", []):
        if os.path.exists(path) and not os.path.exists(root + path):
            _bind(path, root + path)
    # The data dir must stay invisible even if a bound tree happens to contain it.
    for hidden in req.get("hide_paths", []):
        if os.path.isdir(root + hidden):
            _mount("tmpfs", root + hidden, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
    etc = root + "/etc"
    os.makedirs(etc)
    files = {
        "passwd": f"sandbox:x:{uid}:{gid}:sandbox:/mnt/data:/usr/sbin/nologin\n",
        "group": f"sandbox:x:{gid}:\n",
        "hosts": "127.0.0.1 localhost\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    }
    for name, text in files.items():
        with open(os.path.join(etc, name), "w") as fh:
            fh.write(text)
    for name in ("ld.so.cache", "mime.types", "localtime"):
        if os.path.exists("/etc/" + name):
            with open("/etc/" + name, "rb") as src, open(os.path.join(etc, name), "wb") as dst:
                dst.write(src.read())
    os.makedirs(root + "/dev")
    _mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for dev in ("null", "zero", "urandom", "random", "full"):
        _bind("/dev/" + dev, root + "/dev/" + dev, writable=True)
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    _bind(workdir, root + "/mnt/data", writable=True)
    _pivot(root)
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    os.chdir("/mnt/data")


def drop_privileges(uid: int, gid: int) -> None:
    """Become an unprivileged uid for good: no groups, no capabilities, no setuid gains."""
    libc = _libc()
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    # Changing the uid clears the parent-death signal ``unshare --kill-child`` armed; re-arm it.
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise RuntimeError("privileges were not dropped")


_LIMITS: dict[str, Any] = {}


def set_limits(req: dict[str, Any]) -> None:
    import resource

    _LIMITS.update(
        disk_mb=req.get("disk_mb"), fsize_mb=req.get("fsize_mb"), own_uid=req.get("uid") is not None
    )

    mem = int(req["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = int(req["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    fsize = int(req["fsize_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    if req.get("nproc"):
        # Per-uid; meaningful only because every kernel runs under a uid of its own.
        resource.setrlimit(resource.RLIMIT_NPROC, (req["nproc"], req["nproc"]))
    # A too-big write then fails with EFBIG (an OSError) instead of killing the kernel.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# --- audit mode: a best-effort Python-level fence --------------------------------------------

_READ_EVENTS = {"os.listdir", "os.scandir", "glob.glob", "os.chdir"}
_WRITE_EVENTS = {
    "os.mkdir",
    "os.rmdir",
    "os.remove",
    "os.rename",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.utime",
    "os.link",
    "os.symlink",
    "shutil.rmtree",
    "shutil.copyfile",
    "shutil.copymode",
    "shutil.copystat",
    "shutil.copytree",
    "shutil.move",
}
_DENY_EVENTS = {
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "os.forkpty",
    "os.killpg",
    "os.startfile",
    "pty.spawn",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "ctypes.dlsym/handle",
    "ctypes.call_function",
    "ctypes.set_errno",
    "socket.__new__",
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "sys._current_frames",
    "sys.setprofile",
    "sys.settrace",
    "os.add_dll_directory",
    "signal.pthread_kill",
}


def install_audit_hook(workdir: str, read_roots: list[str], deny_roots: list[str]) -> None:
    """Refuse processes, sockets, ctypes and file access outside ``workdir`` (plus read-only
    library roots). Paths are resolved first, so a symlink pointing out is refused too."""
    real = os.path.realpath
    write_roots = (real(workdir),)
    readable = tuple({real(p) for p in read_roots} | set(write_roots) | {"/dev/null"})
    denied = tuple(real(p) for p in deny_roots)
    my_pid = os.getpid()
    # Frozen copies held by the closure: user code can reach this module's globals (it is
    # ``__main__``) but must not be able to shrink the deny list.
    read_events, write_events = frozenset(_READ_EVENTS), frozenset(_WRITE_EVENTS)
    deny_events = frozenset(_DENY_EVENTS)

    def under(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def check(path: Any, write: bool) -> None:
        if isinstance(path, int) or path is None:
            return  # an fd we already hold
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        full = real(os.fspath(path))
        if under(full, denied) and not under(full, write_roots):
            raise PermissionError(f"sandbox: access to {path!r} is not allowed")
        if not under(full, write_roots if write else readable):
            raise PermissionError(f"sandbox: access to {path!r} is not allowed")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            write = bool(mode and any(c in str(mode) for c in "wax+")) or bool(
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            check(path, write)
        elif event == "sqlite3.connect":
            # SQLite opens its file in C, past the "open" event: check the database path.
            db = os.fsdecode(args[0]) if args and args[0] is not None else ""
            if db.startswith("file:"):  # a URI (uri=True): the path part is what opens
                from urllib.parse import unquote, urlsplit

                db = unquote(urlsplit(db).path) or ":memory:"
            if db not in (":memory:", ""):
                check(db, True)
        elif event in read_events:
            check(args[0] if args else ".", False)
        elif event in write_events:
            for arg in args[:2]:
                if isinstance(arg, (str, bytes, os.PathLike)):
                    check(arg, True)
        elif event in deny_events:
            raise PermissionError(f"sandbox: {event} is not allowed")
        elif event == "os.kill" and args[0] != my_pid:
            raise PermissionError("sandbox: signalling other processes is not allowed")
        elif event == "object.__setattr__" and args[1] in ("__code__", "__globals__"):
            raise PermissionError("sandbox: changing code objects is not allowed")

    sys.addaudithook(hook)


def claim(req: dict[str, Any]) -> dict[str, Any]:
    """Bind this warm kernel to one thread folder and lock it down for good."""
    mode = req["mode"]
    if mode == "namespaces":
        build_jail(req)
    else:
        os.chdir(req["workdir"])
    if req.get("uid") is not None:
        drop_privileges(int(req["uid"]), int(req["gid"]))
    else:
        # No uid change: just make sure we die with our parent, even while busy.
        _libc().prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    os.environ.clear()
    os.environ.update(req["env"])
    set_limits(req)
    if mode == "audit":
        install_audit_hook(req["workdir"], req["read_roots"], req["deny_roots"])
    return {"ok": True, "cwd": os.getcwd(), "uid": os.getuid()}


# ---------------------------------------------------------------------------------------------
# exec: one notebook cell
# ---------------------------------------------------------------------------------------------

NAMESPACE: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
_figure_counter = 0


def _short_traceback(exc: BaseException, limit: int) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<cell>"]
    lines = traceback.format_list(frames[-5:]) + traceback.format_exception_only(exc)
    text = "".join(lines)
    return text if len(text) <= limit else "..." + text[-limit:]


def _save_figures() -> list[str]:
    """Save every open pyplot figure as PNG into the folder, then close it."""
    global _figure_counter
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    names: list[str] = []
    for num in list(plt.get_fignums()):
        fig = plt.figure(num)
        while True:
            _figure_counter += 1
            name = f"chart_{_figure_counter:03d}.png"
            if not os.path.exists(name):
                break
        try:
            fig.savefig(name, format="png", dpi=110, bbox_inches="tight")
            names.append(name)
        except Exception as exc:  # a broken figure must not lose the cell's other output
            CAPTURE.add(f"\n[could not save figure {num}: {type(exc).__name__}: {exc}]\n")
        finally:
            plt.close(fig)
    return names


def _patched_show(*_args: Any, **_kwargs: Any) -> None:
    """``plt.show()`` in a headless kernel: save now, like a notebook renders inline."""
    _SHOWN.extend(_save_figures())


_SHOWN: list[str] = []


def execute(req: dict[str, Any]) -> dict[str, Any]:
    """Run one cell; returns stdout, result (repr of the last expression), error, figures."""
    limit = int(req.get("max_output", 64 * 1024))
    result_limit = int(req.get("max_result", 8000))
    CAPTURE.reset(limit)
    _SHOWN.clear()
    quiet_font_warnings()  # again each cell: user code may have reset the filters
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.show = _patched_show  # type: ignore[attr-defined]
    result: str | None = None
    error: dict[str, str] | None = None
    try:
        import resource

        # RLIMIT_CPU counts the kernel's whole life; give each cell a fresh soft budget.
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = int(used.ru_utime + used.ru_stime)
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        budget = spent + int(req.get("cpu_seconds", 60)) + 1
        if hard == resource.RLIM_INFINITY or budget <= hard:
            resource.setrlimit(resource.RLIMIT_CPU, (budget, hard))
    except (ImportError, ValueError, OSError):
        pass
    try:
        tree = ast.parse(req["code"], "<cell>", "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<cell>", "exec"), NAMESPACE)
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), NAMESPACE)
            if value is not None:
                NAMESPACE["_"] = value
                text = repr(value)
                if len(text) > result_limit:
                    text = text[:result_limit] + f"... [truncated, {len(text)} characters]"
                result = text
    except BaseException as exc:  # noqa: BLE001 -- user code may raise anything, even SystemExit
        if os.getpid() != KERNEL_PID:
            os._exit(0)  # a forked child of user code must never answer the parent
        error = {
            "type": type(exc).__name__,
            "message": str(exc)[:2000],
            "traceback": _short_traceback(exc, 2000),
        }
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            error["type"] = "DiskQuotaExceeded"
            error["message"] = (
                f"the working folder is full (quota {_LIMITS.get('disk_mb')} MiB): delete files "
                f"you no longer need, then retry ({error['message']})"
            )
        elif isinstance(exc, OSError) and exc.errno == errno.EFBIG:
            error["message"] += f" (one file may hold at most {_LIMITS.get('fsize_mb')} MiB)"
        if isinstance(exc, MemoryError):
            error["message"] = error["message"] or "out of memory (sandbox memory limit)"
    if os.getpid() != KERNEL_PID:
        os._exit(0)
    figures = list(_SHOWN)
    try:
        figures += _save_figures()
    except BaseException as exc:  # noqa: BLE001
        CAPTURE.add(f"\n[could not save figures: {exc}]\n")
    _stop_leftover_processes()
    _reap_children()
    _sync_fd_output()
    stdout = _FONT_NOISE.sub("", CAPTURE.value())
    return {"stdout": stdout, "result": result, "error": error, "figures": figures}


def _stop_leftover_processes() -> None:
    """No code runs between calls: kill every process the cell left behind.

    Only with a uid of our own (namespaces mode, or audit mode as root): ``kill(-1)`` then
    reaches exactly this kernel's processes -- in a pid namespace only its members -- and never
    ourselves. Threads cannot be killed from Python; the parent freezes the whole kernel with
    SIGSTOP between calls instead.
    """
    if _LIMITS.get("own_uid"):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            return  # ESRCH: nothing left behind
        # Wait (briefly) for them to be gone, so none is seen alive once the call returned.
        import time

        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.005)


def _reap_children() -> None:
    """As pid 1 of a pid namespace we inherit orphans; zombies would eat the process limit."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    info = warm_up()
    send({"op": "ready", "pid": os.getpid(), **info})
    claimed = False
    while True:
        try:
            req = recv()
        except EOFError:
            os._exit(0)
        op = req.get("op")
        try:
            if op == "claim" and not claimed:
                reply = claim(req)
                claimed = True
            elif op == "exec" and claimed:
                reply = execute(req)
            else:
                reply = {"ok": False, "message": f"unexpected {op!r}"}
        except BaseException as exc:  # noqa: BLE001 -- report, never die silently
            if os.getpid() != KERNEL_PID:
                os._exit(0)
            reply = {"ok": False, "message": f"{type(exc).__name__}: {exc}"}
            if op == "claim":
                send(reply)
                os._exit(3)  # half-built jail: never run code in it
        send(reply)


if __name__ == "__main__":
    main()
