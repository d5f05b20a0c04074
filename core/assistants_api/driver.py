"""Runs in the background: one task per run (or per continuation after tool outputs).

An API request returns as soon as its run is stored; the run goes on in a task that holds
the thread's lock, exactly as a chat channel's run would -- and, in ``tallybot serve``, the
thread's lease across replicas (:mod:`core.replica`), so one run at a time per thread holds
across processes too: a resume at start-up waits for the lease and decides from the run's
state read under it, so a run another replica is running, or has already resumed, is not
run a second time. A ``stream=true``
request reads the same task's events, translated, from a queue; a client that disconnects
leaves the run going.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.assistants_api.stream import ApiEvent, Translator
from core.events import Event

if TYPE_CHECKING:
    from core.app import Tallybot
    from core.engine import Engine

log = logging.getLogger(__name__)

Start = Callable[["Engine"], AsyncIterator[Event]]
Hook = Callable[[Event], Awaitable[None]]


@dataclass(slots=True)
class Job:
    """One background drive of a run: ``started`` is set at its first event (or its end)."""

    queue: asyncio.Queue[ApiEvent | None] | None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def events(self) -> AsyncIterator[ApiEvent]:
        """The translated events, until the drive ends."""
        assert self.queue is not None
        while (item := await self.queue.get()) is not None:
            yield item


class Driver:
    """Starts and keeps the background tasks of API runs; :meth:`aclose` stops them."""

    def __init__(self, bot: Tallybot) -> None:
        self.bot = bot
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        thread_id: str,
        engine: Engine,
        start: Start,
        translator: Translator | None,
        opening: Sequence[ApiEvent] = (),
        hook: Hook | None = None,
    ) -> Job:
        """Drive ``start(engine)`` under the thread's lock (and lease) in a task; ``hook``
        sees every engine event first."""
        job = Job(asyncio.Queue() if translator is not None else None)
        if job.queue is not None:
            for item in opening:
                job.queue.put_nowait(item)
        task = asyncio.create_task(self._drive(thread_id, engine, start, translator, job, hook))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self.bot.service is not None:  # stopped with the chat deliveries at shutdown
            self.bot.service.track(task)
        return job

    @contextlib.asynccontextmanager
    async def _held(self, thread_id: str) -> AsyncIterator[None]:
        """The thread's lock, then (when serving) its lease, waiting while a live replica
        holds it or a dead one's has not lapsed yet."""
        async with self.bot.thread_lock(thread_id):
            if self.bot.service is None:
                yield
                return
            async with self.bot.service.replica.holding(f"thread:{thread_id}"):
                yield

    async def _drive(
        self,
        thread_id: str,
        engine: Engine,
        start: Start,
        translator: Translator | None,
        job: Job,
        hook: Hook | None,
    ) -> None:
        try:
            async with self._held(thread_id):
                async for event in start(engine):
                    job.started.set()
                    if hook is not None:
                        await hook(event)
                    if translator is not None and job.queue is not None:
                        for item in await translator.on(event):
                            job.queue.put_nowait(item)
            if translator is not None and job.queue is not None:
                for item in await translator.finish():
                    job.queue.put_nowait(item)
        except Exception:  # a broken run must not take the server down; it is logged
            log.exception("API run on thread %s failed outside the engine", thread_id)
            if job.queue is not None:
                job.queue.put_nowait(
                    ("error", {"message": "the run stopped unexpectedly; see the server log"})
                )
        finally:
            job.started.set()
            if job.queue is not None:
                job.queue.put_nowait(None)

    async def aclose(self) -> None:
        """Cancel what still runs (the engine records the runs as cancelled; in ``tallybot
        serve`` it leaves them live, and the next start-up resumes them)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
