"""Books: the shop's ledger for one place, shared by every conversation held there.

A book key names the place (contract): ``console:<name>`` (default ``console:default``),
``slack:<team>:<channel>`` (every thread of a channel, or the DM with one person) and
``telegram:<chat_id>`` (every forum topic of a group). Bills, the price catalog and reports
belong to the book; a thread keeps its own history and its own current bill.

With ``TALLYBOT_BOOK_SCOPE=thread`` every thread is a book of its own (``thread:<thread id>``),
which is how bills behaved before books existed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from core.bills.model import Actor
from core.domain import Thread

BookScope = Literal["place", "thread"]
CONSOLE_DEFAULT = "console:default"
_ARCHIVED = "#archived:"


def live_key(thread_key: str) -> str:
    """The channel key without the suffix ``/new`` gives an archived thread."""
    return thread_key.split(_ARCHIVED, 1)[0]


def place_book(thread_key: str) -> str:
    """The book of the place a thread key points at.

    ``slack:T1:C1:1700.1`` -> ``slack:T1:C1``; ``telegram:42:7`` -> ``telegram:42``; every
    console thread -> ``console:default`` (``--book`` names another). An unknown shape is its
    own book.
    """
    key = live_key(thread_key)
    parts = key.split(":")
    if parts[0] == "slack" and len(parts) >= 3:
        return ":".join(parts[:3])
    if parts[0] == "telegram" and len(parts) >= 2:
        return ":".join(parts[:2])
    if parts[0] == "console":
        return CONSOLE_DEFAULT
    return key


def console_book(name: str) -> str:
    """``tallybot chat --book NAME`` -> ``console:NAME``; a full key is kept."""
    name = name.strip() or "default"
    return name if name.startswith("console:") else f"console:{name}"


def thread_book(thread_id: str) -> str:
    """The book of a thread under ``TALLYBOT_BOOK_SCOPE=thread``."""
    return f"thread:{thread_id}"


def book_for(
    thread_key: str, thread_id: str, scope: BookScope = "place", place: str | None = None
) -> str:
    """The book a new thread joins: its own, the place the adapter named, or its key's place."""
    if scope == "thread":
        return thread_book(thread_id)
    if place:
        return place
    return place_book(thread_key)


def chooser(thread_key: str, scope: BookScope, place: str | None) -> Callable[[str], str]:
    """``thread id -> book`` for a thread about to be created with ``thread_key``."""
    return lambda thread_id: book_for(thread_key, thread_id, scope, place)


# --- who is speaking ----------------------------------------------------------------------

ACTOR_KEY = "actor"
"""Thread metadata entry holding the last person who wrote in the thread."""


def actor_for(thread_key: str, user: str | None, name: str | None = None) -> Actor | None:
    """``slack:U123`` from a Slack thread key and the platform's user id; None without one."""
    if not user:
        return None
    platform = live_key(thread_key).split(":", 1)[0]
    who = user if user.startswith(f"{platform}:") else f"{platform}:{user}"
    return Actor(who[:200], (name or "").strip()[:200] or None)


def actor_of(thread: Thread) -> Actor | None:
    """The person whose message the thread is answering (see :func:`remember_actor`)."""
    data = thread.metadata.get(ACTOR_KEY)
    if not isinstance(data, dict) or not data.get("id"):
        return None
    return Actor(str(data["id"]), data.get("name") or None)


async def remember_actor(store: ThreadUpdates, thread: Thread, actor: Actor | None) -> None:
    """Keep ``actor`` on the thread, so commands and tool calls of this turn can record it."""
    if actor is None or actor_of(thread) == actor:
        return
    thread.metadata = {**thread.metadata, ACTOR_KEY: {"id": actor.id, "name": actor.name}}
    await store.update_thread(thread.id, metadata=thread.metadata)


class ThreadUpdates(Protocol):
    """The one store call :func:`remember_actor` needs."""

    async def update_thread(self, thread_id: str, **values: Any) -> None:
        """Set columns of a thread."""
        ...


def book_of_thread(thread: Thread) -> str:
    """A thread's book; a thread stored without one belongs to its key's place."""
    return thread.book or place_book(thread.key)
