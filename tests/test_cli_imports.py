"""Issue 12: model-free commands do not import what they do not use.

Each case runs the CLI in a fresh interpreter (``python -c``) and reads back ``sys.modules``:
what is asserted is which packages got loaded, never how long it took (bench/startup.py
prints the seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared import cli_env

ROOT = Path(__file__).resolve().parents[1]

# Run bots.cli.main(argv) as `tallybot` would, then print the loaded modules.
PROBE = """
import json, sys
import bots.cli
try:
    code = bots.cli.main(sys.argv[1:])
except SystemExit as exc:  # argparse's --help
    code = exc.code
sys.stdout.flush()
loaded = sorted(sys.modules)
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""

# What a chat or CLI command must not pay for unless it does analysis, charts, model turns
# or serves a platform.
DATA = {"pandas", "numpy", "matplotlib"}
SERVING = {"openai", "httpx", "aiohttp", "jsonschema", "slack_bolt", "slack_sdk", "telegram"}


def _modules(tmp_path: Path, *argv: str, model: bool = False) -> set[str]:
    """Every module name in ``sys.modules`` after the command."""
    env = cli_env(tmp_path)
    if model:  # configured, but never called: these commands work without a model
        env["OPENAI_API_KEY"] = "sk-test"
        env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    return set(report["loaded"])


def _loaded(tmp_path: Path, *argv: str, model: bool = False) -> set[str]:
    """The top-level packages the command loaded."""
    return {name.split(".")[0] for name in _modules(tmp_path, *argv, model=model)}


def test_help_loads_neither_the_store_nor_settings(tmp_path: Path) -> None:
    unwanted = DATA | SERVING | {"sqlalchemy", "alembic", "pydantic_settings", "asyncio"}
    modules = _modules(tmp_path, "--help")
    assert {name.split(".")[0] for name in modules} & unwanted == set()
    # The parser needs no domain model: the bill ledger and its types load with a command.
    assert modules & {"core.bills", "core.domain"} == set()


@pytest.mark.parametrize("model", [False, True], ids=["no model", "model configured"])
def test_chat_help_loads_no_data_or_model_libraries(tmp_path: Path, model: bool) -> None:
    loaded = _loaded(tmp_path, "chat", "--message", "/help", model=model)
    assert loaded & (DATA | SERVING) == set()


def test_bills_list_loads_no_data_or_model_libraries(tmp_path: Path) -> None:
    assert _loaded(tmp_path, "bills", "list") & (DATA | SERVING) == set()


def test_bill_from_a_file_may_read_it_with_pandas_but_calls_no_model(tmp_path: Path) -> None:
    csv = ROOT / "examples" / "flower_sales.csv"
    loaded = _loaded(tmp_path, "chat", "--file", str(csv), "--message", "/bill", model=True)
    assert loaded & SERVING == set()


def test_a_migrated_sqlite_store_opens_without_alembic_or_aiosqlite(tmp_path: Path) -> None:
    """The first command migrates the new database (Alembic, on the async engine); later
    ones see it at HEAD on the worker's own sync connection and load neither."""
    assert {"alembic", "aiosqlite"} <= _loaded(tmp_path, "bills", "list")
    # Nor the ORM, the asyncio extension (which pulls the ORM in) or PostgreSQL's dialect.
    unwanted = {"sqlalchemy.orm", "sqlalchemy.ext.asyncio", "sqlalchemy.dialects.postgresql"}
    for argv in (("bills", "list"), ("chat", "--message", "/help")):
        modules = _modules(tmp_path, *argv)
        assert {name.split(".")[0] for name in modules} & {"alembic", "aiosqlite"} == set(), argv
        assert modules & unwanted == set(), argv


# The handler of `chat` replaced by one that reports the collector's state while it runs.
GC_PROBE = """
import gc, json, sys
import bots.cli

async def handler(settings, args):
    seen["during"] = [gc.isenabled(), gc.get_freeze_count() > 0, "core.app" in sys.modules]
    return 0

seen = {}
bots.cli._HANDLERS["chat"] = handler
if sys.argv[1] == "process":
    sys.argv[1:] = ["chat", "--message", "/help"]
    code = bots.cli.main()
else:
    code = bots.cli.main(["chat", "--message", "/help"])
seen["after"] = [gc.isenabled(), gc.get_freeze_count() > 0]
print(json.dumps({"code": code, **seen}))
"""


@pytest.mark.parametrize("how", ["process", "argv"])
def test_the_collector_runs_during_a_command_and_start_up_is_frozen(
    tmp_path: Path, how: str
) -> None:
    """As the process (the console script), the CLI loads the command's modules with the
    collector off and freezes them, then runs the command with the collector on (a REPL or a
    model turn makes garbage) and freezes what is left at exit. Called with argv (tests,
    embedding) it leaves the caller's collector alone."""
    proc = subprocess.run(
        [sys.executable, "-c", GC_PROBE, how],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    frozen = how == "process"
    assert report["during"] == [True, frozen, True]
    assert report["after"] == [True, frozen]
