"""One persisted turn through tallybot and through its peers, timed in the same run.

    python bench/peers.py                    # 3 rounds x 100 turns, then the 500-turn history
    python bench/peers.py --turns 300 --rounds 5 --history 0 --only tallybot --only agents
    python bench/peers.py --profile --only "tallybot, SQLite file" --turns 200

The turn (bench/turn.py): one user message -> the model double calls ``save_bill`` once -> a
text answer; a new conversation every turn; zero-latency model doubles. For every runtime it
prints p50 and p99 wall ms per turn and CPU ms per turn (``time.process_time``: this process,
all its threads; a PostgreSQL server's own CPU is not in it), each the median of the rounds'
figures, warm-up turns excluded, and the ratios to openai-agents + SQLiteSession. Then the
history figure: one conversation of ``--history`` turns, the median of its first ten turns
against the median of its last ten. Needs ``pip install -e '.[bench]'``; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/peers.py`

from bench.peer_runtimes import AgentsPeer, PydanticPeer  # noqa: E402
from bench.tallybot_side import open_bot, throwaway_postgres, turn  # noqa: E402
from bench.turn import median, percentile  # noqa: E402

BASELINE = "openai-agents + SQLiteSession (file)"
Factory = Callable[[Path], contextlib.AbstractAsyncContextManager[Any]]


class BotRunner:
    """tallybot behind the same ``turn(key)`` / ``close()`` shape as the peers."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    async def turn(self, key: str) -> None:
        await turn(self.bot, key)

    async def close(self) -> None:
        await self.bot.close()


@contextlib.asynccontextmanager
async def tallybot_sqlite(tmp: Path, ledger: bool = False) -> AsyncIterator[BotRunner]:
    runner = BotRunner(await open_bot(tmp, ledger=ledger))
    try:
        yield runner
    finally:
        await runner.close()


@contextlib.asynccontextmanager
async def tallybot_postgres(tmp: Path) -> AsyncIterator[BotRunner]:
    async with throwaway_postgres() as url:
        runner = BotRunner(await open_bot(tmp, url))
        try:
            yield runner
        finally:
            await runner.close()


@contextlib.asynccontextmanager
async def peer(make: Callable[[Path], Any], tmp: Path) -> AsyncIterator[Any]:
    runner = make(tmp)
    try:
        yield runner
    finally:
        await runner.close()


RUNTIMES: dict[str, Factory] = {
    "tallybot, SQLite file": tallybot_sqlite,
    "tallybot, PostgreSQL": tallybot_postgres,
    "tallybot, SQLite, real save_bill (writes a bill)": lambda t: tallybot_sqlite(t, True),
    BASELINE: lambda t: peer(lambda d: AgentsPeer(d / "sessions.db"), t),
    "openai-agents + SQLiteSession, library default synchronous=FULL": lambda t: peer(
        lambda d: AgentsPeer(d / "sessions.db", synchronous=None), t
    ),
    "openai-agents, no session": lambda t: peer(lambda d: AgentsPeer(None), t),
    "pydantic-ai FunctionModel, in memory": lambda t: peer(lambda d: PydanticPeer(), t),
}


@dataclass
class Figures:
    """Per-round p50 / p99 / CPU of one runtime, in seconds."""

    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    error: str | None = None


async def one_round(factory: Factory, tag: str, turns: int, warmup: int) -> tuple[float, ...]:
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-") as tmp:
        async with factory(Path(tmp)) as runner:
            for i in range(warmup):
                await runner.turn(f"bench:{tag}:warm:{i}")
            times = []
            cpu0 = time.process_time()
            for i in range(turns):
                start = time.perf_counter()
                await runner.turn(f"bench:{tag}:{i}")
                times.append(time.perf_counter() - start)
            cpu = (time.process_time() - cpu0) / turns
    return percentile(times, 50), percentile(times, 99), cpu


