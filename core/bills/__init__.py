"""The bill ledger: Decimal money, append-only revisions, and a per-thread price catalog.

Rules this package enforces (see DESIGN.md, "Rules that hold everywhere"):

- Money and quantities are :class:`decimal.Decimal`. Numbers arrive as ``str``/``int``/``float``
  and are converted through ``str`` so ``0.1`` stays ``0.1``; NaN, infinities and booleans are
  rejected.
- Totals are recomputed from the line items. A line's ``cost``/``revenue`` is
  ``quantity * unit`` rounded half-up to cents (0.01); bill totals are exact sums of those line
  amounts, so a printed table always adds up. Unit prices are never rounded.
- A change to a bill is a new ``bill_revisions`` row; old rows are never updated. ``undo`` is a
  new revision too (reason ``"undo"``); undoing revision 1 voids the bill.
- A write carrying ``(run_id, call_id)`` is idempotent: a replayed tool call returns the
  revision the first call wrote instead of writing another one.
- Names are compared after :func:`normalize_name`; a missing price is filled from the bill itself
  or the thread's catalog, and an unknown one raises :class:`~core.errors.UnknownPrice`.

Text formats (``Bill.to_json``): money as decimal strings with at least two places (``"12.50"``,
more only when a unit price has them, e.g. ``"0.125"``); quantities as plain decimals without
trailing zeros (``"2"``, ``"1.5"``); timestamps ISO 8601 UTC with a ``Z`` suffix.

One job per module:

- :mod:`core.bills.money`: Decimal parsing and bounds, money/quantity formatting, names, the
  date/currency/note checks;
- :mod:`core.bills.model`: :class:`LineItem`, :class:`Bill`, a stored revision, totals;
- :mod:`core.bills.catalog`: incoming lines validated and merged, missing prices filled;
- :mod:`core.bills.ledger`: :class:`Ledger`, the rules of save/amend/undo and the reads; its
  SQL is :class:`core.store.bills.BillsRepo`;
- :mod:`core.bills.parse_add`: the ``/add`` command's parser;
- :mod:`core.bills.export`: CSV/XLSX/JSON export.
"""

from core.bills.catalog import Prices
from core.bills.export import EXPORT_COLUMNS, ExportFormat, export_bills, safe_cell
from core.bills.ledger import Ledger
from core.bills.model import Bill, LineItem, Revision
from core.bills.money import format_money, format_quantity, normalize_name, to_decimal
from core.bills.parse_add import parse_add

__all__ = [
    "EXPORT_COLUMNS",
    "Bill",
    "ExportFormat",
    "Ledger",
    "LineItem",
    "Prices",
    "Revision",
    "export_bills",
    "format_money",
    "format_quantity",
    "normalize_name",
    "parse_add",
    "safe_cell",
    "to_decimal",
]
