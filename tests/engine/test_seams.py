"""The seams the engine split left: tool prompt text, the tool registry, a run resumed with a
call still waiting for approval."""

from __future__ import annotations

from dataclasses import dataclass

from core.assistant import KNOWN_TOOLS, load_assistant
from core.domain import RunStatus, StepType, ToolCall
from core.engine import Engine
from core.events import ApprovalRequired
from core.models.scripted import ScriptedModel, text
from core.tools.base import PromptContext, ToolRegistry
from core.tools.registry import TOOLS, activity
from tests.engine.helpers import SPEC, EchoTool, Harness, WriteTool


@dataclass
class NotesTool(EchoTool):
    """An echo tool that also adds a line to the system prompt."""

    name: str = "notes"

    async def instructions(self, ctx: PromptContext) -> str | None:
        return f"Notes tool is here ({ctx.lang}, {len(ctx.files)} files)."


async def test_a_tool_adds_prompt_text_through_its_optional_method(settings, store) -> None:
    model = ScriptedModel([text("ok")])
    engine = Engine(settings, store, model, ToolRegistry([NotesTool(), WriteTool()]), SPEC)
    thread = await store.get_or_create_thread("test:notes")
    await store.add_message(thread.id, "user", "hi")
    run = await engine.create_run(thread)
    assert run is not None
    [e async for e in engine.execute(run, thread, "zh")]
    assert "Notes tool is here (zh, 0 files)." in model.requests[0].instructions


def test_the_registry_is_the_one_list_of_tool_names() -> None:
    assert KNOWN_TOOLS == frozenset(TOOLS)
    assert set(load_assistant().tools) == set(TOOLS)
    assert activity("code_interpreter") == "running_code"
    assert activity("get_bill") == activity("no_such_tool") == "thinking"


async def test_resumed_run_with_a_pending_call_waits_for_approval(settings, store) -> None:
    # As a crash between recording the calls and entering requires_action leaves it.
    settings.approve_writes = True
    model = ScriptedModel([text("must not be asked")])
    h = Harness(settings, store, model)
    thread = await h.thread()
    await store.add_message(thread.id, "user", "write 1")
    run = await h.engine.create_run(thread)
    assert run is not None
    await store.set_run_status(run, RunStatus.IN_PROGRESS)
    step = await store.add_step(run, StepType.TOOL_CALLS)
    call = ToolCall("w1", run.id, step.id, "write", '{"value": 1}', approval="pending")
    await store.add_tool_call(step, call)
    events = await h.collect(h.engine.execute(await store.get_run(run.id), thread, "en"))
    assert isinstance(events[-1], ApprovalRequired)
    assert (await store.get_run(run.id)).status == RunStatus.REQUIRES_ACTION
    assert model.requests == [] and h.write.executions == []
