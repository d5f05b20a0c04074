"""TALLYBOT_CONTEXT_TOKENS: fitting one request into a small model's window (issue 13).

Servers such as llama.cpp and Ollama default to 2,048-4,096-token windows and silently drop
the start of a prompt that does not fit (the instructions). When the window is known,
:class:`core.prompt.Prompt` fits instructions, tool schemas, file previews and history into
it: file previews shrink first, then the oldest exchanges go, then long tool outputs of the
current exchange are cut. The window is unknown by default (``None``): nothing is trimmed
beyond the character budgets.

Token counts are an estimate, not a tokenizer: one token per four ASCII characters and one
per other character (a CJK character is about one token in the Qwen and DeepSeek tokenizers,
so Chinese is not undercounted). That errs on the large side for English JSON, which is the
safe side here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.models.base import (
    AssistantText,
    FunctionCall,
    FunctionOutput,
    Item,
    Reasoning,
    ToolSpec,
    UserText,
)

IMAGE_TOKENS = 800  # a typical low-detail image input
PER_MESSAGE = 4  # role markers and separators a chat template adds per message
MIN_OUTPUT = 256


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``: ASCII characters / 4 + one per other character (rounded up)."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return -(-ascii_chars // 4) + (len(text) - ascii_chars)


def tools_tokens(tools: tuple[ToolSpec, ...]) -> int:
    """Tokens the tool schemas take in a request."""
    return sum(
        estimate_tokens(
            json.dumps(
                {"name": t.name, "description": t.description, "parameters": t.parameters},
                ensure_ascii=False,
            )
        )
        + PER_MESSAGE
        for t in tools
    )


def item_tokens(item: Item) -> int:
    """Tokens one history item takes."""
    match item:
        case UserText(text=text, images=images):
            return estimate_tokens(text) + IMAGE_TOKENS * len(images) + PER_MESSAGE
        case AssistantText(text=text):
            return estimate_tokens(text) + PER_MESSAGE
        case FunctionCall(name=name, arguments=args):
            return estimate_tokens(name + args) + PER_MESSAGE
        case FunctionOutput(output=out):
            return estimate_tokens(out) + PER_MESSAGE
        case Reasoning(text=text):
            return estimate_tokens(text)
    return 0


@dataclass(frozen=True, slots=True)
class Window:
    """A model's context window in tokens, with room kept for the answer."""

    tokens: int

    @property
    def output(self) -> int:
        """Tokens kept free for the model's answer: a quarter of the window, at least 256."""
        return max(MIN_OUTPUT, self.tokens // 4)

    @property
    def input(self) -> int:
        """Tokens the request may use."""
        return max(self.tokens - self.output, 0)


def cut_outputs(items: list[Item], budget: int) -> list[Item]:
    """The newest exchange cut to ``budget`` tokens by shortening its longest tool outputs."""
    total = sum(item_tokens(i) for i in items)
    out = list(items)
    while total > budget:
        index, longest = max(
            ((n, i) for n, i in enumerate(out) if isinstance(i, FunctionOutput)),
            key=lambda pair: len(pair[1].output),
            default=(-1, None),
        )
        if longest is None or len(longest.output) <= 400:
            break  # nothing left worth cutting: send it and let the server judge
        keep = len(longest.output) // 2  # halves each time: the loop ends
        dropped = len(longest.output) - keep
        shorter = FunctionOutput(
            longest.call_id, longest.output[:keep] + f"\n…[cut {dropped} characters to fit]"
        )
        total += item_tokens(shorter) - item_tokens(longest)
        out[index] = shorter
    return out
