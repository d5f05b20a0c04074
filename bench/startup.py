"""Whole-process start-up: ``tallybot --help`` and a model-free command vs ``python -c pass``.

    python bench/startup.py [--repeat 5]

Each command runs ``--repeat`` times after one untimed run (file cache); the median wall time
is printed beside the ratio to a bare interpreter. The model-free command runs in a temporary
data folder with no model configured (OPENAI_* and TALLYBOT_* removed from the environment).
Then ``-X importtime`` of the model-free command names what its imports cost, per package.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = (
    "numpy",
    "pandas",
    "matplotlib",
    "rich",
    "sqlalchemy",
    "alembic",
    "openai",
    "pydantic",
    "pydantic_settings",
    "jsonschema",
    "aiohttp",
    "slack_bolt",
    "telegram",
    "pypdf",
    "openpyxl",
)
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s+)(\S+)")


def tallybot_command() -> list[str]:
    """The installed console script (next to this interpreter), else ``python -m bots.cli``."""
    script = Path(sys.executable).with_name("tallybot")
    if script.exists():
        return [sys.executable, str(script)]
    found = shutil.which("tallybot")
    return [sys.executable, found] if found else [sys.executable, "-m", "bots.cli"]


def clean_env(data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TALLYBOT_"))}
    env["TALLYBOT_DATA_DIR"] = data_dir
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: str, repeat: int) -> float:
    subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_costs(cmd: list[str], env: dict[str, str], cwd: str) -> list[tuple[str, float]]:
    """Cumulative import ms of the heavy packages, as ``-X importtime`` reports them."""
    proc = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]], env=env, cwd=cwd, capture_output=True, text=True
    )
    costs: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if m and m.group(4) in HEAVY:
            costs[m.group(4)] = int(m.group(2)) / 1000
    return sorted(costs.items(), key=lambda kv: -kv[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tallybot = tallybot_command()
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-") as tmp:
        env = clean_env(str(Path(tmp) / "data"))
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("tallybot --help", [*tallybot, "--help"]),
            ("tallybot chat --message /help", [*tallybot, "chat", "--message", "/help"]),
        ]
        print(f"median of {args.repeat} runs (after one untimed run); {' '.join(tallybot)}")
        print("| command | wall s | vs python -c pass |")
        print("|---|---|---|")
        base = None
        for name, cmd in cases:
            wall = timed(cmd, env, tmp, args.repeat)
            base = base or wall
            print(f"| {name} | {wall:.3f} | {wall / base:.1f}x |", flush=True)
        print(
            "\nimports of `tallybot chat --message /help` (cumulative ms, -X importtime, one run)"
        )
        print("| package | ms |")
        print("|---|---|")
        for name, cost in import_costs(cases[2][1], env, tmp):
            print(f"| {name} | {cost:.0f} |")


if __name__ == "__main__":
    main()
