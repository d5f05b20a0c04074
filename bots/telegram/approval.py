"""Approve / deny buttons: the callback that resumes a waiting run, and the expiry listener that
replaces the buttons with "expired".

Where each approval message lives is persisted (:class:`bots.telegram.records.ApprovalBook`,
not memory), so buttons still work, and still expire, after a restart. A record is claimed
once: a double tap, or a tap racing the expiry sweep, does nothing the second time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, ContextTypes

from bots.telegram import markup
from bots.telegram.responder import Responder, parse_approval_data
from core.domain import Run, RunStatus
from core.i18n import lang_from_locale, t

if TYPE_CHECKING:
    from bots.telegram.host import Host

log = logging.getLogger(__name__)


def build(adapter: Host) -> CallbackQueryHandler:
    """The handler for taps on approve / deny buttons."""

    async def on_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        parsed = parse_approval_data(query.data)
        if parsed is None:
            await query.answer()
            return
        token, approve = parsed
        chat = query.message.chat.id if query.message is not None else None
        run_id, why = await adapter.tokens.check(token, f"telegram:{query.from_user.id}", str(chat))
        if run_id is None and why == "not_yours":
            # Someone else's approval, or a button from another chat: nothing changes.
            lang = lang_from_locale(query.from_user.language_code) or "en"
            await query.answer(t("not_your_approval", lang), show_alert=True)
            return
        record = await adapter.approvals.claim(run_id) if run_id and why == "ok" else None
        if record is not None:
            await adapter.tokens.spend(token)
        if record is None:
            lang = lang_from_locale(query.from_user.language_code) or "en"
            await query.answer(t("expired", lang))
            # Stale buttons (e.g. after the run was cancelled) should not invite more taps.
            if query.message is not None:
                try:
                    await query.edit_message_reply_markup(reply_markup=None)
                except TelegramError as exc:
                    log.debug("could not remove stale buttons: %s", exc)
            return
        verdict = t("approved" if approve else "denied", record.lang)
        await query.answer(verdict)
        try:
            # Editing the text without a keyboard also removes the buttons.
            await markup.edit_text(
                adapter.application.bot,
                record.chat_id,
                record.message_id,
                f"{record.text}\n\n{'✅' if approve else '❌'} {verdict}",
            )
        except TelegramError as exc:
            log.warning("could not update the approval message: %s", exc)
        assert run_id is not None  # a record is only claimed for a known token
        async with Responder(
            adapter,
            record.chat_id,
            topic_id=record.topic_id,
            lang=record.lang,
            private=record.private,
            reply_to=record.message_id,
        ) as responder:
            async for event in adapter.tallybot.submit_tool_outputs(run_id, approve):
                await responder.on_event(event)

    return CallbackQueryHandler(on_tap, pattern=r"^tb:")


def closed_text(text: str, run: Run, lang: str) -> str:
    """The approval message once nobody can answer it: expired, or withdrawn (cancelled)."""
    if run.status == RunStatus.CANCELLED:
        return f"{text}\n\n⌛ {t('approval_withdrawn', lang)}"
    return f"{text}\n\n⌛ {t('expired', lang)} {t('run_expired', lang)}"


def expiry_listener(adapter: Host):  # type: ignore[no-untyped-def]
    """``Tallybot.on_expired`` callback: drop the buttons and say the request expired."""

    async def on_expired(run: Run) -> None:
        record = await adapter.approvals.claim(run.id)
        if record is None:
            return  # not one of ours (another channel), or already answered
        bot = adapter.application.bot
        try:
            await bot.edit_message_reply_markup(
                chat_id=record.chat_id, message_id=record.message_id, reply_markup=None
            )
            await markup.edit_text(
                bot,
                record.chat_id,
                record.message_id,
                closed_text(record.text, run, record.lang),
            )
        except TelegramError as exc:
            log.warning("could not mark approval %s expired: %s", run.id, exc)

    return on_expired
