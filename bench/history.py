"""What a full history window adds to a turn, measured in pairs so the machine's drift cancels.

    python bench/history.py                        # 300 turns to fill, then 200 pairs, 3 runs
    python bench/history.py --fill 500 --pairs 300 --runs 5

One bot (SQLite file, bench/tallybot_side.py's turn): a conversation is played ``--fill``
turns (its window full: ``TALLYBOT_HISTORY_MAX_MESSAGES``), then each pair is one more turn of
it and the first turn of a new conversation (no history), back to back. It prints the medians
of both (wall and CPU ms; CPU is ``time.process_time``, all threads) and their ratio: on a
machine whose speed moves by 2x from one minute to the next, peers.py's history figure (ten
turns at the start against ten at the end, a minute apart) can land anywhere, the ratio of
turns taken in the same seconds does not. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/history.py`

from bench.tallybot_side import open_bot, turn  # noqa: E402
from bench.turn import median  # noqa: E402


async def one_run(fill: int, pairs: int) -> tuple[list[float], ...]:
    long_wall: list[float] = []
    long_cpu: list[float] = []
    new_wall: list[float] = []
    new_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-") as tmp:
        bot = await open_bot(Path(tmp))
        try:
            for i in range(10):  # warm the process up in other conversations
                await turn(bot, f"bench:hist:warm:{i}")
            for _ in range(fill):
                await turn(bot, "bench:hist:long")
            for i in range(pairs):
                for key, wall, cpu in (
                    ("bench:hist:long", long_wall, long_cpu),
                    (f"bench:hist:new:{i}", new_wall, new_cpu),
                ):
                    start, cpu0 = time.perf_counter(), time.process_time()
                    await turn(bot, key)
                    wall.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - cpu0)
        finally:
            await bot.close()
    return long_wall, long_cpu, new_wall, new_cpu


async def main_async(args: argparse.Namespace) -> None:
    print(
        f"{args.runs} runs: a conversation filled with {args.fill} turns, then {args.pairs} "
        "pairs (its next turn, a new conversation's first turn)"
    )
    print("| run | full window wall / CPU ms | first turn wall / CPU ms | ratio wall | ratio CPU |")
    print("|---|---|---|---|---|")
    for r in range(args.runs):
        lw, lc, nw, nc = (median(x) for x in await one_run(args.fill, args.pairs))
        print(
            f"| {r + 1} | {lw * 1e3:.2f} / {lc * 1e3:.2f} | {nw * 1e3:.2f} / {nc * 1e3:.2f} "
            f"| {lw / nw:.2f}x | {lc / nc:.2f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fill", type=int, default=300, help="turns before the pairs")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
