"""``tallybot``: the one console script.

    tallybot chat [--thread NAME] [--file PATH]... [--message TEXT] [--json] [--yes|--no]
    tallybot bills list|show|export|report|history ...   (see bots/bills_cli.py)
    tallybot runs list [--thread NAME] [--json] | show RUN_ID [--json]
    tallybot db upgrade
    tallybot slack [--port N]
    tallybot telegram [--port N]
    tallybot serve [--port N] [--host H]
    tallybot api [--host H] [--port N]
    tallybot keys create [--project P] [--name N] | list [--json] | revoke KEY_ID

Exit codes: 0 success, 1 the turn or command failed, 2 bad usage or input; every failure prints
one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bots import bills_cli
from bots.channel import PLATFORMS, platform_cli
from core.errors import TallybotError, UserError

if TYPE_CHECKING:
    # Imported where a command runs, not here: ``tallybot --help`` needs neither pydantic nor
    # the domain model (issue 12, start-up time).
    from core.config import Settings
    from core.domain import Run

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_json(run: Run, thread_key: str) -> dict[str, Any]:
    """The Run JSON contract of ``tallybot runs``."""
    return {
        "id": run.id,
        "thread": thread_key,
        "status": run.status.value,
        "model": run.model,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "completed_at": _iso(run.completed_at),
        "failed_at": _iso(run.failed_at),
        "cancelled_at": _iso(run.cancelled_at),
        "expires_at": _iso(run.expires_at),
        "last_error": run.last_error,
        "usage": run.usage,
        "steps": [
            {
                "id": step.id,
                "type": step.type.value,
                "status": step.status.value,
                "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments, "output": c.output}
                    for c in step.tool_calls
                ],
                "text": step.text,
                # Issue 13: only when there is some, so the keys of other steps stay as they were.
                **({"reasoning": step.details["reasoning"]} if "reasoning" in step.details else {}),
            }
            for step in run.steps
        ],
        **({"incomplete_details": run.incomplete_details} if run.incomplete_details else {}),
    }


def thread_key(name: str) -> str:
    """``--thread NAME``: a console thread name, or a full channel key (``slack:...``)."""
    return name if ":" in name else f"console:{name}"


def print_json(data: Any) -> None:
    """One JSON document on stdout: UTF-8 text as is, dates and decimals as strings."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


# --- chat ---------------------------------------------------------------------------------


