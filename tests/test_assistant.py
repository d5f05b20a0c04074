"""The assistant file: the built-in one, the example, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.assistant import KNOWN_TOOLS, AssistantSpec, load_assistant
from core.errors import ConfigError
from core.models.scripted import ScriptedModel, text
from tests.engine.helpers import Harness

ROOT = Path(__file__).resolve().parents[1]


def test_builtin_and_example_load() -> None:
    builtin = load_assistant()
    example = load_assistant(ROOT / "examples" / "assistant.toml")
    assert set(builtin.tools) == KNOWN_TOOLS and "save_bill" in builtin.instructions
    assert example.tools == builtin.tools and example.model is None


@pytest.mark.parametrize(
    "content,fragment",
    [
        ("instructions = [", "not valid TOML"),
        ('name = "x"', "`instructions` must be a non-empty string"),
        ('instructions = "hi"\ntools = ["shell"]', "unknown tools ['shell']"),
        ('instructions = "hi"\ntools = "save_bill"', "`tools` must be a list"),
        ('instructions = "hi"\nmodel = 5', "`model` must be a string"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "a.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=None) as err:
        load_assistant(path)
    assert fragment in err.value.message and str(path) in err.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="assistant file not found"):
        load_assistant(tmp_path / "nope.toml")


async def test_assistant_model_overrides_setting(settings, store) -> None:
    model = ScriptedModel([text("ok")])
    h = Harness(settings, store, model)
    h.engine.assistant = AssistantSpec(name="a", instructions="be brief", model="qwen2.5:7b")
    events = await h.send("hi")
    assert model.requests[0].model == "qwen2.5:7b"
    assert model.requests[0].instructions.startswith("be brief")
    assert (await store.get_run(events[-1].run_id)).model == "qwen2.5:7b"
