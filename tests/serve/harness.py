"""Real ``tallybot serve`` processes against fake Slack, Telegram and model servers.

:class:`Replica` starts ``python -m bots.cli serve`` as a child process with its own
environment; :func:`echo_model` makes a :class:`tests.models.fake_openai.FakeOpenAI` that
answers every request from what it was asked (so any number of runs can be played): it
acknowledges the user messages since the last answer as ``ACK[a,b]``, and first calls
``save_bill`` when one of them says "save".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.models.base import ModelTextDelta, ModelToolCall
from tests.models.fake_openai import FakeOpenAI
from tests.pg import PG_URL

ROOT = Path(__file__).resolve().parents[2]
SLACK_SECRET = "serve-test-signing-secret"
TELEGRAM_SECRET = "serve-test-webhook-secret"
ACK = re.compile(r"ACK\[([^\]]*)\]")
ASSISTANT = """name = "tallybot"
version = 1
tools = ["save_bill", "get_bill"]
instructions = "Answer briefly."
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def slack_headers(body: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(
        SLACK_SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256
    ).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/json",
    }


class _Forever(list):  # type: ignore[type-arg]
    """A turn list that never runs out: every request plays the same callable."""

    def __init__(self, turn: Any) -> None:
        super().__init__([turn])
        self._turn = turn

    def pop(self, index: int = -1) -> Any:  # noqa: ARG002
        return self._turn


def _reply(body: dict[str, Any]) -> list[Any]:
    messages = body.get("messages") or []
    pending: list[str] = []
    for m in messages:
        if m.get("role") == "assistant" and m.get("content"):
            pending = []
        elif m.get("role") == "user":
            pending.append(str(m.get("content") or "").strip())
    ids = [p.split()[0] for p in pending if p]
    last = messages[-1] if messages else {}
    if last.get("role") != "tool" and any("save" in p for p in pending):
        call_id = "call_" + secrets.token_hex(6)
        items = [{"name": "rose", "quantity": 3, "unit_cost": "1.50", "unit_price": "4"}]
        return [
            ModelToolCall(call_id, "save_bill", json.dumps({"date": "2026-12-01", "items": items}))
        ]
    return [ModelTextDelta(f"ACK[{','.join(ids)}]")]


def echo_model(delay: float = 0.0) -> FakeOpenAI:
    """The acknowledging model described in the module docstring, ``delay`` s per request."""
    fake = FakeOpenAI()
    fake.turns = _Forever(_reply)
    if delay:
        serve = fake._serve

        async def slow(request: Any) -> Any:
            await asyncio.sleep(delay)
            return await serve(request)

        fake._serve = slow  # type: ignore[method-assign]
    return fake


@contextlib.asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (its URL), dropped afterwards."""
    name = f"tallybot_serve_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_async_engine(PG_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


class Replica:
    """One ``tallybot serve`` child process on ``port``."""

    def __init__(self, name: str, port: int, env: dict[str, str], workdir: Path) -> None:
        self.name, self.port, self.env, self.workdir = name, port, env, workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{name}.log"
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bots.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=self.workdir,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc is not None and self.proc.poll() is None, self.tail()
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + "/readyz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready:\n{self.tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, within: float = 40.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(within)
            except subprocess.TimeoutExpired:
                # Say where it is stuck (bots.serve: SIGUSR2 tasks, SIGUSR1 threads), then kill.
                for sig in (signal.SIGUSR2, signal.SIGUSR1):
                    with contextlib.suppress(ProcessLookupError):
                        self.proc.send_signal(sig)
                    time.sleep(1.0)
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, n: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def base_env(
    db_url: str,
    *,
    model_url: str,
    slack_url: str | None = None,
    telegram_url: str | None = None,
    workdir: Path,
    **extra: str,
) -> dict[str, str]:
    """The environment of a replica: only what the test sets, plus PATH and PYTHONPATH."""
    assistant = workdir / "assistant.toml"
    workdir.mkdir(parents=True, exist_ok=True)
    assistant.write_text(ASSISTANT)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "HOME": str(workdir),
        "TALLYBOT_DATABASE_URL": db_url,
        "TALLYBOT_ASSISTANT": str(assistant),
        "OPENAI_BASE_URL": model_url,
        "OPENAI_API_KEY": "test-key",
        "TALLYBOT_MODEL": "fake-model",
        "TALLYBOT_MODEL_API": "chat",
        "TALLYBOT_MODEL_MAX_RETRIES": "0",
        "TALLYBOT_LEASE_SECONDS": "5",
        "TALLYBOT_REQUEUE_AFTER": "6",
        "TALLYBOT_SHUTDOWN_GRACE": "10",
    }
    if slack_url:
        env |= {
            "SLACK_BOT_TOKEN": "xoxb-1-test-bot-token",
            "SLACK_SIGNING_SECRET": SLACK_SECRET,
            "SLACK_API_URL": slack_url,
        }
    if telegram_url:
        env |= {
            "TELEGRAM_BOT_TOKEN": "123456:TEST-token",
            "TELEGRAM_API_URL": telegram_url,
            "TELEGRAM_WEBHOOK_URL": "http://127.0.0.1:1/telegram/webhook",
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        }
    return env | extra
