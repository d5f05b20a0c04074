"""The README's demo without a network: a scripted model drives the real sandbox through the
real CLI, and the chart and the totals come out right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_console_demo_produces_chart_and_correct_totals(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TALLYBOT_"))}
    env.update(
        TALLYBOT_DATA_DIR="data",  # relative on purpose: the sandbox must still find it
        TALLYBOT_MODEL=f"scripted:{ROOT / 'examples' / 'demo_script.json'}",
        PYTHONPATH=str(ROOT),
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bots.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=180,
        )

    r = cli(
        "chat",
        "--thread",
        "demo",
        "--file",
        str(ROOT / "examples" / "flower_sales.csv"),
        "--message",
        "统计今天的成本和收入，画出各花的利润",
    )
    assert r.returncode == 0, r.stderr
    assert "chart_001.png" in r.stdout

    runs = json.loads(cli("runs", "list", "--thread", "demo", "--json").stdout)
    (call,) = [c for s in runs[0]["steps"] for c in s["tool_calls"]]
    output = json.loads(call["output"])
    assert output["error"] is None, output
    # The sandbox computed the totals from the file; the /bill ledger agrees to the cent.
    assert output["stdout"].split() == ["成本", "2068.80", "收入", "5618.70", "利润", "3549.90"]
    assert output["files"] == ["chart_001.png"]
    charts = list((tmp_path / "data").rglob("chart_001.png"))
    assert charts and charts[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    r = cli("chat", "--thread", "demo", "--message", "/bill", "--json")
    bill = json.loads(cli("bills", "show", "1", "--json").stdout)
    assert (Decimal(bill["cost"]), Decimal(bill["revenue"]), Decimal(bill["profit"])) == (
        Decimal("2068.80"),
        Decimal("5618.70"),
        Decimal("3549.90"),
    )
