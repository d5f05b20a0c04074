"""Engine events → Slack calls for one reply: status line, streamed text, files, approvals.

Text streams through Slack's chat streaming API (``chat.startStream`` / ``appendStream`` /
``stopStream`` via :meth:`AsyncWebClient.chat_stream`). Where Slack refuses it (older
workspaces, a DM's top level, which has no thread to stream into), the answer is posted and
then edited with ``chat.update``. Both are throttled: Slack rate-limits these methods per
channel, and a run can produce hundreds of small deltas a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bots.render import Throttle, split_text
from core.domain import RunStatus
from core.events import (
    ApprovalRequired,
    Event,
    FileProduced,
    Reply,
    RunFinished,
    TextDelta,
    ToolCallStarted,
)

from .addressing import Place
from .blocks import approval_blocks, label, tool_status
from .mrkdwn import escape, to_mrkdwn

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 3900  # chat.postMessage/update text: Slack truncates display past ~4000 chars
STREAM_LIMIT = 12_000  # markdown_text per streamed message, Slack's documented limit
WORKING_REACTION = "hourglass_flowing_sand"
Clock = Callable[[], float]
ApprovalHook = Callable[[ApprovalRequired, str, Place], Awaitable[None]]


class TextOut(Protocol):
    """One growing answer in Slack: ``append`` deltas, ``flush`` now, ``close`` at the end."""

    text: str

    async def append(self, text: str) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class StreamUnavailable(Exception):
    """Slack refused to stream; ``unsent`` is the text that still has to reach the person."""

    def __init__(self, unsent: str, cause: Exception) -> None:
        super().__init__(str(cause))
        self.unsent = unsent


class NativeStream:
    """Text streamed with ``chat.startStream`` / ``appendStream`` / ``stopStream``.

    A message holds at most :data:`STREAM_LIMIT` characters; longer answers continue in a new
    streamed message.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        place: Place,
        *,
        team: str | None,
        user: str | None,
        throttle: Throttle,
        limit: int = STREAM_LIMIT,
    ) -> None:
        if place.reply_ts is None:
            raise ValueError("Slack streams only into a thread")
        self._client = client
        self._place = place
        self._team = team
        self._user = user
        self._throttle = throttle
        self._limit = limit
        self._stream: AsyncChatStream | None = None
        self._in_message = 0
        self._pending = ""
        self.text = ""

    async def append(self, text: str) -> None:
        self._pending += text
        self.text += text
        if self._throttle.ready():
            await self.flush()

    async def flush(self) -> None:
        try:
            while self._pending:
                room = self._limit - self._in_message
                if room <= 0:
                    await self._stop()
                    continue
                piece = (
                    split_text(self._pending, room)[0]
                    if len(self._pending) > room
                    else self._pending
                )
                if self._stream is None:
                    self._stream = await self._client.chat_stream(
                        channel=self._place.channel,
                        thread_ts=self._place.reply_ts or "",
                        recipient_team_id=self._team,
                        recipient_user_id=self._user,
                        buffer_size=1,  # this class decides when to send (the throttle)
                    )
                await self._stream.append(markdown_text=piece)
                self._pending = self._pending[len(piece) :]
                self._in_message += len(piece)
        except (SlackApiError, SlackRequestError) as exc:
            raise StreamUnavailable(self._pending, exc) from exc
        finally:
            self._throttle.mark()

    async def _stop(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
        self._stream = None
        self._in_message = 0

    async def close(self) -> None:
        await self.flush()
        try:
            await self._stop()
        except (SlackApiError, SlackRequestError) as exc:
            # The text already arrived; a stream Slack closed on its own is not worth a retry.
            log.warning("chat.stopStream failed: %s", exc)


class EditedMessage:
    """Text posted with ``chat.postMessage`` and grown with throttled ``chat.update`` edits.

    Long answers are split to :data:`MESSAGE_LIMIT` into several messages; every message is
    converted to mrkdwn because this path does not render Markdown.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        place: Place,
        *,
        throttle: Throttle,
        limit: int = MESSAGE_LIMIT,
    ) -> None:
        self._client = client
        self._place = place
        self._throttle = throttle
        self._limit = limit
        self._sent: list[tuple[str, str]] = []  # (ts, text as last sent)
        self.text = ""

    async def append(self, text: str) -> None:
        self.text += text
        if self._throttle.ready():
            await self.flush()

    async def flush(self) -> None:
        if not self.text.strip():
            return
        for i, chunk in enumerate(split_text(self.text, self._limit)):
            body = to_mrkdwn(chunk)
            if i < len(self._sent):
                ts, sent = self._sent[i]
                if sent != body:
                    await self._client.chat_update(channel=self._place.channel, ts=ts, text=body)
                    self._sent[i] = (ts, body)
            else:
                resp = await self._client.chat_postMessage(
                    channel=self._place.channel, thread_ts=self._place.reply_ts, text=body
                )
                self._sent.append((str(resp["ts"]), body))
        self._throttle.mark()

    async def close(self) -> None:
        await self.flush()


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
    ) -> None:
        self.client = client
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
        finally:
            await self.end()

    # --- events --------------------------------------------------------------------------

    async def render(self, event: Event) -> None:
        """Translate one engine event into Slack calls."""
        match event:
            case TextDelta(text=text):
                await self._write(text)
            case ToolCallStarted(name=name):
                await self._flush_text()
                if self._status_shown:
                    await self._set_status(tool_status(name, self.lang))
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
                    await self._write(("\n\n" if streamed else "") + text)
                elif not streamed and text:
                    await self._write(text)
            case Reply():
                await self._close_text()
                await self.reply(event)
            case _:
                pass  # StatusChanged, ToolCallFinished: nothing to show

    async def _write(self, text: str) -> None:
        if self._out is None:
            self._out = self._new_out()
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
        blocks = approval_blocks(event.run_id, summaries, event.expires_at, self.lang)
        fallback = " / ".join(summaries)
        ts = await self.post(fallback[:MESSAGE_LIMIT], blocks=blocks)
        if ts and self.on_approval is not None:
            await self.on_approval(event, ts, self.place)
