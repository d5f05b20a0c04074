"""A turn's reasoning: collected while the model streams, kept as a run-step detail.

Reasoning is never shown in the chat. It is stored on the first step of the turn (``details``)
so ``tallybot runs show`` can print it, and :func:`core.prompt.run_items` passes it back to
the model within the same run (DeepSeek thinking mode needs it with tool calls; the Responses
API needs its encrypted reasoning items when ``store=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.models.base import ModelReasoningDelta, ModelReasoningItem, Reasoning

REASONING_LIMIT = 100_000  # characters of readable reasoning kept per step


@dataclass(slots=True)
class TurnReasoning:
    """Reasoning text and provider items of one model turn."""

    parts: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event: ModelReasoningDelta | ModelReasoningItem) -> bool:
        """Keep ``event``; True the first time anything arrives (the moment to say "thinking")."""
        first = not self.parts and not self.items
        if isinstance(event, ModelReasoningDelta):
            self.parts.append(event.text)
        else:
            self.items.append(event.data)
        return first

    def details(self) -> dict[str, Any]:
        """The step detail: ``{"reasoning": text, "reasoning_items": [...]}`` (empty if none)."""
        out: dict[str, Any] = {}
        text = "".join(self.parts)
        if text:
            out["reasoning"] = text[:REASONING_LIMIT]
        if self.items:
            out["reasoning_items"] = self.items
        return out


def reasoning_item(details: dict[str, Any]) -> Reasoning | None:
    """A step's stored reasoning as the model item that passes it back (None if none)."""
    text = details.get("reasoning") or ""
    items = tuple(details.get("reasoning_items") or ())
    if not text and not items:
        return None
    return Reasoning(text=text, items=items)
