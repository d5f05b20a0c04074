"""Text in, answers out: private drafts, group edits, follow-ups, topics, long and odd text."""

from __future__ import annotations

from core.domain import RunStatus
from core.models.base import AssistantText, ModelTextDelta, UserText
from core.models.scripted import Pause, text
from tests.telegram.conftest import final_text
from tests.telegram.fake_api import BOT_USERNAME

PRIVATE = 42
GROUP = -100123


def users_said(request) -> list[str]:  # type: ignore[no-untyped-def]
    return [i.text for i in request.items if isinstance(i, UserText)]


async def test_private_question_streams_in_a_draft_then_sends_the_answer(start, api) -> None:
    async with start([text("Revenue ", "was **1,234.50**", " yuan.")]) as run:
        api.push({"message": api.message(PRIVATE, "What was revenue today?")})
        await api.wait_for(final_text(api, PRIVATE, "Revenue was"))
    drafts = [c.params["text"] for c in api.sent("sendMessageDraft", PRIVATE)]
    assert drafts and drafts[-1] == "Revenue was **1,234.50** yuan."
    assert all(b.startswith(a) for a, b in zip(drafts, drafts[1:], strict=False))
    assert len({c.params["draft_id"] for c in api.sent("sendMessageDraft")}) == 1
    final = api.sent("sendMessage", PRIVATE)
    assert len(final) == 1
    assert final[0].params["text"] == "Revenue was <b>1,234.50</b> yuan."
    assert final[0].params["parse_mode"] == "HTML"
    assert api.sent("sendChatAction", PRIVATE)[0].params["action"] == "typing"
    assert not api.sent("editMessageText")
    assert users_said(run.model.requests[0]) == ["What was revenue today?"]


async def test_start_up_registers_commands_in_english_and_chinese(start, api) -> None:
    async with start():
        pass
    menus = {c.params.get("language_code"): c.params["commands"] for c in api.sent("setMyCommands")}
    assert set(menus) == {None, "zh"}
    for commands in menus.values():
        assert [c["command"] for c in commands] == [
            "bill",
            "add",
            "show",
            "undo",
            "export",
            "report",  # issue 9
            "history",  # issue 9
            "new",
            "steps",
            "stop",
            "help",
        ]
    assert "账单" in menus["zh"][0]["description"]
    assert "bill" in menus[None][0]["description"]


async def test_group_answers_when_mentioned_by_editing_one_message(start, api) -> None:
    async with start([text("Top seller: ", "roses", " (40 stems).")]) as run:
        api.push({"message": api.message(GROUP, "just chatting among ourselves")})
        api.push({"message": api.message(GROUP, f"@{BOT_USERNAME} which flower sold best?")})
        await api.wait_for(final_text(api, GROUP, "(40 stems)"))
    sent = api.sent("sendMessage", GROUP)
    assert len(sent) == 1  # one message, grown by edits
    assert sent[0].params["reply_parameters"]["message_id"]  # answers the question it was asked
    edits = [c.params["text"] for c in api.sent("editMessageText", GROUP)]
    assert edits[-1] == "Top seller: roses (40 stems)."
    assert len(edits) >= 2
    assert not api.sent("sendMessageDraft")
    # Only the mention reached the model; the chatter was not for the bot.
    assert len(run.model.requests) == 1
    assert users_said(run.model.requests[0]) == ["which flower sold best?"]


async def test_group_reply_to_the_bot_and_commands_are_for_the_bot(start, api) -> None:
    async with start([text("Sure.")]) as run:
        api.push({"message": api.message(GROUP, "and yesterday?", reply_to_bot=True)})
        await api.wait_for(final_text(api, GROUP, "Sure."))
        api.push({"message": api.message(GROUP, "/help@other_bot")})
        api.push({"message": api.message(GROUP, f"/help@{BOT_USERNAME}")})
        await api.wait_for(final_text(api, GROUP, "/undo"))
    assert users_said(run.model.requests[0]) == ["and yesterday?"]
    helps = [t for t in api.texts(GROUP) if "/undo" in t]
    assert len(helps) == 1  # /help@other_bot was left to the other bot


async def test_follow_up_in_the_same_chat_continues_the_thread(start, api) -> None:
    async with start([text("Roses: 40."), text("Tulips: 25.")]) as run:
        api.push({"message": api.message(PRIVATE, "How many roses?")})
        await api.wait_for(final_text(api, PRIVATE, "Roses: 40."))
        api.push({"message": api.message(PRIVATE, "And tulips?")})
        await api.wait_for(final_text(api, PRIVATE, "Tulips: 25."))
    second = run.model.requests[1]
    assert users_said(second) == ["How many roses?", "And tulips?"]
    assert [i.text for i in second.items if isinstance(i, AssistantText)] == ["Roses: 40."]


