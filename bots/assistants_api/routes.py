"""The API's endpoints: each one reads the request and calls the core service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bots.assistants_api.http import api, body, caller, ok, sse
from core.assistants_api import ApiError, page_params


async def create_assistant(request: web.Request) -> web.Response:
    return ok(await api(request).objects.create_assistant(caller(request), await body(request)))


async def list_assistants(request: web.Request) -> web.Response:
    params = page_params(request.query)
    return ok(await api(request).objects.list_assistants(caller(request), params))


async def get_assistant(request: web.Request) -> web.Response:
    return ok(await api(request).objects.get_assistant(caller(request), request.match_info["id"]))


async def update_assistant(request: web.Request) -> web.Response:
    aid, data = request.match_info["id"], await body(request)
    return ok(await api(request).objects.update_assistant(caller(request), aid, data))


def deleter(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The DELETE handler of ``kind`` (assistant, file, thread)."""

    async def delete(request: web.Request) -> web.Response:
        return ok(
            await api(request).objects.delete(caller(request), kind, request.match_info["id"])
        )

    return delete


# --- files --------------------------------------------------------------------------------


async def upload_file(request: web.Request) -> web.Response:
    """``multipart/form-data`` with ``file`` and ``purpose``."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "Send the file as multipart/form-data with 'file' and 'purpose'.")
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise ApiError(400, "Missing required parameter: 'file'.", param="file")
    purpose = str(form.get("purpose") or "")
    if not purpose:
        raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose")
    data = upload.file.read()
    return ok(await api(request).objects.upload(caller(request), upload.filename, data, purpose))


async def list_files(request: web.Request) -> web.Response:
    params = page_params(request.query)
    return ok(await api(request).objects.list_files(caller(request), params))


async def get_file(request: web.Request) -> web.Response:
    return ok(await api(request).objects.get_file(caller(request), request.match_info["id"]))


async def file_content(request: web.Request) -> web.Response:
    data, name = await api(request).objects.file_content(caller(request), request.match_info["id"])
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- threads and messages -----------------------------------------------------------------


async def create_thread(request: web.Request) -> web.Response:
    return ok(await api(request).objects.create_thread(caller(request), await body(request)))


async def get_thread(request: web.Request) -> web.Response:
    return ok(await api(request).objects.get_thread(caller(request), request.match_info["id"]))


async def update_thread(request: web.Request) -> web.Response:
    tid, data = request.match_info["id"], await body(request)
    return ok(await api(request).objects.update_thread(caller(request), tid, data))


async def create_message(request: web.Request) -> web.Response:
    tid, data = request.match_info["id"], await body(request)
    return ok(await api(request).objects.add_message(caller(request), tid, data))


async def list_messages(request: web.Request) -> web.Response:
    params = page_params(request.query)
    tid, run_id = request.match_info["id"], request.query.get("run_id")
    return ok(await api(request).objects.list_messages(caller(request), tid, params, run_id))


async def get_message(request: web.Request) -> web.Response:
    tid, mid = request.match_info["id"], request.match_info["mid"]
    return ok(await api(request).objects.get_message(caller(request), tid, mid))


async def update_message(request: web.Request) -> web.Response:
    tid, mid, data = request.match_info["id"], request.match_info["mid"], await body(request)
    return ok(await api(request).objects.update_message(caller(request), tid, mid, data))


# --- runs ---------------------------------------------------------------------------------


async def create_run(request: web.Request) -> web.StreamResponse:
    tid, data = request.match_info["id"], await body(request)
    run, events = await api(request).runs.create(caller(request), tid, data)
    return await sse(request, events) if events is not None else ok(run)


async def create_thread_and_run(request: web.Request) -> web.StreamResponse:
    run, events = await api(request).runs.create_thread_and_run(
        caller(request), await body(request)
    )
    return await sse(request, events) if events is not None else ok(run)


async def list_runs(request: web.Request) -> web.Response:
    params = page_params(request.query)
    return ok(await api(request).runs.list(caller(request), request.match_info["id"], params))


async def get_run(request: web.Request) -> web.Response:
    tid, rid = request.match_info["id"], request.match_info["rid"]
    return ok(await api(request).runs.get(caller(request), tid, rid))


async def update_run(request: web.Request) -> web.Response:
    tid, rid, data = request.match_info["id"], request.match_info["rid"], await body(request)
    return ok(await api(request).runs.update(caller(request), tid, rid, data))


async def cancel_run(request: web.Request) -> web.Response:
    tid, rid = request.match_info["id"], request.match_info["rid"]
    return ok(await api(request).runs.cancel(caller(request), tid, rid))


async def submit_tool_outputs(request: web.Request) -> web.StreamResponse:
    tid, rid, data = request.match_info["id"], request.match_info["rid"], await body(request)
    run, events = await api(request).runs.submit_tool_outputs(caller(request), tid, rid, data)
    return await sse(request, events) if events is not None else ok(run)


async def list_steps(request: web.Request) -> web.Response:
    tid, rid = request.match_info["id"], request.match_info["rid"]
    params = page_params(request.query)
    return ok(await api(request).runs.steps(caller(request), tid, rid, params))


async def get_step(request: web.Request) -> web.Response:
    tid, rid, sid = (request.match_info[k] for k in ("id", "rid", "sid"))
    return ok(await api(request).runs.step(caller(request), tid, rid, sid))
