"""The model sees each tool's schema without validation-only keywords; calls are still
validated against the whole schema."""

from __future__ import annotations

import pytest

from core.errors import ToolArgumentsInvalid
from core.tools.base import ToolRegistry, model_schema
from tests.engine.helpers import EchoTool


def test_validation_only_keywords_are_not_sent_but_still_enforced() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            # A property that happens to be called "pattern" is data, not a keyword.
            "pattern": {"type": "string", "description": "kept"},
        },
        "required": ["name"],
    }
    shown = model_schema(schema)
    assert shown["properties"]["name"] == {"type": "string"}
    assert shown["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    assert shown["properties"]["pattern"] == {"type": "string", "description": "kept"}
    assert schema["properties"]["name"]["pattern"] == "^[a-z]+$"  # the original is untouched

    tool = EchoTool()
    tool.parameters = schema
    registry = ToolRegistry([tool])
    [spec] = registry.specs()
    assert "pattern" not in spec.parameters["properties"]["name"]
    with pytest.raises(ToolArgumentsInvalid):
        registry.parse(tool.name, '{"name": "TOO-LONG-AND-UPPER"}')
    assert registry.parse(tool.name, '{"name": "ok"}')[1] == {"name": "ok"}
