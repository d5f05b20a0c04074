"""Who may use the Slack app, and handling each delivery once.

* Allowlist (:class:`bots.channel.Allowlist`, ``match="all"``): ``SLACK_ALLOWED_TEAMS`` /
  ``SLACK_ALLOWED_USERS``; every list that is set must list the sender. A refused person is
  told so where they asked.
* Once: event ids, message timestamps and approval decisions are claimed through
  :class:`bots.channel.Deliveries` before anything runs, so Slack's retries
  (``X-Slack-Retry-Num``) and the ``app_mention`` + ``message`` pair one mention in a thread
  produces are answered once, across restarts.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Literal

from slack_sdk.web.async_client import AsyncWebClient

from bots.channel import Allowlist, Deliveries
from core.i18n import t

from .addressing import Place

if TYPE_CHECKING:
    from core.app import Tallybot
    from core.config import Settings

log = logging.getLogger(__name__)

DeliveryKind = Literal["event", "message", "decision"]


class Guard:
    """The allowlist and the once-only claims of one Slack app; counts into ``stats``."""

    def __init__(
        self, bot: Tallybot, settings: Settings, client: AsyncWebClient, stats: Counter[str]
    ) -> None:
        self.allowlist = Allowlist(
            settings.slack_allowed_users, settings.slack_allowed_teams, match="all"
        )
        self._deliveries = {
            kind: Deliveries(bot, f"slack:{kind}") for kind in ("event", "message", "decision")
        }
        self._client = client
        self._stats = stats

    def allowed(self, team: str | None, user: str | None) -> bool:
        """The optional allowlists: an empty list allows everyone."""
        return self.allowlist.allows(user, team)

    async def first_delivery(self, kind: DeliveryKind, key: str | None) -> bool:
        """False (and counted as a duplicate) when ``key`` of ``kind`` was handled before."""
        if not key:
            return True
        if await self._deliveries[kind].first(key):
            return True
        self._stats["duplicate"] += 1
        log.info("slack %s %s already handled; skipping", kind, key)
        return False

    async def refuse(self, place: Place, lang: str | None) -> None:
        """Tell a person who is not on the allowlist so, in the place they wrote."""
        self._stats["refused"] += 1
        await self._client.chat_postMessage(
            channel=place.channel, thread_ts=place.reply_ts, text=t("not_allowed", lang)
        )