async def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from bots.console import ConsoleChannel
    from core.app import Tallybot

    files = [Path(p).expanduser() for p in args.file or []]
    for path in files:
        if not path.is_file():
            return _fail(f"file not found: {path}", EXIT_USAGE)
    approve = True if args.yes else False if args.no else None
    bot = await Tallybot.open(settings, channel="console")
    try:
        channel = ConsoleChannel(
            bot, args.thread, quiet=args.json, auto_approve=approve, book=args.book
        )
        if args.message is None and not args.json:
            if files:
                await channel.turn("", files)
            await channel.repl()
            return EXIT_OK
        result = await channel.turn(args.message or "", files)
        if args.json:
            print_json(result.to_json(args.thread))
        if result.error:
            if not args.json:
                print("error: the turn failed (see above)", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    finally:
        await bot.close()


# --- bills: see bots/bills_cli.py ---------------------------------------------------------


async def _bills(settings: Settings, args: argparse.Namespace) -> int:
    from bots import bills_cli

    return await bills_cli.run(settings, args)


# --- runs ---------------------------------------------------------------------------------


async def _runs(settings: Settings, args: argparse.Namespace) -> int:
    from core.admin import Admin

    async with await Admin.open(settings) as admin:
        keys = await admin.thread_keys()
        if args.runs_cmd == "list":
            thread_id = None
            if args.thread:
                thread_id = await admin.thread_id(thread_key(args.thread))
                if thread_id is None:
                    return _fail(f"no thread named {args.thread}", EXIT_USAGE)
            runs = await admin.runs(thread_id=thread_id, with_steps=args.json)
            if args.json:
                print_json([run_json(r, keys.get(r.thread_id, r.thread_id)) for r in runs])
            else:
                _print_runs(runs, keys)
            return EXIT_OK
        run = await admin.run(args.run_id)
        data = run_json(run, keys.get(run.thread_id, run.thread_id))
        if args.json:
            print_json(data)
        else:
            _print_run(run, data)
        return EXIT_OK


def _print_runs(runs: list[Run], keys: dict[str, str]) -> None:
    for r in runs:
        err = f"  {r.last_error['code']}" if r.last_error else ""
        print(
            f"{r.id}  {keys.get(r.thread_id, r.thread_id)}  {r.status.value:<15} "
            f"{r.created_at:%Y-%m-%d %H:%M:%S}  {r.model}{err}"
        )
    if not runs:
        print("No runs yet.")


def _print_run(run: Run, data: dict[str, Any]) -> None:
    print(f"{run.id} · {data['thread']} · {run.status.value} · {run.model}")
    for label in (
        "created_at",
        "started_at",
        "completed_at",
        "failed_at",
        "cancelled_at",
        "expires_at",
    ):
        if data[label]:
            print(f"  {label}: {data[label]}")
    if run.last_error:
        print(f"  last_error: {run.last_error}")
    if run.incomplete_details:
        print(f"  incomplete_details: {run.incomplete_details}")
    print(f"  usage: {run.usage}")
    for i, step in enumerate(data["steps"], 1):
        if step.get("reasoning"):
            # The model's reasoning is shown here only, never in a chat.
            print(f"  {i}. reasoning: {' '.join(step['reasoning'].split())[:400]}")
        print(f"  {i}. {step['type']} ({step['status']}) {step['text'][:120]}")
        for c in step["tool_calls"]:
            print(f"     → {c['name']}({c['arguments'][:120]}) = {(c['output'] or '')[:120]}")


async def _db(settings: Settings, args: argparse.Namespace) -> int:
    from core.admin import upgrade_database

    print(f"database at revision {await upgrade_database(settings)}")
    return EXIT_OK


# --- parser -------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's failure rule: one line on stderr, exit 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tallybot",
        description="Self-hosted data-analyst chat bot: sales CSV in, analysis and bills out.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument("--thread", default="default", help="persistent console thread name")
    chat.add_argument("--book", help="the shop's book to write to (default console:default)")
    chat.add_argument("--file", action="append", metavar="PATH", help="attach a file (repeatable)")
    chat.add_argument("--message", help="send one message and exit (no REPL)")
    chat.add_argument("--json", action="store_true", help="print one JSON object for the turn")
    decide = chat.add_mutually_exclusive_group()
    decide.add_argument("--yes", action="store_true", help="approve pending actions")
    decide.add_argument("--no", action="store_true", help="deny pending actions")

    bills_cli.add_parser(sub)

    runs = sub.add_parser("runs", help="inspect runs and their steps")
    rsub = runs.add_subparsers(dest="runs_cmd", required=True)
    rl = rsub.add_parser("list")
    rl.add_argument("--thread", help="console thread name or channel key")
    rl.add_argument("--json", action="store_true")
    rs = rsub.add_parser("show")
    rs.add_argument("run_id")
    rs.add_argument("--json", action="store_true")

    db = sub.add_parser("db", help="database maintenance")
    dsub = db.add_subparsers(dest="db_cmd", required=True)
    dsub.add_parser("upgrade", help="apply migrations (also done at every start)")

    _add_api_parsers(sub)
    for name in PLATFORMS:
        module = platform_cli(name)
        if module is not None:
            module.add_parser(sub)
    _add_serve(sub)
    return parser


# --- issue 14: the Assistants API -----------------------------------------------------------


def _add_api_parsers(sub: Any) -> None:
    from bots.assistants_api.cli import add_parsers

    add_parsers(sub)


async def _api(settings: Settings, args: argparse.Namespace) -> int:
    from bots.assistants_api.cli import serve_api

    return await serve_api(settings, args)


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from bots.assistants_api.cli import keys

    return await keys(settings, args)


def _add_serve(sub: Any) -> None:
    """``tallybot serve`` (issue 10): every configured channel in one process."""
    from bots import serve

    serve.add_parser(sub)


_HANDLERS = {"chat": _chat, "bills": _bills, "runs": _runs, "db": _db, "api": _api, "keys": _keys}
# What the handlers import first (the app or the admin views, and through them the store and
# SQLAlchemy), loaded by :func:`_loading` before they run. A name missing here costs time only.
_PRELOAD = {
    "chat": ("bots.console", "core.app"),
    "bills": ("core.admin",),
    "runs": ("core.admin",),
    "db": ("core.admin",),
}


@contextlib.contextmanager
def _loading(process: bool) -> Iterator[None]:
    """Imports with the cyclic collector off, then what they built out of later collections.

    Importing builds the heap the process keeps until it exits (modules, classes, tables):
    the collector finds no garbage in it, yet scans it again each time it grows by a quarter
    (issue 12: ~20-25 ms CPU of a ~0.3 s model-free command). Only when ``main()`` is the
    process (``process``): a test's interpreter keeps its collector as it is."""
    if not process or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    """The console script; ``argv`` given (tests), the caller's process goes on afterwards."""
    try:
        return _main(argv)
    finally:
        if argv is None:
            # The process ends here: keep what it built out of the interpreter's collections
            # at exit, which scan the whole heap (issue 12: ~70 ms of a ~0.4 s command; CPU
            # nobody needs). ``tallybot serve`` freezes its heap after start-up likewise.
            gc.freeze()


def _main(argv: Sequence[str] | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["sandbox-server"]:  # the sandbox container: its own parser, no bot setup
        from core.tools.code_interpreter.server import main as sandbox_server

        return sandbox_server(words[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with _loading(argv is None):
        from core.config import load_settings

        try:
            settings = load_settings()
        except Exception as exc:  # pydantic ValidationError: a bad TALLYBOT_* value
            return _fail(f"invalid settings: {exc}", EXIT_USAGE)
    try:
        with _loading(argv is None):
            for name in _PRELOAD.get(args.command, ()):
                import_module(name)
        handler = _HANDLERS.get(args.command)
        if args.command == "serve":
            from bots import serve

            return serve.run(args)
        if handler is None:
            module = platform_cli(args.command)
            assert module is not None  # argparse only offers the platforms that loaded
            return int(module.run(args) or 0)
        import asyncio  # not for --help (issue 12); pydantic-settings loads it anyway

        return asyncio.run(handler(settings, args))
    except UserError as exc:
        return _fail(_one_line(exc.message), EXIT_USAGE)
    except TallybotError as exc:
        return _fail(_one_line(exc.message))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a database that will not open, a folder that is not writable...
        logging.getLogger(__name__).debug("command failed", exc_info=True)
        return _fail(_one_line(f"{type(exc).__name__}: {exc}"))


def _one_line(message: str) -> str:
    """Failures are one line on stderr: later lines (SQL, hints) only with --verbose."""
    first = message.strip().splitlines()
    return first[0] if first else "failed"


if __name__ == "__main__":
    sys.exit(main())
