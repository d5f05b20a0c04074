"""The assistant spec: name, instructions, model and tools, read from a TOML file.

The built-in spec is ``core/assistant.toml``; ``TALLYBOT_ASSISTANT`` points at another file
(``examples/assistant.toml`` is a commented copy). Files are meant to be versioned in git.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError
from core.tools.registry import TOOL_NAMES

BUILTIN = Path(__file__).with_name("assistant.toml")
KNOWN_TOOLS = TOOL_NAMES  # the one list lives in core.tools.registry


@dataclass(frozen=True, slots=True)
class AssistantSpec:
    name: str
    instructions: str
    tools: tuple[str, ...] = field(default_factory=tuple)
    model: str | None = None  # overrides TALLYBOT_MODEL when set
    version: int = 1

    def with_note(self, note: str) -> AssistantSpec:
        """This spec with ``note`` appended to its instructions (e.g. why a tool is missing)."""
        return dataclasses.replace(self, instructions=self.instructions.rstrip() + "\n\n" + note)


def load_assistant(path: Path | None = None) -> AssistantSpec:
    """Read and validate an assistant file (the built-in one when ``path`` is None)."""
    source = Path(path) if path else BUILTIN
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"assistant file not found: {source}") from exc
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"assistant file {source} is not valid TOML: {exc}") from exc
    instructions = data.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
        raise ConfigError(f"assistant file {source}: `instructions` must be a non-empty string")
    tools = data.get("tools", sorted(KNOWN_TOOLS))
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise ConfigError(f"assistant file {source}: `tools` must be a list of names")
    unknown = sorted(set(tools) - KNOWN_TOOLS)
    if unknown:
        raise ConfigError(
            f"assistant file {source}: unknown tools {unknown}; known: {sorted(KNOWN_TOOLS)}"
        )
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"assistant file {source}: `model` must be a string")
    return AssistantSpec(
        name=str(data.get("name", "tallybot")),
        instructions=instructions.strip(),
        tools=tuple(tools),
        model=model or None,
        version=int(data.get("version", 1)),
    )
