"""Model-free commands: ``/bill /add /show /undo /export /report /history /new /steps /stop
/help``.

They work with no model configured, in every channel, because :class:`core.app.Tallybot`
recognises them before anything reaches the engine. Bill arithmetic lives in
:mod:`core.bills`; this module only parses the command and words the answer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core import book_commands
from core.bills import Bill, export_bills, normalize_name, parse_add
from core.bills.books import actor_of, book_of_thread
from core.bills.day_bills import save_file
from core.domain import FileRef, Thread
from core.errors import CommandError, ToolError, UnknownPrice, UserError
from core.events import Event, FileProduced, Reply
from core.format import bill_table
from core.i18n import t

if TYPE_CHECKING:
    from core.bills import Ledger
    from core.config import Settings
    from core.store import Store


class CommandHost(Protocol):
    """What commands use of the bot; :class:`core.app.Tallybot` is the one in production.

    A protocol rather than an import of ``core.app``, which imports this module.
    """

    settings: Settings
    store: Store
    ledger: Ledger

    async def cancel(self, key: str) -> bool:
        """Stop the active run of the thread with channel key ``key``; True if one stopped."""
        ...


COMMANDS = (
    "bill", "add", "show", "undo", "export", "report", "history", "new", "steps", "stop", "help",
)  # fmt: skip
_PATTERN = re.compile(r"^\s*/([A-Za-z_]+)(?:@\S+)?(?:\s+(.*))?$", re.DOTALL)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MIME = {
    "csv": "text/csv",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

HELP = {
    "en": (
        "Commands (they work without a model):\n"
        "/bill [YYYY-MM-DD] — compute and save the day's bill from the attached sales file\n"
        "/add 2 向日葵 — add items to the current bill (known prices are filled in)\n"
        "/add 2 牡丹 8/15 — add a new item with its unit cost/price\n"
        "/show [ID] — show the current bill (or bill ID)\n"
        "/undo — revert the last change to the current bill\n"
        "/export [csv|xlsx|json] — export this shop's bills\n"
        "/report [today|week|month|YYYY-MM|FROM..TO] [by day|item] — cost, revenue, profit\n"
        "/history [ID] — who changed a bill, when and how\n"
        "/new — start a new conversation (bills are kept)\n"
        "/steps [RUN_ID] — what the assistant did in the last run\n"
        "/stop — stop the running answer\n"
        "/help — this text\n"
        "Anything else goes to the assistant."
    ),
    "zh": (
        "命令（无需配置模型即可使用）：\n"
        "/bill [YYYY-MM-DD] — 根据上传的销售文件计算并保存当天账单\n"
        "/add 2 向日葵 — 向当前账单添加商品（自动使用已知价格）\n"
        "/add 2 牡丹 8/15 — 添加新商品并给出进价/售价\n"
        "/show [编号] — 查看当前账单（或指定账单）\n"
        "/undo — 撤销当前账单的上一次修改\n"
        "/export [csv|xlsx|json] — 导出本店的账单\n"
        "/report [today|week|month|YYYY-MM|起..止] [by day|item] — 成本、收入、利润\n"
        "/history [编号] — 账单的修改记录：谁、何时、改了什么\n"
        "/new — 开始新的对话（账单会保留）\n"
        "/steps [RUN_ID] — 查看助手上一次运行的步骤\n"
        "/stop — 停止正在生成的回答\n"
        "/help — 显示本帮助\n"
        "其他内容会发送给助手。"
    ),
}


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: str


def parse(text: str) -> Command | None:
    """``/name args`` → Command; any text that does not start with ``/word`` → None."""
    match = _PATTERN.match(text or "")
    if not match:
        return None
    return Command(match.group(1).lower(), (match.group(2) or "").strip())


def _say(lang: str, en: str, zh: str) -> str:
    return zh if lang == "zh" else en


def _bill_reply(bill_json: dict, lang: str) -> Reply:  # type: ignore[type-arg]
    return Reply(
        bill_table(bill_json, lang),
        kind="bill",
        bill=bill_json,
        bills_changed=(int(bill_json["id"]),),
    )


async def run(
    bot: CommandHost, thread: Thread, command: Command, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    """Execute ``command`` in ``thread``; every failure a person caused becomes a Reply."""
    handler = _HANDLERS.get(command.name)
    if handler is None:
        yield Reply(
            _say(
                lang,
                f"Unknown command /{command.name}. Send /help for the list.",
                f"未知命令 /{command.name}，发送 /help 查看可用命令。",
            ),
            kind="error",
        )
        return
    try:
        async for event in handler(bot, thread, command.args, lang, attached):
            yield event
    except (UserError, ToolError) as exc:
        yield Reply(exc.localized(lang), kind="error")


async def _bill(
    bot: CommandHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    if args and not _DATE.match(args):
        raise CommandError(
            f"usage: /bill [YYYY-MM-DD], got {args!r}",
            zh=f"用法：/bill [YYYY-MM-DD]，收到的是 {args!r}",
        )
    tables = [f for f in attached if f.kind == "table"] or [
        f for f in await bot.store.list_files(thread.id) if f.kind == "table"
    ]
    if not tables:
        raise CommandError(
            "No sales file in this conversation yet. Attach a CSV or Excel file "
            "(columns: flower, quantity, unit cost, unit price), then send /bill.",
            zh="本对话还没有销售文件。请先上传 CSV 或 Excel 文件（列：花名、数量、进价、售价），"
            "再发送 /bill。",
        )
    source = tables[-1]
    days, results = await save_file(
        bot.ledger,
        thread.id,
        Path(source.path),
        source.name,
        default_date=args or date.today().isoformat(),
        only=args or None,
        note=f"/bill {source.name}",
        reason="command",
        actor=actor_of(thread),
    )
    if len(days.sheets) > 1 or days.skipped:
        yield Reply(f"{source.name}: {days.sheet_phrase(lang)}", kind="info")
    for result in results:
        notice = result.notice(lang)
        if notice:  # its own reply: channels draw a bill reply from its Bill JSON alone
            yield Reply(notice, kind="info", bills_changed=(result.bill.id,))
        yield _bill_reply(result.bill.to_json(), lang)


async def _add(
    bot: CommandHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    items = parse_add(args)
    if await bot.ledger.current(thread.id) is None:
        raise CommandError(
            "There is no bill yet: attach the sales file and send /bill first.",
            zh="还没有账单：请先上传销售文件并发送 /bill。",
        )
    try:
        bill = await bot.ledger.amend(
            thread.id, add=items, note=f"/add {args}", reason="command", actor=actor_of(thread)
        )
    except UnknownPrice:
        raise await _price_needed(bot, thread, items) from None
    yield _bill_reply(bill.to_json(), lang)


async def _price_needed(
    bot: CommandHost, thread: Thread, items: list[dict[str, str]]
) -> CommandError:
    """What a person must type when /add names an item with no known price."""
    known = await bot.ledger.catalog(thread.id)
    current = await bot.ledger.current(thread.id)
    if current is not None:
        known.update({i.key: (i.unit_cost, i.unit_price) for i in current.items})
    missing = [
        i for i in items
        if not ("unit_cost" in i or (known.get(normalize_name(i["name"])) or (None,))[0])
        or not ("unit_price" in i or (known.get(normalize_name(i["name"])) or (None, None))[1])
    ] or items  # fmt: skip
    names = [i["name"] for i in missing]
    example = ", ".join(f"{i['quantity']} {i['name']} COST/PRICE" for i in missing)
    example_zh = ", ".join(f"{i['quantity']} {i['name']} 进价/售价" for i in missing)
    return CommandError(
        f"I don't know the price of {', '.join(names)} yet. Add it with its unit cost and "
        f"selling price: /add {example} (for example /add 2 牡丹 8/15).",
        code="price_needed",
        zh=f"还不知道 {'、'.join(names)} 的价格。请带上进价和售价添加：/add {example_zh}"
        "（例如 /add 2 牡丹 8/15）。",
    )


async def _show(
    bot: CommandHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    if args:
        if not args.lstrip("#").isdigit():
            raise CommandError(
                f"usage: /show [ID], got {args!r}", zh=f"用法：/show [编号]，收到 {args!r}"
            )
        bill: Bill | None = await bot.ledger.get(int(args.lstrip("#")), thread_id=thread.id)
    else:
        bill = await bot.ledger.current(thread.id)
    if bill is None:
        yield Reply(
            _say(
                lang,
                "No bill yet. Attach a sales file and send /bill.",
                "还没有账单。请上传销售文件并发送 /bill。",
            )
        )
        return
    yield _bill_reply(bill.to_json(), lang)


async def _undo(
    bot: CommandHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    bill = await bot.ledger.undo(thread.id, actor=actor_of(thread))
    data = bill.to_json()
    if bill.voided:
        yield Reply(
            _say(
                lang,
                f"Bill #{bill.id} was removed (its first version was undone).",
                f"账单 #{bill.id} 已撤销（撤回了它的第一版）。",
            ),
            bills_changed=(bill.id,),
        )
        return
    yield _bill_reply(data, lang)


async def _export(
    bot: CommandHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    fmt = (args or "csv").lower()
    if fmt not in _MIME:
        raise CommandError("usage: /export [csv|xlsx|json]", zh="用法：/export [csv|xlsx|json]")
    bills = await bot.ledger.list(book=book_of_thread(thread))
    if not bills:
        yield Reply(_say(lang, "No bills to export yet.", "还没有可导出的账单。"))
        return
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = bot.settings.exports_dir / f"bills-{stamp}-{thread.id[-6:]}.{fmt}"
    path = export_bills(bills, fmt, out)  # type: ignore[arg-type]
    yield FileProduced(None, str(path), path.name, _MIME[fmt])
    # The file name only: a chat user must not see the server's folders.
    yield Reply(t("exported", lang, count=len(bills), name=path.name))


async def _new(
    bot: CommandHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    await bot.cancel(thread.key)
    await bot.store.archive_thread_key(thread.key)
    yield Reply(t("new_thread", lang))


async def _steps(
    bot: CommandHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    if args:
        run = await bot.store.get_run(args)
        if run.thread_id != thread.id:
            raise CommandError(
                f"run {args} is not in this conversation", zh=f"运行 {args} 不属于本对话"
            )
    else:
        runs = await bot.store.list_runs(thread_id=thread.id)
        if not runs:
            yield Reply(_say(lang, "No runs yet in this conversation.", "本对话还没有运行记录。"))
            return
        run = await bot.store.get_run(runs[-1].id)
    lines = [f"{run.id} · {run.status.value} · {run.model}"]
    if run.last_error:
        lines.append(f"  error: {run.last_error.get('code')}: {run.last_error.get('message')}")
    for i, step in enumerate(run.steps, 1):
        lines.append(f"{i}. {step.type.value} ({step.status.value})")
        if step.text:
            lines.append("   " + (step.text[:200] + ("…" if len(step.text) > 200 else "")))
        for call in step.tool_calls:
            out = (call.output or "")[:200]
            lines.append(f"   → {call.name}({call.arguments[:200]})")
            if call.output is not None:
                lines.append(f"     = {out}{'…' if len(call.output) > 200 else ''}")
            elif call.approval:
                lines.append(f"     [{call.approval}]")
    yield Reply("\n".join(lines))


async def _stop(
    bot: CommandHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    stopped = await bot.cancel(thread.key)
    # The stopped run says "Stopped." itself; this only acknowledges the command.
    yield Reply(t("stopping" if stopped else "nothing_running", lang))


async def _help(
    bot: CommandHost, thread: Thread, args: str, lang: str, attached: list[FileRef]
) -> AsyncIterator[Event]:
    yield Reply(HELP["zh" if lang == "zh" else "en"], kind="help")


_HANDLERS = {
    "bill": _bill,
    "add": _add,
    "show": _show,
    "undo": _undo,
    "export": _export,
    "report": book_commands.report,
    "history": book_commands.history,
    "new": _new,
    "steps": _steps,
    "stop": _stop,
    "help": _help,
}

__all__ = ["COMMANDS", "Command", "parse", "run"]
