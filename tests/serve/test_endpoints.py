"""``/healthz``, ``/readyz``, ``/metrics``, a sub-application, and ``tallybot serve`` itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web

from bots.cli import main
from bots.web import build_app
from core.errors import ConfigError
from core.health import SqliteClaim, sqlite_path
from core.models.scripted import text
from tests.slack import payloads as p

from .conftest import Served


async def test_health_ready_and_metrics(served: Served) -> None:
    assert await served.get("/healthz") == (200, "ok")
    status, body = await served.get("/readyz")
    assert status == 200, body
    checks = json.loads(body)["checks"]
    assert checks["database"] == "ok" and checks["model"] == "ok"
    served.model.add(text("Hello."))
    assert await served.post_event(p.message("hi")) == 200
    status, metrics = await served.get("/metrics")
    assert status == 200
    assert 'tallybot_runs{status="completed"} 1.0' in metrics
    assert 'tallybot_run_duration_seconds_count{status="completed"} 1.0' in metrics
    for family in (
        "tallybot_tool_call_duration_seconds",
        "tallybot_model_tokens",
        "tallybot_model_errors",
        "tallybot_platform_api_errors",
        "tallybot_sandbox_pool_size",
        "tallybot_queue_depth",
    ):
        assert family in metrics


async def test_a_sub_application_mounts_in_one_line(served: Served) -> None:
    sub = web.Application()

    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"object": "list"})

    sub.router.add_get("/models", hello)
    app = build_app(served.bot, served.health, subapps=[("/v1", sub)])
    assert any(r.resource is not None and "/v1" in str(r.resource) for r in app.router.routes())


async def test_readyz_fails_when_the_sqlite_file_disappears(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    path = sqlite_path(served.bot.settings.db_url)
    assert path is not None and path.exists()
    path.unlink()
    status, body = await served.get("/readyz")
    assert status == 503
    assert "was deleted" in json.loads(body)["checks"]["database"]
    assert any("was deleted" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    # And nothing is written to the unlinked file: the delivery is refused for a retry.
    served.model.add(text("never"))
    assert await served.post_event(p.message("still there?")) == 503
    assert not served.model.requests


def test_a_second_process_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "tallybot.db"
    first = SqliteClaim(db)
    first.acquire()
    try:
        with pytest.raises(ConfigError, match="SQLite is for one process"):
            SqliteClaim(db).acquire()
    finally:
        first.release()
    SqliteClaim(db).acquire()  # free again once the first one let go


def test_serve_without_a_channel_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0"]) == 2
    assert "no channel configured" in capsys.readouterr().err


def test_serve_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--port" in out and "--host" in out
