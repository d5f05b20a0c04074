"""Containment: every attempt is shown to fail (the outcome is asserted), and the sandbox keeps
working afterwards. Runs in both modes; where the two modes contain an attempt differently
(the jail hides a path, the audit hook refuses it), both outcomes are spelled out."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from core.tools.code_interpreter import CodeInterpreterTool, LocalProcessBackend
from tests.sandbox.conftest import (
    DB_SECRET,
    FILE_SIZE_MB,
    OTHER_SECRET,
    Sandbox,
    make_settings,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

T = "thread_sec"  # one thread for the attempts that leave the kernel alive


def _blocked(out: dict, *types: str) -> None:
    assert out["error"] is not None, out
    assert out["error"]["type"] in types, out["error"]


async def test_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:telegram-secret")
    monkeypatch.setenv("TALLYBOT_DATA_DIR", "/secret/data")
    settings = make_settings(tmp_path, sandbox_pool_size=0)
    for mode in ("auto", "audit"):
        # Started after the variables were set, so inheritance would show.
        tool = CodeInterpreterTool(settings, LocalProcessBackend(settings, mode=mode))
        try:
            out = await Sandbox(tool, settings).out(
                "import os\nprint(sorted(os.environ))\n"
                "open('/proc/self/environ', 'rb').read() if os.path.exists('/proc/self') else b''"
            )
        finally:
            await tool.aclose()
        text = out["stdout"] + str(out["result"])
        for secret in ("OPENAI_API_KEY", "TELEGRAM_BOT_TOKEN", "TALLYBOT_", "sk-test", "secret"):
            assert secret not in text, (mode, text)
        assert "MPLBACKEND" in out["stdout"] and "HOME" in out["stdout"]


async def test_database_file_is_out_of_reach(sandbox: Sandbox) -> None:
    db = sandbox.settings.data_dir / "tallybot.db"
    rel = os.path.relpath(db, sandbox.workdir(T))
    for path in (str(db), rel, str(sandbox.settings.data_dir)):
        out = await sandbox.out(
            f"import os\np = {path!r}\nopen(p).read() if os.path.isfile(p) else os.listdir(p)", T
        )
        # Jail: the path does not exist in the new root. Fallback: the hook refuses it.
        _blocked(out, "FileNotFoundError", "PermissionError")
        assert DB_SECRET not in str(out)


async def test_other_threads_are_out_of_reach(sandbox: Sandbox) -> None:
    other = sandbox.settings.sandbox_dir / "thread_other" / "secret.txt"
    for path in (str(other), "../thread_other/secret.txt", str(other.parent)):
        out = await sandbox.out(
            f"import os\np = {path!r}\nopen(p).read() if os.path.isfile(p) else os.listdir(p)", T
        )
        _blocked(out, "FileNotFoundError", "PermissionError")
        assert OTHER_SECRET not in str(out)


async def test_writes_outside_the_folder_fail(sandbox: Sandbox) -> None:
    data = sandbox.settings.data_dir
    targets = [
        data / "evil.txt",
        sandbox.settings.sandbox_dir / "thread_other" / "evil.txt",
        Path("/etc/evil-sandbox.txt"),
        Path("/usr/evil-sandbox.txt"),
    ]
    for target in targets:
        for path in (str(target), os.path.relpath(target, sandbox.workdir(T))):
            out = await sandbox.out(f"open({path!r}, 'w').write('x')", T)
            _blocked(out, "FileNotFoundError", "PermissionError", "OSError")
            assert not target.exists(), target
    await sandbox.works(T)


async def test_symlink_escape_fails(sandbox: Sandbox) -> None:
    workdir = sandbox.workdir(T)
    # Planted from outside (as an extracted archive could), then read from inside.
    os.symlink("/etc/passwd", workdir / "pw")
    os.symlink(sandbox.settings.data_dir, workdir / "dd")
    out = await sandbox.out("open('pw').read()", T)
    if sandbox.mode == "namespaces":
        # The jail's /etc/passwd is synthetic: only the sandbox user, no host accounts.
        assert out["error"] is None and "root:" not in out["result"] and "sandbox:" in out["result"]
    else:
        _blocked(out, "PermissionError")
    out = await sandbox.out("open('dd/tallybot.db').read()", T)
    _blocked(out, "FileNotFoundError", "PermissionError")
    assert DB_SECRET not in str(out)

    # Made from inside, and offered to the bot as a "new file": never followed when posted.
    result = await sandbox.call(
        f"import os\nos.symlink({str(sandbox.settings.data_dir / 'tallybot.db')!r}, 'leak.png')", T
    )
    if sandbox.mode == "audit":
        _blocked(result.output, "PermissionError")
    assert result.files == [] and result.output["files"] == []
    await sandbox.works(T)


async def test_no_connection_to_the_host_loopback(sandbox: Sandbox) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        code = (
            f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "print('CONNECTED')"
        )
        out = await sandbox.out(code, T)
        _blocked(out, "OSError", "PermissionError", "ConnectionRefusedError", "TimeoutError")
        assert "CONNECTED" not in out["stdout"]
        listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody ever connected
    finally:
        listener.close()


async def test_no_connection_to_the_outside(sandbox: Sandbox) -> None:
    # Only the sandbox tries; this test process never opens a socket. 203.0.113.1 is TEST-NET.
    out = await sandbox.out(
        "import socket\ns = socket.create_connection(('203.0.113.1', 80), timeout=2)\n"
        "print('CONNECTED')",
        T,
    )
    _blocked(out, "OSError", "PermissionError", "TimeoutError")
    assert "CONNECTED" not in out["stdout"]
    if sandbox.mode == "namespaces":
        assert "unreachable" in out["error"]["message"].lower()
    out = await sandbox.out("import socket\nsocket.getaddrinfo('example.com', 443)", T)
    _blocked(out, "gaierror", "PermissionError", "OSError")


async def test_killing_the_parent_fails(sandbox: Sandbox) -> None:
    me = os.getpid()
    attempts = [
        "import os\nos.kill(os.getppid(), 9)",
        f"import os\nos.kill({me}, 9)",
        f"import os\nos.killpg(os.getpgid({me}), 9)",
        f"import os, signal\nos.kill({me}, signal.SIGTERM)",
    ]
    for code in attempts:
        out = await sandbox.out(code, T)
        if sandbox.mode == "audit":
            _blocked(out, "PermissionError")
        elif code != attempts[0]:
            # Our pid does not exist inside the pid namespace.
            _blocked(out, "ProcessLookupError")
    assert os.getpid() == me  # still here, and so is the sandbox
    await sandbox.works(T)


async def test_ctypes_into_libc_is_contained(sandbox: Sandbox) -> None:
    code = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.system(b'id -u > id.txt; cat /etc/shadow > shadow.txt 2>/dev/null; true')\n"
        "(libc.syscall(105, 0), libc.kill(os.getppid(), 9), open('id.txt').read().strip(),"
        " open('shadow.txt').read())"
    )
    out = await sandbox.out(code, T)
    if sandbox.mode == "namespaces":
        assert out["error"] is None, out
        setuid_rc, kill_rc, uid, shadow = eval(out["result"])  # noqa: S307 - our own repr
        assert setuid_rc == -1  # setuid(0) refused: no capabilities left
        assert uid != "0" and int(uid) >= 2_000_000
        assert shadow == ""  # there is no /etc/shadow in the jail
        del kill_rc  # getppid() is 0 in the pid namespace; the parent is unreachable either way
    else:
        _blocked(out, "PermissionError")
    await sandbox.works(T)


async def test_memory_limit(sandbox: Sandbox) -> None:
    out = await sandbox.out("x = bytearray(10 * 1024 ** 3)", T)
    _blocked(out, "MemoryError")
    out = await sandbox.out("import numpy as np\ny = np.ones(10 * 1024 ** 3 // 8)", T)
    _blocked(out, "MemoryError", "_ArrayMemoryError")
    await sandbox.works(T)


async def test_file_size_limit(sandbox: Sandbox) -> None:
    code = (
        "with open('big.bin', 'wb') as f:\n"
        "    for _ in range(10 * 1024):\n"
        "        f.write(b'\\0' * (1024 * 1024))\n"
    )
    out = await sandbox.out(code, T)
    _blocked(out, "OSError")
    assert "too large" in out["error"]["message"].lower()
    assert (sandbox.workdir(T) / "big.bin").stat().st_size <= FILE_SIZE_MB * 1024 * 1024
    (sandbox.workdir(T) / "big.bin").unlink()
    await sandbox.works(T)


async def test_printing_a_gigabyte_is_capped(sandbox: Sandbox) -> None:
    code = (
        "import os\nchunk = 'x' * (1024 * 1024)\n"
        "for _ in range(1024):\n    print(chunk)\n"
        "for _ in range(64):\n    os.write(1, b'y' * (1024 * 1024))\n"
        "'finished'"
    )
    out = await sandbox.out(code, T)
    assert out["error"] is None and out["result"] == "'finished'"
    assert len(out["stdout"]) <= sandbox.settings.sandbox_max_output + 100
    assert "[output truncated: " in out["stdout"]
    await sandbox.works(T)


async def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    out = await sandbox.out("import os\nwhile True:\n    os.fork()", "thread_fork")
    if sandbox.mode == "audit":
        _blocked(out, "PermissionError")  # the hook refuses os.fork
    else:
        # RLIMIT_NPROC on the kernel's own uid stops it (or the wall clock does).
        _blocked(out, "BlockingIOError", "TimeoutError", "SandboxCrash")
    await sandbox.works("thread_fork")


async def test_infinite_loop_times_out_and_next_call_is_fresh(sandbox: Sandbox) -> None:
    await sandbox.out("before = 1", "thread_loop")
    result = await sandbox.call("while True:\n    pass", "thread_loop")
    assert result.is_error
    _blocked(result.output, "TimeoutError")
    assert "4 s" in result.output["error"]["message"]
    out = await sandbox.out("'before' in dir()", "thread_loop")
    assert out["result"] == "False" and "timed out" in out["notice"]


async def test_cpu_limit_kill_is_reported_as_the_time_limit(sandbox: Sandbox) -> None:
    # The CPU backstop (SIGXCPU) firing before the wall clock, as on a loaded machine, must
    # read as the time limit, not as a crash. Lowering one's own soft limit is allowed.
    code = (
        "import resource\n"
        "used = resource.getrusage(resource.RUSAGE_SELF)\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_CPU)\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (int(used.ru_utime + used.ru_stime) + 1, hard))\n"
        "while True:\n    pass"
    )
    result = await sandbox.call(code, "thread_cpu")
    assert result.is_error
    _blocked(result.output, "TimeoutError")
    await sandbox.works("thread_cpu")


async def test_protocol_garbage_kills_only_the_kernel(sandbox: Sandbox) -> None:
    # User code can reach the reply pipe; a forged oversized frame must not hurt the bot.
    code = "import sys, os\nos.write(sys.modules['__main__']._WFD, b'\\xff\\xff\\xff\\xff')"
    result = await sandbox.call(code, "thread_garbage")
    assert result.is_error and result.output["error"]["type"] == "SandboxError"
    await sandbox.works("thread_garbage")


async def test_exiting_the_kernel_is_a_tool_error(sandbox: Sandbox) -> None:
    result = await sandbox.call("import os\nos._exit(3)", "thread_exit")
    assert result.is_error and result.output["error"]["type"] == "SandboxCrash"
    out = await sandbox.out("1 + 1", "thread_exit")
    assert out["result"] == "2" and "crashed" in out["notice"]
    out = await sandbox.out("raise SystemExit(0)", "thread_exit")
    _blocked(out, "SystemExit")  # a plain exit is just an error; the kernel lives on
    await sandbox.works("thread_exit")
