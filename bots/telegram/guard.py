"""The first handler every update meets: process each update once, and apply the allowlist.

Runs in group -1, before the message and button handlers; raising ``ApplicationHandlerStop``
ends the update there.

* Once: ``update_id`` is claimed in the store (``processed_events``). Telegram redelivers an
  update when the bot did not confirm it (a crash before the next ``getUpdates``, a webhook
  answer that timed out); the claim makes the redelivery a no-op. The next offset is kept in
  kv so a restarted poller confirms everything already handled before it asks for more.
* Allowlist: ``TALLYBOT_TELEGRAM_ALLOWED_USERS`` / ``_CHATS`` (comma-separated ids). With
  either set, an update passes when its user *or* its chat is listed -- a listed group is open
  to all its members, a listed person can use the bot anywhere. A refused person is told so,
  but only when they addressed the bot: the bot does not answer group chatter.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes, TypeHandler

from bots.telegram.addressing import is_addressed, reply_lang, topic_of
from core.i18n import lang_from_locale, t

if TYPE_CHECKING:
    from bots.telegram.adapter import TelegramAdapter
    from core.config import Settings
    from core.store import Store

log = logging.getLogger(__name__)


class Allowlist:
    """User and chat ids allowed to use the bot; empty lists allow everyone."""

    def __init__(self, users: list[str], chats: list[str]) -> None:
        self.users = {u.strip() for u in users if u.strip()}
        self.chats = {c.strip() for c in chats if c.strip()}

    @classmethod
    def from_settings(cls, settings: Settings) -> Allowlist:
        return cls(settings.telegram_allowed_users, settings.telegram_allowed_chats)

    @property
    def open(self) -> bool:
        return not self.users and not self.chats

    def allows(self, user_id: int | None, chat_id: int | None) -> bool:
        if self.open:
            return True
        return (user_id is not None and str(user_id) in self.users) or (
            chat_id is not None and str(chat_id) in self.chats
        )


class Offset:
    """The next ``getUpdates`` offset, persisted so it survives restarts."""

    def __init__(self, store: Store, key: str) -> None:
        self._store = store
        self._key = key
        self._value = 0
        self._lock = asyncio.Lock()

    async def load(self) -> int:
        raw = await self._store.kv_get(self._key)
        self._value = int(raw) if raw and raw.isdigit() else 0
        return self._value

    async def advance(self, update_id: int) -> None:
        async with self._lock:
            # Updates run concurrently; never move the stored offset backwards.
            if update_id + 1 > self._value:
                self._value = update_id + 1
                await self._store.kv_set(self._key, str(self._value))


def build(adapter: TelegramAdapter) -> TypeHandler[Update, ContextTypes.DEFAULT_TYPE, None]:
    """The guard handler (register in group -1)."""

    async def guard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        first = await adapter.tallybot.store.mark_processed(adapter.source, str(update.update_id))
        await adapter.offset.advance(update.update_id)
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


async def _refuse(adapter: TelegramAdapter, update: Update) -> None:
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
