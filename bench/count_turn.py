"""Statements and transactions one benchmark turn costs, counted, not timed.

    python bench/count_turn.py                  # SQLite, then PostgreSQL if it is reachable
    python bench/count_turn.py --db sqlite --show   # and every statement of one turn

The turn is bench/peers.py's (bench/turn.py: a message -> save_bill -> a text answer), played
through ``Tallybot.handle`` like every benchmark. SQLAlchemy events on both engines of the store
(the async one and, on SQLite, the worker's sync one) count per turn: statements (cursor
executions, BEGIN/COMMIT/ROLLBACK excluded), transactions (``begin`` events; the store's
``db.read`` / ``db.write`` calls, and ``db.write_alone``: a write that is one statement, in
autocommit on PostgreSQL, where it fires no ``begin``), and pool checkouts of the async
engine. Two turns are counted: the first of a new conversation and the 30th of one
conversation (the cost must not grow with its length). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/count_turn.py`

from sqlalchemy import event  # noqa: E402

from bench.tallybot_side import open_bot, throwaway_postgres, turn  # noqa: E402

_TX = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class Tally:
    """Counters fed by engine events."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.statements: list[str] = []

    def watch(self, engine: Any, label: str) -> None:
        def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            word = statement.lstrip().split(None, 1)[0].upper()
            if word in _TX:
                return
            self.counts["statements"] += 1
            self.counts[f"  {word}"] += 1
            self.statements.append(f"{label}: {' '.join(statement.split())[:150]}")

        def on_begin(conn: Any) -> None:
            self.counts["transactions"] += 1

        def on_checkout(*args: Any) -> None:
            self.counts[f"pool checkouts ({label})"] += 1

        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine, "begin", on_begin)
        event.listen(engine.pool, "checkout", on_checkout)

    def wrap_db(self, db: Any) -> None:
        for name in ("read", "write", "write_alone"):
            method = getattr(db, name)

            def counted(work: Any, _m: Any = method, _n: str = name) -> Any:
                self.counts[f"db.{_n}"] += 1
                return _m(work)

            setattr(db, name, counted)

    def reset(self) -> None:
        self.counts.clear()
        self.statements.clear()


async def count(url: str | None, tmp: Path, show: bool) -> dict[str, Counter[str]]:
    bot = await open_bot(tmp, url)
    tally = Tally()
    try:
        store = bot.store
        tally.watch(store.engine.sync_engine, "async engine")
        sync = getattr(store.db, "sync", None)
        if sync is not None:
            tally.watch(sync, "worker")
        tally.wrap_db(store.db)
        for i in range(5):  # warm caches up in other conversations
            await turn(bot, f"bench:count:warm:{i}")
        result = {}
        tally.reset()
        await turn(bot, "bench:count:new")
        result["new conversation"] = Counter(tally.counts)
        if show:
            print("\n".join(tally.statements))
        for _ in range(29):
            await turn(bot, "bench:count:long")
        tally.reset()
        await turn(bot, "bench:count:long")
        result["turn 30 of one"] = Counter(tally.counts)
    finally:
        await bot.close()
    return result


def print_counts(title: str, result: dict[str, Counter[str]]) -> None:
    cols = list(result)
    keys = sorted({k for c in result.values() for k in c}, key=_order)
    print(f"\n{title}")
    print(f"| per turn | {' | '.join(cols)} |")
    print("|---|" + "---|" * len(cols))
    for key in keys:
        print(f"| {key} | {' | '.join(str(result[c][key]) for c in cols)} |")


def _order(key: str) -> tuple[int, str]:
    rank = {"statements": 0, "transactions": 2}
    if key.startswith("  "):
        return (1, key)
    return (rank.get(key, 3), key)


async def main_async(args: argparse.Namespace) -> None:
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tallybot-count-") as tmp:
            print_counts("SQLite file", await count(None, Path(tmp), args.show))
    if args.db in ("postgres", "both"):
        try:
            async with throwaway_postgres() as url:
                with tempfile.TemporaryDirectory(prefix="tallybot-count-") as tmp:
                    print_counts("PostgreSQL", await count(url, Path(tmp), args.show))
        except (OSError, ImportError) as exc:
            print(f"\nPostgreSQL skipped: {type(exc).__name__}: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--show", action="store_true", help="print the new turn's statements")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
