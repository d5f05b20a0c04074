"""The facade every channel uses: :class:`Tallybot`.

A channel adapter only translates. It calls, for each inbound message::

    async for event in bot.handle(key, text, files=[Incoming(name, data)], lang=lang):
        ...  # render TextDelta / Reply / FileProduced / ApprovalRequired / RunFinished

``key`` is the channel key of the conversation (``console:<name>``,
``slack:<team>:<channel>:<thread_ts>``, ``telegram:<chat_id>:<topic_id or 0>``); the thread is
created on first use. Model-free commands (``/bill /add /show /undo /export /new /steps /stop
/help``) are recognised here, so every channel gets them by passing the text through.

Approval buttons call :meth:`Tallybot.submit_tool_outputs`, which streams the rest of the run.
Expiry: :meth:`Tallybot.expire_due` (run periodically by :meth:`Tallybot.start_background`) moves
overdue ``requires_action`` runs to ``expired`` and calls the registered expiry listeners, so an
adapter can replace its buttons with "expired".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Incoming:
    """A file a person sent: bytes from a platform download, or a local path (console)."""

    name: str
    data: bytes | None = None
    path: Path | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError("Incoming file has neither data nor path")
        return Path(self.path).read_bytes()
