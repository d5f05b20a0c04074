"""The async repository over :mod:`core.store.tables`; all SQL lives in this package.

:class:`Store` is assembled in :mod:`core.store.store` from one mixin per aggregate:

- :mod:`core.store.base` — the engine: ``open`` (applies migrations), ``close``, ``dialect``;
- :mod:`core.store.threads` — threads and their messages;
- :mod:`core.store.runs` — runs, steps, tool calls and the status log (every status change is
  checked against the transition table and logged in the same transaction);
- :mod:`core.store.files` — file references;
- :mod:`core.store.platform` — adapter state: processed events and kv;
- :mod:`core.store.bills` — the bill book: bills, revisions, the price catalog (its statements
  in :mod:`core.store.bill_queries`);
- :mod:`core.store.search` — file-search passages (FTS5 on SQLite, tsvector on PostgreSQL).

This module only re-exports; submodules import their siblings directly, never this package.
"""

from core.store import db
from core.store.store import Store

__all__ = ["Store", "db"]
