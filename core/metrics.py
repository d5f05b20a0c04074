"""Prometheus metrics of one process, in their own registry (``/metrics`` renders it).

Counters and histograms are fed from the event stream the facade already produces
(:meth:`Metrics.watch`), so the engine and the tools need no metrics code. Gauges that
describe the database (runs by status) are read when scraped.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.events import Event, RunFinished, ToolCallFinished, ToolCallStarted

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The metric families of issue 10; one instance per process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Gauge("tallybot_runs", "Runs in the database by status", ["status"], registry=r)
        self.run_seconds = Histogram(
            "tallybot_run_duration_seconds", "Run wall time", ["status"], registry=r
        )
        self.tool_seconds = Histogram(
            "tallybot_tool_call_duration_seconds", "Tool-call wall time", ["tool"], registry=r
        )
        self.tokens = Counter("tallybot_model_tokens", "Model tokens used", ["kind"], registry=r)
        self.model_errors = Counter(
            "tallybot_model_errors", "Runs that failed, by error code", ["code"], registry=r
        )
        self.platform_errors = Counter(
            "tallybot_platform_api_errors",
            "Chat platform API calls that failed",
            ["platform", "method"],
            registry=r,
        )
        self.sandbox_pool = Gauge("tallybot_sandbox_pool_size", "Sandbox kernels", registry=r)
        self.queue_depth = Gauge(
            "tallybot_queue_depth", "Runs waiting for an admission slot", registry=r
        )
        self.running = Gauge("tallybot_runs_running", "Runs executing in this process", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def set_run_counts(self, counts: dict[str, int]) -> None:
        for status, count in counts.items():
            self.runs.labels(status=status).set(count)

    async def watch(
        self, events: AsyncIterator[Event], usage: dict[str, int] | None = None
    ) -> AsyncIterator[Event]:
        """Pass ``events`` on unchanged, timing runs and tool calls on the way."""
        started = time.monotonic()
        calls: dict[str, float] = {}
        async for event in events:
            if isinstance(event, ToolCallStarted):
                calls[event.call_id] = time.monotonic()
            elif isinstance(event, ToolCallFinished) and event.call_id in calls:
                self.tool_seconds.labels(tool=event.name).observe(
                    time.monotonic() - calls.pop(event.call_id)
                )
            elif isinstance(event, RunFinished):
                self.run_seconds.labels(status=event.status.value).observe(
                    time.monotonic() - started
                )
                if event.last_error:
                    self.model_errors.labels(code=event.last_error.get("code", "error")).inc()
            yield event

    def count_usage(self, before: dict[str, int], after: dict[str, int]) -> None:
        for kind in ("input_tokens", "output_tokens"):
            delta = after.get(kind, 0) - before.get(kind, 0)
            if delta > 0:
                self.tokens.labels(kind=kind.removesuffix("_tokens")).inc(delta)
