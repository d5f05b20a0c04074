"""The console channel: a Rich REPL, and the one-turn mode behind ``tallybot chat --message``.

It only translates: typed lines and ``--file`` paths become ``Tallybot.handle`` calls; events
become streamed text, a spinner while tools run, tables for bills, and y/n approval prompts.
Ctrl-C during an answer stops the run (``cancelling -> cancelled``); Ctrl-C or Ctrl-D at the
prompt leaves.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.bills.books import console_book
from core.domain import RunStatus
from core.events import (
    ApprovalRequired,
    Event,
    FileProduced,
    Reply,
    RunFinished,
    StatusChanged,
    TextDelta,
    Thinking,
    ToolCallFinished,
    ToolCallStarted,
)
from core.i18n import detect_lang, t

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status
    from rich.table import Table

    from core.app import Tallybot

PROMPT = "you> "


@dataclass
class TurnResult:
    """What one turn produced; the ``--json`` output is built from it."""

    run_id: str | None = None
    status: str = "completed"
    text: list[str] = field(default_factory=list)
    bills_changed: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    error: bool = False

    def to_json(self, thread: str) -> dict[str, Any]:
        return {
            "thread": thread,
            "run_id": self.run_id,
            "status": self.status,
            "text": "".join(self.text).strip(),
            "bills_changed": self.bills_changed,
        }


def bill_rich_table(bill: dict[str, Any], lang: str) -> Table:
    """A bill (its ``to_json`` form) as a Rich table with totals and profit, in ``lang``."""
    from rich.table import Table

    zh = lang == "zh"
    title = (
        f"账单 #{bill['id']} · {bill['date']} · 第 {bill['revision']} 版"
        if zh
        else f"Bill #{bill['id']} · {bill['date']} · revision {bill['revision']}"
    )
    table = Table(title=title, show_footer=True)
    heads = (
        ("品名", "数量", "进价", "售价", "成本", "收入")
        if zh
        else ("Item", "Qty", "Unit cost", "Unit price", "Cost", "Revenue")
    )
    footer = ("合计" if zh else "Total", "", "", "", bill["cost"], bill["revenue"])
    for i, (head, foot) in enumerate(zip(heads, footer, strict=True)):
        table.add_column(head, footer=foot, justify="left" if i == 0 else "right")
    for item in bill["items"]:
        table.add_row(
            item["name"],
            item["quantity"],
            item["unit_cost"],
            item["unit_price"],
            item["cost"],
            item["revenue"],
        )
    profit = "利润" if zh else "Profit"
    table.caption = f"{profit}: {bill['profit']} {bill['currency']}"
    return table


class ConsoleChannel:
    """Renders events on a Rich console and asks for approvals on stdin."""

    def __init__(
        self,
        bot: Tallybot,
        thread_name: str,
        *,
        console: Console | None = None,
        quiet: bool = False,
        ask: Callable[[str], str] | None = None,
        auto_approve: bool | None = None,
        book: str | None = None,
    ) -> None:
        self.bot = bot
        self.key = f"console:{thread_name}"
        self.thread_name = thread_name
        # ``--book NAME``: the shop's book this conversation writes to (default console:default).
        self.book = None if book is None else console_book(book)
        self.login = _login()
        if console is None:
            from rich.console import Console

            console = Console(highlight=False)
        self.console = console
        self.quiet = quiet  # --json: nothing but the JSON object on stdout
        self.ask = ask or input
        self.auto_approve = auto_approve

    async def turn(self, text: str, files: list[Path] | None = None) -> TurnResult:
        """Send one message (with files) and render everything it produces."""
        # core.app brings the engine, bills and pandas; `tallybot bills|runs` need none of it.
        from core.app import Incoming

        result = TurnResult()
        lang = detect_lang(text, default="zh" if any(ord(c) > 0x2E80 for c in text) else "en")
        incoming = [Incoming(p.name, path=p) for p in files or []]
        loop = asyncio.get_running_loop()
        installed = False
        try:
            loop.add_signal_handler(signal.SIGINT, self._interrupt)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests) or no signals on this platform
        try:
            stream: AsyncIterator[Event] | None = self.bot.handle(
                self.key, text, files=incoming, lang=lang, user=self.login, place=self.book
            )
            while stream is not None:
                pending = await self._render(stream, result, lang)
                stream = None
                if pending is not None:
                    decision = self._decide(pending, lang)
                    if decision is None:
                        result.status = RunStatus.REQUIRES_ACTION.value
                        break
                    stream = self.bot.submit_tool_outputs(pending.run_id, decision, lang=lang)
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
        return result

    def _interrupt(self) -> None:
        asyncio.ensure_future(self.bot.cancel(self.key))

    async def _render(
        self, stream: AsyncIterator[Event], result: TurnResult, lang: str
    ) -> ApprovalRequired | None:
        status: Status | None = None
        streaming = False
        out = self.console
        try:
            async for event in stream:
                match event:
                    case TextDelta(run_id=run_id, text=delta):
                        result.run_id = run_id
                        if status:
                            status.stop()
                            status = None
                        result.text.append(delta)
                        if not self.quiet:
                            out.print(delta, end="", markup=False, soft_wrap=True)
                            streaming = True
                    case StatusChanged(run_id=run_id, status=st):
                        result.run_id = run_id
                        result.status = st.value
                    case Thinking():
                        # Reasoning streams before any text (issue 13); never its content.
                        if not self.quiet and sys.stdout.isatty() and status is None:
                            status = out.status(f"[dim]{t('thinking', lang)}[/dim]")
                            status.start()
                        elif not self.quiet and status is None:
                            out.print(f"[dim]{t('thinking', lang)}[/dim]")
                    case ToolCallStarted(name=name):
                        if status:
                            status.stop()
                            status = None
                        if streaming and not self.quiet:
                            out.print()
                            streaming = False
                        if not self.quiet and sys.stdout.isatty():
                            status = out.status(f"[dim]{name}…[/dim]")
                            status.start()
                        elif not self.quiet:
                            out.print(f"[dim]… {name}[/dim]")
                    case ToolCallFinished(name=name, is_error=is_error, output=output):
                        if status:
                            status.stop()
                            status = None
                        if is_error and not self.quiet:
                            out.print(f"! {name}: {output[:300]}", markup=False, style="yellow")
                    case FileProduced(path=path, name=name):
                        result.files.append(path)
                        if not self.quiet:
                            if streaming:
                                out.print()
                                streaming = False
                            out.print(f"📎 {name} → {path}", markup=False, style="cyan")
                    case ApprovalRequired():
                        result.run_id = event.run_id
                        result.status = RunStatus.REQUIRES_ACTION.value
                        return event
                    case RunFinished(status=st, text=text, bills_changed=bills):
                        result.run_id = event.run_id
                        result.status = st.value
                        _merge_bills(result, bills)
                        if st != RunStatus.COMPLETED:
                            result.error = st == RunStatus.FAILED
                            result.text.append(("\n" if result.text else "") + text)
                            if not self.quiet:
                                if streaming:
                                    out.print()
                                color = "red" if st == RunStatus.FAILED else "yellow"
                                out.print(text, markup=False, style=color)
                                streaming = False
                    case Reply():
                        self._show_reply(event, result, lang)
        finally:
            if status:
                status.stop()
            if streaming and not self.quiet:
                out.print()
        return None

    def _show_reply(self, reply: Reply, result: TurnResult, lang: str) -> None:
        """A model-free answer: recorded in ``result``; bills print as tables."""
        _merge_bills(result, reply.bills_changed)
        result.text.append(("\n" if result.text else "") + reply.text)
        if reply.kind == "error":
            result.error = True
            result.status = "failed"
        if self.quiet:
            return
        if reply.bill is not None:
            self.console.print(bill_rich_table(reply.bill, lang))
        elif reply.kind == "error":
            self.console.print(reply.text, markup=False, style="red")
        else:
            self.console.print(reply.text, markup=False)

    def _decide(self, pending: ApprovalRequired, lang: str) -> bool | None:
        if self.auto_approve is not None:
            return self.auto_approve
        if not sys.stdin.isatty() and self.ask is input:
            if not self.quiet:
                self.console.print(
                    "Waiting for approval; run again in a terminal, or pass --yes / --no."
                    if lang != "zh"
                    else "等待确认：请在终端中运行，或使用 --yes / --no。"
                )
            return None
        for call in pending.calls:
            self.console.print(f"[bold]→ {call.summary}[/bold]")
        answer = self.ask(f"{t('approval_prompt', lang)} [y/N] ").strip().lower()
        return answer in ("y", "yes", "是", "好", "确认")

    async def repl(self) -> None:
        """Read lines until EOF. ``/file PATH`` attaches a file; ``/quit`` leaves."""
        out = self.console
        out.print(
            f"[bold]tallybot[/bold] · thread [cyan]{self.thread_name}[/cyan] · "
            + (
                "model: " + self.bot.engine.model_name
                if self.bot.model_ready
                else "no model (commands only)"
            )
        )
        out.print("/help for commands, /file PATH to attach a file, Ctrl-D to quit.")
        if self.bot.model_ready:
            self.bot.warm_up()  # the interpreter starts while the person types
        while True:
            try:
                line = await asyncio.to_thread(self.ask, PROMPT)
            except (EOFError, KeyboardInterrupt):
                out.print()
                return
            line = line.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                return
            if line.startswith("/file"):
                raw = line[len("/file") :].strip()
                path = Path(raw).expanduser()
                if not raw or not path.is_file():
                    out.print(
                        f"error: file not found: {raw or '(none)'}", markup=False, style="red"
                    )
                    continue
                await self.turn("", [path])
                continue
            await self.turn(line)


def _merge_bills(result: TurnResult, bills: Iterable[int]) -> None:
    for b in bills:
        if b not in result.bills_changed:
            result.bills_changed.append(b)


def _login() -> str | None:
    """The operator's login name, recorded as ``console:<login>`` on bill revisions."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return None
