"""The CLI contracts, run as a real process: exit codes and JSON shapes other tools rely on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared import cli_env

ROOT = Path(__file__).resolve().parents[1]
FLOWERS = ROOT / "examples" / "flower_sales.csv"
BILL_KEYS = {
    "id",
    "book",  # issue 9
    "thread",
    "date",
    "currency",
    "revision",
    "items",
    "cost",
    "revenue",
    "profit",
    "created_at",
    "updated_at",
}
ITEM_KEYS = {"name", "quantity", "unit_cost", "unit_price", "cost", "revenue"}
RUN_KEYS = {
    "id",
    "thread",
    "status",
    "model",
    "created_at",
    "started_at",
    "completed_at",
    "failed_at",
    "cancelled_at",
    "expires_at",
    "last_error",
    "usage",
    "steps",
}
STEP_KEYS = {"id", "type", "status", "tool_calls", "text"}


@pytest.fixture
def cli(tmp_path: Path):
    env = cli_env(tmp_path)
    exe = shutil.which("tallybot", path=str(Path(sys.executable).parent))
    base = [exe] if exe else [sys.executable, "-m", "bots.cli"]

    def run(
        *args: str, extra_env: dict[str, str] | None = None, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args],
            capture_output=True,
            text=True,
            env={**env, **(extra_env or {})},
            cwd=tmp_path,
            input=stdin,
            timeout=120,
        )

    return run


def test_bookkeeping_commands_and_bill_json(cli) -> None:
    r = cli(
        "chat",
        "--thread",
        "shop",
        "--file",
        str(FLOWERS),
        "--message",
        "/bill 2026-11-24",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    turn = json.loads(r.stdout)
    assert set(turn) == {"thread", "run_id", "status", "text", "bills_changed"}
    assert (
        turn["thread"] == "shop" and turn["bills_changed"] == [1] and turn["status"] == "completed"
    )

    r = cli("chat", "--thread", "shop", "--message", "/add 2 向日葵", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bills_changed"] == [1]

    r = cli("bills", "list", "--json")
    assert r.returncode == 0, r.stderr
    (bill,) = json.loads(r.stdout)
    assert set(bill) == BILL_KEYS
    assert bill["thread"] == "console:shop" and bill["revision"] == 2 and bill["currency"] == "CNY"
    assert all(set(i) == ITEM_KEYS for i in bill["items"])
    assert all(isinstance(bill[k], str) for k in ("cost", "revenue", "profit"))
    from decimal import Decimal

    assert Decimal(bill["profit"]) == Decimal(bill["revenue"]) - Decimal(bill["cost"])
    assert Decimal(bill["cost"]) == sum(Decimal(i["cost"]) for i in bill["items"])

    r = cli("bills", "show", "1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == bill

    r = cli("bills", "export", "--format", "json", "--out", "bills.json")
    assert r.returncode == 0, r.stderr
    assert "exported 1 bill" in r.stdout


def test_export_formats(cli, tmp_path: Path) -> None:
    cli("chat", "--file", str(FLOWERS), "--message", "/bill")
    for fmt in ("csv", "xlsx", "json"):
        r = cli("bills", "export", "--format", fmt, "--out", f"out.{fmt}")
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"out.{fmt}").stat().st_size > 0


def test_missing_file_and_unknown_command_are_clear(cli) -> None:
    r = cli("chat", "--file", "nope.csv", "--message", "/bill")
    assert r.returncode == 2 and "file not found: nope.csv" in r.stderr
    r = cli("chat", "--message", "/frobnicate")
    assert r.returncode == 1 and "Unknown command /frobnicate" in r.stdout
    r = cli("bills", "show", "42")
    assert r.returncode == 2 and "42" in r.stderr


def test_unreadable_csv_is_one_clear_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("colour,size\nred,3\n", encoding="utf-8")
    r = cli("chat", "--file", str(bad), "--message", "/bill", "--json")
    assert r.returncode == 1
    turn = json.loads(r.stdout)
    assert turn["status"] == "failed" and "colour" in turn["text"]


def test_free_text_without_model_explains_setup(cli) -> None:
    r = cli("chat", "--message", "今天的利润是多少？")
    assert r.returncode == 0, r.stderr
    assert "OPENAI_API_KEY" in r.stdout and "OPENAI_BASE_URL" in r.stdout and "配置模型" in r.stdout


def test_scripted_model_turn_and_run_json(cli, tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    items = [{"name": "玫瑰", "quantity": 3, "unit_cost": "2.50", "unit_price": "6"}]
    script.write_text(
        json.dumps(
            {
                "turns": [
                    [
                        {
                            "call": "save_bill",
                            "id": "c1",
                            "arguments": {"date": "2026-11-24", "items": items},
                        }
                    ],
                    [{"text": "已保存：成本 7.50，收入 18.00。"}],
                ]
            }
        ),
        encoding="utf-8",
    )
    env = {"TALLYBOT_MODEL": f"scripted:{script}"}
    r = cli("chat", "--thread", "s", "--message", "保存今天的账单", "--json", extra_env=env)
    assert r.returncode == 0, r.stderr
    turn = json.loads(r.stdout)
    assert turn["status"] == "completed" and turn["bills_changed"] == [1]
    assert "成本 7.50" in turn["text"]

    r = cli("runs", "list", "--thread", "s", "--json")
    assert r.returncode == 0, r.stderr
    (run,) = json.loads(r.stdout)
    assert set(run) == RUN_KEYS and run["id"] == turn["run_id"] and run["thread"] == "console:s"
    assert run["status"] == "completed" and run["completed_at"] and run["started_at"]
    assert [s["type"] for s in run["steps"]] == ["tool_calls", "message_creation"]
    assert all(set(s) == STEP_KEYS for s in run["steps"])
    (tc,) = run["steps"][0]["tool_calls"]
    assert set(tc) == {"id", "name", "arguments", "output"} and tc["name"] == "save_bill"
    assert json.loads(tc["output"])["cost"] == "7.50"

    r = cli("runs", "show", turn["run_id"], "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == run

    r = cli("runs", "show", turn["run_id"])
    assert r.returncode == 0 and "save_bill" in r.stdout


def test_db_upgrade(cli) -> None:
    r = cli("db", "upgrade")
    assert r.returncode == 0, r.stderr
    assert "database at revision" in r.stdout