async def test_each_forum_topic_is_its_own_thread(start, api) -> None:
    async with start([text("topic seven"), text("topic nine"), text("seven again")]) as run:
        api.push({"message": api.message(GROUP, f"@{BOT_USERNAME} one", thread_id=7)})
        await api.wait_for(final_text(api, GROUP, "topic seven"))
        api.push({"message": api.message(GROUP, f"@{BOT_USERNAME} two", thread_id=9)})
        await api.wait_for(final_text(api, GROUP, "topic nine"))
        api.push({"message": api.message(GROUP, f"@{BOT_USERNAME} three", thread_id=7)})
        await api.wait_for(final_text(api, GROUP, "seven again"))
        keys = sorted(t.key for t in await run.bot.store.list_threads())
    assert keys == [f"telegram:{GROUP}:7", f"telegram:{GROUP}:9"]
    assert users_said(run.model.requests[1]) == ["two"]
    assert users_said(run.model.requests[2]) == ["one", "three"]
    assert api.texts(GROUP, thread_id=7) == ["topic seven", "seven again"]
    assert api.texts(GROUP, thread_id=9) == ["topic nine"]
    for call in api.sent("sendChatAction", GROUP):
        assert call.params["message_thread_id"] in (7, 9)


async def test_long_answer_is_split_at_the_telegram_limit(start, api) -> None:
    paragraph = "Sales were steady across the week. " * 40  # ~1400 characters
    answer = "\n\n".join([paragraph.strip()] * 5)  # ~7000 characters
    async with start([text(answer)]):
        api.push({"message": api.message(PRIVATE, "Write the full report")})
        await api.wait_for(lambda s: len(s.sent("sendMessage", PRIVATE)) >= 2)
    sent = [c.params["text"] for c in api.sent("sendMessage", PRIVATE)]
    assert all(len(t) <= 4096 for t in sent)
    assert "".join(sent).replace("\n", "") == answer.replace("\n", "")
    drafts = [c.params["text"] for c in api.sent("sendMessageDraft")]
    assert all(len(t) <= 4096 for t in drafts)


async def test_markdown_rejected_by_telegram_is_sent_as_plain_text(start, api) -> None:
    api.fail_next("sendMessage", 400, "Bad Request: can't parse entities: unsupported tag")
    async with start([text("Profit is *up* <b>")]):
        api.push({"message": api.message(PRIVATE, "Profit?")})
        await api.wait_for(final_text(api, PRIVATE, "Profit is"))
    attempts = [c for c in api.calls if c.method == "sendMessage"]
    assert attempts[0].status == 400 and attempts[0].params["parse_mode"] == "HTML"
    assert attempts[0].params["text"] == "Profit is <i>up</i> &lt;b&gt;"
    assert attempts[1].ok and "parse_mode" not in attempts[1].params
    assert attempts[1].params["text"] == "Profit is *up* <b>"


async def test_without_drafts_on_the_server_private_chats_stream_by_edits(start, api) -> None:
    api.unknown.add("sendMessageDraft")
    async with start([text("one ", "two ", "three"), text("four")]) as run:
        api.push({"message": api.message(PRIVATE, "count")})
        await api.wait_for(final_text(api, PRIVATE, "one two three"))
        api.push({"message": api.message(PRIVATE, "more")})
        await api.wait_for(final_text(api, PRIVATE, "four"))
        assert run.adapter.drafts_supported is False
    assert len([c for c in api.calls if c.method == "sendMessageDraft"]) == 1  # asked once
    assert api.sent("editMessageText", PRIVATE)
    assert api.texts(PRIVATE) == ["one two three", "four"]


async def test_replies_follow_the_language_of_the_message_or_the_user(start, api) -> None:
    async with start(None):  # model-free: fixed texts show the language choice
        api.push({"message": api.message(PRIVATE, "/help", language_code="zh-hans")})
        await api.wait_for(final_text(api, PRIVATE, "命令"))
        api.push({"message": api.message(43, "今天卖了多少？", language_code="en")})
        await api.wait_for(final_text(api, 43, "还没有配置模型"))
        api.push({"message": api.message(44, "/help", language_code="en")})
        await api.wait_for(final_text(api, 44, "Commands"))


async def test_stop_reaches_a_running_answer_in_the_same_chat(start, api) -> None:
    pause = Pause()
    async with start([[ModelTextDelta("Working on the wee"), pause]]) as run:
        api.push({"message": api.message(PRIVATE, "long analysis please")})
        await pause.reached.wait()
        api.push({"message": api.message(PRIVATE, "/stop")})
        await api.wait_for(final_text(api, PRIVATE, "Working on the wee"))
        runs = await run.bot.store.list_runs()
    assert [r.status for r in runs] == [RunStatus.CANCELLED]
    texts = api.texts(PRIVATE)
    # The partial answer is kept and says it was stopped; /stop itself is acknowledged.
    assert "Working on the wee\n\nStopped." in texts
    assert "OK, stopping." in texts
