"""Issue 10's acceptance test: two ``tallybot serve`` replicas on one PostgreSQL.

200 messages over 50 threads (25 Slack DMs over HTTP events, 25 Telegram chats over the
webhook) go to both replicas alternately, as a load balancer would send them; one replica is
killed with SIGKILL midway and restarted. A delivery that fails (connection refused, 503) is
sent again to the other replica with the same event / update id, as Slack and Telegram retry.
Afterwards every message was answered exactly once and in order per thread, no bill revision
was written twice, and no run is left live.

Delivery to a chat is at-least-once across the SIGKILL (see the test's last checks). The
fake Slack, Telegram and model servers run on this test's event loop, so nothing here may
block it: replicas are stopped from threads (a blocked loop froze the fakes, and a replica
whose post hung in its shutdown then took over 40 s to exit).

    pytest -s tests/serve/test_replicas.py     # prints the figures
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.slack import payloads as p
from tests.slack.fake_slack import FakeSlack
from tests.telegram.fake_api import FakeBotAPI

from .harness import (
    ACK,
    TELEGRAM_SECRET,
    Replica,
    base_env,
    echo_model,
    free_port,
    pg_database,
    slack_headers,
)

THREADS, PER_THREAD = 50, 4
SLACK_THREADS = 25
pytestmark = pytest.mark.timeout(240)


class Sender:
    """Sends each delivery to a replica; on failure, to the other one, until one takes it,
    backing off between tries as Slack and Telegram do (a retry storm would only load the
    replicas: a delivery still being stored is refused until it is)."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.turn = itertools.count()
        self.retries = 0
        self.session: aiohttp.ClientSession | None = None

    async def send(self, path: str, body: str, headers: dict[str, str]) -> None:
        assert self.session is not None
        first = next(self.turn)
        delay = 0.1
        for attempt in range(200):
            replica = self.replicas[(first + attempt) % len(self.replicas)]
            try:
                async with self.session.post(
                    replica.url + path, data=body.encode(), headers=headers
                ) as resp:
                    if resp.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        raise AssertionError(f"no replica took {path} {body[:80]}")


def slack_channel(n: int) -> str:
    return f"D{n:04d}"


def telegram_chat(n: int) -> int:
    return 5000 + n


async def _thread(sender: Sender, tg: FakeBotAPI, n: int, update_ids: Any) -> None:
    for i in range(PER_THREAD):
        text = f"t{n}/m{i}" + (" save the bill" if i == 0 else "")
        if n < SLACK_THREADS:
            body = json.dumps(p.message(text, channel=slack_channel(n)))
            await sender.send("/slack/events", body, slack_headers(body))
        else:
            update = {"update_id": next(update_ids), "message": tg.message(telegram_chat(n), text)}
            headers = {
                "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
                "Content-Type": "application/json",
            }
            await sender.send("/telegram/webhook", json.dumps(update), headers)


async def _held_by(db_url: str, pid: int) -> tuple[set[str], int]:
    """(keys of the threads whose lease the killed process held, deliveries it had claimed)."""
    engine = create_async_engine(db_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT l.name, t.key FROM leases l LEFT JOIN threads t "
                        "ON l.name = 'thread:' || t.id WHERE l.replica LIKE :p"
                    ),
                    {"p": f"%:{pid}:%"},
                )
            ).all()
    finally:
        await engine.dispose()
    threads = {key for name, key in rows if name.startswith("thread:") and key}
    return threads, sum(1 for name, _ in rows if name.startswith("delivery:"))


def _place(n: int) -> str:
    """The part of thread ``n``'s key that names its conversation."""
    return slack_channel(n) if n < SLACK_THREADS else str(telegram_chat(n))


def _held_places(keys: set[str]) -> set[str]:
    # slack:<team>:<channel>:<thread>, telegram:<chat>:<topic>
    return {k.split(":")[2] if k.startswith("slack:") else k.split(":")[1] for k in keys}


def _acks(texts: list[str]) -> list[str]:
    found: list[str] = []
    for text in texts:
        for group in ACK.findall(text):
            found.extend(x for x in group.split(",") if x)
    return found


