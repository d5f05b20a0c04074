"""SIGTERM: new deliveries are refused (503), the running run finishes within the grace, the
process exits 0 and leaves nothing live."""

from __future__ import annotations

import asyncio
import json
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
