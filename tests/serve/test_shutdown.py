"""SIGTERM: new deliveries are refused (503), the running run finishes within the grace, the
process exits 0 and leaves nothing live; when runs cannot finish in time (Slack stopped
answering) the process still exits soon after the grace and leaves them to the next one."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.slack import payloads as p
from tests.slack.fake_slack import FakeSlack

from .harness import Replica, base_env, echo_model, free_port, pg_database, slack_headers


async def test_sigterm_lets_the_running_run_finish(tmp_path: Path) -> None:
    slack = FakeSlack()
    await slack.start()
    model = echo_model(delay=1.5)
    try:
        async with model, pg_database() as db_url:
            env = base_env(
                db_url, model_url=model.base_url, slack_url=slack.api_url, workdir=tmp_path
            )
            replica = Replica("solo", free_port(), env, tmp_path / "solo")
            replica.start()
            await replica.ready()
            body = json.dumps(p.message("t0/m0"))
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    replica.url + "/slack/events", data=body, headers=slack_headers(body)
                ) as resp:
                    assert resp.status == 200
                while not model.requests:
                    await asyncio.sleep(0.05)
                assert replica.proc is not None
                replica.proc.terminate()  # SIGTERM while the model is still answering
                await asyncio.sleep(0.3)
                late = json.dumps(p.message("t0/m1"))
                try:
                    async with session.post(
                        replica.url + "/slack/events", data=late, headers=slack_headers(late)
                    ) as resp:
                        assert resp.status == 503  # go elsewhere; Slack retries
                except aiohttp.ClientError:
                    pass  # already closed its socket: also refused
            code = await asyncio.to_thread(replica.proc.wait, 30)
            engine = create_async_engine(db_url, poolclass=NullPool)
            async with engine.connect() as conn:
                statuses = (await conn.execute(sa.text("SELECT status FROM runs"))).scalars().all()
                users = (
                    (await conn.execute(sa.text("SELECT text FROM messages WHERE role='user'")))
                    .scalars()
                    .all()
                )
            await engine.dispose()
    finally:
        await slack.stop()
    assert code == 0, replica.tail()
    assert statuses == ["completed"] and users == ["t0/m0"]
    assert [m.text for m in slack.thread(p.DM, None)] == ["ACK[t0/m0]"]


async def _left(db_url: str) -> tuple[list[str], int]:
    """(run statuses, leases still held)."""
    engine = create_async_engine(db_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            statuses = list((await conn.execute(sa.text("SELECT status FROM runs"))).scalars())
            leases = (await conn.execute(sa.text("SELECT count(*) FROM leases"))).scalar_one()
    finally:
        await engine.dispose()
    return statuses, leases


async def test_sigterm_while_slack_hangs_exits_after_the_grace_and_leaves_runs_to_the_next(
    tmp_path: Path,
) -> None:
    """Deliveries in flight when Slack stops answering (each call would wait out its 30 s
    client timeout): the process exits soon after TALLYBOT_SHUTDOWN_GRACE anyway, posts no
    failure message on the way out, marks nothing cancelled and releases its leases, so the
    next process adopts those runs at once (as after a kill: tests/serve/test_recovery.py).
    Before the fix, cancelled deliveries made more Slack calls while unwinding, reported the
    resulting timeouts as failures and marked their runs cancelled: over 60 s to exit."""
    slack = FakeSlack()
    await slack.start()
    model = echo_model(delay=0.3)
    grace, threads = 2, 6
    try:
        async with model, pg_database() as db_url:
            env = base_env(
                db_url,
                model_url=model.base_url,
                slack_url=slack.api_url,
                workdir=tmp_path,
                TALLYBOT_SHUTDOWN_GRACE=str(grace),
            )
            replica = Replica("solo", free_port(), env, tmp_path / "solo")
            replica.start()
            await replica.ready()
            async with aiohttp.ClientSession() as session:
                for n in range(threads):
                    body = json.dumps(p.message(f"t{n}/m0", channel=f"D{n:04d}"))
                    async with session.post(
                        replica.url + "/slack/events", data=body, headers=slack_headers(body)
                    ) as resp:
                        assert resp.status == 200  # stored
            while len(model.requests) < 2:
                await asyncio.sleep(0.05)
            slack.frozen = True
            asked = len(slack.calls)
            assert replica.proc is not None
            replica.proc.terminate()
            try:
                code = await asyncio.to_thread(replica.proc.wait, grace + 25)
            except subprocess.TimeoutExpired as exc:
                code = replica.terminate(within=0)  # dumps its stacks into the log, kills
                raise AssertionError(
                    f"no exit after SIGTERM ({code}):\n{replica.tail(80)}"
                ) from exc
            finally:
                slack.frozen = False
            statuses, leases = await _left(db_url)
    finally:
        await slack.stop()
    assert code == 0, replica.tail(60)
    attempted = [str(c.args.get("text") or "") for c in slack.calls[asked:]]
    assert not [t for t in attempted if ":warning:" in t], attempted
    assert len(statuses) >= 2 and "cancelled" not in statuses, statuses
    assert leases == 0
