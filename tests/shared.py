"""Helpers more than one test package uses (the platforms' tests, the CLI's tests)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

from core.events import ApprovalRequired, Event, PendingCall
from core.store import Store

ROOT = Path(__file__).resolve().parents[1]


def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment a CLI subprocess of a test runs in: no model, platform or tallybot
    setting of the machine's, a data folder under ``tmp_path``, this checkout importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "TALLYBOT_", "SLACK_", "TELEGRAM_"))
    }
    env["TALLYBOT_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(ROOT)
    return env


async def recovered_approval(store: Store) -> tuple[str, str, AsyncIterator[Event]]:
    """The run's id, its thread's key and the events a recovered run waiting for approval is delivered
    with after a crash: its approval request, with no inbound event behind it (the store
    holds exactly one run, waiting on one call)."""
    [waiting] = await store.list_runs()
    [thread] = await store.list_threads()
    full = await store.get_run(waiting.id)
    [pending] = [c for s in full.steps for c in s.tool_calls]
    recovered = ApprovalRequired(
        waiting.id,
        thread.id,
        (PendingCall(pending.id, pending.name, pending.arguments, "save the bill"),),
        None,
    )

    async def events() -> AsyncIterator[Event]:
        yield recovered

    return waiting.id, thread.key, events()
