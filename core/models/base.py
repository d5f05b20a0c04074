"""The model protocol: stream one turn (instructions + items + tools) into model events.

Input items are wire-neutral; each adapter maps them to its API (Responses input items or Chat
Completions messages). The history always comes from tallybot's store: adapters are stateless.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# --- input items --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image the person sent, as a ``data:`` URL (both APIs accept one inline)."""

    url: str


@dataclass(frozen=True, slots=True)
class UserText:
    text: str
    images: tuple[ImagePart, ...] = ()


@dataclass(frozen=True, slots=True)
class AssistantText:
    text: str


@dataclass(frozen=True, slots=True)
class FunctionCall:
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class FunctionOutput:
    call_id: str
    output: str


@dataclass(frozen=True, slots=True)
class Reasoning:
    """What the model thought before the calls that follow it, passed back within a run.

    ``text`` is the readable reasoning (Chat Completions ``reasoning_content``: DeepSeek,
    Qwen); ``items`` are the provider's own reasoning items (Responses ``reasoning`` with
    ``encrypted_content``), sent back verbatim.
    """

    text: str = ""
    items: tuple[dict[str, Any], ...] = ()


Item = UserText | AssistantText | FunctionCall | FunctionOutput | Reasoning


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    model: str
    instructions: str
    items: tuple[Item, ...]
    tools: tuple[ToolSpec, ...] = ()
    # TALLYBOT_REASONING_EFFORT ("minimal".."high"); None: the server's default.
    reasoning_effort: str | None = None


# --- output events ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelTextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ModelReasoningDelta:
    """A piece of the model's reasoning (never shown in the chat; kept on the run step)."""

    text: str


@dataclass(frozen=True, slots=True)
class ModelReasoningItem:
    """A finished Responses ``reasoning`` item (with ``encrypted_content``), to pass back."""

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelToolCall:
    """A complete function call (arguments fully streamed)."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


def usage_value(usage: Any, *names: str) -> int:
    """The first integer field of ``usage`` among ``names``; 0 when the server left it out."""
    for name in names:
        value = getattr(usage, name, None)
        if isinstance(value, int):
            return value
    return 0


@dataclass(frozen=True, slots=True)
class ModelDone:
    """The turn ended. Exactly one per successful turn, always last.

    ``incomplete`` names why the model stopped early (``max_output_tokens``, Chat ``length``):
    the text so far is all there is, and calls cut off mid-arguments were dropped.
    """

    usage: Usage = field(default_factory=Usage)
    incomplete: str | None = None


ModelEvent = ModelTextDelta | ModelReasoningDelta | ModelReasoningItem | ModelToolCall | ModelDone


@runtime_checkable
class Model(Protocol):
    """Streams one model turn.

    Implementations raise :class:`core.errors.ModelError` subclasses only (converted at one
    place per adapter), and must end a successful turn with :class:`ModelDone`; a stream that
    ends without it raises :class:`core.errors.BrokenStream`. Closing the iterator early
    (``aclose``) must close the underlying HTTP stream: that is how a run is cancelled.
    """

    name: str

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]: ...
