"""``tallybot bills``: list, show, export, report and history of saved bills.

    tallybot bills list [--book KEY] [--from D] [--to D] [--json]
    tallybot bills show ID [--json]
    tallybot bills export [--format csv|xlsx|json] [--out PATH] [--book KEY] [--from D] [--to D]
    tallybot bills report [--book KEY] [--from D] [--to D] [--by day|week|month|item] [--json]
                          [--chart PATH]
    tallybot bills history ID [--json]

``bills list`` flags dates of one book that hold more than one bill (left by the migration
that brought bills into books; saving such a date revises the newest of them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import Settings

EXIT_OK = 0


def add_parser(sub: Any) -> None:
    """The ``bills`` subcommands, on the top-level ``sub`` (argparse subparsers)."""
    bills = sub.add_parser("bills", help="list, show, export, report and trace saved bills")
    bsub = bills.add_subparsers(dest="bills_cmd", required=True)
    bl = bsub.add_parser("list")
    _filters(bl)
    bl.add_argument("--json", action="store_true")
    bs = bsub.add_parser("show")
    bs.add_argument("id", type=int)
    bs.add_argument("--json", action="store_true")
    be = bsub.add_parser("export")
    be.add_argument("--format", choices=("csv", "xlsx", "json"), default="csv")
    be.add_argument("--out", help="output path (default bills.FORMAT)")
    _filters(be)
    br = bsub.add_parser("report", help="cost, revenue and profit per day/week/month/item")
    _filters(br)
    br.add_argument("--by", choices=("day", "week", "month", "item"), default="day")
    br.add_argument("--json", action="store_true")
    br.add_argument("--chart", metavar="PATH", help="also write a PNG of profit per day")
    bh = bsub.add_parser("history", help="a bill's revisions: when, who, why, what changed")
    bh.add_argument("id", type=int)
    bh.add_argument("--json", action="store_true")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--book", help="book key, e.g. slack:T1:C1 or console:default")
    parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD")


def _dump(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``bills`` subcommand; errors propagate to the CLI's one-line handler."""
    from core.admin import Admin

    async with await Admin.open(settings) as admin:
        cmd = args.bills_cmd
        if cmd == "show":
            bill = await admin.bill(args.id)
            if args.json:
                _dump(bill.to_json())
            else:
                from rich.console import Console

                from bots.console import bill_rich_table

                Console().print(bill_rich_table(bill.to_json(), "en"))
            return EXIT_OK
        if cmd == "history":
            data = await admin.history(args.id)
            if args.json:
                _dump(data)
            else:
                from core.bills.history import history_text

                print(history_text(data, "en"))
            return EXIT_OK
        where = {"book": args.book, "date_from": args.date_from, "date_to": args.date_to}
        if cmd == "list":
            found = [b.to_json() for b in await admin.bills(**where)]
            _list(found, args.json)
            return EXIT_OK
        if cmd == "report":
            return await _report(admin, args, where)
        fmt = args.format
        out = Path(args.out) if args.out else Path(f"bills.{fmt}")
        count, path = await admin.export_bills(fmt, out, **where)
        print(f"exported {count} bill(s) to {path}")
        return EXIT_OK


async def _report(admin: Any, args: argparse.Namespace, where: dict[str, Any]) -> int:
    from core.bills.report import report_table

    report = await admin.report(**where, by=args.by)
    if args.json:
        _dump(report.to_json())
    else:
        print(report_table(report, "en"))
    if args.chart:
        from core.bills.chart import profit_chart

        path = profit_chart(report, Path(args.chart))
        if not args.json:
            print(f"chart written to {path}")
    return EXIT_OK


def _list(bills: list[dict[str, Any]], as_json: bool) -> None:
    same_day = Counter((b["book"], b["date"], b["currency"]) for b in bills)
    doubled = {k for k, n in same_day.items() if n > 1}
    if as_json:
        _dump(bills)
        if doubled:
            days = ", ".join(f"{book} {day}" for book, day, _ in sorted(doubled))
            print(f"warning: more than one bill on {days}", file=sys.stderr)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Bills")
    for col in ("id", "book", "thread", "date", "rev", "cost", "revenue", "profit", "", "!"):
        table.add_column(col, justify="right" if col in ("cost", "revenue", "profit") else "left")
    for j in bills:
        flag = "2+ bills this day" if (j["book"], j["date"], j["currency"]) in doubled else ""
        table.add_row(str(j["id"]), j["book"] or "", j["thread"], j["date"], str(j["revision"]),
                      j["cost"], j["revenue"], j["profit"], j["currency"], flag)  # fmt: skip
    Console(width=200).print(table if bills else "No bills yet.")
