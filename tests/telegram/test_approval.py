"""requires_action in Telegram: buttons, the callback that resumes the run, and expiry."""

from __future__ import annotations

from core.domain import RunStatus
from core.models.scripted import call, text
from tests.telegram.conftest import final_text
from tests.telegram.fake_api import FakeBotAPI

PRIVATE = 42
GROUP = -100123
SAVE = {
    "date": "2026-11-24",
    "items": [{"name": "玫瑰", "quantity": 40, "unit_cost": "3.5", "unit_price": "10"}],
}


def buttons(api: FakeBotAPI, chat_id: int):  # type: ignore[no-untyped-def]
    """The message with the approve/deny keyboard, once it is there."""
    for c in api.sent("sendMessage", chat_id):
        if c.params.get("reply_markup"):
            return c
    return None


def keyboard_of(api: FakeBotAPI, approval) -> object:  # type: ignore[no-untyped-def]
    return api.messages[(approval.params["chat_id"], api.message_id_of(approval))].get(
        "reply_markup"
    )


async def test_approve_button_resumes_the_run(start, api) -> None:
    turns = [[call("save_bill", SAVE, "c1")], text("Saved: profit 260.00.")]
    async with start(turns) as run:
        api.push({"message": api.message(PRIVATE, "save today's bill")})
        approval = await api.wait_for(lambda s: buttons(s, PRIVATE))
        assert "2026-11-24" in approval.params["text"] and "玫瑰 ×40" in approval.params["text"]
        row = approval.params["reply_markup"]["inline_keyboard"][0]
        assert [b["text"] for b in row] == ["✅ Approve", "❌ Deny"]
        api.push(api.callback(approval, row[0]["callback_data"]))
        await api.wait_for(final_text(api, PRIVATE, "profit 260.00"))
        bills = await run.bot.ledger.list()
    assert [c.params["text"] for c in api.sent("answerCallbackQuery")] == ["Approved."]
    assert keyboard_of(api, approval) is None
    assert api.texts(PRIVATE)[0].endswith("✅ Approved.")
    assert len(bills) == 1 and bills[0].to_json()["profit"] == "260.00"


async def test_deny_button_tells_the_model_and_saves_nothing(start, api) -> None:
    turns = [[call("save_bill", SAVE, "c1")], text("OK, not saved.")]
    async with start(turns) as run:
        api.push({"message": api.message(GROUP, "@tallybot_test 保存今天的账单")})
        approval = await api.wait_for(lambda s: buttons(s, GROUP))
        row = approval.params["reply_markup"]["inline_keyboard"][0]
        assert [b["text"] for b in row] == ["✅ 确认", "❌ 拒绝"]
        assert "是否确认" in approval.params["text"]
        api.push(api.callback(approval, row[1]["callback_data"]))
        await api.wait_for(final_text(api, GROUP, "not saved"))
        assert await run.bot.ledger.list() == []
    assert "已拒绝" in [t for t in api.texts(GROUP) if "保存" in t][0]


async def test_second_tap_on_the_same_button_does_nothing(start, api) -> None:
    turns = [[call("save_bill", SAVE, "c1")], text("Saved.")]
    async with start(turns) as run:
        api.push({"message": api.message(PRIVATE, "save it")})
        approval = await api.wait_for(lambda s: buttons(s, PRIVATE))
        data = approval.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        api.push(api.callback(approval, data))
        await api.wait_for(final_text(api, PRIVATE, "Saved."))
        api.push(api.callback(approval, data))
        await api.wait_for(lambda s: len(s.sent("answerCallbackQuery")) == 2)
        assert len(await run.bot.ledger.list()) == 1
    assert api.sent("answerCallbackQuery")[1].params["text"] == "Expired."
    assert len(run.model.requests) == 2


async def test_expired_approval_loses_its_buttons_and_says_expired(start, api) -> None:
    async with start([[call("save_bill", SAVE, "c1")]], run_expires_seconds=0) as run:
        api.push({"message": api.message(PRIVATE, "save today's bill")})
        approval = await api.wait_for(lambda s: buttons(s, PRIVATE))
        expired = await run.bot.expire_due()
        assert [r.status for r in expired] == [RunStatus.EXPIRED]
        await api.wait_for(final_text(api, PRIVATE, "Expired."))
        assert keyboard_of(api, approval) is None
        # A tap on a stale copy of the buttons is answered, and nothing runs.
        data = approval.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        api.push(api.callback(approval, data))
        await api.wait_for(lambda s: s.sent("answerCallbackQuery"))
        assert await run.bot.ledger.list() == []
    removed = api.sent("editMessageReplyMarkup", PRIVATE)
    assert removed and "reply_markup" not in removed[0].params
    assert "waited too long" in api.texts(PRIVATE)[0]
    assert api.sent("answerCallbackQuery")[0].params["text"] == "Expired."
