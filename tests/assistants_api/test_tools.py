"""tallybot's own tools behind the API: the sandbox over an uploaded CSV, file search, and
the v1 shapes (file_ids, retrieval) next to v2 (tool_resources, attachments, file_search)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from core.models.base import FunctionOutput
from core.models.scripted import call, text
from tests.assistants_api.conftest import KEY_A

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CSV = Path(__file__).parent / "data" / "covid_worldwide.csv"
CODE = (
    "import pandas as pd\n"
    "df = pd.read_csv('covid_worldwide.csv')\n"
    "print(int(df['Total Recovered'].sum()))"
)


def _answer_with_output(request):
    (output,) = [i.output for i in request.items if isinstance(i, FunctionOutput)]
    return text(f"stdout was {json.loads(output)['stdout'].strip()}")


async def test_code_interpreter_reads_the_uploaded_csv(api_server) -> None:
    server = await api_server([[call("code_interpreter", {"code": CODE})], _answer_with_output])
    client = server.client()
    with CSV.open("rb") as fh:
        file = await client.files.create(file=fh, purpose="assistants")
    assistant = await client.beta.assistants.create(
        model="m",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [file.id]}},
    )
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": "total recovered?"}]
    )
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    expected = sum(int(line.split(",")[4]) for line in CSV.read_text().splitlines()[1:])
    messages = await client.beta.threads.messages.list(thread.id)
    assert messages.data[0].content[0].text.value == f"stdout was {expected}"
    steps = await client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
    ci = steps.data[0].step_details.tool_calls[0]
    assert ci.type == "code_interpreter" and ci.code_interpreter.input == CODE
    assert str(expected) in ci.code_interpreter.outputs[0].logs
    # The model was told about the file (intake's summary of the table).
    assert "covid_worldwide.csv" in server.model.requests[0].instructions


async def test_file_search_over_a_message_attachment(api_server) -> None:
    def answer(request):
        (output,) = [i.output for i in request.items if isinstance(i, FunctionOutput)]
        results = json.loads(output)["results"]
        return text(f"found in {results[0]['file']}")

    server = await api_server([[call("file_search", {"query": "sunflower price"})], answer])
    client = server.client()
    notes = b"Price list\n\nsunflower price is 8 yuan each.\nrose price is 5 yuan.\n"
    file = await client.files.create(file=("prices.txt", notes), purpose="assistants")
    assistant = await client.beta.assistants.create(model="m", tools=[{"type": "file_search"}])
    thread = await client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "what does a sunflower cost?",
                "attachments": [{"file_id": file.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )
    assert run.status == "completed", run.last_error
    messages = await client.beta.threads.messages.list(thread.id, order="asc")
    assert messages.data[0].attachments[0].file_id == file.id
    assert messages.data[1].content[0].text.value.startswith("found in prices.txt")
    steps = await client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert steps.data[-1].step_details.tool_calls[0].type == "file_search"


async def test_v1_shapes_by_the_beta_header(api_server) -> None:
    server = await api_server([text("hello")])
    v1 = {"Authorization": f"Bearer {KEY_A}", "OpenAI-Beta": "assistants=v1"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=v1) as http:
        up = await http.post(
            "/files", files={"file": ("a.csv", b"a,b\n1,2\n")}, data={"purpose": "assistants"}
        )
        file_id = up.json()["id"]
        made = await http.post(
            "/assistants",
            json={"model": "m", "tools": [{"type": "retrieval"}], "file_ids": [file_id]},
        )
        assistant = made.json()
        assert assistant["tools"] == [{"type": "retrieval"}]
        assert assistant["file_ids"] == [file_id] and "tool_resources" not in assistant
        thread = (await http.post("/threads", json={})).json()
        msg = await http.post(
            f"/threads/{thread['id']}/messages",
            json={"role": "user", "content": "hi", "file_ids": [file_id]},
        )
        assert msg.json()["file_ids"] == [file_id] and "attachments" not in msg.json()
        run = await http.post(
            f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}
        )
        body = run.json()
        assert body["file_ids"] == [file_id] and body["tools"] == [{"type": "retrieval"}]
        assert "max_prompt_tokens" not in body
    # The same assistant read through v2 (no header): file_search and tool_resources.
    client = server.client()
    again = await client.beta.assistants.retrieve(assistant["id"])
    assert again.tools[0].type == "file_search"
    assert again.tool_resources.code_interpreter.file_ids == [file_id]
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={**v1, "OpenAI-Beta": "assistants=v9"}
    ) as http:
        bad = await http.get("/assistants")
    assert bad.status_code == 400 and "v9" in bad.json()["error"]["message"]


async def test_missing_key_is_401(api_server) -> None:
    server = await api_server()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get("/assistants")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


async def test_a_chart_is_an_image_output_and_a_downloadable_file(api_server) -> None:
    chart = (
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "plt.bar(['a', 'b'], [1, 2])\nplt.title('sales')\nplt.savefig('chart.png')\nplt.close()"
    )
    server = await api_server([[call("code_interpreter", {"code": chart})], text("here")])
    client = server.client()
    assistant = await client.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    run = await client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "chart please"}]},
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    steps = await client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc")
    outputs = steps.data[0].step_details.tool_calls[0].code_interpreter.outputs
    images = [o.image.file_id for o in outputs if o.type == "image"]
    assert len(images) == 1
    made = await client.files.retrieve(images[0])
    assert made.filename == "chart.png" and made.purpose == "assistants_output"
    content = await client.files.content(images[0])
    assert content.content.startswith(b"\x89PNG")
