"""Tools whose result comes from outside (the Assistants API's client functions): the engine
waits in requires_action and takes the output from submit_tool_outputs(outputs=...)."""

from __future__ import annotations

from core.assistant import AssistantSpec
from core.assistants_api.tools import ClientFunction
from core.domain import RunStatus
from core.engine import Engine
from core.events import RunFinished
from core.models.base import FunctionOutput
from core.models.scripted import ScriptedModel, call, text
from core.tools.base import ToolRegistry
from tests.engine.helpers import EchoTool


async def test_external_call_waits_then_takes_the_given_output(settings, store) -> None:
    echo = EchoTool()
    model = ScriptedModel(
        [[call("echo", {"text": "x"}, "c1"), call("ask_client", {}, "c2")], text("done")]
    )
    tools = ToolRegistry([echo, ClientFunction("ask_client")])
    engine = Engine(settings, store, model, tools, AssistantSpec("t", "be brief", tools.names()))
    thread = await store.get_or_create_thread("api:p:t1")
    await store.add_message(thread.id, "user", "go")
    run = await engine.create_run(thread)
    assert run is not None
    events = [e async for e in engine.execute(run, thread, "en")]
    assert run.status == RunStatus.REQUIRES_ACTION
    assert [c["id"] for c in run.required_action["submit_tool_outputs"]["tool_calls"]] == ["c2"]
    assert echo.calls == [("c1", "x")]  # tallybot's own tool ran; the client's did not
    assert not any(isinstance(e, RunFinished) for e in events)
    rest = [
        e async for e in engine.submit_tool_outputs(run.id, {}, thread, "en", outputs={"c2": "42"})
    ]
    assert isinstance(rest[-1], RunFinished) and rest[-1].status == RunStatus.COMPLETED
    outputs = [i.output for i in model.requests[1].items if isinstance(i, FunctionOutput)]
    assert outputs == ['{"echo": "x"}', "42"]
    assert echo.calls == [("c1", "x")]  # never run twice
