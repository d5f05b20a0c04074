"""Where a Slack message belongs and what it says: thread keys, command words, language.

Pure functions over Slack payload fields, so the mapping rules are testable without a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.commands import COMMANDS
from core.i18n import detect_lang, lang_from_locale

SLASH_COMMAND = "/tally"
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_LETTERS = re.compile(r"[A-Za-z]{2,}")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# A DM message is read as a command only when what follows the word looks like that command's
# arguments: "show me the profit" is a question for the assistant, "show 3" is /show.
_ARGS: dict[str, re.Pattern[str]] = {
    "bill": re.compile(r"^(\d{4}-\d{2}-\d{2})?$"),
    "add": re.compile(r"^\d+(\.\d+)?\s*\S.*$", re.DOTALL),
    "show": re.compile(r"^(#?\d+)?$"),
    "undo": re.compile(r"^$"),
    "export": re.compile(r"^(csv|xlsx|json)?$", re.IGNORECASE),
    "report": re.compile(r"^(today|week|month|\d{4}-\d{2}(-\d{2})?(\.\.\S+)?)?(\s+by\s+\w+)?$"),
    "history": re.compile(r"^(#?\d+)?$"),
    "new": re.compile(r"^$"),
    "steps": re.compile(r"^(\S+)?$"),
    "stop": re.compile(r"^$"),
    "help": re.compile(r"^$"),
}


@dataclass(frozen=True, slots=True)
class Place:
    """A Slack conversation place: the tallybot thread key and where replies go.

    ``reply_ts`` is the ``thread_ts`` replies are posted under; ``None`` means the DM itself
    (top-level DM messages share one conversation, so answers stay top-level too).
    """

    key: str
    channel: str
    reply_ts: str | None
    is_dm: bool

    @property
    def in_assistant_thread(self) -> bool:
        """A threaded DM: Slack's assistant panel threads are of this kind."""
        return self.is_dm and self.reply_ts is not None


def thread_key(team: str, channel: str, thread_ts: str | None) -> str:
    """``slack:<team>:<channel>:<thread_ts>``; ``...:dm`` for a DM's top-level messages."""
    return f"slack:{team}:{channel}:{thread_ts or 'dm'}"


def is_dm_channel(channel: str, channel_type: str | None = None) -> bool:
    """IM channels have type ``im`` (events) or an ID starting with ``D`` (commands, actions)."""
    return channel_type == "im" if channel_type else channel.startswith("D")


def place_for_message(team: str, event: dict[str, object]) -> Place:
    """The place of a ``message`` / ``app_mention`` event.

    In channels every top-level mention starts a thread under the mention itself; in DMs the
    top-level messages share one conversation unless the person replies in a thread.
    """
    channel = str(event["channel"])
    thread_ts = event.get("thread_ts")
    dm = is_dm_channel(channel, event.get("channel_type"))  # type: ignore[arg-type]
    if dm:
        reply = str(thread_ts) if thread_ts else None
    else:
        reply = str(thread_ts or event["ts"])
    return Place(thread_key(team, channel, reply), channel, reply, dm)


def place_for_slash(team: str, channel: str) -> Place:
    """``/tally`` has no thread: a DM uses its top-level conversation, a channel its own one."""
    if is_dm_channel(channel):
        return Place(thread_key(team, channel, None), channel, None, True)
    return Place(f"slack:{team}:{channel}:channel", channel, None, False)


def strip_mentions(text: str, bot_user_id: str | None) -> str:
    """Drop the bot's own mention (``<@U123>``) so the facade sees just the request."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def as_command(text: str, *, words_allowed: bool) -> str:
    """Text for the facade: ``bill 2024-05-01`` → ``/bill 2024-05-01`` when allowed and the
    rest looks like that command's arguments; anything else passes through unchanged."""
    stripped = text.strip()
    if not words_allowed or stripped.startswith("/"):
        return stripped
    word, _, rest = stripped.partition(" ")
    pattern = _ARGS.get(word.lower())
    if word.lower() in COMMANDS and pattern is not None and pattern.match(rest.strip()):
        return f"/{word.lower()} {rest.strip()}".rstrip()
    return stripped


def slash_text(text: str) -> str:
    """``/tally bill x`` → ``/bill x``; an empty ``/tally`` is ``/help``; a question passes on."""
    stripped = text.strip()
    if not stripped:
        return "/help"
    word, _, rest = stripped.partition(" ")
    if word.lower().lstrip("/") in COMMANDS:
        return f"/{word.lower().lstrip('/')} {rest.strip()}".rstrip()
    return stripped


def pick_lang(text: str, locale: str | None) -> str | None:
    """The message's own language when it shows one, else the Slack user's locale.

    Chinese characters mean ``zh``; an English sentence means ``en``; a bare command or a
    file with no text says nothing, so the locale (or the thread's language) decides.
    """
    body = _MENTION.sub(" ", text or "")
    if _CJK.search(body):
        return "zh"
    words = body.strip()
    if words.startswith("/") or not words:
        return lang_from_locale(locale)
    if len(_LETTERS.findall(words)) >= 2:
        return detect_lang(words)
    return lang_from_locale(locale)
