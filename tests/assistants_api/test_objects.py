"""CRUD and pagination of assistants, files, threads and messages, through the openai SDK."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.assistants_api.conftest import KEY_B

# The SDK marks client.beta.assistants and client.beta.threads deprecated; they are the point.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


DATA = Path(__file__).parent / "data"


async def test_assistant_crud_and_metadata(api_server) -> None:
    server = await api_server()
    client = server.client()
    made = await client.beta.assistants.create(
        model="gpt-4o",
        name="Data analyst",
        instructions="Be exact.",
        tools=[{"type": "code_interpreter"}, {"type": "file_search"}],
        metadata={"team": "shop"},
    )
    assert made.id.startswith("asst_") and made.object == "assistant"
    assert [t.type for t in made.tools] == ["code_interpreter", "file_search"]
    assert made.metadata == {"team": "shop"}
    got = await client.beta.assistants.retrieve(made.id)
    assert got.name == "Data analyst" and got.instructions == "Be exact."
    changed = await client.beta.assistants.update(made.id, name="Analyst 2", metadata={"v": "2"})
    assert changed.name == "Analyst 2" and changed.metadata == {"v": "2"}
    assert changed.instructions == "Be exact."
    gone = await client.beta.assistants.delete(made.id)
    assert gone.deleted and gone.id == made.id
    with pytest.raises(openai.NotFoundError) as err:
        await client.beta.assistants.retrieve(made.id)
    assert err.value.status_code == 404
    assert err.value.body["message"] == f"No assistant found with id '{made.id}'."


async def test_assistant_pagination(api_server) -> None:
    server = await api_server()
    client = server.client()
    ids = [(await client.beta.assistants.create(model="m", name=f"a{i}")).id for i in range(5)]
    first = await client.beta.assistants.list(limit=2)
    assert [a.id for a in first.data] == ids[::-1][:2]  # newest first by default
    assert first.has_more and first.first_id == ids[4] and first.last_id == ids[3]
    second = await client.beta.assistants.list(limit=2, after=first.last_id)
    assert [a.id for a in second.data] == [ids[2], ids[1]]
    asc = await client.beta.assistants.list(order="asc", limit=10)
    assert [a.id for a in asc.data] == ids and not asc.has_more
    before = await client.beta.assistants.list(order="asc", before=ids[3], limit=2)
    assert [a.id for a in before.data] == [ids[1], ids[2]]
    every = [a.id async for a in client.beta.assistants.list(limit=2, order="asc")]
    assert every == ids  # the SDK follows has_more/last_id by itself


async def test_files_upload_through_intake(api_server) -> None:
    server = await api_server()
    client = server.client()
    csv = DATA / "covid_worldwide.csv"
    with csv.open("rb") as fh:
        made = await client.files.create(file=fh, purpose="assistants")
    assert made.filename == "covid_worldwide.csv" and made.bytes == csv.stat().st_size
    assert made.status == "processed" and made.purpose == "assistants"
    assert (await client.files.retrieve(made.id)).id == made.id
    assert [f.id for f in (await client.files.list()).data] == [made.id]
    content = await client.files.content(made.id)
    assert content.content == csv.read_bytes()
    assert (await client.files.delete(made.id)).deleted
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(made.id)


async def test_refused_upload_has_the_error_shape_and_stores_nothing(api_server) -> None:
    server = await api_server(file_max_bytes=100)
    client = server.client()
    with pytest.raises(openai.BadRequestError) as err:
        await client.files.create(file=("big.csv", b"a,b\n" * 100), purpose="assistants")
    assert err.value.body["code"] == "invalid_file" and "limit" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        await client.files.create(file=("x.bin", b"\x00\x01\x02" * 10), purpose="assistants")
    with pytest.raises(openai.BadRequestError) as bad:
        await client.files.create(file=("a.csv", b"a,b\n1,2\n"), purpose="fine-tune")
    assert bad.value.body["param"] == "purpose"
    assert (await client.files.list()).data == []


async def test_threads_and_messages(api_server) -> None:
    server = await api_server()
    client = server.client()
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": "各个国家恢复人数占比是多少？"}],
        metadata={"k": "v"},
    )
    assert thread.id.startswith("thread_") and thread.metadata == {"k": "v"}
    msg = await client.beta.threads.messages.create(
        thread.id, role="user", content=[{"type": "text", "text": "second"}], metadata={"n": "2"}
    )
    assert msg.content[0].text.value == "second" and msg.metadata == {"n": "2"}
    listed = await client.beta.threads.messages.list(thread.id, order="asc")
    assert [m.content[0].text.value for m in listed.data] == [
        "各个国家恢复人数占比是多少？",
        "second",
    ]
    got = await client.beta.threads.messages.retrieve(msg.id, thread_id=thread.id)
    assert got.id == msg.id and got.role == "user" and got.thread_id == thread.id
    updated = await client.beta.threads.update(thread.id, metadata={"k": "w"})
    assert updated.metadata == {"k": "w"}
    assert (await client.beta.threads.retrieve(thread.id)).metadata == {"k": "w"}
    assert (await client.beta.threads.delete(thread.id)).deleted
    with pytest.raises(openai.NotFoundError):
        await client.beta.threads.retrieve(thread.id)


async def test_another_key_gets_404_for_every_object(api_server) -> None:
    server = await api_server()
    a, b = server.client(), server.client(KEY_B)
    asst = await a.beta.assistants.create(model="m")
    thread = await a.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    file = await a.files.create(file=("a.csv", b"a,b\n1,2\n"), purpose="assistants")
    for call in (
        b.beta.assistants.retrieve(asst.id),
        b.beta.threads.retrieve(thread.id),
        b.files.retrieve(file.id),
        b.beta.threads.messages.list(thread.id),
        b.beta.threads.runs.create(thread.id, assistant_id=asst.id),
    ):
        with pytest.raises(openai.NotFoundError):
            await call
    assert (await b.beta.assistants.list()).data == []
    assert (await b.files.list()).data == []
    with pytest.raises(openai.NotFoundError):
        await b.beta.assistants.delete(asst.id)
    assert (await a.beta.assistants.retrieve(asst.id)).id == asst.id


async def test_errors_have_the_api_shape(api_server) -> None:
    server = await api_server()
    with pytest.raises(openai.AuthenticationError) as auth:
        await server.client("sk-wrong").beta.assistants.list()
    assert auth.value.status_code == 401 and auth.value.body["code"] == "invalid_api_key"
    client = server.client()
    with pytest.raises(openai.BadRequestError) as bad:
        await client.beta.assistants.list(limit=1000)
    assert bad.value.body == {
        "message": "Invalid 'limit': 1000; it must be between 1 and 100.",
        "type": "invalid_request_error",
        "param": "limit",
        "code": None,
    }
    with pytest.raises(openai.BadRequestError) as tools:
        await client.beta.assistants.create(model="m", tools=[{"type": "browser"}])
    assert tools.value.body["param"] == "tools[0].type"
    with pytest.raises(openai.BadRequestError):
        await client.beta.assistants.create(
            model="m", tool_resources={"code_interpreter": {"file_ids": ["file_nope"]}}
        )
    with pytest.raises(openai.NotFoundError) as route:
        await client.get("/nowhere", cast_to=object)
    assert "Unknown request URL" in route.value.body["message"]


async def test_runs_without_a_model_say_how_to_configure_one(settings) -> None:
    from aiohttp import web

    from bots.assistants_api.app import build_api
    from core.app import Tallybot
    from tests.assistants_api.conftest import KEY_A

    bot = await Tallybot.open(settings.model_copy(update={"api_keys": [KEY_A]}))
    root = web.Application()
    root.add_subapp("/v1", build_api(bot))
    runner = web.AppRunner(root)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY_A, max_retries=0
    )
    try:
        assistant = await client.beta.assistants.create(model="m")
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError) as err:
            await client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        assert err.value.body["code"] == "no_model" and "OPENAI_BASE_URL" in str(err.value)
        assert (await client.beta.threads.runs.list(thread.id)).data == []
    finally:
        await client.close()
        await runner.cleanup()
        await bot.close()
