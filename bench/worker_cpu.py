"""Where the CPU of N concurrent conversations goes: the SQLite worker thread against the rest.

    python bench/worker_cpu.py                    # 1,000 conversations, model streams ONE chunk
    python bench/worker_cpu.py --n 1000 --chunks 50 --repeat 3

Every conversation sends its message at once (as ``bench/concurrency.py``) to a model double
that takes 1.0 s (``SlowModel``, one chunk by default, so the loop's own timer work is small
and the store's worker is what is left). Prints wall time, process CPU (``time.process_time``:
every thread), the worker's CPU (``time.thread_time`` read on the worker itself), the rest
(the event loop, mostly), and the worker's CPU per turn. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/worker_cpu.py`

from bench.concurrency import SlowModel  # noqa: E402
from bench.tallybot_side import open_bot, turn  # noqa: E402


async def one_run(n: int, chunks: int, tmp: Path) -> tuple[float, float, float]:
    bot = await open_bot(tmp, model=SlowModel(chunks=chunks))
    try:
        worker = bot.store.db.worker  # type: ignore[attr-defined]
        await turn(bot, "bench:cpu:warm")

        def worker_cpu() -> float:
            return time.thread_time()

        loop = asyncio.get_running_loop()
        w0 = await loop.run_in_executor(worker, worker_cpu)
        p0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(turn(bot, f"bench:cpu:{i}") for i in range(n)))
        wall, proc = time.perf_counter() - t0, time.process_time() - p0
        w1 = await loop.run_in_executor(worker, worker_cpu)
        return wall, proc, w1 - w0
    finally:
        await bot.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.n} conversations, model 1.0 s in {args.chunks} chunk(s), SQLite file")
    print("| run | wall s | process CPU s | worker CPU s | rest CPU s | worker ms/turn |")
    print("|---|---|---|---|---|---|")
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="tallybot-cpu-") as tmp:
            wall, proc, work = asyncio.run(one_run(args.n, args.chunks, Path(tmp)))
        print(
            f"| {i + 1} | {wall:.2f} | {proc:.2f} | {work:.2f} | {proc - work:.2f} "
            f"| {1000 * work / args.n:.3f} |"
        )


if __name__ == "__main__":
    main()
