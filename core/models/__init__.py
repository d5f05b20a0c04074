"""Model layer: one :class:`~core.models.base.Model` protocol, two wire adapters, test doubles."""

from core.models.base import (
    AssistantText,
    FunctionCall,
    FunctionOutput,
    Item,
    Model,
    ModelDone,
    ModelEvent,
    ModelRequest,
    ModelTextDelta,
    ModelToolCall,
    ToolSpec,
    Usage,
    UserText,
)

__all__ = [
    "AssistantText",
    "FunctionCall",
    "FunctionOutput",
    "Item",
    "Model",
    "ModelDone",
    "ModelEvent",
    "ModelRequest",
    "ModelTextDelta",
    "ModelToolCall",
    "ToolSpec",
    "Usage",
    "UserText",
]
