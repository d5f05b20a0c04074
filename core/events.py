"""Stream events: what the engine (and the model-free commands) yield to every channel.

Channels consume them the same way: ``match event: case TextDelta(): ...``. Every event is a
small frozen dataclass; :data:`Event` is their union.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.domain import RunStatus


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's answer. ``step_id`` and ``step_created_at`` name the
    ``message_creation`` step it streams into, which is stored only with the whole answer
    (issue 12): a stream that announces steps (the Assistants API's) takes them from here."""

    run_id: str
    text: str
    step_id: str = ""
    step_created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatusChanged:
    run_id: str
    status: RunStatus


@dataclass(frozen=True, slots=True)
class Thinking:
    """The model reasons before it says anything: channels show a "thinking…" status.

    Sent once per turn, when reasoning starts streaming and no text has yet; the reasoning
    itself never reaches a channel (it is kept on the run step).
    """

    run_id: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    run_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    run_id: str
    call_id: str
    name: str
    output: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class FileProduced:
    """A chart, table or export made during a run (or by /export). ``path`` is on local disk."""

    run_id: str | None
    path: str
    name: str
    mime: str

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")


@dataclass(frozen=True, slots=True)
class PendingCall:
    call_id: str
    name: str
    arguments: str
    summary: str  # what it will do, in the thread's language


@dataclass(frozen=True, slots=True)
class ApprovalRequired:
    """The run waits in ``requires_action``; answer with ``submit_tool_outputs``."""

    run_id: str
    thread_id: str
    calls: tuple[PendingCall, ...]
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunFinished:
    run_id: str
    status: RunStatus
    text: str
    last_error: dict[str, str] | None = None
    bills_changed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """A model-free answer: a command's result, a help text, a refusal, an error for a person.

    ``bill`` carries the Bill JSON when the reply is about one, so a channel can draw a table.
    """

    text: str
    kind: str = "info"  # "info" | "error" | "bill" | "help"
    bill: dict[str, Any] | None = None
    bills_changed: tuple[int, ...] = field(default=())


Event = (
    TextDelta
    | StatusChanged
    | Thinking
    | ToolCallStarted
    | ToolCallFinished
    | FileProduced
    | ApprovalRequired
    | RunFinished
    | Reply
)
