"""The Assistants API as an aiohttp sub-application: ``build_api(bot)``.

``tallybot serve`` mounts it beside the chat channels with ``app.add_subapp("/v1",
build_api(bot))``; ``tallybot api`` serves it alone. It only translates HTTP to
:class:`core.assistants_api.AssistantsApi` calls and back (JSON, multipart, server-sent
events); objects, keys, pagination and the v1/v2 shapes are core's.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bots.assistants_api import routes as r
from bots.assistants_api.http import API_KEY, auth, errors
from core.app import Tallybot
from core.assistants_api import AssistantsApi

# Room for the multipart wrapping around a file of TALLYBOT_FILE_MAX_BYTES; intake checks the
# file itself, a larger body is refused (413) before it is read into memory.
MULTIPART_SLACK = 1024 * 1024


def build_api(bot: Tallybot) -> web.Application:
    """The ``/v1`` routes of the Assistants API over ``bot``."""
    service = AssistantsApi(bot)
    app = web.Application(
        middlewares=[errors, auth],
        client_max_size=bot.settings.file_max_bytes + MULTIPART_SLACK,
    )
    app[API_KEY] = service

    async def _close(_: web.Application) -> None:
        await service.aclose()

    async def _recover(_: web.Application) -> None:
        await service.recover()

    app.on_startup.append(_recover)
    app.on_cleanup.append(_close)
    routes: list[tuple[str, str, Any]] = [
        ("POST", "/assistants", r.create_assistant),
        ("GET", "/assistants", r.list_assistants),
        ("GET", "/assistants/{id}", r.get_assistant),
        ("POST", "/assistants/{id}", r.update_assistant),
        ("DELETE", "/assistants/{id}", r.deleter("assistant")),
        ("POST", "/files", r.upload_file),
        ("GET", "/files", r.list_files),
        ("GET", "/files/{id}", r.get_file),
        ("DELETE", "/files/{id}", r.deleter("file")),
        ("GET", "/files/{id}/content", r.file_content),
        ("POST", "/threads", r.create_thread),
        ("POST", "/threads/runs", r.create_thread_and_run),
        ("GET", "/threads/{id}", r.get_thread),
        ("POST", "/threads/{id}", r.update_thread),
        ("DELETE", "/threads/{id}", r.deleter("thread")),
        ("POST", "/threads/{id}/messages", r.create_message),
        ("GET", "/threads/{id}/messages", r.list_messages),
        ("GET", "/threads/{id}/messages/{mid}", r.get_message),
        ("POST", "/threads/{id}/messages/{mid}", r.update_message),
        ("POST", "/threads/{id}/runs", r.create_run),
        ("GET", "/threads/{id}/runs", r.list_runs),
        ("GET", "/threads/{id}/runs/{rid}", r.get_run),
        ("POST", "/threads/{id}/runs/{rid}", r.update_run),
        ("POST", "/threads/{id}/runs/{rid}/cancel", r.cancel_run),
        ("POST", "/threads/{id}/runs/{rid}/submit_tool_outputs", r.submit_tool_outputs),
        ("GET", "/threads/{id}/runs/{rid}/steps", r.list_steps),
        ("GET", "/threads/{id}/runs/{rid}/steps/{sid}", r.get_step),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app
