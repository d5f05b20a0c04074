"""The escape attempts of issue 11, in every mode that runs here (``namespaces`` when this
machine allows it, ``audit``, ``container`` through a real sandbox server).

Each attempt prints ``ESCAPED`` only when it got what it was after. ``namespaces`` must contain
every one. ``audit`` is NOT a security boundary (docs/sandbox.md) and ``container`` without
the container around it is audit plus a per-thread uid, so for those the outcome is measured
and reported (``pytest -s`` prints the table), not asserted.
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.sandbox.conftest import DB_SECRET, Sandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

REAL_DB_SECRET = "SECRET-ROW-IN-SQLITE"
RESULTS: dict[tuple[str, str], bool] = {}

ATTEMPTS = {
    # A child created below the audit hook: it has no hook at all.
    "fork_exec": """
import _posixsubprocess, os
r, w = os.pipe()
errr, errw = os.pipe()
pid = _posixsubprocess.fork_exec(
    [b'/bin/cat', {db!r}.encode()], [b'/bin/cat'], True, (errw,), None, None,
    -1, -1, -1, w, -1, -1, errr, errw, True, False, -1, None, None, None, -1, None, False)
os.close(w); os.close(errw)
out = os.read(r, 4096)
os.waitpid(pid, 0)
print('ESCAPED' if b'SECRET' in out else 'no', out[:40])
""",
    # sqlite3 opens files in C, past the "open" event.
    "sqlite3_connect": """
import sqlite3
c = sqlite3.connect({real_db!r})
row = c.execute('select s from t').fetchone()
c.execute("insert into t values ('written by the sandbox')"); c.commit()
print('ESCAPED' if row and 'SECRET' in row[0] else 'no', row)
""",
    "sqlite3_uri": """
import sqlite3
c = sqlite3.connect('file:' + {real_db!r} + '?mode=ro', uri=True)
row = c.execute('select s from t').fetchone()
print('ESCAPED' if row and 'SECRET' in row[0] else 'no', row)
""",
    # The hook resolves a relative path against the cwd; the kernel against dir_fd.
    "open_dir_fd": """
import os
os.makedirs('a/b', exist_ok=True)
w = os.open('.', os.O_RDONLY)
os.chdir('a/b')
try:
    try:
        os.unlink('db', dir_fd=w)
    except OSError:
        pass
    os.symlink('../../tallybot.db', 'db', dir_fd=w)
    fd = os.open('db', os.O_RDONLY, dir_fd=w)
    data = os.read(fd, 200)
finally:
    os.chdir(os.path.dirname(os.path.dirname(os.getcwd())))
print('ESCAPED' if b'SECRET' in data else 'no', data[:40])
""",
    # Reach the hook's helper through a traceback and widen what it allows.
    "hook_closure": """
try:
    open({db!r}).read()
except PermissionError as exc:
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame); tb = tb.tb_next
    for f in frames:
        check = f.f_locals.get('check')
        if check is not None:
            for name, cell in zip(check.__code__.co_freevars, check.__closure__):
                if name == 'denied':
                    cell.cell_contents = ()
                if name == 'readable':
                    cell.cell_contents = ('/',)
data = open({db!r}).read()
print('ESCAPED' if 'SECRET' in data else 'no', data[:40])
""",
    # Signal 0 proves the right to kill the bot without killing the test runner.
    "pidfd_signal_parent": """
import os, signal
fd = os.pidfd_open(os.getppid())
signal.pidfd_send_signal(fd, 0)
print('ESCAPED', os.getppid())
""",
    "read_etc_shadow": """
data = open('/etc/shadow').read()
print('ESCAPED' if 'root:' in data else 'no')
""",
}


def _prepare(sandbox: Sandbox) -> dict[str, str]:
    real_db = sandbox.settings.data_dir / "real.db"
    if not real_db.exists():
        with sqlite3.connect(real_db) as c:
            c.execute("create table t (s text)")
            c.execute("insert into t values (?)", (REAL_DB_SECRET,))
    return {"db": str(sandbox.settings.data_dir / "tallybot.db"), "real_db": str(real_db)}


async def _attempt(sandbox: Sandbox, name: str) -> bool:
    code = ATTEMPTS[name].format(**_prepare(sandbox))
    out = await sandbox.out(code, f"thread_escape_{name}")
    text = str(out)
    escaped = "ESCAPED" in out["stdout"] or DB_SECRET in text or REAL_DB_SECRET in text
    RESULTS[(name, sandbox.mode)] = escaped
    await sandbox.works(f"thread_escape_{name}_after")
    return escaped


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
async def test_attempt_local_modes(sandbox: Sandbox, name: str) -> None:
    escaped = await _attempt(sandbox, name)
    if sandbox.mode == "namespaces":
        assert not escaped, name


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
async def test_attempt_container_mode(remote: Sandbox, name: str) -> None:
    await _attempt(remote, name)


async def test_zz_print_table() -> None:
    modes = sorted({m for _, m in RESULTS})
    lines = ["attempt".ljust(22) + "".join(m.ljust(13) for m in modes)]
    for name in sorted(ATTEMPTS):
        row = [RESULTS.get((name, m)) for m in modes]
        cells = ["-" if r is None else ("ESCAPED" if r else "contained") for r in row]
        lines.append(name.ljust(22) + "".join(c.ljust(13) for c in cells))
    print("\n" + "\n".join(lines))
