"""What one PostgreSQL statement costs through tallybot's store, beside the same statement
straight on asyncpg, in one run.

    python bench/pg_statement.py                 # 3 rounds x 2,000 statements per row
    python bench/pg_statement.py --rounds 5 --n 5000

A one-row INSERT (autocommit: its own transaction, a WAL flush at its COMMIT) and a SELECT by an
indexed column, on a throwaway database:

- asyncpg: ``Connection.execute`` / ``fetch`` on one connection (statements prepared once,
  cached by asyncpg);
- tallybot: :class:`core.store.fast.Prepared` through ``Database.write_alone`` and
  ``Database.read``, as the hot path runs every statement of a PostgreSQL turn -- a greenlet, a
  pool checkout, SQLAlchemy's asyncpg adapter.

Printed: wall and CPU (``time.process_time``) per statement, medians of the rounds, and the
difference: what the store adds to each of a turn's statements on the client. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

# run as `python bench/pg_statement.py`
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from bench.tallybot_side import asyncpg_dsn, run_on_postgres, throwaway_postgres  # noqa: E402
from bench.turn import median  # noqa: E402
from core.store.base import open_database  # noqa: E402
from core.store.fast import Prepared  # noqa: E402

_meta = sa.MetaData()
_rows = sa.Table(
    "statement_bench",
    _meta,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("conversation", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
CREATE = (
    "CREATE TABLE statement_bench (id bigserial PRIMARY KEY, conversation text NOT NULL,"
    " body text NOT NULL); CREATE INDEX ON statement_bench (conversation)"
)
INSERT_SQL = "INSERT INTO statement_bench (conversation, body) VALUES ($1, $2)"
SELECT_SQL = "SELECT id, conversation, body FROM statement_bench WHERE conversation = $1"
INSERT = Prepared(_rows.insert())
SELECT = Prepared(sa.select(_rows).where(_rows.c.conversation == sa.bindparam("c")))

Play = Callable[[str], Awaitable[object]]


async def per_statement(play: Play, n: int, tag: str) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(n):
        await play(f"{tag}:{i}")
    return (time.perf_counter() - wall0) / n, (time.process_time() - cpu0) / n


async def main_async(rounds: int, n: int) -> None:
    import asyncpg

    async with throwaway_postgres() as url:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        await conn.execute(CREATE)
        db = open_database(url)
        plays: dict[str, Play] = {
            "INSERT, asyncpg": lambda key: conn.execute(INSERT_SQL, key, "body"),
            "INSERT, tallybot's store": lambda key: db.write_alone(
                lambda c: INSERT.run(c, {"conversation": key, "body": "body"})
            ),
            "SELECT, asyncpg": lambda key: conn.fetch(SELECT_SQL, key),
            "SELECT, tallybot's store": lambda key: db.read(lambda c: SELECT.all(c, {"c": key})),
        }
        got: dict[str, list[tuple[float, float]]] = {name: [] for name in plays}
        try:
            for r in range(rounds):
                for name, play in plays.items():  # interleaved: a noisy minute lands on all
                    got[name].append(await per_statement(play, n, f"{r}:{name}"))
        finally:
            await db.close()
            await conn.close()

    def fig(name: str, i: int) -> float:
        return median([g[i] for g in got[name]]) * 1e3

    print("\n| statement | wall ms | CPU ms |")
    print("|---|---|---|")
    for name in plays:
        print(f"| {name} | {fig(name, 0):.3f} | {fig(name, 1):.3f} |")
    for what in ("INSERT", "SELECT"):
        mine, bare = f"{what}, tallybot's store", f"{what}, asyncpg"
        print(
            f"\n{what}: the store adds {fig(mine, 0) - fig(bare, 0):.3f} ms wall, "
            f"{fig(mine, 1) - fig(bare, 1):.3f} ms CPU a statement."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000, help="statements per row and round")
    args = parser.parse_args()
    run_on_postgres(main_async(args.rounds, args.n))


if __name__ == "__main__":
    main()
