"""Issue 10: a Telegram approval is answered only by its requester (or an admin), only in the
chat where it was asked; the button data is a single-use token, not the run id."""

from __future__ import annotations

from core.domain import RunStatus
from core.models.scripted import call, text
from tests.shared import recovered_approval
from tests.telegram.conftest import final_text
from tests.telegram.test_approval import GROUP, SAVE, buttons

ALICE, MALLORY, BOSS = 42, 666, 7


async def test_only_the_requester_answers_in_the_chat_where_asked(start, api) -> None:
    turns = [[call("save_bill", SAVE, "c1")], text("Saved: profit 260.00.")]
    async with start(turns) as run:
        api.push({"message": api.message(GROUP, "@tallybot_test save today's bill")})
        approval = await api.wait_for(lambda s: buttons(s, GROUP))
        data = approval.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        [waiting] = await run.bot.store.list_runs()
        assert waiting.id not in data
        # Someone else in the group: a private alert, nothing changes.
        api.push(api.callback(approval, data, user_id=MALLORY))
        await api.wait_for(lambda s: len(s.sent("answerCallbackQuery")) == 1)
        alert = api.sent("answerCallbackQuery")[0].params
        assert "Only the person who asked" in alert["text"] and alert.get("show_alert")
        assert (await run.bot.store.get_run(waiting.id)).status == RunStatus.REQUIRES_ACTION
        # The same token tapped from another chat: refused too.
        other = api.callback(approval, data)
        other["callback_query"]["message"]["chat"]["id"] = -100999
        api.push(other)
        await api.wait_for(lambda s: len(s.sent("answerCallbackQuery")) == 2)
        assert "Only the person who asked" in api.sent("answerCallbackQuery")[1].params["text"]
        assert await run.bot.ledger.list() == []
        # The requester, where it was asked.
        api.push(api.callback(approval, data, user_id=ALICE))
        await api.wait_for(final_text(api, GROUP, "profit 260.00"))
        assert len(await run.bot.ledger.list()) == 1


async def test_an_admin_may_answer_for_the_requester(start, api) -> None:
    turns = [[call("save_bill", SAVE, "c1")], text("Saved: profit 260.00.")]
    async with start(turns, admins=[f"telegram:{BOSS}"]) as run:
        api.push({"message": api.message(GROUP, "@tallybot_test save today's bill")})
        approval = await api.wait_for(lambda s: buttons(s, GROUP))
        data = approval.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        api.push(api.callback(approval, data, user_id=BOSS))
        await api.wait_for(final_text(api, GROUP, "profit 260.00"))
        assert len(await run.bot.ledger.list()) == 1


async def test_buttons_of_a_recovered_run_are_bound_to_the_person_it_answers(start, api) -> None:
    """A run recovered after a crash is delivered with no update to answer; its buttons are
    still bound to the person whose message the thread answers, not open to anyone."""
    turns = [[call("save_bill", SAVE, "c1")], text("Saved: profit 260.00.")]
    async with start(turns) as run:
        api.push({"message": api.message(GROUP, "@tallybot_test save today's bill")})
        await api.wait_for(lambda s: buttons(s, GROUP))
        waiting_id, key, events = await recovered_approval(run.bot.store)
        await run.adapter.deliver(key, events)
        asked = [c for c in api.sent("sendMessage", GROUP) if c.params.get("reply_markup")]
        assert len(asked) == 2
        data = asked[1].params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        api.push(api.callback(asked[1], data, user_id=MALLORY))
        await api.wait_for(lambda s: len(s.sent("answerCallbackQuery")) == 1)
        assert "Only the person who asked" in api.sent("answerCallbackQuery")[0].params["text"]
        assert (await run.bot.store.get_run(waiting_id)).status == RunStatus.REQUIRES_ACTION
        api.push(api.callback(asked[1], data, user_id=ALICE))
        await api.wait_for(final_text(api, GROUP, "profit 260.00"))
        assert len(await run.bot.ledger.list()) == 1
