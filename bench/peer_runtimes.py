"""The peers: the benchmark turn through openai-agents and pydantic-ai with zero-latency doubles.

Each peer gets the same message, a ``save_bill`` function tool with the same body
(:func:`bench.turn.bill_totals`, arguments validated by the library from the function's types)
and a model double that calls it once, then answers :data:`bench.turn.ANSWER`. Both peers are
driven through their ordinary entry points (``Runner.run``, ``Agent.run``), not streamed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bench.turn import ANSWER, BILL_ARGS_JSON, INSTRUCTIONS, MESSAGE, bill_totals


class LineItem(BaseModel):
    """One line of the bill, as the peers' function tools declare it."""

    name: str
    quantity: float
    unit_cost: float
    unit_price: float


def save_bill(date: str, items: list[LineItem]) -> dict[str, Any]:
    """Save the bill for one day from its line items; returns the totals."""
    return bill_totals(date, [i.model_dump() for i in items])


# --- openai-agents -----------------------------------------------------------------------


def _agents_double() -> Any:
    from agents import ModelResponse, Usage
    from agents.models.interface import Model
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )

    class AgentsDouble(Model):
        """Calls save_bill unless the input ends with its output; then answers."""

        async def get_response(self, system_instructions: Any, input: Any, *a: Any, **k: Any):  # type: ignore[no-untyped-def]
            last = input[-1] if isinstance(input, list) and input else {}
            if isinstance(last, dict) and last.get("type") == "function_call_output":
                out: Any = ResponseOutputMessage(
                    id="msg_1",
                    role="assistant",
                    status="completed",
                    type="message",
                    content=[ResponseOutputText(text=ANSWER, type="output_text", annotations=[])],
                )
            else:
                out = ResponseFunctionToolCall(
                    id="fc_1",
                    call_id="call_1",
                    name="save_bill",
                    arguments=BILL_ARGS_JSON,
                    type="function_call",
                )
            return ModelResponse(output=[out], usage=Usage(), response_id=None)

        def stream_response(self, *a: Any, **k: Any):  # type: ignore[no-untyped-def]
            raise NotImplementedError("the benchmark drives Runner.run, not run_streamed")

    return AgentsDouble()


def _session_class(synchronous: str | None) -> Any:
    from agents import SQLiteSession

    if synchronous is None:
        return SQLiteSession

    class TunedSession(SQLiteSession):
        """SQLiteSession with tallybot's durability: WAL + ``synchronous=NORMAL`` (no fsync
        per commit). The shipped default (FULL) fsyncs every commit, which on a slow disk
        measures the disk, not the runtime."""

        @staticmethod
        def _configure_connection(conn: Any) -> None:
            SQLiteSession._configure_connection(conn)
            conn.execute(f"PRAGMA synchronous={synchronous}")

    return TunedSession


class AgentsPeer:
    """openai-agents ``Runner.run``, with a file SQLiteSession per conversation or none.

    ``synchronous="NORMAL"`` gives the session tallybot's durability setting; None keeps the
    library's default (FULL)."""

    def __init__(self, db_path: Path | None, synchronous: str | None = "NORMAL") -> None:
        from agents import Agent, RunConfig, function_tool, set_tracing_disabled

        set_tracing_disabled(True)  # no exporter, no network: the bench measures the runtime
        self.db_path = db_path
        self.session_class = _session_class(synchronous)
        self.agent = Agent(
            name="bench",
            instructions=INSTRUCTIONS,
            model=_agents_double(),
            tools=[function_tool(save_bill)],
        )
        self.config = RunConfig(tracing_disabled=True)

    async def turn(self, key: str, message: str = MESSAGE) -> str:
        from agents import Runner

        session = self.session_class(key, self.db_path) if self.db_path else None
        try:
            result = await Runner.run(self.agent, message, session=session, run_config=self.config)
        finally:
            if session is not None:
                session.close()
        if result.final_output != ANSWER:
            raise RuntimeError(f"openai-agents answered {result.final_output!r}")
        return str(result.final_output)

    async def close(self) -> None:
        return None


# --- pydantic-ai -------------------------------------------------------------------------


def _pydantic_double(messages: list[Any], info: Any) -> Any:
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart

    if any(isinstance(p, ToolReturnPart) for p in messages[-1].parts):
        return ModelResponse(parts=[TextPart(ANSWER)])
    return ModelResponse(parts=[ToolCallPart("save_bill", BILL_ARGS_JSON, "call_1")])


class PydanticPeer:
    """pydantic-ai ``Agent.run`` on a FunctionModel; history stays in memory (none kept)."""

    def __init__(self) -> None:
        from pydantic_ai import Agent
        from pydantic_ai.models.function import FunctionModel

        self.agent = Agent(FunctionModel(_pydantic_double), instructions=INSTRUCTIONS)
        self.agent.tool_plain(save_bill)

    async def turn(self, key: str, message: str = MESSAGE) -> str:
        result = await self.agent.run(message)
        if result.output != ANSWER:
            raise RuntimeError(f"pydantic-ai answered {result.output!r}")
        return str(result.output)

    async def close(self) -> None:
        return None
