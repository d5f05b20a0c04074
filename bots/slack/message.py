"""The handlers for messages: mentions, DMs, thread replies (with files), and the start of an
assistant panel thread.

Each maps the event to a place and thread key, applies the guard, downloads shared files and
streams ``Tallybot.handle`` through a :class:`Responder`. Command words are turned into
``/commands`` here (:func:`as_command`); the facade recognises them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from core.app import Incoming
from core.i18n import lang_from_locale

from .addressing import (
    Place,
    as_command,
    pick_lang,
    place_for_message,
    strip_mentions,
    thread_key,
)
from .blocks import SUGGESTED_PROMPTS, label
from .client import api_base_url
from .files import DownloadError, SharedFile, download

if TYPE_CHECKING:
    from .host import Host
    from .responder import Responder

log = logging.getLogger(__name__)

_PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")


async def handle_message(
    host: Host, body: dict[str, Any], bot_user_id: str | None, *, mention: bool
) -> None:
    """An ``app_mention`` or ``message`` event: answer it when it is for tallybot."""
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
        if await host.bot.channels.thread(place.key) is None:
            return
    if not await host.guard.first_delivery("event", body.get("event_id")):
        return
    if not await host.guard.first_delivery("message", f"{team}:{place.channel}:{event.get('ts')}"):
        return
    user = str(event["user"])
    text = strip_mentions(str(event.get("text") or ""), bot_user_id)
    lang = pick_lang(text, await host.locale(user))
    if not host.guard.allowed(team, user):
        await host.guard.refuse(place, lang)
        return
    responder = host.responder(
        place, team=team, user=user, lang=lang, message_ts=str(event.get("ts"))
    )
    files = await _download_files(host, event.get("files") or (), responder)
    if not text and not files:
        return
    text = as_command(text, words_allowed=place.is_dm)
    if place.in_assistant_thread and text and await host.bot.channels.thread(place.key) is None:
        await _set_title(host, place, text)
    host.stats["handled"] += 1
    await host.answer(
        responder,
        host.bot.handle(
            place.key, text, files=files, lang=lang, user=user, user_name=host.display_name(user)
        ),
    )


async def _download_files(
    host: Host, raw_files: Sequence[dict[str, Any]], responder: Responder
) -> list[Incoming]:
    incoming: list[Incoming] = []
    for raw in raw_files:
        shared = SharedFile.from_event(raw)
        if shared is None:
            continue
        try:
            data = await download(
                shared,
                token=host.settings.slack_bot_token or "",
                api_base_url=api_base_url(host.settings),
                max_bytes=host.settings.file_max_bytes,
            )
        except DownloadError as exc:
            await responder.post(
                ":warning: "
                + label("download_failed", responder.lang, name=shared.name, reason=exc.reason)
            )
            continue
        incoming.append(Incoming(shared.name, data=data))
    return incoming


async def _set_title(host: Host, place: Place, text: str) -> None:
    title = text.strip().splitlines()[0][:60] if text.strip() else ""
    if not title:
        return
    try:
        await host.client.assistant_threads_setTitle(
            channel_id=place.channel, thread_ts=place.reply_ts or "", title=title
        )
    except SlackApiError as exc:
        log.debug("assistant.threads.setTitle failed: %s", exc)


async def handle_assistant_thread_started(host: Host, body: dict[str, Any]) -> None:
    """The assistant panel opened a thread: offer the suggested prompts."""
    if not await host.guard.first_delivery("event", body.get("event_id")):
        return
    thread: dict[str, Any] = body["event"]["assistant_thread"]
    user = thread.get("user_id")
    team = str(body.get("team_id") or (thread.get("context") or {}).get("team_id") or "")
    channel, thread_ts = str(thread["channel_id"]), str(thread["thread_ts"])
    lang = lang_from_locale(await host.locale(user)) or "en"
    if not host.guard.allowed(team, user):
        await host.guard.refuse(
            Place(thread_key(team, channel, thread_ts), channel, thread_ts, True), lang
        )
        return
    host.stats["handled"] += 1
    await host.client.assistant_threads_setSuggestedPrompts(
        channel_id=channel, thread_ts=thread_ts, prompts=SUGGESTED_PROMPTS[lang]
    )
