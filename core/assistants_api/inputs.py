"""Request bodies read into tallybot's form: tools, file ids, metadata, message content.

Tools are kept in one form for both API versions: v1's ``retrieval`` is stored as
``file_search`` and shown back as ``retrieval`` to v1 clients. File ids of v1 (``file_ids``)
and v2 (``tool_resources.code_interpreter.file_ids``) land in one ``file_ids`` list.
"""

from __future__ import annotations

from typing import Any

from core.assistants_api.errors import bad_request

TOOL_TYPES = ("code_interpreter", "file_search", "retrieval", "function")


def tools_in(raw: Any, param: str = "tools") -> list[dict[str, Any]]:
    """The ``tools`` array, checked and in stored form."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request(f"Invalid '{param}': expected an array.", param=param)
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(raw):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in TOOL_TYPES:
            raise bad_request(
                f"Invalid '{param}[{i}].type': {kind!r}; expected one of {', '.join(TOOL_TYPES)}.",
                param=f"{param}[{i}].type",
            )
        if kind == "retrieval":
            kind = "file_search"
        if kind != "function":
            tools.append({"type": kind})
            continue
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(
                f"Missing required parameter: '{param}[{i}].function.name'.",
                param=f"{param}[{i}].function.name",
            )
        clean: dict[str, Any] = {"name": fn["name"], "description": fn.get("description") or ""}
        if fn.get("parameters") is not None:
            if not isinstance(fn["parameters"], dict):
                raise bad_request(
                    f"Invalid '{param}[{i}].function.parameters': expected an object.",
                    param=f"{param}[{i}].function.parameters",
                )
            clean["parameters"] = fn["parameters"]
        tools.append({"type": "function", "function": clean})
    return tools


def tools_out(tools: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    """Stored tools in the shape of ``version``."""
    shown: list[dict[str, Any]] = []
    for tool in tools:
        if tool["type"] == "file_search" and version == "v1":
            shown.append({"type": "retrieval"})
        elif tool["type"] == "function":
            fn = dict(tool["function"])
            fn.setdefault("parameters", {"type": "object", "properties": {}})
            shown.append({"type": "function", "function": fn})
        else:
            shown.append(dict(tool))
    return shown


def file_ids_in(body: dict[str, Any]) -> list[str] | None:
    """v1 ``file_ids`` and v2 ``tool_resources.code_interpreter.file_ids``; None when absent."""
    found: list[str] | None = None
    if body.get("file_ids") is not None:
        found = _str_list(body["file_ids"], "file_ids")
    resources = body.get("tool_resources") or {}
    if not isinstance(resources, dict):
        raise bad_request("Invalid 'tool_resources': expected an object.", param="tool_resources")
    code = resources.get("code_interpreter") or {}
    if isinstance(code, dict) and code.get("file_ids") is not None:
        found = (found or []) + _str_list(
            code["file_ids"], "tool_resources.code_interpreter.file_ids"
        )
    search = resources.get("file_search") or {}
    if isinstance(search, dict) and search.get("file_ids") is not None:
        # tallybot extension: files for file_search without a vector store.
        found = (found or []) + _str_list(search["file_ids"], "tool_resources.file_search.file_ids")
    return None if found is None else list(dict.fromkeys(found))


def vector_store_ids_in(body: dict[str, Any]) -> list[str] | None:
    resources = body.get("tool_resources") or {}
    search = resources.get("file_search") if isinstance(resources, dict) else None
    if isinstance(search, dict) and search.get("vector_store_ids") is not None:
        return _str_list(search["vector_store_ids"], "tool_resources.file_search.vector_store_ids")
    return None


def metadata_in(raw: Any) -> dict[str, str]:
    """Up to 16 string pairs, keys up to 64 and values up to 512 characters."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > 16:
        raise bad_request("Invalid 'metadata': at most 16 key-value pairs.", param="metadata")
    for key, value in raw.items():
        if not isinstance(value, str) or len(str(key)) > 64 or len(value) > 512:
            raise bad_request(
                f"Invalid 'metadata.{key}': values are strings of at most 512 characters.",
                param="metadata",
            )
    return {str(k): v for k, v in raw.items()}


def content_in(raw: Any) -> str:
    """Message content: a string, or an array of text parts (v2); other parts are refused."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        parts = []
        for i, part in enumerate(raw):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_request(
                    f"Invalid 'content[{i}]': tallybot accepts text parts only.",
                    param=f"content[{i}]",
                )
            parts.append(str(part.get("text", "")))
        return "\n".join(parts)
    raise bad_request("Missing required parameter: 'content'.", param="content")


def attachments_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """v2 ``attachments`` (file + tools), with v1 ``file_ids`` read as attachments."""
    found: list[dict[str, Any]] = []
    for file_id in _str_list(body.get("file_ids") or [], "file_ids"):
        found.append({"file_id": file_id, "tools": [{"type": "code_interpreter"}]})
    raw = body.get("attachments") or []
    if not isinstance(raw, list):
        raise bad_request("Invalid 'attachments': expected an array.", param="attachments")
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("file_id"), str):
            raise bad_request(
                f"Missing required parameter: 'attachments[{i}].file_id'.",
                param=f"attachments[{i}].file_id",
            )
        found.append(
            {"file_id": item["file_id"], "tools": tools_in(item.get("tools") or [], "tools")}
        )
    return found


def role_in(raw: Any) -> str:
    if raw not in ("user", "assistant"):
        raise bad_request(f"Invalid 'role': {raw!r}; expected 'user' or 'assistant'.", param="role")
    return str(raw)


def _str_list(raw: Any, param: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise bad_request(f"Invalid '{param}': expected an array of strings.", param=param)
    return list(raw)
