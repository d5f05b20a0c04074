"""What a long-running ``tallybot serve`` process adds to the facade (issue 10).

* **One run per thread across processes.** :meth:`Service.turn` holds the lease
  ``thread:<id>`` (:mod:`core.replica`) around a run, on top of the in-process lock, and takes
  an admission slot (:mod:`core.admission`) only once it holds the lease, so waiting for a
  busy thread never blocks other threads.
* **Orphans are adopted.** Holding a thread's lease means no live process runs in it, so a
  ``queued``/``in_progress`` run found there was left by a dead one: it is resumed first and
  its answer *delivered* to its conversation (:meth:`Service.deliver` → the channel
  registered for the key's prefix), before the new message is answered.
* **Nobody's message is left.** :meth:`Service.sweep` (every few seconds, and at start-up)
  finds threads with unanswered messages or orphaned runs whose lease is not alive, and
  answers them through the same delivery path. Start-up recovery is this sweep without the
  age filter, so it never touches a run whose lease is alive.
* Runs broken while the store refused writes are failed once it is writable again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from core.admission import Admission
from core.domain import Run, RunStatus, Thread, utcnow
from core.errors import StoreUnavailable
from core.events import Event, RunFinished
from core.i18n import t
from core.metrics import Metrics
from core.replica import Replica

if TYPE_CHECKING:
    from core.config import Settings
    from core.engine import Engine
    from core.store import Store

log = logging.getLogger(__name__)

Deliver = Callable[[str, AsyncIterator[Event]], Awaitable[None]]
ORPHANS = (RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.CANCELLING)
OUTBOX = "outbox:"


class Bot(Protocol):
    """What the service needs of :class:`core.app.Tallybot` (no import: app imports us)."""

    settings: Settings
    store: Store
    engine: Engine

    @property
    def model_ready(self) -> bool: ...

    def thread_lock(self, thread_id: str) -> asyncio.Lock: ...


class Service:
    """Replica leases, admission, metrics and delivery for one serving process."""

    def __init__(self, bot: Bot) -> None:
        settings = bot.settings
        self.bot = bot
        self.replica = Replica(bot.store, ttl=settings.lease_seconds)
        self.admission = Admission(settings.max_concurrent_runs)
        self.metrics = Metrics()
        # A task cancelled here means the process is stopping: its run stays live for the next
        # process (or another replica) to adopt, instead of ending ``cancelled`` unanswered.
        bot.engine.keep_interrupted = True
        self._deliverers: dict[str, Deliver] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._work: set[asyncio.Task[object]] = set()  # every delivery's task (see track)
        self._sweeper: asyncio.Task[None] | None = None
        self.accepting = True
        self._pending: set[str] = set()  # runs whose answer this process is delivering
        # Set by the server: why the store must not be written (a deleted SQLite file), or None.
        self.store_problem: Callable[[], str | None] = lambda: None

    # --- delivery ------------------------------------------------------------------------

    def on_deliver(self, prefix: str, deliver: Deliver) -> None:
        """Register the channel that posts events to thread keys starting ``prefix:``."""
        self._deliverers[prefix] = deliver

    async def deliver(self, key: str, events: AsyncIterator[Event]) -> None:
        """Post ``events`` to the conversation of ``key`` (drained when no channel serves it)."""
        deliver = self._deliverers.get(key.split(":", 1)[0])
        if deliver is None:
            async for _ in events:
                pass
            return
        await deliver(key, events)

    # --- one run at a time per thread, across processes ----------------------------------

    @contextlib.asynccontextmanager
    async def turn(self, thread: Thread) -> AsyncIterator[None]:
        """Hold the thread's lease (waiting while a live process holds it), adopt orphaned
        runs, then hold an admission slot for the body."""
        async with self.replica.holding(f"thread:{thread.id}"):
            await self._adopt(thread)
            async with self.admission.slot():
                yield

    async def _adopt(self, thread: Thread) -> None:
        """With the thread's lease held: first the answers a stopped process finished but
        did not post (before anything newer is answered, so a re-sent answer follows itself),
        then the runs it left live."""
        store = self.bot.store
        for run_id in await store.kv_pending_runs(thread.id, OUTBOX, "pending"):
            run = await store.get_run(run_id, with_steps=False)
            if run.status.terminal:  # a live one is an orphan, adopted below
                await self._post_finished(f"{OUTBOX}{run_id}", run, thread)
        engine = self.bot.engine
        for found in await store.list_runs(thread_id=thread.id, statuses=ORPHANS):
            run = await store.get_run(found.id)
            await engine.prepare_resume(run)
            if run.status.terminal:
                continue
            if not self.bot.model_ready:
                await engine.fail_interrupted(run, thread.lang or "en")
                continue
            log.info("resuming run %s left by a stopped process", run.id)
            async with self.admission.slot():
                await self.deliver(
                    thread.key, self.watch(engine.execute(run, thread, _lang(thread)))
                )

    async def _answer_waiting(self, thread: Thread) -> None:
        run = await self.bot.engine.create_run(thread)
        if run is None:
            return
        log.info("answering messages left waiting in %s", thread.key)
        async with self.admission.slot():
            await self.deliver(
                thread.key, self.watch(self.bot.engine.execute(run, thread, _lang(thread)))
            )

    async def watch(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        """Metrics, and the outbox: a run is ``pending`` from its first status change until
        the channel has taken its :class:`RunFinished` (asked for the next event), so a run
        that finished in a process killed before its answer went out is delivered by the
        sweep (:meth:`_deliver_finished`)."""
        store = self.bot.store
        async for event in self.metrics.watch(events):
            run_id = getattr(event, "run_id", None)
            if run_id and run_id not in self._pending and not isinstance(event, RunFinished):
                self._pending.add(run_id)
                await store.kv_set(f"{OUTBOX}{run_id}", "pending")
            yield event
            if isinstance(event, RunFinished):
                await store.kv_set(f"{OUTBOX}{event.run_id}", "")
                self._pending.discard(event.run_id)
                run = await store.get_run(event.run_id, with_steps=False)
                self.metrics.count_usage({}, run.usage)

    async def _deliver_finished(self, live: set[str]) -> None:
        """Runs that finished while their answer was still undelivered (the process died).

        Delivered under the thread's lease, and only while the outbox still says pending
        once it is held: two replicas sweeping at once must not both post the answer."""
        store = self.bot.store
        for key in await store.kv_pending(OUTBOX, "pending"):
            run_id = key.removeprefix(OUTBOX)
            if run_id in self._pending:
                continue  # this process is delivering it right now
            run = await store.get_run(run_id, with_steps=False)
            if not run.status.terminal:
                continue  # still running somewhere, or an orphan the sweep adopts
            name = f"thread:{run.thread_id}"
            owner = None if name in live else await self.replica.try_hold(name)
            if owner is None:
                continue  # someone answers in that thread now; a later sweep looks again
            try:
                await self._post_finished(key, run, await store.get_thread(run.thread_id))
            finally:
                await self.replica.release(name, owner)

    async def _post_finished(self, key: str, run: Run, thread: Thread) -> None:
        """Post the answer of ``run`` (finished, its outbox ``key`` pending) unless it was
        posted meanwhile, or there is none to post; the caller holds the thread's lease."""
        store = self.bot.store
        if await store.kv_get(key) != "pending" or run.id in self._pending:
            return  # delivered meanwhile
        if run.status not in (RunStatus.COMPLETED, RunStatus.FAILED):
            await store.kv_set(key, "")  # cancelled or expired: nothing to post
            return
        log.info("delivering the answer of run %s a stopped process finished", run.id)
        await self.deliver(thread.key, self._finished_events(run, thread))
        await store.kv_set(key, "")

    async def _finished_events(self, run: Run, thread: Thread) -> AsyncIterator[Event]:
        lang = _lang(thread)
        if run.status == RunStatus.COMPLETED:
            said = await self.bot.store.list_messages(thread.id, role="assistant")
            text = "\n\n".join(m.text for m in said if m.run_id == run.id)
        else:
            error = (
                StoreUnavailable("")
                if (run.last_error or {}).get("code") == "store_error"
                else None
            )
            detail = error.localized(lang) if error else (run.last_error or {}).get("message", "")
            text = t("run_failed", lang, message=detail)
        yield RunFinished(run.id, run.status, text, last_error=run.last_error)

    # --- sweep and recovery --------------------------------------------------------------

    async def sweep(self, *, min_age: float | None = None) -> int:
        """Pick up threads with waiting messages or orphaned runs; how many were started."""
        store = self.bot.store
        age = self.bot.settings.requeue_after if min_age is None else min_age
        candidates = set(await store.unanswered_threads(utcnow() - timedelta(seconds=age)))
        candidates.update(r.thread_id for r in await store.list_runs(statuses=ORPHANS))
        live = set(await store.live_leases("thread:"))
        await self._deliver_finished(live)
        if not candidates:
            return 0
        started = 0
        for thread_id in sorted(candidates):
            if f"thread:{thread_id}" in live or self.bot.thread_lock(thread_id).locked():
                continue
            self._spawn(self._pick_up(thread_id))
            started += 1
        return started

    async def _pick_up(self, thread_id: str) -> None:
        lock = self.bot.thread_lock(thread_id)
        if lock.locked():
            return
        async with lock:
            name = f"thread:{thread_id}"
            owner = await self.replica.try_hold(name)
            if owner is None:
                return  # another replica took it meanwhile
            try:
                thread = await self.bot.store.get_thread(thread_id)
                if thread.key.startswith("api:"):
                    # Assistants API threads are driven by their client: a message waits for
                    # its runs.create, and only the API knows a run's tools.
                    return
                await self._adopt(thread)
                if self.bot.model_ready:
                    await self._answer_waiting(thread)
            finally:
                await self.replica.release(name, owner)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def _logged() -> None:
            try:
                await work
            except Exception:
                log.exception("picking up a waiting thread failed")

        task = asyncio.create_task(_logged(), name="tallybot-pick-up")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.track(task)

    def track(self, task: asyncio.Task[Any]) -> None:
        """``task`` handles one delivery (a channel's event, a webhook update): :meth:`stop`
        cancels it when it is still going after the grace period."""
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def idle(self) -> None:
        """Wait until every thread picked up so far is answered (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _sweep_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if not self.accepting:
                continue
            try:
                await self.bot.engine.settle_broken()
                self.metrics.set_run_counts(await self.bot.store.run_counts())
                await self.sweep()
            except Exception:
                log.exception("sweep failed")

    async def start(self, interval: float = 2.0) -> None:
        """Start renewing leases, recover what crashed processes left, then sweep."""
        self.replica.start()
        await self.sweep(min_age=0)
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop(interval), name="tallybot-sweep")

    async def stop(self, grace: float, *, cancel_within: float = 5.0) -> bool:
        """Stop sweeping and admitting; let admitted runs (and the delivery of their answers)
        end within ``grace`` seconds; cancel the rest of the work, waiting ``cancel_within``
        seconds at most for it; then release the leases. True when everything finished in
        time; what did not is left live for the next process (or another replica) to adopt.

        Every step is bounded, so a platform that stopped answering (a post waiting out its
        client's 30 s timeout) cannot hold the process past ``grace + cancel_within``."""
        self.accepting = False
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.wait({self._sweeper}, timeout=cancel_within)
            self._sweeper = None
        self.admission.close()  # work waiting for a slot has not started: it is left
        done = await self.admission.drain(grace)
        work = {*self._tasks, *self._work, *self.admission.admitted} - {asyncio.current_task()}
        for task in work:
            task.cancel()
        if work:
            _, stuck = await asyncio.wait(work, timeout=cancel_within)
            for task in stuck:
                log.warning("still running after cancel, left behind: %r", task)
        await self.replica.stop()
        return done


def _lang(thread: Thread) -> str:
    return thread.lang or "en"
