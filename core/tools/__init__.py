"""Model-facing tools. Each is an object with a name, a JSON schema and an async ``run``."""

from core.tools.base import Tool, ToolContext, ToolRegistry, ToolResult

__all__ = ["Tool", "ToolContext", "ToolRegistry", "ToolResult"]
