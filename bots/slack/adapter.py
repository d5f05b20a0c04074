"""The Slack channel: a slack-bolt :class:`AsyncApp` whose listeners only translate.

Every listener acks at once (bolt acks events itself; commands and buttons call ``ack()``
first) and hands the slow part to a tracked task. Each Slack delivery is handled at most once,
across restarts: event ids, message timestamps and approval decisions are recorded with
``store.mark_processed`` before anything runs, so Slack's retries (``X-Slack-Retry-Num``) and
the ``app_mention`` + ``message`` pair one mention in a thread produces are answered once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.app import Incoming, Tallybot
from core.config import Settings
from core.domain import Run, RunStatus
from core.events import ApprovalRequired, Event, Reply
from core.i18n import lang_from_locale, t

from .addressing import (
    SLASH_COMMAND,
    Place,
    as_command,
    is_dm_channel,
    pick_lang,
    place_for_message,
    place_for_slash,
    slash_text,
    strip_mentions,
    thread_key,
)
from .blocks import APPROVE_ACTION, DENY_ACTION, SUGGESTED_PROMPTS, label, resolved_blocks
from .client import api_base_url, make_client
from .files import DownloadError, SharedFile, download
from .responder import Clock, Responder

log = logging.getLogger(__name__)

_PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")
_APPROVAL_KV = "slack:approval:"


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
    ) -> None:
        self.bot = bot
        self.settings = settings
        self.client = client or make_client(settings)
        self.app = AsyncApp(
            client=self.client,
            # Socket Mode needs no signing secret; HTTP mode refuses to start without one.
            signing_secret=settings.slack_signing_secret or "",
            process_before_response=False,
            logger=logging.getLogger("bots.slack.bolt"),
        )
        self._stream = stream
        self._clock = clock
        self._stream_interval = stream_interval
        self._edit_interval = edit_interval
        self._tasks: set[asyncio.Task[None]] = set()
        self._locales: dict[str, str | None] = {}
        self.stats: Counter[str] = Counter()  # received / duplicate / refused / handled
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
        task = asyncio.create_task(self._guard(work, name), name=f"slack-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except Exception:  # one bad delivery must not take the app down
            self.stats["failed"] += 1
            log.exception("slack %s handler failed", name)

    async def idle(self) -> None:
        """Wait until every delivery received so far is fully handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop in-flight work (a restart resumes runs from the store)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def allowed(self, team: str | None, user: str | None) -> bool:
        """The optional allowlists: an empty list allows everyone."""
        teams, users = self.settings.slack_allowed_teams, self.settings.slack_allowed_users
        if teams and team not in teams:
            return False
        return not (users and user not in users)

    async def _first_delivery(self, kind: str, key: str | None) -> bool:
        if not key:
            return True
        if await self.bot.store.mark_processed(f"slack:{kind}", key):
            return True
        self.stats["duplicate"] += 1
        log.info("slack %s %s already handled; skipping", kind, key)
        return False

    async def _locale(self, user: str | None) -> str | None:
        """The person's Slack locale (``users.info``), cached; None when Slack won't say."""
        if not user:
            return None
        if user not in self._locales:
            try:
                resp = await self.client.users_info(user=user, include_locale=True)
                self._locales[user] = (resp.get("user") or {}).get("locale")
            except SlackApiError as exc:  # users:read missing: the message language decides
                log.debug("users.info failed: %s", exc)
                self._locales[user] = None
        return self._locales[user]

    def _responder(
        self,
        place: Place,
        *,
        team: str | None,
        user: str | None,
        lang: str | None,
        message_ts: str | None = None,
        response_url: str | None = None,
    ) -> Responder:
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
        )

    async def _refuse(self, place: Place, lang: str | None) -> None:
        self.stats["refused"] += 1
        await self.client.chat_postMessage(
            channel=place.channel, thread_ts=place.reply_ts, text=t("not_allowed", lang)
        )

    # --- listeners (run right after the ack) ---------------------------------------------

    async def _on_mention(self, body: dict[str, Any], context: dict[str, Any]) -> None:
        self.stats["received"] += 1
        self._spawn(self._message(body, context.get("bot_user_id"), mention=True), "mention")

    async def _on_message(self, body: dict[str, Any], context: dict[str, Any]) -> None:
        self.stats["received"] += 1
        self._spawn(self._message(body, context.get("bot_user_id"), mention=False), "message")

    async def _on_assistant_thread_started(self, body: dict[str, Any]) -> None:
        self.stats["received"] += 1
        self._spawn(self._assistant_thread_started(body), "assistant_thread_started")

    async def _on_context_changed(self) -> None:
        """The panel moved to another channel; tallybot keeps no per-channel context, but the
        event must be acked (bolt does) or Slack retries it."""
        self.stats["received"] += 1

    async def _on_slash(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        self.stats["received"] += 1
        self._spawn(self._slash(body), "slash")

    async def _on_decision(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        self.stats["received"] += 1
        self._spawn(self._decision(body), "decision")

    # --- messages ------------------------------------------------------------------------

    async def _message(
        self, body: dict[str, Any], bot_user_id: str | None, *, mention: bool
    ) -> None:
        event: dict[str, Any] = body["event"]
        if event.get("bot_id") or event.get("subtype") not in _PERSON_SUBTYPES:
            return  # edits, deletions, joins and other bots' messages
        if not event.get("user"):
            return
        team = str(body.get("team_id") or event.get("team") or "")
        place = place_for_message(team, event)
        if not place.is_dm and not mention:
            # In channels tallybot answers mentions (app_mention) and then every reply in a
            # thread it is already part of; other channel chatter is not for it.
            if not event.get("thread_ts"):
                return
            if await self.bot.store.thread_by_key(place.key) is None:
                return
        if not await self._first_delivery("event", body.get("event_id")):
            return
        if not await self._first_delivery("message", f"{team}:{place.channel}:{event.get('ts')}"):
            return
        user = str(event["user"])
        text = strip_mentions(str(event.get("text") or ""), bot_user_id)
        lang = pick_lang(text, await self._locale(user))
        if not self.allowed(team, user):
            await self._refuse(place, lang)
            return
        responder = self._responder(
            place, team=team, user=user, lang=lang, message_ts=str(event.get("ts"))
        )
        files = await self._download_files(event.get("files") or (), responder)
        if not text and not files:
            return
        text = as_command(text, words_allowed=place.is_dm)
        if (
            place.in_assistant_thread
            and text
            and await self.bot.store.thread_by_key(place.key) is None
        ):
            await self._set_title(place, text)
        self.stats["handled"] += 1
        await self._answer(
            responder, self.bot.handle(place.key, text, files=files, lang=lang, user=user)
        )

    async def _answer(self, responder: Responder, events: AsyncIterator[Event]) -> None:
        try:
            await responder.run(events)
        except SlackApiError:
            raise  # Slack itself failed; nothing more can be said there
        except Exception as exc:
            log.exception("answering in %s failed", responder.place.key)
            message = getattr(exc, "localized", None)
            detail = message(responder.lang or "en") if callable(message) else type(exc).__name__
            await responder.post(":warning: " + t("run_failed", responder.lang, message=detail))

    async def _download_files(
        self, raw_files: Sequence[dict[str, Any]], responder: Responder
    ) -> list[Incoming]:
        incoming: list[Incoming] = []
        for raw in raw_files:
            shared = SharedFile.from_event(raw)
            if shared is None:
                continue
            try:
                data = await download(
                    shared,
                    token=self.settings.slack_bot_token or "",
                    api_base_url=api_base_url(self.settings),
                    max_bytes=self.settings.file_max_bytes,
                )
            except DownloadError as exc:
                await responder.post(
                    ":warning: "
                    + label("download_failed", responder.lang, name=shared.name, reason=exc.reason)
                )
                continue
            incoming.append(Incoming(shared.name, data=data))
        return incoming

    async def _set_title(self, place: Place, text: str) -> None:
        title = text.strip().splitlines()[0][:60] if text.strip() else ""
        if not title:
            return
        try:
            await self.client.assistant_threads_setTitle(
                channel_id=place.channel, thread_ts=place.reply_ts or "", title=title
            )
        except SlackApiError as exc:
            log.debug("assistant.threads.setTitle failed: %s", exc)

    # --- assistant panel -----------------------------------------------------------------

    async def _assistant_thread_started(self, body: dict[str, Any]) -> None:
        if not await self._first_delivery("event", body.get("event_id")):
            return
        thread: dict[str, Any] = body["event"]["assistant_thread"]
        user = thread.get("user_id")
        team = str(body.get("team_id") or (thread.get("context") or {}).get("team_id") or "")
        channel, thread_ts = str(thread["channel_id"]), str(thread["thread_ts"])
        lang = lang_from_locale(await self._locale(user)) or "en"
        if not self.allowed(team, user):
            await self._refuse(
                Place(thread_key(team, channel, thread_ts), channel, thread_ts, True), lang
            )
            return
        self.stats["handled"] += 1
        await self.client.assistant_threads_setSuggestedPrompts(
            channel_id=channel, thread_ts=thread_ts, prompts=SUGGESTED_PROMPTS[lang]
        )

    # --- /tally --------------------------------------------------------------------------

    async def _slash(self, body: dict[str, Any]) -> None:
        team, user, channel = (
            str(body.get("team_id")),
            str(body.get("user_id")),
            str(body["channel_id"]),
        )
        raw = str(body.get("text") or "")
        lang = pick_lang(raw, await self._locale(user))
        place = place_for_slash(team, channel)
        responder = self._responder(
            place, team=team, user=user, lang=lang, response_url=body.get("response_url")
        )
        if not self.allowed(team, user):
            self.stats["refused"] += 1
            await responder.post(t("not_allowed", lang))
            return
        self.stats["handled"] += 1
        await self._answer(
            responder, self.bot.handle(place.key, slash_text(raw), lang=lang, user=user)
        )

    # --- approvals -----------------------------------------------------------------------

    async def _remember_approval(self, event: ApprovalRequired, ts: str, place: Place) -> None:
        """Where the buttons are, so a click or the expiry sweep (maybe after a restart)
        can redraw them."""
        record = {
            "channel": place.channel,
            "ts": ts,
            "thread_ts": place.reply_ts,
            "is_dm": place.is_dm,
            "key": place.key,
            "summaries": [c.summary or c.name for c in event.calls],
        }
        await self.bot.store.kv_set(
            _APPROVAL_KV + event.run_id, json.dumps(record, ensure_ascii=False)
        )

    async def _approval(self, run_id: str) -> dict[str, Any] | None:
        raw = await self.bot.store.kv_get(_APPROVAL_KV + run_id)
        return json.loads(raw) if raw else None

    async def _decision(self, body: dict[str, Any]) -> None:
        action: dict[str, Any] = body["actions"][0]
        approve = action["action_id"] == APPROVE_ACTION
        run_id = str(action["value"])
        user = str(body["user"]["id"])
        team = str((body.get("team") or {}).get("id") or body["user"].get("team_id") or "")
        container: dict[str, Any] = body.get("container") or {}
        message: dict[str, Any] = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id"))
        message_ts = str(container.get("message_ts") or message.get("ts"))
        thread_ts = message.get("thread_ts") or container.get("thread_ts")
        record = await self._approval(run_id) or {}
        lang = await self._thread_lang(record.get("key")) or lang_from_locale(
            await self._locale(user)
        )
        place = Place(
            record.get("key") or thread_key(team, channel, thread_ts),
            channel,
            thread_ts,
            is_dm_channel(channel),
        )
        responder = self._responder(place, team=team, user=user, lang=lang)
        if not self.allowed(team, user):
            self.stats["refused"] += 1
            await self.client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, text=t("not_allowed", lang)
            )
            return
        if not await self._first_delivery("decision", run_id):
            await self.client.chat_postEphemeral(
                channel=channel,
                user=user,
                thread_ts=thread_ts,
                text=label("already_answered", lang),
            )
            return
        self.stats["handled"] += 1
        summaries = record.get("summaries") or [
            (b.get("text") or {}).get("text", "") for b in message.get("blocks", [])[1:2]
        ]
        events = self.bot.submit_tool_outputs(run_id, approve, lang=lang)
        first = await anext(events, None)
        if isinstance(first, Reply) and first.kind == "error":
            # Too late (expired, or answered elsewhere): the buttons go, the reason is posted.
            await self._redraw(channel, message_ts, summaries, "expired", lang)
            await responder.reply(first)
            return
        await self._redraw(
            channel, message_ts, summaries, "approved" if approve else "denied", lang, user
        )
        await self._answer(responder, _prepend(first, events))

    async def _thread_lang(self, key: str | None) -> str | None:
        if not key:
            return None
        thread = await self.bot.store.thread_by_key(key)
        return thread.lang if thread else None

    async def _redraw(
        self,
        channel: str,
        ts: str,
        summaries: Sequence[str],
        outcome: str,
        lang: str | None,
        user: str | None = None,
    ) -> None:
        await self.client.chat_update(
            channel=channel,
            ts=ts,
            text=t(outcome, lang),
            blocks=resolved_blocks(summaries, outcome, lang, user),
        )

    async def _on_expired(self, run: Run) -> None:
        """A run waited too long: its buttons become "expired"."""
        record = await self._approval(run.id)
        if record is None:
            return  # not a Slack run
        lang = await self._thread_lang(record.get("key"))
        # Expired, or withdrawn (cancelled) by a new message or /stop: either way, no buttons.
        outcome = "expired" if run.status == RunStatus.EXPIRED else "approval_withdrawn"
        await self._redraw(record["channel"], record["ts"], record["summaries"], outcome, lang)


async def _prepend(first: Event | None, rest: AsyncIterator[Event]) -> AsyncIterator[Event]:
    if first is not None:
        yield first
    async for event in rest:
        yield event
