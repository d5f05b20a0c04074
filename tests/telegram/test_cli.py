"""``tallybot telegram``: the subcommand, its settings checks, and a served session."""

from __future__ import annotations

import asyncio

import pytest

from bots.cli import build_parser, main
from bots.telegram.cli import serve
from tests.telegram.conftest import final_text


def test_subcommand_is_registered_with_its_options() -> None:
    args = build_parser().parse_args(["telegram", "--port", "9000", "--listen", "127.0.0.1"])
    assert (args.command, args.port, args.listen) == ("telegram", 9000, "127.0.0.1")


def test_missing_token_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["telegram"]) == 2
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


async def test_serve_polls_until_stopped_and_answers_model_free(make_settings, api) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(make_settings(), stop=stop))
    api.push({"message": api.message(42, "/help")})
    await api.wait_for(final_text(api, 42, "/bill"))
    api.push({"message": api.message(42, "what sold best?")})
    await api.wait_for(final_text(api, 42, "OPENAI_API_KEY"))
    stop.set()
    await asyncio.wait_for(task, 15)
    assert api.sent("setMyCommands") and api.sent("deleteWebhook")
