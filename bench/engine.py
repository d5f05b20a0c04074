"""Engine overhead: a full persisted run versus bare streaming of the same scripted turns.

    python bench/engine.py [--runs 200]

Prints per-run times for (a) iterating a ScriptedModel's stream alone (the floor: what any
runtime must do) and (b) tallybot's engine doing the same turn with every status, step and
message persisted in SQLite, and the ratio. A text-only run and a run with one tool call are
measured separately. Figures vary with the machine; compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import Settings  # noqa: E402
from core.models.base import ModelRequest  # noqa: E402
from core.models.scripted import ScriptedModel, call, text  # noqa: E402
from core.store import Store  # noqa: E402
from tests.engine.helpers import Harness  # noqa: E402

TEXT = text(*["word "] * 50)


def turns(kind: str) -> list:
    if kind == "text":
        return [TEXT]
    return [[call("echo", {"text": "x"}, "c1")], TEXT]


async def bare(kind: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        model = ScriptedModel(turns(kind))
        start = time.perf_counter()
        for _turn in range(len(model.turns)):
            async for _ in model.stream(ModelRequest("m", "", ())):
                pass
        times.append(time.perf_counter() - start)
    return times


async def engine(kind: str, runs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), _env_file=None)  # type: ignore[call-arg]
        store = await Store.open(settings.db_url)
        times = []
        try:
            for i in range(runs):
                h = Harness(settings, store, ScriptedModel(turns(kind)))
                start = time.perf_counter()
                await h.send("question", key=f"bench:{i % 10}")
                times.append(time.perf_counter() - start)
        finally:
            await store.close()
        return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    print(f"{'case':<10} {'bare median':>12} {'engine median':>14} {'ratio':>8}")
    for kind in ("text", "tool"):
        b = statistics.median(asyncio.run(bare(kind, args.runs)))
        e = statistics.median(asyncio.run(engine(kind, args.runs)))
        print(f"{kind:<10} {b * 1e3:>10.3f}ms {e * 1e3:>12.3f}ms {e / b:>7.1f}x")


if __name__ == "__main__":
    main()
