"""tallybot's rows as the API's JSON objects, in the v1 or v2 shape (``OpenAI-Beta``).

v1 (Nov 2023): ``file_ids`` on assistants, messages and runs, the ``retrieval`` tool.
v2 (default): ``tool_resources``, ``attachments``, ``file_search``, ``usage`` and the run's
token limits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.assistants_api.inputs import tools_out
from core.domain import Message, Run, RunStatus, RunStep, StepStatus, StepType, ToolCall
from core.store.assistants import ApiObject

V1, V2 = "v1", "v2"


def ts(value: datetime | None) -> int | None:
    """Unix seconds, as every API timestamp."""
    return int(value.timestamp()) if value is not None else None


def resources_out(data: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = {"code_interpreter": {"file_ids": list(data.get("file_ids", []))}}
    if data.get("vector_store_ids"):
        resources["file_search"] = {"vector_store_ids": list(data["vector_store_ids"])}
    return resources


def assistant_out(obj: ApiObject, version: str) -> dict[str, Any]:
    d = obj.data
    out: dict[str, Any] = {
        "id": obj.id,
        "object": "assistant",
        "created_at": ts(obj.created_at),
        "name": d.get("name"),
        "description": d.get("description"),
        "model": d.get("model"),
        "instructions": d.get("instructions"),
        "tools": tools_out(d.get("tools", []), version),
        "metadata": d.get("metadata", {}),
    }
    if version == V1:
        out["file_ids"] = list(d.get("file_ids", []))
    else:
        out["tool_resources"] = resources_out(d)
        out["temperature"] = d.get("temperature")
        out["top_p"] = d.get("top_p")
        out["response_format"] = d.get("response_format") or "auto"
    return out


def file_out(obj: ApiObject) -> dict[str, Any]:
    return {
        "id": obj.id,
        "object": "file",
        "bytes": obj.data.get("bytes", 0),
        "created_at": ts(obj.created_at),
        "filename": obj.data.get("filename"),
        "purpose": obj.data.get("purpose", "assistants"),
        "status": "processed",
        "status_details": None,
    }


def thread_out(obj: ApiObject, version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": obj.id,
        "object": "thread",
        "created_at": ts(obj.created_at),
        "metadata": obj.data.get("metadata", {}),
    }
    if version == V2:
        out["tool_resources"] = resources_out(obj.data)
    return out


def message_out(
    msg: Message, data: dict[str, Any], version: str, assistant_id: str | None
) -> dict[str, Any]:
    attachments = data.get("attachments", [])
    out: dict[str, Any] = {
        "id": msg.id,
        "object": "thread.message",
        "created_at": ts(msg.created_at),
        "thread_id": msg.thread_id,
        "role": msg.role,
        "content": [{"type": "text", "text": {"value": msg.text, "annotations": []}}],
        "assistant_id": assistant_id,
        "run_id": msg.run_id,
        "metadata": data.get("metadata", {}),
    }
    if version == V1:
        out["file_ids"] = [a["file_id"] for a in attachments]
    else:
        out["attachments"] = [
            {"file_id": a["file_id"], "tools": tools_out(a.get("tools", []), V2)}
            for a in attachments
        ]
        out["status"] = "completed"
        out["completed_at"] = ts(msg.created_at) if msg.role == "assistant" else None
        out["incomplete_at"] = None
        out["incomplete_details"] = None
    return out


def last_error_out(error: dict[str, str] | None) -> dict[str, str] | None:
    """tallybot's error codes in the API's three (``rate_limit_exceeded`` etc.)."""
    if not error:
        return None
    code = "rate_limit_exceeded" if error.get("code") == "rate_limited" else "server_error"
    return {"code": code, "message": f"{error.get('message', '')} ({error.get('code')})"}


def usage_out(run: Run) -> dict[str, int] | None:
    if not run.status.terminal:
        return None
    prompt = int(run.usage.get("input_tokens", 0))
    completion = int(run.usage.get("output_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def run_out(run: Run, data: dict[str, Any], version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": run.id,
        "object": "thread.run",
        "created_at": ts(run.created_at),
        "assistant_id": data.get("assistant_id"),
        "thread_id": run.thread_id,
        "status": run.status.value,
        "started_at": ts(run.started_at),
        "expires_at": None if run.status.terminal else ts(run.expires_at),
        "cancelled_at": ts(run.cancelled_at),
        "failed_at": ts(run.failed_at),
        "completed_at": ts(run.completed_at),
        "required_action": run.required_action if run.status == RunStatus.REQUIRES_ACTION else None,
        "last_error": last_error_out(run.last_error),
        "model": data.get("model") or run.model,
        "instructions": data.get("instructions", ""),
        "tools": tools_out(data.get("tools", []), version),
        "metadata": data.get("metadata", {}),
        "usage": usage_out(run),
    }
    if version == V1:
        out["file_ids"] = list(data.get("file_ids", []))
    else:
        out.update(
            incomplete_details=None,
            temperature=data.get("temperature"),
            top_p=data.get("top_p"),
            max_prompt_tokens=data.get("max_prompt_tokens"),
            max_completion_tokens=data.get("max_completion_tokens"),
            truncation_strategy={"type": "auto", "last_messages": None},
            response_format=data.get("response_format") or "auto",
            tool_choice=data.get("tool_choice") or "auto",
            parallel_tool_calls=True,
        )
    return out


def _code_outputs(output: str | None) -> list[dict[str, Any]]:
    if output is None:
        return []
    try:
        parsed = json.loads(output)
    except ValueError:
        return [{"type": "logs", "logs": output}]
    if not isinstance(parsed, dict):
        return [{"type": "logs", "logs": output}]
    logs = [str(parsed.get("stdout") or "")]
    if parsed.get("result"):
        logs.append(str(parsed["result"]))
    if parsed.get("error"):
        logs.append(json.dumps(parsed["error"], ensure_ascii=False))
    return [{"type": "logs", "logs": "\n".join(x for x in logs if x)}]


def tool_call_out(call: ToolCall, version: str, produced: Sequence[str] = ()) -> dict[str, Any]:
    """One call of a ``tool_calls`` step; ``produced`` are the API file ids it made."""
    if call.name == "code_interpreter":
        try:
            code = json.loads(call.arguments or "{}").get("code", "")
        except (ValueError, AttributeError):
            code = call.arguments
        return {
            "id": call.id,
            "type": "code_interpreter",
            "code_interpreter": {
                "input": code,
                "outputs": _code_outputs(call.output)
                + [{"type": "image", "image": {"file_id": f}} for f in produced],
            },
        }
    if call.name == "file_search":
        kind = "retrieval" if version == V1 else "file_search"
        return {"id": call.id, "type": kind, kind: {}}
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments, "output": call.output},
    }


def step_out(
    step: RunStep, run: Run, data: dict[str, Any], version: str, message_id: str | None
) -> dict[str, Any]:
    if step.type == StepType.MESSAGE_CREATION:
        details: dict[str, Any] = {
            "type": "message_creation",
            "message_creation": {"message_id": message_id},
        }
    else:
        details = {
            "type": "tool_calls",
            "tool_calls": [
                tool_call_out(c, version, data.get("produced", {}).get(c.id, []))
                for c in step.tool_calls
            ],
        }
    done = step.completed_at if step.status == StepStatus.COMPLETED else None
    stamp = ts(step.completed_at) if step.status != StepStatus.IN_PROGRESS else None
    return {
        "id": step.id,
        "object": "thread.run.step",
        "created_at": ts(step.created_at),
        "run_id": run.id,
        "assistant_id": data.get("assistant_id"),
        "thread_id": run.thread_id,
        "type": step.type.value,
        "status": step.status.value,
        "cancelled_at": stamp if step.status == StepStatus.CANCELLED else None,
        "completed_at": ts(done),
        "expired_at": stamp if step.status == StepStatus.EXPIRED else None,
        "failed_at": stamp if step.status == StepStatus.FAILED else None,
        "last_error": None,
        "step_details": details,
        "usage": None,
        "metadata": {},
    }
