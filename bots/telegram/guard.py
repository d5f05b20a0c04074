"""The first handler every update meets: process each update once, and apply the allowlist.

Runs in group -1, before the message and button handlers; raising ``ApplicationHandlerStop``
ends the update there.

* Once: ``update_id`` is claimed through :class:`bots.channel.Deliveries`. Telegram
  redelivers an update when the bot did not confirm it (a crash before the next
  ``getUpdates``, a webhook answer that timed out); the claim makes the redelivery a no-op.
  The next offset is kept (:class:`bots.telegram.records.Offset`) so a restarted poller
  confirms everything already handled before it asks for more.
* Allowlist (:class:`bots.channel.Allowlist`, ``match="any"``):
  ``TALLYBOT_TELEGRAM_ALLOWED_USERS`` / ``_CHATS`` (comma-separated ids). With either set, an
  update passes when its user *or* its chat is listed -- a listed group is open to all its
  members, a listed person can use the bot anywhere. A refused person is told so, but only
  when they addressed the bot: the bot does not answer group chatter.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes, TypeHandler

from bots.telegram.addressing import is_addressed, reply_lang, topic_of
from core import receipt
from core.i18n import lang_from_locale, t

if TYPE_CHECKING:
    from bots.telegram.host import Host

log = logging.getLogger(__name__)


def build(adapter: Host) -> TypeHandler[Update, ContextTypes.DEFAULT_TYPE, None]:
    """The guard handler (register in group -1)."""

    async def guard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            first = await adapter.deliveries.first(str(update.update_id))
            await adapter.offset.advance(update.update_id)
        except Exception:
            # Fail closed (issue 10): a guard that cannot check must not let the update on.
            log.exception("the once-only check of update %s failed; refused", update.update_id)
            current = receipt.current()
            if current is not None:  # not acknowledged: Telegram delivers it again
                await current.failed()
            raise ApplicationHandlerStop from None
        if not first:
            log.info("update %s was delivered again; ignored", update.update_id)
            raise ApplicationHandlerStop
        user = update.effective_user
        chat = update.effective_chat
        if adapter.allowlist.allows(user.id if user else None, chat.id if chat else None):
            return
        log.info("refused update from user %s in chat %s", user and user.id, chat and chat.id)
        await _refuse(adapter, update)
        raise ApplicationHandlerStop

    return TypeHandler(Update, guard)


async def _refuse(adapter: Host, update: Update) -> None:
    if update.callback_query is not None:
        lang = lang_from_locale(update.callback_query.from_user.language_code)
        await update.callback_query.answer(t("not_allowed", lang), show_alert=True)
        return
    message = update.message
    me = adapter.application.bot.bot
    if message is None or not is_addressed(message, me):
        return
    lang = reply_lang(message.text or message.caption or "", message.from_user)
    await adapter.application.bot.send_message(
        message.chat_id,
        t("not_allowed", lang),
        message_thread_id=topic_of(message),
    )
