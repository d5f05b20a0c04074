"""Which models think and which see: name rules for the features a request may ask for.

The Responses API rejects ``include: ["reasoning.encrypted_content"]`` and ``reasoning`` for
models that do not reason, and image parts for models that cannot see, so tallybot asks only
where the model name says it can. The rules are prefixes of public model names; an unknown
model gets neither (a person can force images with ``TALLYBOT_VISION=on``).
"""

from __future__ import annotations

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5", "gpt-oss", "codex")
_VISION_PREFIXES = (
    "gpt-4o",
    "gpt-4.1",
    "gpt-4-turbo",
    "gpt-5",
    "o1",
    "o3",
    "o4",
    "qwen-vl",
    "qwen2-vl",
    "qwen2.5-vl",
    "qwen3-vl",
    "qwen-omni",
    "qvq",
    "llava",
    "llama3.2-vision",
    "gemma3",
    "minicpm-v",
    "glm-4v",
    "claude",
    "gemini",
)


def _base(model: str) -> str:
    # "openai/gpt-5" (routers) or a path: the last segment names the model.
    return model.lower().rsplit("/", 1)[-1]


def is_reasoning_model(model: str) -> bool:
    """True for OpenAI reasoning models (o-series, gpt-5, gpt-oss)."""
    base = _base(model)
    return base.startswith(_REASONING_PREFIXES) and not base.startswith("gpt-5-chat")


def sees_images(model: str) -> bool:
    """True for models known to accept image input."""
    name = model.lower()
    return any(prefix in name for prefix in _VISION_PREFIXES)
