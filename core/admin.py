"""The operator's calls behind ``tallybot bills|runs|db``: no model, no tools, no recovery.

    async with await Admin.open(settings) as admin:
        bills = await admin.bills()
        runs = await admin.runs(thread_key="console:default")

:func:`upgrade_database` applies the migrations without opening anything else. The CLI formats
what these return; it never reaches the store itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.store import Store
from core.store import db as _db

if TYPE_CHECKING:
    from core.bills import Bill, Ledger
    from core.bills.report import Report
    from core.config import Settings
    from core.domain import Run


class Admin:
    """Read-only views of bills and runs, plus bill export, on one open store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    @classmethod
    async def open(cls, settings: Settings) -> Admin:
        """Open the store (applying migrations, as every start does)."""
        return cls(await Store.open(settings.db_url), settings)

    async def close(self) -> None:
        await self._store.close()

    async def __aenter__(self) -> Admin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- bills ---------------------------------------------------------------------------

    def _ledger(self) -> Ledger:
        from core.bills import Ledger

        return Ledger(self._store, self._settings)

    async def bills(
        self, *, book: str | None = None, date_from: str | None = None, date_to: str | None = None
    ) -> list[Bill]:
        """Bills at their latest revision (of one book, between two dates), by date then id."""
        return await self._ledger().list(book=book, date_from=date_from, date_to=date_to)

    async def bill(self, bill_id: int) -> Bill:
        """One bill at its latest revision (raises NotFound)."""
        return await self._ledger().get(bill_id)

    async def export_bills(
        self,
        fmt: Literal["csv", "xlsx", "json"],
        out: Path,
        *,
        book: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
    ) -> tuple[int, Path]:
        """Write the bills (filtered as :meth:`bills`) to ``out``; returns how many and where."""
        from core.bills import export_bills

        bills = await self.bills(book=book, date_from=date_from, date_to=date_to)
        return len(bills), export_bills(bills, fmt, out)

    async def report(
        self,
        *,
        book: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        by: str = "day",
    ) -> Report:
        """Cost, revenue and profit of the bills (of a book, between two dates), grouped."""
        from core.bills.report import build_report

        bills = await self.bills(book=book, date_from=date_from, date_to=date_to)
        return build_report(bills, book=book, date_from=date_from, date_to=date_to, by=by)  # type: ignore[arg-type]

    async def history(self, bill_id: int) -> dict[str, Any]:
        """A bill's revisions with when, who, why and item changes (raises NotFound)."""
        from core.bills.history import history_json

        return history_json(bill_id, await self._ledger().revisions(bill_id))

    # --- runs ----------------------------------------------------------------------------

    async def thread_keys(self) -> dict[str, str]:
        """thread id → channel key, for every thread."""
        return {t.id: t.key for t in await self._store.list_threads()}

    async def thread_id(self, key: str) -> str | None:
        """The id of the thread with channel key ``key``, or None when there is none."""
        thread = await self._store.thread_by_key(key)
        return thread.id if thread else None

    async def runs(self, *, thread_id: str | None = None, with_steps: bool = False) -> list[Run]:
        """Runs in creation order, of one thread or of all; steps loaded on request."""
        found = await self._store.list_runs(thread_id=thread_id)
        if with_steps:
            # One get_run per run, as the CLI always did: the JSON must match ``run``'s.
            return [await self._store.get_run(r.id) for r in found]
        return found

    async def run(self, run_id: str) -> Run:
        """One run with its steps and tool calls (raises NotFound)."""
        return await self._store.get_run(run_id)


async def upgrade_database(settings: Settings) -> str | None:
    """Apply every migration to the configured database; returns the revision it is at."""
    engine = _db.create_engine(settings.db_url)
    try:
        await _db.upgrade(engine)
        return await _db.current_revision(engine)
    finally:
        await engine.dispose()
