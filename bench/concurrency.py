"""Many conversations at once through tallybot, with a model double that takes 1.0 s.

    python bench/concurrency.py                         # 100, 1,000 and 10,000 (capped), SQLite
    python bench/concurrency.py --sizes 1000 --db postgres
    python bench/concurrency.py --sizes 10000 --budget 600 --tool

Every conversation sends one message at the same moment; the model double (:class:`SlowModel`,
the project's Model protocol) streams 50 text chunks over 1.0 s (``--tool``: it first calls
save_bill, at zero latency). Each size runs in a fresh child process so peak RSS belongs to
that case alone. Printed per size: the wall time from the first message to the last answer;
wall / model time (1.0 s; the ``bare`` column is the double alone, N streams at once, the floor);
how many were answered; failures; runs left live (status not terminal, read from the database
afterwards); peak RSS (``ru_maxrss``). A case still running after ``--budget`` seconds is
capped: the unanswered conversations are cancelled and the row says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/concurrency.py`

from bench.tallybot_side import (  # noqa: E402
    BILL_ARGS,
    asyncpg_dsn,
    open_bot,
    throwaway_postgres,
    turn,
)
from core.models.base import (  # noqa: E402
    FunctionOutput,
    ModelDone,
    ModelEvent,
    ModelRequest,
    ModelTextDelta,
    ModelToolCall,
)

LIVE = ("queued", "in_progress", "requires_action", "cancelling")
MODEL_SECONDS = 1.0
CHUNKS = 50


class SlowModel:
    """A model double that takes ``seconds`` to stream ``chunks`` text deltas."""

    def __init__(
        self, seconds: float = MODEL_SECONDS, chunks: int = CHUNKS, tool: bool = False
    ) -> None:
        self.name = "slow-double"
        self.seconds = seconds
        self.chunks = chunks
        self.tool = tool

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        answered = bool(request.items) and isinstance(request.items[-1], FunctionOutput)
        if self.tool and not answered:
            yield ModelToolCall(f"call_{id(request)}", "save_bill", json.dumps(BILL_ARGS))
        else:
            for _ in range(self.chunks):
                await asyncio.sleep(self.seconds / self.chunks)
                yield ModelTextDelta("word ")
        yield ModelDone()


async def bare(n: int, model: SlowModel) -> float:
    """N streams of the double alone: the floor any runtime pays."""

    async def one() -> None:
        async for _ in model.stream(ModelRequest("m", "", ())):
            pass

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - start


_LIVE_SQL = "SELECT status, count(*) FROM runs WHERE status IN ({}) GROUP BY status"


def live_runs_sqlite(data_dir: Path) -> dict[str, int]:
    """Runs whose status is not terminal, by status, read straight from the database file."""
    with sqlite3.connect(data_dir / "tallybot.db") as conn:
        rows = conn.execute(_LIVE_SQL.format(",".join("?" * len(LIVE))), LIVE).fetchall()
    return {status: count for status, count in rows}


async def live_runs_postgres(url: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        marks = ",".join(f"${i + 1}" for i in range(len(LIVE)))
        rows = await conn.fetch(_LIVE_SQL.format(marks), *LIVE)
    finally:
        await conn.close()
    return {row[0]: int(row[1]) for row in rows}


async def case(
    n: int, data_dir: Path, url: str | None, budget: float, tool: bool
) -> dict[str, Any]:
    model = SlowModel(tool=tool)
    floor = await bare(n, SlowModel())  # the 1.0 s answer alone; the tool turn costs nothing
    bot = await open_bot(data_dir, url, model=model)
    try:
        await turn(bot, "bench:conc:warm")  # imports and caches, untimed
        start = time.perf_counter()
        tasks = [asyncio.create_task(turn(bot, f"bench:conc:{i}")) for i in range(n)]
        done, pending = await asyncio.wait(tasks, timeout=budget)
        wall = time.perf_counter() - start
        failures = Counter(type(t.exception()).__name__ for t in done if t.exception())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await bot.close()
    live = live_runs_sqlite(data_dir) if url is None else await live_runs_postgres(url)
    return {
        "n": n,
        "wall": wall,
        "bare": floor,
        "answered": len(done) - sum(failures.values()),
        "failed": dict(failures),
        "capped": len(pending),
        "live": live,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


async def child(args: argparse.Namespace) -> None:
    data_dir = Path(args.data)
    if args.db == "postgres":
        async with throwaway_postgres() as url:
            result = await case(args.one, data_dir, url, args.budget, args.tool)
    else:
        result = await case(args.one, data_dir, None, args.budget, args.tool)
    print("RESULT " + json.dumps(result), flush=True)


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any] | str:
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-") as tmp:
        cmd = [sys.executable, __file__, "--one", str(n), "--data", tmp, "--db", args.db]
        cmd += ["--budget", str(args.budget)] + (["--tool"] if args.tool else [])
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=args.budget + 180, env=os.environ
            )
        except subprocess.TimeoutExpired:
            return f"killed after {args.budget + 180:.0f} s (cancelling the capped runs hung)"
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
        return f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--budget", type=float, default=90.0, help="seconds before a case is capped"
    )
    parser.add_argument("--tool", action="store_true", help="each turn first calls save_bill")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        asyncio.run(child(args))
        return
    turn_kind = "save_bill call + 1.0 s answer" if args.tool else "1.0 s answer"
    print(
        f"tallybot on {args.db}; model double: {turn_kind}, 50 chunks; budget {args.budget:.0f} s/case"
    )
    print(
        "| conversations | wall s | wall / model time | bare double s | answered | failed | capped | live after | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        r = run_size(n, args)
        if isinstance(r, str):
            print(f"| {n:,} | {r} | | | | | | | |", flush=True)
            continue
        failed = ", ".join(f"{k} {v}" for k, v in r["failed"].items()) or "0"
        live = ", ".join(f"{k} {v}" for k, v in r["live"].items()) or "0"
        print(
            f"| {n:,} | {r['wall']:.2f} | {r['wall'] / MODEL_SECONDS:.2f}x | {r['bare']:.2f} | "
            f"{r['answered']:,} | {failed} | {r['capped']:,} | {live} | {r['rss_mb']:.0f} |",
            flush=True,
        )
    print(
        "wall / model time: the target is <= 1.5x at 1,000; `capped` counts conversations cut at the budget"
    )


if __name__ == "__main__":
    main()
