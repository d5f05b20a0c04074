"""How close a PostgreSQL turn can come to a SQLite one: tallybot on both, beside the protocol's
floor, in one run.

    python bench/pg_floor.py                   # 3 rounds x 200 turns per row
    python bench/pg_floor.py --rounds 5 --turns 300

Rows (interleaved round by round, as ``peers.py``; the turn is ``peers.py``'s, a new
conversation each time):

- tallybot on a SQLite file, and what its store's worker thread spent per turn
  (``time.thread_time`` read on the worker): the turn's store work. What is left, the turn
  minus it, is what tallybot does outside any database;
- tallybot on PostgreSQL, with the server's ``synchronous_commit`` (``on`` by default: every
  COMMIT waits for its WAL flush) and with ``off`` (``ALTER DATABASE ... SET``: a COMMIT returns
  before its flush -- SQLite's ``synchronous=NORMAL``, tallybot's setting, does not fsync at a
  COMMIT either);
- the floor: the turn's database calls (``count_turn.py``: 6 transactions that write, 1 that
  reads, on SQLite; PostgreSQL reads the new run's context in a second one) as the least any
  client could send -- one single-statement INSERT each, in autocommit,
  and one SELECT, straight on asyncpg, no tallybot -- with the server's ``synchronous_commit``
  and with ``off``.

- the replay: the very statements tallybot sent for the same turns on PostgreSQL (captured by
  a ``before_cursor_execute`` listener in a run of their own, SQL and the values as the driver
  got them), sent again one by one on a fresh database straight on asyncpg, in autocommit: what
  the turn's statements cost with no client work around them -- round trips, the server's
  execution, the COMMITs' WAL flushes. tallybot's PostgreSQL turn minus the replay minus its
  work outside the database is what its store costs on the client (SQLAlchemy's adapter, the
  greenlet, the pool, building the parameters).

Then the projections: tallybot's work outside the database plus the floor, and plus the replay,
against the SQLite turn. It says what the issue-12 target "PostgreSQL <= 1.3x SQLite" needs: if the projection
with durable commits is above 1.3x, no PostgreSQL store, however few its round trips, meets
it against a SQLite store that does not fsync; if the one with the replay is, no client of these
statements meets it either, however little it does around them. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/pg_floor.py`

from bench.tallybot_side import (  # noqa: E402
    PG_URL,
    asyncpg_dsn,
    open_bot,
    run_on_postgres,
    throwaway_postgres,
    turn,
)
from bench.turn import median, percentile  # noqa: E402
from core.app import Tallybot  # noqa: E402
from core.store.store import Store  # noqa: E402

WRITES, READS = 6, 1  # the database calls of one new conversation's turn (count_turn.py)


@contextlib.asynccontextmanager
async def postgres(sync_commit: bool) -> AsyncIterator[str]:
    """A throwaway database; ``sync_commit=False`` sets its ``synchronous_commit`` off."""
    import asyncpg

    async with throwaway_postgres() as url:
        if not sync_commit:
            name = url.rsplit("/", 1)[1]
            admin = await asyncpg.connect(PG_URL)
            try:
                await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
            finally:
                await admin.close()
        yield url


Turn = Callable[[int], Awaitable[None]]


async def timed(play: Turn, turns: int, warmup: int) -> tuple[float, float, float]:
    for i in range(warmup):
        await play(-1 - i)
    times = []
    cpu0 = time.process_time()
    for i in range(turns):
        start = time.perf_counter()
        await play(i)
        times.append(time.perf_counter() - start)
    return percentile(times, 50), percentile(times, 99), (time.process_time() - cpu0) / turns


async def tallybot_sqlite(tag: str, turns: int, warmup: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tallybot-floor-") as tmp:
        bot = await open_bot(Path(tmp))
        try:
            worker = bot.store.db.worker  # type: ignore[attr-defined]
            loop = asyncio.get_running_loop()
            w0 = await loop.run_in_executor(worker, time.thread_time)
            p50, p99, cpu = await timed(lambda i: turn(bot, f"floor:{tag}:{i}"), turns, warmup)
            w1 = await loop.run_in_executor(worker, time.thread_time)
        finally:
            await bot.close()
    return {"p50": p50, "p99": p99, "cpu": cpu, "worker": (w1 - w0) / (turns + warmup)}


@contextlib.asynccontextmanager
async def postgres_bot(sync_commit: bool) -> AsyncIterator[Tallybot]:
    """tallybot on a throwaway PostgreSQL database (see :func:`postgres`)."""
    with tempfile.TemporaryDirectory(prefix="tallybot-floor-") as tmp:
        async with postgres(sync_commit) as url:
            bot = await open_bot(Path(tmp), url)
            try:
                yield bot
            finally:
                await bot.close()


async def tallybot_postgres(tag: str, turns: int, warmup: int, sync: bool) -> dict[str, float]:
    async with postgres_bot(sync) as bot:
        play = lambda i: turn(bot, f"floor:{tag}:{i}")  # noqa: E731
        p50, p99, cpu = await timed(play, turns, warmup)
    return {"p50": p50, "p99": p99, "cpu": cpu}


async def floor(tag: str, turns: int, warmup: int, sync: bool) -> dict[str, float]:
    import asyncpg

    async with postgres(sync) as url:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(
                "CREATE TABLE floor (id bigserial PRIMARY KEY, conversation text NOT NULL,"
                " body text NOT NULL, at timestamptz NOT NULL DEFAULT now());"
                " CREATE INDEX ON floor (conversation)"
            )
            # Statements with arguments are prepared once and cached by asyncpg: one trip each.
            insert = "INSERT INTO floor (conversation, body) VALUES ($1, $2)"
            select = "SELECT id, body, at FROM floor WHERE conversation = $1"

            async def play(i: int) -> None:
                key = f"floor:{tag}:{i}"
                for n in range(WRITES):
                    await conn.execute(
                        insert, key, f"write {n}"
                    )  # autocommit: one trip, one COMMIT
                for _ in range(READS):
                    await conn.fetch(select, key)

            p50, p99, cpu = await timed(play, turns, warmup)
        finally:
            await conn.close()
    return {"p50": p50, "p99": p99, "cpu": cpu}


Statements = list[list[tuple[str, list[object]]]]  # per turn: (SQL, the driver's values)


async def captured(tag: str, turns: int) -> Statements:
    """The statements of ``turns`` tallybot turns on a PostgreSQL database of their own, per
    turn, as the driver got them (untimed: the listener costs time)."""
    from sqlalchemy import event

    got: Statements = []

    def seen(_conn: object, _cursor: object, sql: str, args: object, *_: object) -> None:
        got[-1].append((sql, list(args)))  # type: ignore[call-overload]

    async with postgres_bot(True) as bot:
        event.listen(bot.store.engine.sync_engine, "before_cursor_execute", seen)
        for i in range(turns):
            got.append([])
            await turn(bot, f"replay:{tag}:{i}")
    return got


async def replay(tag: str, turns: int, warmup: int, sync: bool) -> dict[str, float]:
    """:func:`captured` turns sent again on a fresh database, straight on asyncpg."""
    import asyncpg

    queue = iter(await captured(tag, turns + warmup))
    async with postgres(sync) as url:
        await (await Store.open(url)).close()  # the schema, migrated; no rows
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:

            async def play(_i: int) -> None:
                for sql, args in next(queue):
                    await conn.fetch(sql, *args)  # autocommit; prepared once, cached

            p50, p99, cpu = await timed(play, turns, warmup)
        finally:
            await conn.close()
    return {"p50": p50, "p99": p99, "cpu": cpu}


ROWS: dict[str, Callable[[str, int, int], Awaitable[dict[str, float]]]] = {
    "tallybot, SQLite file": tallybot_sqlite,
    "tallybot, PostgreSQL (synchronous_commit on)": lambda t, n, w: tallybot_postgres(
        t, n, w, True
    ),
    "tallybot, PostgreSQL (synchronous_commit off)": lambda t, n, w: tallybot_postgres(
        t, n, w, False
    ),
    f"floor: {WRITES} INSERTs + {READS} SELECT on asyncpg (on)": lambda t, n, w: floor(
        t, n, w, True
    ),
    f"floor: {WRITES} INSERTs + {READS} SELECT on asyncpg (off)": lambda t, n, w: floor(
        t, n, w, False
    ),
    "replay: tallybot's statements on asyncpg (on)": lambda t, n, w: replay(t, n, w, True),
    "replay: tallybot's statements on asyncpg (off)": lambda t, n, w: replay(t, n, w, False),
}


async def main_async(rounds: int, turns: int, warmup: int) -> None:
    got: dict[str, list[dict[str, float]]] = {name: [] for name in ROWS}
    for r in range(rounds):
        for name, row in ROWS.items():
            got[name].append(await row(str(r), turns, warmup))
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr)

    def fig(name: str, key: str) -> float:
        return median([f[key] for f in got[name]])

    sqlite = fig("tallybot, SQLite file", "p50")
    print("\n| row | p50 ms | p99 ms | CPU ms/turn | p50 / SQLite turn |")
    print("|---|---|---|---|---|")
    for name in ROWS:
        p50 = fig(name, "p50")
        print(
            f"| {name} | {p50 * 1e3:.2f} | {fig(name, 'p99') * 1e3:.2f} "
            f"| {fig(name, 'cpu') * 1e3:.2f} | {p50 / sqlite:.2f}x |"
        )
    worker = fig("tallybot, SQLite file", "worker")
    outside = sqlite - worker
    print(
        f"\nSQLite store worker CPU per turn {worker * 1e3:.2f} ms; tallybot outside the "
        f"database {outside * 1e3:.2f} ms (SQLite turn p50 minus it)."
    )
    print("| projection: outside + | synchronous_commit | ms | / SQLite turn |")
    print("|---|---|---|---|")
    for what, row in (
        ("floor", f"floor: {WRITES} INSERTs + {READS} SELECT on asyncpg"),
        ("replay", "replay: tallybot's statements on asyncpg"),
    ):
        for setting in ("on", "off"):
            best = outside + fig(f"{row} ({setting})", "p50")
            print(f"| {what} | {setting} | {best * 1e3:.2f} | {best / sqlite:.2f}x |")
    for setting in ("on", "off"):
        tallybot = fig(f"tallybot, PostgreSQL (synchronous_commit {setting})", "p50")
        client = (
            tallybot - outside - fig(f"replay: tallybot's statements on asyncpg ({setting})", "p50")
        )
        print(
            f"\nsynchronous_commit {setting}: tallybot's PostgreSQL store on the client (the "
            f"turn minus outside minus the replay) {client * 1e3:.2f} ms a turn."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    run_on_postgres(main_async(args.rounds, args.turns, args.warmup))


if __name__ == "__main__":
    main()
