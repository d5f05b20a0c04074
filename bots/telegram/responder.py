"""Events → Telegram calls for one answer in one chat (and topic).

While a run streams, private chats see the text grow in a draft (``sendMessageDraft``) and get
the final message when the run finishes; groups see one message edited as text arrives, at most
once per ``edit_interval`` per chat (Telegram allows about one edit a second). Files a run makes
are posted after its text, charts as photos and everything else as documents. A run that waits
for approval gets a message with approve / deny buttons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import ChatAction
from telegram.error import BadRequest, EndPointNotFound, InvalidToken, TelegramError

from bots.telegram import markup
from core.domain import RunStatus
from core.events import (
    ApprovalRequired,
    Event,
    FileProduced,
    Reply,
    RunFinished,
    TextDelta,
)
from core.i18n import t

if TYPE_CHECKING:
    from bots.telegram.host import Host

log = logging.getLogger(__name__)

TYPING_EVERY = 4.0  # Telegram shows "typing" for 5 s; refresh a little before it lapses.

BUTTONS = {
    "en": ("✅ Approve", "❌ Deny"),
    "zh": ("✅ 确认", "❌ 拒绝"),
}


def approval_data(token: str, approve: bool) -> str:
    """Callback data for a button: ``tb:<token>:y|n`` (well under Telegram's 64 bytes)."""
    return f"tb:{token}:{'y' if approve else 'n'}"


def parse_approval_data(data: str | None) -> tuple[str, bool] | None:
    if not data or not data.startswith("tb:"):
        return None
    _, run_id, choice = (data.split(":", 2) + ["", ""])[:3]
    if not run_id or choice not in ("y", "n"):
        return None
    return run_id, choice == "y"


class Responder:
    """Renders one stream of events into one chat. Use as ``async with`` (keeps "typing" on)."""

    def __init__(
        self,
        adapter: Host,
        chat_id: int,
        *,
        topic_id: int | None,
        lang: str,
        private: bool,
        reply_to: int | None = None,
        user: str | None = None,
    ) -> None:
        self.adapter = adapter
        self.user = user  # the person whose message this answers: only they (or an admin) approve
        self.bot = adapter.application.bot
        self.chat_id = chat_id
        self.topic_id = topic_id
        self.lang = lang
        self.private = private
        self.reply_to = None if private else reply_to
        self._buffer = ""
        self._shown = ""
        self._stream_message: int | None = None
        self._draft_id = random.randint(1, 2**31 - 1)
        self._files: list[FileProduced] = []
        self._typing: asyncio.Task[None] | None = None
        self._stop_typing = asyncio.Event()

    # --- typing --------------------------------------------------------------------------

    async def __aenter__(self) -> Responder:
        self._typing = asyncio.create_task(self._keep_typing())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop_typing.set()
        if self._typing is not None:
            if exc[0] is not None:  # cancelled or failed: do not wait out a chat action
                self._typing.cancel()
            await asyncio.wait({self._typing})
            if not self._typing.cancelled() and self._typing.exception() is not None:
                log.debug("typing failed", exc_info=self._typing.exception())  # cosmetic
        if exc[0] is None:
            await self.finish()

    async def _keep_typing(self) -> None:
        while not self._stop_typing.is_set():
            try:
                await self.bot.send_chat_action(
                    self.chat_id, ChatAction.TYPING, message_thread_id=self.topic_id
                )
            except TelegramError as exc:  # cosmetic: never let it break an answer
                log.debug("typing action failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_typing.wait(), TYPING_EVERY)

    # --- events --------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        """Translate one event; unknown kinds (status, tool calls) only keep "typing" on."""
        match event:
            case TextDelta(text=delta):
                self._buffer += delta
                await self._stream()
            case RunFinished():
                await self._finish_run(event)
            case ApprovalRequired():
                await self._flush_text(self._buffer)
                await self._ask_approval(event)
                await self._send_files()
            case Reply():
                await self._flush_text(self._buffer)
                await self._send_reply(event)
            case FileProduced():
                self._files.append(event)
                if event.run_id is None:
                    await self._send_files()  # /export: no run text to wait for

    async def say(self, text: str, *, error: bool = False) -> None:
        """A fixed answer from the adapter itself (e.g. "file too big")."""
        await self._send_reply(Reply(text, kind="error" if error else "info"))

    async def finish(self) -> None:
        """End of the stream: whatever text is still only a draft or a partial edit is sent."""
        await self._flush_text(self._buffer)
        await self._send_files()

    # --- streaming -----------------------------------------------------------------------

    def _preview(self) -> str:
        text = self._buffer
        return text if len(text) <= markup.LIMIT else text[: markup.LIMIT - 1] + "…"

    async def _stream(self) -> None:
        throttle = self.adapter.throttle(self.chat_id)
        if not throttle.ready() or not self._buffer.strip():
            return
        preview = self._preview()
        if preview == self._shown:
            return
        throttle.mark()
        if self.private and self.adapter.drafts_supported:
            try:
                await self.bot.send_message_draft(
                    self.chat_id, self._draft_id, preview, message_thread_id=self.topic_id
                )
                self._shown = preview
                return
            except (EndPointNotFound, InvalidToken, BadRequest) as exc:
                # 404 from a server that predates drafts (PTB maps it to InvalidToken), or a
                # 400 for a chat that cannot take drafts: edits work everywhere.
                self._drafts_unavailable(exc)
        await self._stream_by_edit(preview)

    def _drafts_unavailable(self, exc: TelegramError) -> None:
        log.info("sendMessageDraft unavailable (%s); streaming by edits", exc)
        self.adapter.drafts_supported = False

    async def _stream_by_edit(self, preview: str) -> None:
        try:
            if self._stream_message is None:
                sent = await markup.send_text(
                    self.bot,
                    self.chat_id,
                    preview,
                    thread_id=self.topic_id,
                    style="plain",
                    reply_to=self.reply_to,
                )
                self._stream_message = sent[0].message_id if sent else None
            else:
                await markup.edit_text(self.bot, self.chat_id, self._stream_message, preview)
            self._shown = preview
        except TelegramError as exc:  # a lost intermediate update is fixed by the final one
            log.warning("streaming update failed: %s", exc)

    async def _finish_run(self, event: RunFinished) -> None:
        if event.status == RunStatus.COMPLETED:
            final = event.text or self._buffer
        else:
            # Keep what was already said, then say why it stopped.
            final = "\n\n".join(p for p in (self._buffer.strip(), event.text) if p)
        await self._flush_text(final)
        await self._send_files()

    async def _flush_text(self, text: str) -> None:
        """Send ``text`` as the final answer, turning a streamed message into its first part."""
        message_id, self._stream_message = self._stream_message, None
        self._buffer = self._shown = ""
        if not text.strip():
            return
        if message_id is None:
            await markup.send_text(
                self.bot, self.chat_id, text, thread_id=self.topic_id, reply_to=self.reply_to
            )
            return
        first, *rest = markup.chunks_of(text) or [text]
        # Honour the per-chat edit pace for the final edit too (no wait with a test clock).
        await asyncio.sleep(self.adapter.throttle(self.chat_id).wait_time())
        self.adapter.throttle(self.chat_id).mark()
        await markup.edit_text(self.bot, self.chat_id, message_id, first, style="markdown")
        for chunk in rest:
            await markup.send_text(self.bot, self.chat_id, chunk, thread_id=self.topic_id)

    # --- replies, files, approvals -------------------------------------------------------

    async def _send_reply(self, reply: Reply) -> None:
        style = "pre" if reply.kind == "bill" else "plain"
        await markup.send_text(
            self.bot,
            self.chat_id,
            reply.text,
            thread_id=self.topic_id,
            style=style,
            reply_to=self.reply_to,
        )

    async def _send_files(self) -> None:
        files, self._files = self._files, []
        for produced in files:
            try:
                data = await asyncio.to_thread(Path(produced.path).read_bytes)
            except OSError as exc:
                log.error("cannot read produced file %s: %s", produced.path, exc)
                continue
            if produced.is_image:
                try:
                    await self.bot.send_photo(
                        self.chat_id,
                        InputFile(data, filename=produced.name),
                        message_thread_id=self.topic_id,
                    )
                    continue
                except BadRequest as exc:
                    # Telegram refuses some images as photos (size, ratio); a document works.
                    log.info("photo refused (%s); sending as a document", exc.message)
            await self.bot.send_document(
                self.chat_id,
                InputFile(data, filename=produced.name),
                message_thread_id=self.topic_id,
            )

    async def _ask_approval(self, event: ApprovalRequired) -> None:
        lines = [f"• {call.summary}" for call in event.calls]
        text = "\n".join(lines + ["", t("approval_prompt", self.lang)])
        yes, no = BUTTONS.get(self.lang, BUTTONS["en"])
        # The buttons carry a single-use token bound to the requester and this chat.
        requester = f"telegram:{self.user}" if self.user else None
        token = await self.adapter.tokens.issue(event.run_id, requester, str(self.chat_id))
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(yes, callback_data=approval_data(token, True)),
                    InlineKeyboardButton(no, callback_data=approval_data(token, False)),
                ]
            ]
        )
        sent = await markup.send_text(
            self.bot,
            self.chat_id,
            text,
            thread_id=self.topic_id,
            style="plain",
            reply_to=self.reply_to,
            keyboard=keyboard,
        )
        if sent:
            await self.adapter.approvals.remember(
                event.run_id,
                chat_id=self.chat_id,
                message_id=sent[-1].message_id,
                topic_id=self.topic_id,
                text=sent[-1].text or text,
                lang=self.lang,
                private=self.private,
            )
