"""One growing answer in Slack: streamed natively, or posted and edited.

Text streams through Slack's chat streaming API (``chat.startStream`` / ``appendStream`` /
``stopStream`` via :meth:`AsyncWebClient.chat_stream`) in :class:`NativeStream`. Where Slack
refuses it (older workspaces, a DM's top level, which has no thread to stream into),
:class:`EditedMessage` posts the answer and edits it with ``chat.update``. Both are throttled:
Slack rate-limits these methods per channel, and a run can produce hundreds of small deltas a
second.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from bots.render import Throttle, split_text

from .addressing import Place
from .mrkdwn import to_mrkdwn

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 3900  # chat.postMessage/update text: Slack truncates display past ~4000 chars
STREAM_LIMIT = 12_000  # markdown_text per streamed message, Slack's documented limit


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
        # Called with the ts of the first message posted (the answer's anchor, issue 10).
        self.anchor: Callable[[str], Awaitable[None]] | None = None

    def resume(self, ts: str) -> None:
        """Write into the message ``ts`` (posted before a restart) instead of a new one."""
        self._sent = [(ts, "")]

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
                if i == 0 and self.anchor is not None:
                    await self.anchor(str(resp["ts"]))
        self._throttle.mark()

    async def close(self) -> None:
        await self.flush()
