"""tallybot as the benchmarks drive it: through the public facade, ``Tallybot.open`` + ``handle``.

Nothing here reaches into the engine or the store, so the harness measures the same thing
before and after they are restructured. The model double is the project's own
:class:`~core.models.scripted.ScriptedModel`; PostgreSQL runs get a throwaway database that is
dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.turn import (
    ANSWER,
    BILL_ARGS,
    INSTRUCTIONS,
    MESSAGE,
    SAVE_BILL_DESCRIPTION,
    SAVE_BILL_SCHEMA,
    bill_totals,
)
from core.app import Tallybot
from core.assistant import AssistantSpec
from core.config import Settings
from core.events import RunFinished
from core.models.base import FunctionOutput, ModelRequest
from core.models.scripted import ScriptedModel, call, text
from core.tools.base import ToolContext, ToolRegistry, ToolResult

PG_URL = os.environ.get("TALLYBOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SPEC = AssistantSpec(name="bench", instructions=INSTRUCTIONS, tools=("save_bill",))


@dataclass
class BenchSaveBill:
    """``save_bill`` with the peers' body: validates (by the registry), totals, no writes."""

    name: str = "save_bill"
    description: str = SAVE_BILL_DESCRIPTION
    parameters: dict[str, Any] = field(default_factory=lambda: SAVE_BILL_SCHEMA)
    needs_approval: bool = False

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult(output=bill_totals(args["date"], args["items"]))

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        return f"save the bill for {args.get('date')}"


def respond(request: ModelRequest) -> list[Any]:
    """One model turn of the benchmark: call save_bill, or answer once its output is back."""
    if request.items and isinstance(request.items[-1], FunctionOutput):
        return text(ANSWER)
    return [call("save_bill", BILL_ARGS, f"call_{secrets.token_hex(4)}")]


class TurnScript(ScriptedModel):
    """A ScriptedModel whose queue never runs dry: every turn is :func:`respond`."""

    async def stream(self, request: ModelRequest):  # type: ignore[no-untyped-def]
        if not self.turns:
            self.add(respond)
        self.requests.clear()  # a benchmark plays thousands of turns; keep no history
        async for event in super().stream(request):
            yield event


def settings_for(data_dir: Path, database_url: str | None = None) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, _env_file=None)  # type: ignore[call-arg]


async def open_bot(
    data_dir: Path, database_url: str | None = None, *, ledger: bool = False, model: Any = None
) -> Tallybot:
    """A bot with the benchmark's save_bill (``ledger=True``: tallybot's real one, which
    writes a bill revision) and a model double (:class:`TurnScript` unless given)."""
    tools = None if ledger else ToolRegistry([BenchSaveBill()])
    return await Tallybot.open(
        settings_for(data_dir, database_url),
        model=model or TurnScript(),
        assistant=SPEC,
        tools=tools,
        recover=False,
    )


async def turn(bot: Tallybot, key: str, message: str = MESSAGE) -> RunFinished:
    """One inbound message, drained to the end; raises unless the run completed."""
    last = None
    async for event in bot.handle(key, message, lang="en"):
        last = event
    if not isinstance(last, RunFinished) or last.status != "completed":
        raise RuntimeError(f"tallybot turn did not complete: {last!r}")
    return last


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy ``postgresql+asyncpg://`` URL as asyncpg itself takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def run_on_postgres(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)``; a clear exit when the benchmark's PostgreSQL is not there."""
    try:
        asyncio.run(main)
    except OSError as exc:
        sys.exit(f"no PostgreSQL server at {PG_URL}: {exc}")


def _sqlalchemy_url(url: str, name: str) -> str:
    base = url.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"


@contextlib.asynccontextmanager
async def throwaway_postgres(url: str = PG_URL) -> AsyncIterator[str]:
    """Create a database for one benchmark, yield its SQLAlchemy URL, drop it afterwards."""
    import asyncpg  # the bench extra installs it

    name = f"tallybot_bench_{os.getpid()}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _sqlalchemy_url(url, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
