"""Issue 10: a Slack approval is answered only by its requester (or an admin), only where it
was asked, through a single-use token rather than the run id."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import Settings
from core.domain import RunStatus
from core.models.scripted import ScriptedModel, call, text
from tests.shared import recovered_approval

from . import payloads as p
from .conftest import Harness, close_harness, open_harness
from .fake_slack import FakeSlack
from .test_files_approvals import SAVE, approval_message, click


async def _ask(slack: Harness, model: ScriptedModel) -> Any:
    model.add([call("save_bill", SAVE, "call_save")], text("Saved."))
    mention = p.app_mention("save today's bill")
    await slack.event(mention)
    return approval_message(slack.fake, p.CHANNEL, mention["event"]["ts"])


async def test_button_carries_a_token_not_the_run_id(slack: Harness, model: ScriptedModel) -> None:
    ask = await _ask(slack, model)
    [run] = await slack.bot.store.list_runs()
    value = click(ask, "tallybot_approve")["actions"][0]["value"]
    assert run.id not in value and len(value) >= 16


async def test_someone_else_is_refused_and_nothing_changes(
    slack: Harness, model: ScriptedModel
) -> None:
    ask = await _ask(slack, model)
    await slack.deliver("interactive", click(ask, "tallybot_approve", user="U0MALLORY"))
    assert slack.fake.ephemeral[-1]["user"] == "U0MALLORY"
    assert "Only the person who asked" in slack.fake.ephemeral[-1]["text"]
    [run] = await slack.bot.store.list_runs()
    assert run.status == RunStatus.REQUIRES_ACTION
    assert not await slack.bot.ledger.list()
    # The requester still can.
    await slack.deliver("interactive", click(ask, "tallybot_approve"))
    assert len(await slack.bot.ledger.list()) == 1


async def test_a_button_from_another_chat_is_refused(slack: Harness, model: ScriptedModel) -> None:
    ask = await _ask(slack, model)
    forged = click(ask, "tallybot_approve")
    forged["channel"]["id"] = "C0OTHER"
    forged["container"]["channel_id"] = "C0OTHER"
    await slack.deliver("interactive", forged)
    assert "Only the person who asked" in slack.fake.ephemeral[-1]["text"]
    assert not await slack.bot.ledger.list()


async def test_a_guessed_run_id_is_refused(slack: Harness, model: ScriptedModel) -> None:
    ask = await _ask(slack, model)
    [run] = await slack.bot.store.list_runs()
    forged = click(ask, "tallybot_approve")
    forged["actions"][0]["value"] = run.id
    await slack.deliver("interactive", forged)
    assert not await slack.bot.ledger.list()
    assert (await slack.bot.store.get_run(run.id)).status == RunStatus.REQUIRES_ACTION


@pytest.fixture
async def admin_slack(slack_settings: Settings, fake: FakeSlack, model: ScriptedModel) -> Any:
    slack_settings.admins = ["slack:U0BOSS"]
    h = await open_harness(slack_settings, fake, model)
    try:
        yield h
    finally:
        await close_harness(h)


async def test_an_admin_may_answer(admin_slack: Harness, model: ScriptedModel) -> None:
    ask = await _ask(admin_slack, model)
    await admin_slack.deliver("interactive", click(ask, "tallybot_approve", user="U0BOSS"))
    assert len(await admin_slack.bot.ledger.list()) == 1


async def test_buttons_of_a_recovered_run_are_bound_to_the_person_it_answers(
    slack: Harness, model: ScriptedModel
) -> None:
    """A run recovered after a crash is posted with no inbound event; its buttons are still
    bound to the person whose message the thread answers, not open to anyone."""
    first = await _ask(slack, model)
    waiting_id, key, events = await recovered_approval(slack.bot.store)
    await slack.adapter.deliver(key, events)
    ask = approval_message(slack.fake, first.channel, first.thread_ts)
    assert ask.ts != first.ts
    await slack.deliver("interactive", click(ask, "tallybot_approve", user="U0MALLORY"))
    assert "Only the person who asked" in slack.fake.ephemeral[-1]["text"]
    assert (await slack.bot.store.get_run(waiting_id)).status == RunStatus.REQUIRES_ACTION
    await slack.deliver("interactive", click(ask, "tallybot_approve"))
    assert len(await slack.bot.ledger.list()) == 1
