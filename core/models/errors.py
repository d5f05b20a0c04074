"""SDK error conversion: every outside error (openai SDK, httpx, broken SSE) becomes a
:class:`core.errors.ModelError` here -- the one choke point both wire adapters use with
``raise convert_error(exc) from exc``.
"""

from __future__ import annotations

import email.utils
import importlib
import json
import time
from collections.abc import Mapping
from typing import Any

import openai

from core.errors import (
    BrokenStream,
    ModelAuthError,
    ModelBadRequest,
    ModelError,
    ModelServerError,
    ModelTimeout,
    RateLimited,
)

_ZH_TIMEOUT = "模型服务响应超时，请稍后再试。"
_ZH_AUTH = "模型服务拒绝了密钥，请管理员检查 OPENAI_API_KEY。"
_ZH_BAD_REQUEST = "模型服务拒绝了请求（模型名称或参数有误），请管理员检查配置。"
_ZH_SERVER = "模型服务出错，请稍后再试。"
_ZH_BROKEN = "与模型服务的连接中断，请重试。"
_ZH_INCOMPLETE = "模型的回答被截断了，请把问题拆小一点再试。"
_ZH_FILTERED = "模型服务拒绝回答这条消息（内容过滤）。"


def _http_modules() -> list[Any]:
    # openai 3.x runs on httpx2 and still accepts a legacy httpx client; 1.x/2.x only httpx.
    modules = []
    for name in ("httpx2", "httpx"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # pragma: no cover - depends on the SDK generation
            pass
    return modules


_HTTP_ERRORS: tuple[type[BaseException], ...] = tuple(m.HTTPError for m in _http_modules())
_HTTP_TIMEOUTS: tuple[type[BaseException], ...] = tuple(m.TimeoutException for m in _http_modules())

STREAM_ERRORS: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    # The SDK decodes each SSE ``data:`` line with json.loads and lets the error through
    # unwrapped; a bad UTF-8 byte in a line surfaces the same way.
    json.JSONDecodeError,
    UnicodeDecodeError,
    # The SDK wraps transport errors while iterating, but not while closing or draining.
    *_HTTP_ERRORS,
)
"""Exceptions an adapter catches around the SDK call and its stream, then converts."""


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date).

    Same precedence as the SDK's own retry loop, so what we tell the user matches what the
    SDK would have waited.
    """
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return max(seconds, 0.0)
    value = headers.get("retry-after")
    if value:
        parsed = email.utils.parsedate_tz(value)
        if parsed is not None:
            return max(float(email.utils.mktime_tz(parsed) - time.time()), 0.0)
    return None


def _server_message(body: object) -> str:
    """The server's own words from an error body (already unwrapped from ``{"error": ...}``)."""
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error")
        if isinstance(message, Mapping):
            message = message.get("message")
        if message:
            return str(message)[:300]
        return ""
    if isinstance(body, str):
        return body.strip()[:300]
    return ""


def _with(status: str, detail: str) -> str:
    return f"{status}: {detail}" if detail else status


def stream_error(code: str | None, message: str | None) -> ModelError:
    """An error the server reported inside a stream (Responses ``response.failed`` or
    ``error`` event, a Chat ``{"error": ...}`` chunk), mapped by its error code."""
    code = code or ""
    detail = _with(code or "error", message or "")
    if code in ("rate_limit_exceeded", "rate_limit_error", "too_many_requests", "429"):
        return RateLimited(f"model rate limited mid-stream ({detail})")
    if code in ("invalid_api_key", "unauthorized", "401", "403"):
        return ModelAuthError(f"model refused the API key ({detail})", zh=_ZH_AUTH)
    if code.startswith("invalid") or code in ("bad_request", "400", "404", "model_not_found"):
        return ModelBadRequest(f"model rejected the request ({detail})", zh=_ZH_BAD_REQUEST)
    if "policy" in code or code == "content_filter":
        return ModelBadRequest(f"model refused the request ({detail})", zh=_ZH_FILTERED)
    return ModelServerError(f"model failed mid-stream ({detail})", zh=_ZH_SERVER)


def incomplete_error(reason: str | None) -> ModelError:
    """A turn the model stopped early: Responses ``response.incomplete`` or a Chat
    ``finish_reason`` of ``length`` / ``content_filter``."""
    if reason == "content_filter":
        return ModelBadRequest("model output was blocked by the content filter", zh=_ZH_FILTERED)
    # Output cut at the token limit: the answer (or a tool call's JSON) is truncated, which
    # is a broken turn; the engine must not treat the partial text as the answer.
    return BrokenStream(
        f"model output is incomplete ({reason or 'unknown reason'})", zh=_ZH_INCOMPLETE
    )


def convert_error(exc: BaseException) -> ModelError:
    """Convert an openai SDK / httpx / SSE decoding exception into tallybot's ModelError.

    Called after the SDK's own retries are spent, so the error is final for this turn.
    """
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = _server_message(exc.body)
        if isinstance(exc, openai.RateLimitError) or status == 429:
            retry_after = parse_retry_after(exc.response.headers)
            hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
            return RateLimited(
                _with("model rate limited (429)", detail) + hint, retry_after=retry_after
            )
        if status in (401, 403):
            return ModelAuthError(
                _with(f"model service refused the API key ({status})", detail)
                + "; check OPENAI_API_KEY",
                zh=_ZH_AUTH,
            )
        if status == 408:
            return ModelTimeout(_with("model service timed out (408)", detail), zh=_ZH_TIMEOUT)
        if status >= 500:
            return ModelServerError(_with(f"model service error ({status})", detail), zh=_ZH_SERVER)
        # 400 / 404 / 422 and the rest of 4xx: our request or the model name is wrong, and
        # sending it again will not help.
        return ModelBadRequest(
            _with(f"model service rejected the request ({status})", detail), zh=_ZH_BAD_REQUEST
        )
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeout("model service did not answer in time", zh=_ZH_TIMEOUT)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = f"{type(cause).__name__}: {cause}" if cause else exc.message
        return BrokenStream(f"connection to the model service broke ({reason})", zh=_ZH_BROKEN)
    if isinstance(exc, openai.APIResponseValidationError):
        return BrokenStream(
            f"model service sent data of the wrong shape: {exc.message}", zh=_ZH_BROKEN
        )
    if isinstance(exc, openai.APIError):
        # No HTTP status: an error object inside the stream (Chat ``{"error": ...}`` chunk).
        return stream_error(exc.code or exc.type, _server_message(exc.body) or exc.message)
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return BrokenStream(f"model stream sent a malformed chunk ({exc})", zh=_ZH_BROKEN)
    if isinstance(exc, _HTTP_TIMEOUTS):
        return ModelTimeout("model service did not answer in time", zh=_ZH_TIMEOUT)
    if isinstance(exc, STREAM_ERRORS):
        return BrokenStream(f"model stream broke ({type(exc).__name__}: {exc})", zh=_ZH_BROKEN)
    return ModelError(f"model call failed ({type(exc).__name__}: {exc})", zh=_ZH_SERVER)
