"""The Slack channel: a slack-bolt :class:`AsyncApp` whose listeners only translate.

Every listener acks at once (bolt acks events itself; commands and buttons call ``ack()``
first) and hands the slow part to a tracked task. Handlers, one job per module:
:mod:`.guard` (allowlist + once-only delivery), :mod:`.message` (mentions, DMs, thread
replies, the assistant panel), :mod:`.command` (``/tally``) and :mod:`.approval` (buttons and
their expiry). They see this adapter as a :class:`bots.slack.host.Host`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.channel import AnswerAnchors, ApprovalRecords, ApprovalTokens, thread_context
from core import receipt
from core.app import Tallybot
from core.config import Settings
from core.domain import Run
from core.events import ApprovalRequired, Event
from core.i18n import t

from . import approval, command, message
from .addressing import SLASH_COMMAND, Place, is_dm_channel
from .blocks import APPROVE_ACTION, DENY_ACTION
from .client import make_client
from .guard import Guard
from .responder import Clock, Responder

log = logging.getLogger(__name__)


class SlackAdapter:
    """Slack events, commands and buttons → :class:`Tallybot`; its events → Slack calls.

    ``stream=False`` turns chat streaming off (edits only); ``clock`` and the intervals feed
    the throttles, so tests need not sleep.
    """

    def __init__(
        self,
        bot: Tallybot,
        settings: Settings,
        *,
        client: AsyncWebClient | None = None,
        stream: bool = True,
        clock: Clock = time.monotonic,
        stream_interval: float = 1.0,
        edit_interval: float = 1.5,
        process_before_response: bool = False,
    ) -> None:
        self.bot = bot
        self.settings = settings
        self.client = client or make_client(settings)
        self.app = AsyncApp(
            client=self.client,
            # Socket Mode needs no signing secret; HTTP mode refuses to start without one.
            signing_secret=settings.slack_signing_secret or "",
            # ``tallybot serve`` acks only once the message is stored (core.receipt): the
            # listeners then run before bolt answers; they only spawn the work anyway.
            process_before_response=process_before_response,
            logger=logging.getLogger("bots.slack.bolt"),
        )
        self._stream = stream
        self._clock = clock
        self._stream_interval = stream_interval
        self._edit_interval = edit_interval
        self._tasks: set[asyncio.Task[None]] = set()
        self._locales: dict[str, str | None] = {}
        self._names: dict[str, str | None] = {}  # display names, from the same users.info
        self.stats: Counter[str] = Counter()  # received / duplicate / refused / handled
        self.guard = Guard(bot, settings, self.client, self.stats)
        self.approvals = ApprovalRecords(bot, "slack")
        self.tokens = ApprovalTokens(bot, "slack", settings.admins)
        self.anchors = AnswerAnchors(bot, "slack")
        self._register()
        bot.on_expired(self._on_expired)

    # --- plumbing ------------------------------------------------------------------------

    def _register(self) -> None:
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.event("assistant_thread_started")(self._on_assistant_thread_started)
        self.app.event("assistant_thread_context_changed")(self._on_context_changed)
        self.app.command(SLASH_COMMAND)(self._on_slash)
        self.app.action(APPROVE_ACTION)(self._on_decision)
        self.app.action(DENY_ACTION)(self._on_decision)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._logged(work, name), name=f"slack-{name}")
        current = receipt.current()
        if current is not None:
            current.track(task)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self.bot.service is not None:  # cancelled by the service when shutdown runs late
            self.bot.service.track(task)

    async def _logged(self, work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except Exception:  # one bad delivery must not take the app down
            self.stats["failed"] += 1
            log.exception("slack %s handler failed", name)
            current = receipt.current()
            if current is not None:  # not stored: not acknowledged, so Slack retries
                await current.failed()

    async def idle(self) -> None:
        """Wait until every delivery received so far is fully handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop in-flight work (a restart resumes runs from the store)."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: a task may still wait out a Slack call in its cleanup
            await asyncio.wait(tasks, timeout=5.0)

    def allowed(self, team: str | None, user: str | None) -> bool:
        """The optional allowlists: an empty list allows everyone."""
        return self.guard.allowed(team, user)

    # --- what the handlers use (bots.slack.host.Host) ------------------------------------

    async def locale(self, user: str | None) -> str | None:
        """The person's Slack locale (``users.info``), cached; None when Slack won't say."""
        if not user:
            return None
        if user not in self._locales:
            try:
                resp = await self.client.users_info(user=user, include_locale=True)
                info = resp.get("user") or {}
                self._locales[user] = info.get("locale")
                profile = info.get("profile") or {}
                self._names[user] = (
                    profile.get("display_name") or info.get("real_name") or info.get("name")
                ) or None
            except SlackApiError as exc:  # users:read missing: the message language decides
                log.debug("users.info failed: %s", exc)
                self._locales[user] = None
        return self._locales[user]

    def display_name(self, user: str | None) -> str | None:
        """The person's Slack name as :meth:`locale` learnt it, None when Slack did not say."""
        return self._names.get(user) if user else None

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
        """A :class:`Responder` for one answer in ``place``, with this app's pacing."""
        return Responder(
            self.client,
            place,
            team=team,
            user=user,
            lang=lang,
            message_ts=message_ts,
            response_url=response_url,
            on_approval=self._remember_approval,
            stream=self._stream,
            clock=self._clock,
            stream_interval=self._stream_interval,
            edit_interval=self._edit_interval,
            tokens=self.tokens,
            anchors=self.anchors,
        )

    async def answer(self, responder: Responder, events: AsyncIterator[Event]) -> None:
        """Render ``events``; a failure other than Slack's own is told to the person."""
        try:
            await responder.run(events)
        except SlackApiError as exc:
            if self.bot.service is not None:
                method = str(getattr(exc.response, "api_url", "") or "").rsplit("/", 1)[-1]
                self.bot.service.metrics.platform_errors.labels("slack", method or "?").inc()
            raise  # Slack itself failed; nothing more can be said there
        except Exception as exc:
            log.exception("answering in %s failed", responder.place.key)
            message = getattr(exc, "localized", None)
            detail = message(responder.lang or "en") if callable(message) else type(exc).__name__
            await responder.post(":warning: " + t("run_failed", responder.lang, message=detail))

    async def deliver(self, key: str, events: AsyncIterator[Event]) -> None:
        """Post ``events`` into the conversation of thread key ``key`` with no inbound event
        to answer (a run recovered after a restart, a message picked up by another replica)."""
        _, team, channel, thread_ts = (key.split(":", 3) + ["", "", ""])[:4]
        place = Place(
            key, channel, None if thread_ts == "dm" else thread_ts, is_dm_channel(channel)
        )
        lang, person = await thread_context(self.bot, key)
        await self.answer(self.responder(place, team=team, user=person, lang=lang), events)

    async def _remember_approval(self, event: ApprovalRequired, ts: str, place: Place) -> None:
        await approval.remember(self, event, ts, place)

    async def _on_expired(self, run: Run) -> None:
        await approval.on_expired(self, run)

    # --- listeners (run right after the ack) ---------------------------------------------

    async def _on_mention(self, body: dict[str, Any], context: dict[str, Any]) -> None:
        self.stats["received"] += 1
        work = message.handle_message(self, body, context.get("bot_user_id"), mention=True)
        self._spawn(work, "mention")

    async def _on_message(self, body: dict[str, Any], context: dict[str, Any]) -> None:
        self.stats["received"] += 1
        work = message.handle_message(self, body, context.get("bot_user_id"), mention=False)
        self._spawn(work, "message")

    async def _on_assistant_thread_started(self, body: dict[str, Any]) -> None:
        self.stats["received"] += 1
        work = message.handle_assistant_thread_started(self, body)
        self._spawn(work, "assistant_thread_started")

    async def _on_context_changed(self) -> None:
        """The panel moved to another channel; tallybot keeps no per-channel context, but the
        event must be acked (bolt does) or Slack retries it."""
        self.stats["received"] += 1

    async def _on_slash(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        self.stats["received"] += 1
        self._spawn(command.handle_slash(self, body), "slash")

    async def _on_decision(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        self.stats["received"] += 1
        self._spawn(approval.handle_decision(self, body), "decision")
