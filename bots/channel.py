"""What every chat platform needs, whatever its API looks like.

* :class:`Allowlist` -- who may use the bot (ids of people and of places: teams, chats).
* :class:`Deliveries` -- once-only delivery: a platform's redelivery of an event is a no-op.
* :class:`ApprovalRecords` -- where a run's approve / deny buttons are, persisted so buttons
  still work after a restart; :meth:`ApprovalRecords.claim` hands a record out only once.
* :class:`ApprovalTokens` -- single-use button tokens bound to the requester and the chat.
* :class:`AnswerAnchors` -- the message a run's answer is written into, across restarts.
* :func:`thread_lang` -- the language a conversation was last answered in.
* :data:`PLATFORMS` / :func:`platform_cli` -- the platforms ``tallybot`` offers as sub-commands.

Persistence goes through ``Tallybot.channels`` (:mod:`core.channels`); nothing here knows the
store. This module imports no platform SDK, so the CLI can load it for ``--help``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from core.app import Tallybot

PLATFORMS = ("slack", "telegram")


def platform_cli(name: str) -> ModuleType | None:
    """``bots.<name>.cli`` (``add_parser`` + ``run``), or None when its SDK is not installed."""
    try:
        return import_module(f"bots.{name}.cli")
    except ImportError:
        return None


class Allowlist:
    """Ids of people and places allowed to use the bot; with both lists empty, everyone.

    ``match="any"``: a listed person may use the bot anywhere and a listed place is open to
    everyone in it (Telegram's users / chats). ``match="all"``: every list that is set must
    list the sender (Slack's teams / users).
    """

    def __init__(
        self,
        people: Iterable[str],
        places: Iterable[str],
        *,
        match: Literal["any", "all"] = "any",
    ) -> None:
        self.people = {p.strip() for p in people if p.strip()}
        self.places = {p.strip() for p in places if p.strip()}
        self.match = match

    @property
    def open(self) -> bool:
        return not self.people and not self.places

    def allows(self, person: object, place: object) -> bool:
        """Whether ``person`` in ``place`` may use the bot (ids compared as text)."""
        checks = [
            value is not None and str(value) in ids
            for ids, value in ((self.people, person), (self.places, place))
            if ids
        ]
        if not checks:
            return True
        return any(checks) if self.match == "any" else all(checks)


class Deliveries:
    """Once-only delivery for one ``source`` (e.g. ``slack:event``, ``telegram:<bot id>``)."""

    def __init__(self, bot: Tallybot, source: str) -> None:
        self._bot = bot
        self.source = source

    async def first(self, key: str) -> bool:
        """True the first time ``key`` arrives; False for a redelivery (across restarts)."""
        return await self._bot.channels.first_delivery(self.source, key)


class ApprovalRecords:
    """run id → the platform's record of its approval message (a JSON object), persisted."""

    def __init__(self, bot: Tallybot, prefix: str) -> None:
        self._bot = bot
        self._prefix = prefix

    def _key(self, run_id: str) -> str:
        return f"{self._prefix}:approval:{run_id}"

    async def remember(self, run_id: str, record: Mapping[str, Any]) -> None:
        """Keep where the buttons of ``run_id`` are (overwrites an earlier record)."""
        await self._bot.channels.put(self._key(run_id), json.dumps(record, ensure_ascii=False))

    async def peek(self, run_id: str) -> dict[str, Any] | None:
        """The record, left in place; None when there is none or it was claimed."""
        raw = await self._bot.channels.get(self._key(run_id))
        return json.loads(raw) if raw else None

    async def claim(self, run_id: str) -> dict[str, Any] | None:
        """The record, handed out once: a double tap or a tap racing the expiry sweep gets
        None the second time."""
        raw = await self._bot.channels.take(self._key(run_id))
        return json.loads(raw) if raw else None


async def thread_lang(bot: Tallybot, key: str | None) -> str | None:
    """The language the thread with channel key ``key`` was last answered in, if any."""
    return (await thread_context(bot, key))[0]


async def thread_context(bot: Tallybot, key: str | None) -> tuple[str | None, str | None]:
    """``(language, person)`` of the thread with channel key ``key``: the language it was last
    answered in and the platform's id of the person it is answering (its last writer, kept
    on the thread). An answer posted with no inbound event -- a run recovered after a crash
    -- binds its approval buttons to that person instead of to anyone (issue 10)."""
    from core.bills.books import actor_of  # not for ``tallybot --help`` (issue 12)

    thread = await bot.channels.thread(key) if key else None
    if thread is None:
        return None, None
    actor = actor_of(thread)
    person = actor.id.split(":", 1)[1] if actor and ":" in actor.id else None
    return thread.lang, person


class ApprovalTokens:
    """Single-use random tokens for approval buttons, bound to a person and a chat (issue 10).

    A button carries a token, never the run id: :meth:`issue` records who asked (the person
    whose message started the run, a channel-qualified id such as ``slack:U123``) and where
    (the chat the buttons are in). :meth:`check` lets only that person -- or an admin
    (``TALLYBOT_ADMINS``) -- answer, and only in that chat; :meth:`spend` makes it used.
    """

    def __init__(self, bot: Tallybot, prefix: str, admins: Iterable[str] = ()) -> None:
        self._bot = bot
        self._prefix = prefix
        self.admins = {a.strip() for a in admins if a.strip()}

    def _key(self, token: str) -> str:
        return f"{self._prefix}:approval-token:{token}"

    async def issue(self, run_id: str, requester: str | None, place: str) -> str:
        """A fresh token for the buttons of ``run_id`` in ``place``."""
        import secrets  # not for ``tallybot --help`` (issue 12)

        token = secrets.token_urlsafe(12)
        record = {"run_id": run_id, "requester": requester, "place": place}
        await self._bot.channels.put(self._key(token), json.dumps(record))
        return token

    async def check(self, token: str, actor: str, place: str) -> tuple[str | None, str]:
        """``(run_id, "ok")`` when ``actor`` may answer here, ``(run_id, "used")`` when the
        token was spent already (the caller says "already answered"); else ``(None, reason)``
        with reason ``unknown`` (forged) or ``not_yours`` (someone else, or another chat)."""
        raw = await self._bot.channels.get(self._key(token))
        if not raw:
            return None, "unknown"
        record = json.loads(raw)
        if str(record.get("place")) != str(place):
            return None, "not_yours"
        requester = record.get("requester")
        if requester is not None and actor != requester and actor not in self.admins:
            return None, "not_yours"
        return str(record["run_id"]), "used" if record.get("used") else "ok"

    async def spend(self, token: str) -> None:
        """Use the token up: later taps are told it was answered, and change nothing."""
        raw = await self._bot.channels.get(self._key(token))
        if raw:
            record = json.loads(raw) | {"used": True}
            await self._bot.channels.put(self._key(token), json.dumps(record))


class AnswerAnchors:
    """Where a run's answer is being written (a platform message id), kept until a restart:
    a run recovered after a crash goes on in that message instead of answering twice."""

    def __init__(self, bot: Tallybot, prefix: str) -> None:
        self._bot = bot
        self._prefix = prefix

    def _key(self, run_id: str, place: str) -> str:
        return f"{self._prefix}:answer:{place}:{run_id}"

    async def put(self, run_id: str, place: str, message: str) -> None:
        await self._bot.channels.put(self._key(run_id, place), message)

    async def get(self, run_id: str, place: str) -> str | None:
        return await self._bot.channels.get(self._key(run_id, place)) or None
