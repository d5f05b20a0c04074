"""The adapter as the handlers see it: what :mod:`.guard`, :mod:`.message`, :mod:`.approval`
and :mod:`.responder` may use.

Handlers depend on this protocol, not on :class:`bots.telegram.adapter.TelegramAdapter`, so the
adapter can import every handler without the handlers importing it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from telegram.ext import Application

    from bots.channel import Allowlist, ApprovalTokens, Deliveries
    from bots.render import Throttle
    from bots.telegram.records import ApprovalBook, Offset
    from core.app import Tallybot


class Host(Protocol):
    """The shared state of one Telegram bot: facade, application, guards and records."""

    tallybot: Tallybot
    application: Application  # type: ignore[type-arg]
    allowlist: Allowlist
    deliveries: Deliveries
    offset: Offset
    approvals: ApprovalBook
    tokens: ApprovalTokens
    download_limit: int | None
    # Flipped to False the first time the server refuses sendMessageDraft.
    drafts_supported: bool

    def throttle(self, chat_id: int) -> Throttle:
        """The edit pace of one chat, shared by every answer streaming in it."""
        ...
