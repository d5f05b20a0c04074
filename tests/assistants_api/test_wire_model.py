"""The API over a real wire adapter: Chat Completions SSE from a fake server on 127.0.0.1."""

from __future__ import annotations

import pytest

from core.models.scripted import call, text
from tests.models.fake_openai import FakeOpenAI

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def test_client_function_over_chat_completions_with_the_clients_model(api_server) -> None:
    turns = [[call("lookup", {"q": "rose"}, "call_1")], text("A rose costs 5.")]
    async with FakeOpenAI(turns) as fake:
        server = await api_server(
            wire=True,
            openai_base_url=fake.base_url,
            openai_api_key="test",
            model_api="chat",
            api_pass_model=True,
            model_max_retries=0,
        )
        client = server.client()
        fn = {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
        assistant = await client.beta.assistants.create(model="qwen-plus", tools=[fn])
        run = await client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "price of a rose?"}]},
            poll_interval_ms=20,
        )
        assert run.status == "requires_action"
        (tc,) = run.required_action.submit_tool_outputs.tool_calls
        run = await client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id,
            thread_id=run.thread_id,
            tool_outputs=[{"tool_call_id": tc.id, "output": "5 yuan"}],
            poll_interval_ms=20,
        )
        assert run.status == "completed"
        assert run.usage.total_tokens > 0  # the fake server reports usage
        assert [r["model"] for r in fake.requests] == ["qwen-plus", "qwen-plus"]
        tool_message = fake.requests[1]["messages"][-1]
        assert tool_message["role"] == "tool" and tool_message["content"] == "5 yuan"
