"""``tallybot`` with books: --book, bills list/export filters, report, history, exit codes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.shared import cli_env

ROOT = Path(__file__).resolve().parents[2]
DAY1 = "花名,数量,进价,售价\n玫瑰,10,2.50,6.00\n百合,4,5.00,12.00\n"
DAY2 = "花名,数量,进价,售价\n玫瑰,3,2.50,6.00\n"


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    env = cli_env(tmp_path)
    (tmp_path / "d1.csv").write_text(DAY1, encoding="utf-8")
    (tmp_path / "d2.csv").write_text(DAY2, encoding="utf-8")

    def run(
        *args: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bots.cli", *args],
            capture_output=True,
            text=True,
            env={**env, **(extra_env or {})},
            cwd=tmp_path,
            timeout=120,
        )

    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def failed(result: subprocess.CompletedProcess[str], code: int | None = None) -> str:
    assert result.returncode != 0 and (code is None or result.returncode == code)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_books_filters_report_and_history(cli: Any, tmp_path: Path) -> None:
    chat = ("chat", "--thread", "t3", "--message")
    ok(cli("chat", "--book", "shop2", "--file", "d1.csv", "--message", "/bill 2026-11-30"))
    ok(cli("chat", "--thread", "t2", "--book", "shop2", "--file", "d2.csv", "--message",
           "/bill 2026-12-01"))  # fmt: skip
    # A thread without --book is in console:default (a thread keeps the book it was given).
    ok(cli("chat", "--thread", "t3", "--file", "d1.csv", "--message", "/bill 2026-11-30"))
    ok(cli(*chat, "/add 2 百合"))
    every = json.loads(ok(cli("bills", "list", "--json")))
    assert [(b["id"], b["book"]) for b in every] == [
        (1, "console:shop2"), (3, "console:default"), (2, "console:shop2"),
    ]  # fmt: skip
    shop2 = json.loads(ok(cli("bills", "list", "--book", "console:shop2", "--json")))
    assert [b["id"] for b in shop2] == [1, 2]
    late = json.loads(ok(cli("bills", "list", "--from", "2026-12-01", "--to", "2026-12-31",
                             "--json")))  # fmt: skip
    assert [b["id"] for b in late] == [2]
    assert "exported 2 bill(s)" in ok(cli("bills", "export", "--book", "console:shop2",
                                          "--format", "json", "--out", "x.json"))  # fmt: skip
    assert len(json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))) == 2

    report = json.loads(ok(cli("bills", "report", "--book", "console:shop2", "--from",
                               "2026-11-30", "--to", "2026-12-06", "--json", "--chart",
                               "week.png")))  # fmt: skip
    assert report == {
        "book": "console:shop2", "from": "2026-11-30", "to": "2026-12-06", "by": "day",
        "rows": [
            {"key": "2026-11-30", "cost": "45.00", "revenue": "108.00", "profit": "63.00",
             "bills": 1},
            {"key": "2026-12-01", "cost": "7.50", "revenue": "18.00", "profit": "10.50",
             "bills": 1},
        ],
        "total": {"cost": "52.50", "revenue": "126.00", "profit": "73.50"},
    }  # fmt: skip
    assert (tmp_path / "week.png").read_bytes()[:4] == b"\x89PNG"
    weeks = json.loads(ok(cli("bills", "report", "--by", "week", "--json")))
    assert [r["key"] for r in weeks["rows"]] == ["2026-W49"] and weeks["book"] is None
    assert "total" in ok(cli("bills", "report"))

    history = json.loads(ok(cli("bills", "history", "3", "--json")))
    revs = history["revisions"]
    assert [r["reason"] for r in revs] == ["command", "command"]
    assert revs[0]["actor"] is None or revs[0]["actor"].startswith("console:")
    assert revs[1]["changes"] == [
        {"change": "quantity", "name": "百合", "before": "4", "after": "6"}
    ]
    assert "rev 2" in ok(cli("bills", "history", "3"))


def test_duplicate_dates_are_flagged(cli: Any, tmp_path: Path) -> None:
    ok(cli("chat", "--file", "d1.csv", "--message", "/bill 2026-11-30"))
    # What migration 0003 can leave: two bills of one date in one book.
    db = sqlite3.connect(tmp_path / "data" / "tallybot.db")
    with db:
        db.execute("INSERT INTO bills (id, thread_id, book, date, currency, revision, voided, "
                   "created_at, updated_at) SELECT 2, thread_id, book, date, currency, revision, "
                   "voided, created_at, updated_at FROM bills WHERE id = 1")  # fmt: skip
        db.execute("INSERT INTO bill_revisions (bill_id, revision, items, cost, revenue, profit, "
                   "voided, reason, created_at) SELECT 2, revision, items, cost, revenue, profit, "
                   "voided, reason, created_at FROM bill_revisions WHERE bill_id = 1")  # fmt: skip
    db.close()
    assert "2+ bills this day" in ok(cli("bills", "list"))
    listed = cli("bills", "list", "--json")
    assert len(json.loads(ok(listed))) == 2
    assert "more than one bill on console:default 2026-11-30" in listed.stderr


def test_every_failure_is_one_line_and_non_zero(cli: Any) -> None:
    assert "no bill #9" in failed(cli("bills", "show", "9"), 2)
    assert "no bill #9" in failed(cli("bills", "history", "9"), 2)
    assert "YYYY-MM-DD" in failed(cli("bills", "report", "--from", "last week"))
    assert "YYYY-MM-DD" in failed(cli("bills", "list", "--to", "2026-13-01"))
    failed(cli("bills", "frobnicate"), 2)
    failed(cli("bills", "report", "--by", "year"), 2)
    failed(cli("chat", "--file", "missing.csv", "--message", "hi"), 2)
    down = {"TALLYBOT_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:9/none"}
    failed(cli("bills", "list", extra_env=down), 1)
    assert ok(cli("bills", "list")).strip() == "No bills yet."
