"""The adapter as the Slack handlers see it: what :mod:`.message`, :mod:`.command` and
:mod:`.approval` may use.

Handlers depend on this protocol, not on :class:`bots.slack.adapter.SlackAdapter`, so the
adapter imports every handler without the handlers importing it back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections import Counter

    from slack_sdk.web.async_client import AsyncWebClient

    from bots.channel import ApprovalRecords, ApprovalTokens
    from core.app import Tallybot
    from core.config import Settings
    from core.events import Event

    from .addressing import Place
    from .guard import Guard
    from .responder import Responder


class Host(Protocol):
    """The shared state of one Slack app: facade, Web API client, guard, approval records."""

    bot: Tallybot
    settings: Settings
    client: AsyncWebClient
    stats: Counter[str]  # received / duplicate / refused / handled / failed
    guard: Guard
    approvals: ApprovalRecords
    tokens: ApprovalTokens

    async def locale(self, user: str | None) -> str | None:
        """The person's Slack locale, or None when Slack won't say."""
        ...

    def display_name(self, user: str | None) -> str | None:
        """The person's display name once :meth:`locale` looked them up, else None."""
        ...

    def responder(
        self,
        place: Place,
        *,
        team: str | None,
        user: str | None,
        lang: str | None,
        message_ts: str | None = None,
        response_url: str | None = None,
    ) -> Responder:
        """A :class:`Responder` for one answer in ``place``."""
        ...

    async def answer(self, responder: Responder, events: AsyncIterator[Event]) -> None:
        """Render ``events`` through ``responder``; a failure is told to the person."""
        ...
