"""HTTP plumbing of the API: JSON bodies, the error shape, bearer auth, server-sent events."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from core.assistants_api import ApiError, AssistantsApi, Caller

log = logging.getLogger(__name__)

API_KEY: web.AppKey[AssistantsApi] = web.AppKey("assistants_api", AssistantsApi)
# aiohttp >= 3.12 types request storage keys; older ones take a string.
CALLER: Any = web.RequestKey("caller", Caller) if hasattr(web, "RequestKey") else "caller"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: ApiError) -> web.Response:
    headers = {}
    if exc.status == 409:
        headers["x-should-retry"] = "false"  # the SDK would retry a 409 otherwise
    return web.json_response(exc.body(), status=exc.status, headers=headers)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure in the API's error shape; nothing else leaves the sub-app."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status == 404:
            msg = f"Unknown request URL: {request.method} {request.path}."
        elif exc.status == 413:
            msg = "The request is larger than this server accepts (TALLYBOT_FILE_MAX_BYTES)."
        else:
            msg = exc.reason
        return error_response(ApiError(exc.status, msg))
    except Exception:
        log.exception("API request %s %s failed", request.method, request.path)
        return error_response(
            ApiError(500, "The server had an error; see its log.", type="server_error")
        )


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``Authorization: Bearer <key>``: the key's project owns what the request touches."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    caller = await request.app[API_KEY].caller(token.strip(), request.headers.get("OpenAI-Beta"))
    if caller is None:
        shown = token.strip()[:8] + "…"
        raise ApiError(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")
    request[CALLER] = caller
    return await handler(request)


def caller(request: web.Request) -> Caller:
    return request[CALLER]  # type: ignore[no-any-return]


def api(request: web.Request) -> AssistantsApi:
    return request.app[API_KEY]


async def body(request: web.Request) -> dict[str, Any]:
    """The JSON object of a request (an empty body is ``{}``)."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"We could not parse the JSON body of your request: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return data


def ok(data: Any) -> web.Response:
    return web.json_response(data, dumps=lambda d: json.dumps(d, ensure_ascii=False))


async def sse(request: web.Request, events: AsyncIterator[tuple[str, Any]]) -> web.StreamResponse:
    """Stream ``(event, data)`` pairs as server-sent events, ending with ``done``."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        async for name, data in events:
            text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
            await response.write(f"event: {name}\ndata: {text}\n\n".encode())
    except ConnectionResetError:
        log.info("stream client went away; the run goes on")
        return response
    await response.write_eof()
    return response
