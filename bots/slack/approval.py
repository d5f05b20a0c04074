"""Approve / deny buttons: where they are, a click that resumes the waiting run, and the
expiry listener that redraws them as "expired" or "withdrawn".

Where each approval message lives is persisted (:class:`bots.channel.ApprovalRecords`), so a
click or the expiry sweep still finds it after a restart. A run is decided once: the decision
is a once-only delivery (:meth:`Guard.first_delivery`), so a double click, or two people
clicking, answers the run once and tells the second click it was already answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from bots.channel import thread_lang
from core.domain import Run, RunStatus
from core.events import ApprovalRequired, Event, Reply
from core.i18n import lang_from_locale, t

from .addressing import Place, is_dm_channel, thread_key
from .blocks import APPROVE_ACTION, label, resolved_blocks

if TYPE_CHECKING:
    from .host import Host


async def remember(host: Host, event: ApprovalRequired, ts: str, place: Place) -> None:
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
    await host.approvals.remember(event.run_id, record)


async def handle_decision(host: Host, body: dict[str, Any]) -> None:
    """A click on approve or deny (already acked)."""
    action: dict[str, Any] = body["actions"][0]
    approve = action["action_id"] == APPROVE_ACTION
    token = str(action["value"])
    user = str(body["user"]["id"])
    team = str((body.get("team") or {}).get("id") or body["user"].get("team_id") or "")
    container: dict[str, Any] = body.get("container") or {}
    message: dict[str, Any] = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id"))
    message_ts = str(container.get("message_ts") or message.get("ts"))
    thread_ts = message.get("thread_ts") or container.get("thread_ts")
    # The button carries a token bound to the requester and this chat (issue 10).
    run_id, why = await host.tokens.check(token, f"slack:{user}", channel)
    if run_id is None:
        lang = lang_from_locale(await host.locale(user))
        text = (
            t("not_your_approval", lang) if why == "not_yours" else label("already_answered", lang)
        )
        host.stats["refused"] += 1
        await host.client.chat_postEphemeral(
            channel=channel, user=user, thread_ts=thread_ts, text=text
        )
        return
    record = await host.approvals.peek(run_id) or {}
    lang = await thread_lang(host.bot, record.get("key")) or lang_from_locale(
        await host.locale(user)
    )
    place = Place(
        record.get("key") or thread_key(team, channel, thread_ts),
        channel,
        thread_ts,
        is_dm_channel(channel),
    )
    responder = host.responder(place, team=team, user=user, lang=lang)
    if not host.guard.allowed(team, user):
        host.stats["refused"] += 1
        await host.client.chat_postEphemeral(
            channel=channel, user=user, thread_ts=thread_ts, text=t("not_allowed", lang)
        )
        return
    if not await host.guard.first_delivery("decision", run_id):
        await host.client.chat_postEphemeral(
            channel=channel,
            user=user,
            thread_ts=thread_ts,
            text=label("already_answered", lang),
        )
        return
    await host.tokens.spend(token)
    host.stats["handled"] += 1
    summaries = record.get("summaries") or [
        (b.get("text") or {}).get("text", "") for b in message.get("blocks", [])[1:2]
    ]
    events = host.bot.submit_tool_outputs(run_id, approve, lang=lang)
    first = await anext(events, None)
    if isinstance(first, Reply) and first.kind == "error":
        # Too late (expired, or answered elsewhere): the buttons go, the reason is posted.
        await _redraw(host, channel, message_ts, summaries, "expired", lang)
        await responder.reply(first)
        return
    await _redraw(
        host, channel, message_ts, summaries, "approved" if approve else "denied", lang, user
    )
    await host.answer(responder, _prepend(first, events))


async def _redraw(
    host: Host,
    channel: str,
    ts: str,
    summaries: Sequence[str],
    outcome: str,
    lang: str | None,
    user: str | None = None,
) -> None:
    await host.client.chat_update(
        channel=channel,
        ts=ts,
        text=t(outcome, lang),
        blocks=resolved_blocks(summaries, outcome, lang, user),
    )


async def on_expired(host: Host, run: Run) -> None:
    """A run waited too long (or was withdrawn): its buttons become "expired"."""
    record = await host.approvals.peek(run.id)
    if record is None:
        return  # not a Slack run
    lang = await thread_lang(host.bot, record.get("key"))
    # Expired, or withdrawn (cancelled) by a new message or /stop: either way, no buttons.
    outcome = "expired" if run.status == RunStatus.EXPIRED else "approval_withdrawn"
    await _redraw(host, record["channel"], record["ts"], record["summaries"], outcome, lang)


async def _prepend(first: Event | None, rest: AsyncIterator[Event]) -> AsyncIterator[Event]:
    if first is not None:
        yield first
    async for event in rest:
        yield event
