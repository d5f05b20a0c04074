"""Engine events → Slack calls for one reply: status line, streamed text, files, approvals.

Text goes out through :mod:`.stream` (Slack's chat streaming, or a posted message edited as
it grows); a refused stream falls back to edits for the rest of the reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bots.channel import AnswerAnchors, ApprovalTokens
from bots.render import Throttle, split_text
from core.domain import RunStatus
from core.events import (
    ApprovalRequired,
    Event,
    FileProduced,
    Reply,
    RunFinished,
    TextDelta,
    Thinking,
    ToolCallStarted,
)

from .addressing import Place
from .blocks import approval_blocks, label, tool_status
from .mrkdwn import escape, to_mrkdwn
from .stream import MESSAGE_LIMIT, EditedMessage, NativeStream, StreamUnavailable, TextOut

log = logging.getLogger(__name__)

__all__ = ["MESSAGE_LIMIT", "ApprovalHook", "Clock", "Responder"]

WORKING_REACTION = "hourglass_flowing_sand"
Clock = Callable[[], float]
ApprovalHook = Callable[[ApprovalRequired, str, Place], Awaitable[None]]


class Responder:
    """Renders one stream of engine events into one Slack conversation place.

    ``begin`` shows that work started (assistant status line in assistant threads, a reaction
    on the person's message elsewhere); ``end`` removes it. Files are uploaded into the same
    thread; an approval becomes a Block Kit message, reported to ``on_approval``.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        place: Place,
        *,
        team: str | None,
        user: str | None,
        lang: str | None,
        message_ts: str | None = None,
        response_url: str | None = None,
        on_approval: ApprovalHook | None = None,
        stream: bool = True,
        clock: Clock = time.monotonic,
        stream_interval: float = 1.0,
        edit_interval: float = 1.5,
        tokens: ApprovalTokens | None = None,
        anchors: AnswerAnchors | None = None,
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.anchors = anchors
        self.place = place
        self.team = team
        self.user = user
        self.lang = lang
        self.message_ts = message_ts
        self.response_url = response_url
        self.on_approval = on_approval
        self._use_stream = stream and place.reply_ts is not None
        self._clock = clock
        self._stream_interval = stream_interval
        self._edit_interval = edit_interval
        self._out: TextOut | None = None
        self._status_shown = False
        self._reacted = False
        self.posted: list[str] = []  # ts of every message this responder posted

    # --- progress indicator --------------------------------------------------------------

    async def begin(self) -> None:
        """Show the status line (assistant threads) or a reaction on the person's message."""
        if self.place.in_assistant_thread and await self._set_status(label("thinking", self.lang)):
            return
        if self.message_ts:
            try:
                await self.client.reactions_add(
                    channel=self.place.channel, timestamp=self.message_ts, name=WORKING_REACTION
                )
                self._reacted = True
            except SlackApiError as exc:  # missing scope or already reacted: cosmetic only
                log.debug("reactions.add failed: %s", exc)

    async def _set_status(self, status: str) -> bool:
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=self.place.channel, thread_ts=self.place.reply_ts or "", status=status
            )
        except SlackApiError as exc:
            log.debug("assistant.threads.setStatus failed: %s", exc)
            return False
        self._status_shown = bool(status)
        return True

    async def end(self) -> None:
        """Finish the text and take the progress indicator away."""
        await self._close_text()
        if self._status_shown:
            await self._set_status("")
        if self._reacted:
            try:
                await self.client.reactions_remove(
                    channel=self.place.channel,
                    timestamp=self.message_ts or "",
                    name=WORKING_REACTION,
                )
            except SlackApiError as exc:
                log.debug("reactions.remove failed: %s", exc)
            self._reacted = False

    async def run(self, events: AsyncIterator[Event]) -> None:
        """``begin``, render every event, ``end`` — even when the stream fails."""
        await self.begin()
        try:
            async for event in events:
                await self.render(event)
        except asyncio.CancelledError:
            # The process is stopping: no more Slack calls (each may wait out a 30 s timeout,
            # and an error there would turn the cancel into a failure to report). The run
            # stays live and whoever adopts it answers.
            raise
        except BaseException:
            await self.end()
            raise
        await self.end()

    # --- events --------------------------------------------------------------------------

    async def render(self, event: Event) -> None:
        """Translate one engine event into Slack calls."""
        match event:
            case TextDelta(text=text, run_id=run_id):
                await self._write(text, run_id)
            case ToolCallStarted(name=name):
                await self._flush_text()
                if self._status_shown:
                    await self._set_status(tool_status(name, self.lang))
            case Thinking():
                # The model reasons before a word (issue 13): say so where status shows.
                if self._status_shown:
                    await self._set_status(label("reasoning", self.lang))
            case FileProduced():
                await self._flush_text()
                await self.upload(event)
            case ApprovalRequired():
                await self._close_text()
                await self._ask_approval(event)
            case RunFinished(status=status, text=text):
                # Completed runs already streamed their text; others end with a message
                # (failed, cancelled) that was never streamed.
                streamed = self._out is not None and bool(self._out.text.strip())
                if status != RunStatus.COMPLETED and text:
                    await self._write(("\n\n" if streamed else "") + text, event.run_id)
                elif not streamed and text:
                    await self._write(text, event.run_id)
                # The whole answer is out before the run counts as delivered (issue 10).
                await self._flush_text()
            case Reply():
                await self._close_text()
                await self.reply(event)
            case _:
                pass  # StatusChanged, ToolCallFinished: nothing to show

    async def _write(self, text: str, run_id: str | None = None) -> None:
        if self._out is None:
            self._out = self._new_out()
            anchors = self.anchors
            if run_id and anchors is not None and isinstance(self._out, EditedMessage):
                # Where this run's answer was being written before a restart: go on there
                # instead of posting the answer a second time.
                self._out.anchor = lambda ts: anchors.put(run_id, self.place.channel, ts)
                ts = await anchors.get(run_id, self.place.channel)
                if ts:
                    self._out.resume(ts)
        try:
            await self._out.append(text)
        except StreamUnavailable as exc:
            self._fall_back(exc)
            await self._out.append("")

    async def _flush_text(self) -> None:
        if self._out is None:
            return
        try:
            await self._out.flush()
        except StreamUnavailable as exc:
            self._fall_back(exc)
            await self._out.flush()

    async def _close_text(self) -> None:
        if self._out is None:
            return
        try:
            await self._out.close()
        except StreamUnavailable as exc:
            self._fall_back(exc)
            await self._out.close()
        self._out = None

    def _new_out(self) -> TextOut:
        if self._use_stream:
            return NativeStream(
                self.client,
                self.place,
                team=self.team,
                user=self.user,
                throttle=Throttle(self._stream_interval, self._clock),
            )
        return EditedMessage(
            self.client, self.place, throttle=Throttle(self._edit_interval, self._clock)
        )

    def _fall_back(self, exc: StreamUnavailable) -> None:
        log.info("chat streaming unavailable (%s); falling back to chat.update", exc)
        self._use_stream = False
        out = EditedMessage(
            self.client, self.place, throttle=Throttle(self._edit_interval, self._clock)
        )
        out.text = exc.unsent
        self._out = out

    # --- messages, files, approvals ------------------------------------------------------

    async def post(self, text: str, *, blocks: list[dict[str, Any]] | None = None) -> str | None:
        """Post one message in the place; ephemeral through ``response_url`` when the bot
        cannot post there (a slash command in a channel the bot is not in)."""
        try:
            resp = await self.client.chat_postMessage(
                channel=self.place.channel, thread_ts=self.place.reply_ts, text=text, blocks=blocks
            )
        except SlackApiError as exc:
            if self.response_url and exc.response.get("error") in (
                "not_in_channel",
                "channel_not_found",
            ):
                await AsyncWebhookClient(self.response_url).send(
                    text=text, blocks=blocks, response_type="ephemeral"
                )
                return None
            raise
        ts = str(resp["ts"])
        self.posted.append(ts)
        return ts

    async def reply(self, event: Reply) -> None:
        """A model-free answer: bills as monospace tables, errors marked, long text split."""
        if event.kind == "bill":
            for chunk in split_text(event.text, MESSAGE_LIMIT):
                await self.post(f"```\n{escape(chunk)}\n```")
            return
        prefix = ":warning: " if event.kind == "error" else ""
        for chunk in split_text(event.text, MESSAGE_LIMIT):
            await self.post(prefix + to_mrkdwn(chunk))

    async def upload(self, event: FileProduced) -> None:
        """Upload a chart or export into the same thread."""
        try:
            await self.client.files_upload_v2(
                channel=self.place.channel,
                thread_ts=self.place.reply_ts,
                file=event.path,
                filename=event.name,
                title=event.name,
            )
        except (SlackApiError, OSError) as exc:
            log.warning("upload of %s failed: %s", event.name, exc)
            await self.post(f":warning: {escape(event.name)}: {escape(str(exc))[:300]}")

    async def _ask_approval(self, event: ApprovalRequired) -> None:
        summaries = [c.summary or c.name for c in event.calls]
        value = event.run_id
        if self.tokens is not None:  # the buttons carry a single-use token, not the run id
            requester = f"slack:{self.user}" if self.user else None
            value = await self.tokens.issue(event.run_id, requester, self.place.channel)
        blocks = approval_blocks(value, summaries, event.expires_at, self.lang)
        fallback = " / ".join(summaries)
        ts = await self.post(fallback[:MESSAGE_LIMIT], blocks=blocks)
        if ts and self.on_approval is not None:
            await self.on_approval(event, ts, self.place)
