"""The handler for messages: text, commands, and documents (with or without a caption).

It decides whether the message is for the bot, maps chat + topic to the tallybot thread key,
downloads an attached document, and streams ``Tallybot.handle`` through a :class:`Responder`.
Commands are passed through as text (``/bill@tallybot 2024-05-01`` → ``/bill 2024-05-01``);
the facade recognises them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

from bots.channel import thread_lang
from bots.telegram import media
from bots.telegram.addressing import (
    body_for_bot,
    is_addressed,
    is_private,
    reply_lang,
    thread_key,
    topic_of,
)
from bots.telegram.responder import Responder
from core.app import Incoming

if TYPE_CHECKING:
    from bots.telegram.host import Host

log = logging.getLogger(__name__)

# New messages only: an edited message is not a new question.
# Photos, voice notes and audio since issue 13.
FILTER = filters.UpdateType.MESSAGE & (
    filters.TEXT
    | filters.COMMAND
    | filters.Document.ALL
    | filters.PHOTO
    | filters.VOICE
    | filters.AUDIO
)


def build(adapter: Host) -> MessageHandler[ContextTypes.DEFAULT_TYPE, None]:
    """The message handler, bound to ``adapter``."""

    async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None:
            return
        me = context.bot.bot
        if not is_addressed(message, me):
            return
        text = body_for_bot(message, me)
        lang = reply_lang(text, message.from_user)
        topic = topic_of(message)
        key = thread_key(message.chat_id, topic)
        files: list[Incoming] = []
        # With nothing to go on (a bare command, a file), answer in the thread's language.
        answer_lang = lang or await thread_lang(adapter.tallybot, key) or "en"
        async with Responder(
            adapter,
            message.chat_id,
            topic_id=topic,
            lang=answer_lang,
            private=is_private(message.chat),
            reply_to=message.message_id,
            user=str(message.from_user.id) if message.from_user else None,
        ) as responder:
            got = await media.fetch_attachment(
                adapter, context.bot, message, responder, answer_lang
            )
            if got is False:
                return
            if isinstance(got, Incoming):
                files.append(got)
            if media.recording(message) is not None:
                heard = await media.hear(adapter, context.bot, message, responder, answer_lang)
                if heard is None:
                    return
                text = f"{text}\n{heard}".strip()
                lang = reply_lang(text, message.from_user)
            user = message.from_user
            async for event in adapter.tallybot.handle(
                key,
                text,
                files=files,
                lang=lang,
                user=str(user.id) if user else None,
                user_name=user.full_name if user else None,
            ):
                await responder.on_event(event)

    return MessageHandler(FILTER, on_message)