async def _settled(db_url: str, within: float) -> dict[str, Any]:
    engine = create_async_engine(db_url, poolclass=NullPool)
    deadline = time.monotonic() + within
    try:
        while True:
            async with engine.connect() as conn:
                live = (
                    await conn.execute(
                        sa.text(
                            "SELECT count(*) FROM runs WHERE status IN "
                            "('queued','in_progress','requires_action','cancelling')"
                        )
                    )
                ).scalar_one()
                users = (
                    await conn.execute(sa.text("SELECT count(*) FROM messages WHERE role='user'"))
                ).scalar_one()
                unanswered = (
                    await conn.execute(
                        sa.text(
                            "SELECT count(*) FROM messages m WHERE m.role='user' AND m.seq > "
                            "(SELECT coalesce(max(upto_seq),0) FROM runs r "
                            "WHERE r.thread_id=m.thread_id AND r.status='completed')"
                        )
                    )
                ).scalar_one()
                if (live == 0 and unanswered == 0 and users >= THREADS * PER_THREAD) or (
                    time.monotonic() > deadline
                ):
                    runs = (
                        await conn.execute(
                            sa.text(
                                "SELECT t.key, r.status, r.upto_seq FROM runs r JOIN threads t "
                                "ON t.id = r.thread_id ORDER BY r.created_at, r.id"
                            )
                        )
                    ).all()
                    revisions = (
                        await conn.execute(
                            sa.text(
                                "SELECT count(*), count(DISTINCT (run_id, tool_call_id)) "
                                "FROM bill_revisions"
                            )
                        )
                    ).one()
                    bills = (await conn.execute(sa.text("SELECT count(*) FROM bills"))).scalar()
                    return {
                        "live": live,
                        "users": users,
                        "unanswered": unanswered,
                        "runs": runs,
                        "revisions": tuple(revisions),
                        "bills": bills,
                    }
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def test_two_replicas_one_killed(tmp_path: Path) -> None:
    slack = FakeSlack()
    await slack.start()
    model = echo_model(delay=0.05)
    started = time.monotonic()
    replicas: list[Replica] = []
    try:
        async with FakeBotAPI() as tg, model, pg_database() as db_url:
            env = base_env(
                db_url,
                model_url=model.base_url,
                slack_url=slack.api_url,
                telegram_url=tg.url,
                workdir=tmp_path,
            )
            replicas = [Replica(name, free_port(), env, tmp_path / name) for name in ("a", "b")]
            for r in replicas:
                r.start()  # at once: the migrations must not race
            await asyncio.gather(*(r.ready() for r in replicas))
            sender = Sender(replicas)
            update_ids = itertools.count(1)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
                sender.session = s
                work = [
                    asyncio.create_task(_thread(sender, tg, n, update_ids)) for n in range(THREADS)
                ]
                while len(model.requests) < 60:
                    await asyncio.sleep(0.05)
                assert replicas[1].proc is not None
                pid = replicas[1].proc.pid
                replicas[1].kill()
                killed_at = len(model.requests)
                held = await _held_by(db_url, pid)
                await asyncio.sleep(1.0)
                replicas[1].start()
                await replicas[1].ready()
                await asyncio.gather(*work)
            result = await _settled(db_url, within=90)
            # From threads, both at once: the fakes must keep answering while they stop.
            stopping = time.monotonic()
            codes = list(await asyncio.gather(*(asyncio.to_thread(r.terminate) for r in replicas)))
            stopped = time.monotonic() - stopping
    finally:
        await slack.stop()
        keep = os.environ.get("SERVE_TEST_KEEP_LOGS")
        if keep:
            for r in replicas:
                shutil.copy(r.log, Path(keep) / f"{r.name}.log")
    elapsed = time.monotonic() - started

    # Every message stored once, answered by exactly one completed run, nothing live.
    assert result["users"] == THREADS * PER_THREAD
    assert result["unanswered"] == 0 and result["live"] == 0
    statuses = {status for _key, status, _upto in result["runs"]}
    assert statuses == {"completed"}, statuses
    by_thread: dict[str, list[int]] = {}
    for key, _status, upto in result["runs"]:
        by_thread.setdefault(key, []).append(upto)
    for key, uptos in by_thread.items():
        assert uptos == sorted(set(uptos)), (key, uptos)  # run after run, never overlapping
    # No bill revision twice: one bill per thread, one revision per (run, call).
    count, distinct = result["revisions"]
    assert count == distinct == THREADS and result["bills"] == THREADS
    # What people saw: every message acknowledged, in order, in its thread. Delivery to a chat
    # API is at-least-once across a SIGKILL: an answer the killed replica had posted but not yet
    # marked delivered (the window between the post's response and that database write) is
    # posted again, verbatim and right after itself, by the replica that takes over (no chat
    # API here has an idempotency key, and a bot cannot read a Telegram chat back). Such a
    # re-send is counted; it may only be in a thread the killed replica held, at most once
    # there (one answer in flight per thread); nothing else may repeat.
    held_places = _held_places(held[0])
    resent: dict[str, int] = {}
    for n in range(THREADS):
        if n < SLACK_THREADS:
            texts = [m.text for m in slack.thread(slack_channel(n), None)]
        else:
            texts = tg.texts(telegram_chat(n))
        seen = [t for i, t in enumerate(texts) if i == 0 or t != texts[i - 1]]
        if len(texts) > len(seen):
            resent[_place(n)] = len(texts) - len(seen)
        assert _acks(seen) == [f"t{n}/m{i}" for i in range(PER_THREAD)], (n, texts)
    assert set(resent) <= held_places and max(resent.values(), default=0) <= 1, (
        resent,
        sorted(held_places),
    )
    assert codes == [0, 0], [r.tail() for r in replicas]
    print(
        f"\nacceptance: {THREADS * PER_THREAD} messages, {THREADS} threads, "
        f"{len(result['runs'])} runs, {len(model.requests)} model requests, killed replica b "
        f"after {killed_at} model requests (holding {len(held[0])} threads and {held[1]} "
        f"unstored deliveries), {sender.retries} redeliveries, {sum(resent.values())} answers "
        f"re-sent after the kill, {count} bill revisions, both replicas stopped in "
        f"{stopped:.1f}s, {elapsed:.1f}s in all"
    )
