"""Whole-process start-up: ``tallybot --help`` and model-free commands vs ``python -c pass``.

    python bench/startup.py [--repeat 5]

Each command runs ``--repeat`` times after one untimed run (file cache, bytecode cache, the
database's migrations); the median wall time is printed beside the ratio to a bare
interpreter. The commands run in a temporary data folder with no model configured (OPENAI_*
and TALLYBOT_* removed from the environment). Bytecode is cached in that folder
(PYTHONPYCACHEPREFIX, PYTHONDONTWRITEBYTECODE dropped) so a checkout is timed the way an
installed package runs, without writing ``__pycache__`` into it. Then ``-X importtime`` of the
model-free commands names what their imports cost, per package.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
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
    "slack_sdk",
    "httpx",
    "aiosqlite",
    "telegram",
    "pypdf",
    "openpyxl",
)
# ``/bill`` with a sales file is allowed pandas; the other commands must not load it.
EXAMPLE_CSV = Path(__file__).resolve().parents[1] / "examples" / "flower_sales.csv"
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s+)(\S+)")


def tallybot_command() -> list[str]:
    """The installed console script (next to this interpreter), else ``python -m bots.cli``."""
    script = Path(sys.executable).with_name("tallybot")
    if script.exists():
        return [sys.executable, str(script)]
    found = shutil.which("tallybot")
    return [sys.executable, found] if found else [sys.executable, "-m", "bots.cli"]


def clean_env(tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TALLYBOT_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
    env["TALLYBOT_DATA_DIR"] = str(Path(tmp) / "data")
    return env


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: str, repeat: int) -> tuple[float, float]:
    """Median wall and CPU (user + sys) seconds of ``cmd``; CPU moves less on a busy machine."""
    subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)  # warm the caches
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, start = _child_cpu(), time.perf_counter()
        subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        cpus.append(_child_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def import_costs(cmd: list[str], env: dict[str, str], cwd: str) -> dict[str, float]:
    """Cumulative import ms of the heavy packages, as ``-X importtime`` reports them."""
    proc = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]], env=env, cwd=cwd, capture_output=True, text=True
    )
    costs: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if m and m.group(4) in HEAVY:
            costs[m.group(4)] = int(m.group(2)) / 1000
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tallybot = tallybot_command()
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-") as tmp:
        env = clean_env(tmp)
        bill = ["chat", "--thread", "bill", "--file", str(EXAMPLE_CSV), "--message", "/bill"]
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("tallybot --help", [*tallybot, "--help"]),
            ("tallybot chat --message /help", [*tallybot, "chat", "--message", "/help"]),
            ("tallybot bills list", [*tallybot, "bills", "list"]),
            ("tallybot chat --file flower_sales.csv --message /bill", [*tallybot, *bill]),
        ]
        print(f"median of {args.repeat} runs (after one untimed run); {' '.join(tallybot)}")
        print("| command | wall s | vs python -c pass | CPU s |")
        print("|---|---|---|---|")
        base = None
        for name, cmd in cases:
            wall, cpu = timed(cmd, env, tmp, args.repeat)
            base = base or wall
            print(f"| {name} | {wall:.3f} | {wall / base:.1f}x | {cpu:.3f} |", flush=True)
        profiled = cases[2:]
        costs = [import_costs(cmd, env, tmp) for _, cmd in profiled]
        print("\nimports (cumulative ms, -X importtime, one run each; - = not imported)")
        print(f"| package | {' | '.join(name.removeprefix('tallybot ') for name, _ in profiled)} |")
        print(f"|---|{'---|' * len(profiled)}")
        for pkg in sorted(
            {p for c in costs for p in c}, key=lambda p: -max(c.get(p, 0) for c in costs)
        ):
            cells = " | ".join(f"{c[pkg]:.0f}" if pkg in c else "-" for c in costs)
            print(f"| {pkg} | {cells} |")


if __name__ == "__main__":
    main()
