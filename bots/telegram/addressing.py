"""Who a message is for, which conversation it belongs to, and in which language to answer.

Pure functions over python-telegram-bot objects, so the rules are tested without a server.
"""

from __future__ import annotations

import re

from telegram import Chat, Message, MessageEntity, User

from core.i18n import detect_lang, lang_from_locale

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def thread_key(chat_id: int, topic_id: int | None) -> str:
    """``telegram:<chat_id>:<topic or 0>``: each forum topic is its own tallybot thread."""
    return f"telegram:{chat_id}:{topic_id or 0}"


def topic_of(message: Message) -> int | None:
    """The forum topic of a message, or None.

    ``message_thread_id`` is also set on plain replies in supergroups; only
    ``is_topic_message`` says the message really lives in a topic.
    """
    return message.message_thread_id if message.is_topic_message else None


def is_private(chat: Chat) -> bool:
    return chat.type == Chat.PRIVATE


def _body(message: Message) -> tuple[str, dict[MessageEntity, str]]:
    if message.text is not None:
        return message.text, message.parse_entities()
    return message.caption or "", message.parse_caption_entities()


def is_addressed(message: Message, bot: User) -> bool:
    """Private chats always; in groups a mention, a reply to the bot, or a command for it."""
    if is_private(message.chat):
        return True
    text, entities = _body(message)
    name = f"@{bot.username}".lower() if bot.username else None
    for entity, value in entities.items():
        if entity.type == MessageEntity.MENTION and name and value.lower() == name:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id:
            return True
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            # "/bill@otherbot" is for another bot in the same group.
            _, _, target = value.partition("@")
            if not target or (name and f"@{target}".lower() == name):
                return True
    replied = message.reply_to_message
    # In forums every message "replies" to the topic's creation message; that is not a reply.
    return bool(
        replied is not None
        and replied.forum_topic_created is None
        and replied.from_user is not None
        and replied.from_user.id == bot.id
    )


def body_for_bot(message: Message, bot: User) -> str:
    """The text or caption without the bot's @mention and without ``@botname`` on a command."""
    text, _ = _body(message)
    if bot.username:
        name = re.escape(bot.username)
        text = re.sub(rf"^(/[A-Za-z_]+)@{name}\b", r"\1", text, flags=re.IGNORECASE)
        text = re.sub(rf"(^|\s)@{name}\b[,，:：]?\s*", r"\1", text, flags=re.IGNORECASE)
    return text.strip()


def reply_lang(text: str, user: User | None) -> str | None:
    """The language to answer in: the message's own language when it has words, else the
    person's Telegram ``language_code``; None lets the thread's remembered language decide."""
    locale = lang_from_locale(user.language_code if user else None)
    words = re.sub(r"^/\S+", "", text).strip()
    if _CJK.search(words):
        return "zh"
    if _LATIN_WORD.search(words):
        return detect_lang(words, default=locale or "en")
    return locale