async def measure(names: list[str], rounds: int, turns: int, warmup: int) -> dict[str, Figures]:
    figures = {name: Figures() for name in names}
    for r in range(rounds):
        # Rounds interleave the runtimes, so a noisy minute lands on all of them.
        for name in names:
            fig = figures[name]
            if fig.error:
                continue
            try:
                p50, p99, cpu = await one_round(RUNTIMES[name], f"{r}", turns, warmup)
            except (OSError, ImportError) as exc:  # no PostgreSQL server, no bench extra
                fig.error = f"{type(exc).__name__}: {exc}"
                continue
            fig.p50.append(p50)
            fig.p99.append(p99)
            fig.cpu.append(cpu)
        print(f"  round {r + 1}/{rounds} done", flush=True)
    return figures


def ms(value: float) -> str:
    return f"{value * 1e3:.2f}"


def print_table(figures: dict[str, Figures]) -> None:
    base = figures.get(BASELINE)
    have_base = base is not None and not base.error and base.p50
    print("\n| runtime | p50 ms | p99 ms | CPU ms/turn | p50 ratio | p99 ratio | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, fig in figures.items():
        if fig.error or not fig.p50:
            print(f"| {name} | skipped: {fig.error} | | | | | |")
            continue
        row = [median(fig.p50), median(fig.p99), median(fig.cpu)]
        ratios = ["", "", ""]
        if have_base:
            b = [median(base.p50), median(base.p99), median(base.cpu)]  # type: ignore[union-attr]
            ratios = [f"{v / w:.2f}x" for v, w in zip(row, b, strict=True)]
        print(f"| {name} | {' | '.join(ms(v) for v in row)} | {' | '.join(ratios)} |")
    print(f"\nratios are to '{BASELINE}' (synchronous=NORMAL, tallybot's setting) in this run.")


async def history(name: str, length: int) -> tuple[float, float] | str:
    """Median wall time of turns 1-10 and of the last ten turns of ONE conversation."""
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-") as tmp:
        try:
            async with RUNTIMES[name](Path(tmp)) as runner:
                for i in range(10):  # warm the process up in other conversations
                    await runner.turn(f"bench:hist:warm:{i}")
                times = []
                for _ in range(length):
                    start = time.perf_counter()
                    await runner.turn("bench:hist:one")
                    times.append(time.perf_counter() - start)
        except (OSError, ImportError) as exc:
            return f"skipped: {type(exc).__name__}: {exc}"
    return median(times[:10]), median(times[-10:])


async def profile(name: str, turns: int, warmup: int, top: int = 25) -> None:
    """cProfile of ``turns`` turns of one runtime: where its time goes, by own time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-") as tmp:
        async with RUNTIMES[name](Path(tmp)) as runner:
            for i in range(warmup):
                await runner.turn(f"bench:prof:warm:{i}")
            profiler.enable()
            for i in range(turns):
                await runner.turn(f"bench:prof:{i}")
            profiler.disable()
    print(f"\nprofile of {turns} turns of '{name}' (top {top} by own time)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


async def main_async(args: argparse.Namespace) -> None:
    wanted = [w.strip().lower() for w in args.only or []]
    names = [n for n in RUNTIMES if not wanted or any(w in n.lower() for w in wanted)]
    if args.profile:
        await profile(names[0], args.turns, args.warmup)
        return
    print(
        f"{args.rounds} rounds x {args.turns} turns (+{args.warmup} warm-up) per runtime; "
        "a new conversation each turn; wall p50/p99 and CPU per turn, median of the rounds"
    )
    print_table(await measure(names, args.rounds, args.turns, args.warmup))
    if args.history <= 0:
        return
    print(
        f"\nhistory: one conversation of {args.history} turns; median of turns 1-10 vs the last 10"
    )
    print("| runtime | turns 1-10 ms | last 10 ms | ratio |")
    print("|---|---|---|---|")
    for name in ("tallybot, SQLite file", BASELINE):
        if name not in names:
            continue
        result = await history(name, args.history)
        if isinstance(result, str):
            print(f"| {name} | {result} | | |")
        else:
            first, last = result
            print(f"| {name} | {ms(first)} | {ms(last)} | {last / first:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=100, help="timed turns per round")
    parser.add_argument("--warmup", type=int, default=10, help="untimed turns per round")
    parser.add_argument("--history", type=int, default=500, help="0 skips the history figure")
    parser.add_argument(
        "--only",
        action="append",
        help="a substring of the runtime names to run (case-insensitive); repeat for more "
        "(names contain commas, so one --only is one substring)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the first runtime --only selects"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
