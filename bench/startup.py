"""Whole-process start-up: ``tallybot --help`` and model-free commands vs ``python -c pass``.

    python bench/startup.py [--repeat 5] [--import-runs 3] [--compare OTHER_CHECKOUT]

Each command runs ``--repeat`` times after one untimed run (file cache, bytecode cache, the
database's migrations); the median wall time is printed beside the ratio to a bare
interpreter. The commands run in a temporary data folder with no model configured (OPENAI_*
and TALLYBOT_* removed from the environment). Bytecode is cached in that folder
(PYTHONPYCACHEPREFIX, PYTHONDONTWRITEBYTECODE dropped) so a checkout is timed the way an
installed package runs, without writing ``__pycache__`` into it. Then ``-X importtime`` of the
model-free commands names what their imports cost, per package: the cumulative ms of its
modules imported from outside it (so what it imports is inside its figure, and a package
another one imports is in both), the least of ``--import-runs`` runs (a collection that lands
inside one import inflates that run's figure); and how many modules each command loaded.

``--compare OTHER_CHECKOUT`` times a second checkout in the same run (its root on PYTHONPATH,
its own data folder; "after" is this environment): before and after take turns run for run,
so a noisy minute on a shared machine lands on both, and the last column is after / before
CPU.
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
MODULES = "(modules loaded)"
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s+)(\S+)")


def tallybot_command() -> list[str]:
    """The installed console script (next to this interpreter), else ``python -m bots.cli``."""
    script = Path(sys.executable).with_name("tallybot")
    if script.exists():
        return [sys.executable, str(script)]
    found = shutil.which("tallybot")
    return [sys.executable, found] if found else [sys.executable, "-m", "bots.cli"]


def clean_env(tmp: str, name: str = "", checkout: str | None = None) -> dict[str, str]:
    """No model, a data folder of its own per ``name``; ``checkout`` on PYTHONPATH if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TALLYBOT_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
    env["TALLYBOT_DATA_DIR"] = str(Path(tmp) / f"data{name}")
    if checkout is not None:
        env["PYTHONPATH"] = str(Path(checkout).resolve())
    return env


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    cmd: list[str], envs: list[dict[str, str]], cwd: str, repeat: int
) -> list[tuple[float, float]]:
    """Median wall and CPU (user + sys) seconds of ``cmd`` in each environment, the runs taken
    in turn (a noisy minute lands on all); CPU moves less on a busy machine."""
    for env in envs:  # warm the caches, apply the migrations, attach the file
        subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)
    walls: list[list[float]] = [[] for _ in envs]
    cpus: list[list[float]] = [[] for _ in envs]
    for _ in range(repeat):
        for i, env in enumerate(envs):
            cpu, start = _child_cpu(), time.perf_counter()
            subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)
            walls[i].append(time.perf_counter() - start)
            cpus[i].append(_child_cpu() - cpu)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(walls, cpus, strict=True)]


def import_costs(cmd: list[str], env: dict[str, str], cwd: str, runs: int) -> dict[str, float]:
    """Cumulative import ms of the heavy packages, as ``-X importtime`` reports them (the least
    of ``runs``), and under ``MODULES`` the number of modules imported."""
    costs: dict[str, float] = {}
    for _ in range(runs):
        proc = subprocess.run(
            [cmd[0], "-X", "importtime", *cmd[1:]], env=env, cwd=cwd, capture_output=True, text=True
        )
        found = [m for line in proc.stderr.splitlines() if (m := _LINE.match(line))]
        run = {MODULES: float(len(found))}
        # Lines come importee first; read backwards, each line's importer is the nearest
        # shallower line before it. A package's time is that of its modules imported from
        # outside it (``rich.console`` imported by bots/console.py counts for rich).
        importers: list[tuple[int, str]] = []
        for m in reversed(found):
            depth, name = len(m.group(3)), m.group(4)
            while importers and importers[-1][0] >= depth:
                importers.pop()
            package = name.split(".")[0]
            if package in HEAVY and (not importers or importers[-1][1] != package):
                run[package] = run.get(package, 0) + int(m.group(2)) / 1000
            importers.append((depth, package))
        for key, ms in run.items():
            costs[key] = min(ms, costs.get(key, ms))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--import-runs", type=int, default=3)
    parser.add_argument(
        "--compare",
        metavar="CHECKOUT",
        help="also time this checkout (its root on PYTHONPATH), run for run: before / after",
    )
    args = parser.parse_args()
    tallybot = tallybot_command()
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-") as tmp:
        trees = [("before", clean_env(tmp, "-before", args.compare))] if args.compare else []
        trees.append(("after" if args.compare else "", clean_env(tmp)))
        envs = [env for _, env in trees]
        bill = ["chat", "--thread", "bill", "--file", str(EXAMPLE_CSV), "--message", "/bill"]
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("tallybot --help", [*tallybot, "--help"]),
            ("tallybot chat --message /help", [*tallybot, "chat", "--message", "/help"]),
            ("tallybot bills list", [*tallybot, "bills", "list"]),
            ("tallybot chat --file flower_sales.csv --message /bill", [*tallybot, *bill]),
        ]
        print(f"median of {args.repeat} runs (after one untimed run); {' '.join(tallybot)}")
        if args.compare:
            print(f"before: PYTHONPATH={trees[0][1]['PYTHONPATH']}; after: this environment")
        heads = [f"{t} {col}".strip() for t, _ in trees for col in ("wall s", "CPU s")]
        ratio = ["after / before CPU"] if args.compare else ["wall vs python -c pass"]
        print(f"| command | {' | '.join(heads + ratio)} |")
        print(f"|---|{'---|' * (len(heads) + 1)}")
        base = None
        for name, cmd in cases:
            figures = timed(cmd, envs, tmp, args.repeat)
            base = base or figures[-1][0]
            cells = [f"{x:.3f}" for wall_cpu in figures for x in wall_cpu]
            last = figures[-1][1] / figures[0][1] if args.compare else figures[-1][0] / base
            print(f"| {name} | {' | '.join(cells)} | {last:.2f}x |", flush=True)
        profiled = [
            (f"{name.removeprefix('tallybot ')} {t}".strip(), cmd, env)
            for name, cmd in cases[2:]
            for t, env in trees
        ]
        costs = [import_costs(cmd, env, tmp, args.import_runs) for _, cmd, env in profiled]
        print(
            f"\nimports (cumulative ms, -X importtime, least of {args.import_runs} runs;"
            " - = not imported)"
        )
        print(f"| package | {' | '.join(name for name, _, _ in profiled)} |")
        print(f"|---|{'---|' * len(profiled)}")
        packages = {p for c in costs for p in c} - {MODULES}
        for pkg in [*sorted(packages, key=lambda p: -max(c.get(p, 0) for c in costs)), MODULES]:
            cells = " | ".join(f"{c[pkg]:.0f}" if pkg in c else "-" for c in costs)
            print(f"| {pkg} | {cells} |")


if __name__ == "__main__":
    main()
