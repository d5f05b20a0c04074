"""The facade every channel uses: :class:`Tallybot`.

A channel adapter only translates. It calls, for each inbound message::

    async for event in bot.handle(key, text, files=[Incoming(name, data)], lang=lang):
        ...  # render TextDelta / Reply / FileProduced / ApprovalRequired / RunFinished

``key`` is the channel key of the conversation (``console:<name>``,
``slack:<team>:<channel>:<thread_ts>``, ``telegram:<chat_id>:<topic_id or 0>``); the thread is
created on first use, in the book of its place (``console:default``, ``slack:<team>:<channel>``,
``telegram:<chat_id>``; see :mod:`core.bills.books`). Model-free commands (``/bill /add /show
/undo /export /report /history /new /steps /stop /help``) are recognised here, so every channel
gets them by passing the text through.

Approval buttons call :meth:`Tallybot.submit_tool_outputs`, which streams the rest of the run.
Expiry: :meth:`Tallybot.expire_due` (run periodically by :meth:`Tallybot.start_background`) moves
overdue ``requires_action`` runs to ``expired`` and calls the registered expiry listeners, so an
adapter can replace its buttons with "expired".

One run at a time per thread: a per-thread lock serialises runs; a message that arrives while a
run streams is stored at once and answered by the next run (several waiting messages are
answered together, in order). A message that arrives while a run waits for approval cancels
that run -- the person moved on -- and is answered by a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import commands, receipt
from core.assistant import AssistantSpec, load_assistant
from core.bills import Ledger, books
from core.bills.sales_days import read_sales_days
from core.channels import ChannelState
from core.config import Settings
from core.domain import FileRef, Run, RunStatus, Thread
from core.engine import ACTIVE, Engine
from core.errors import AlreadyHandled, FileRejected, StoreUnavailable, UserError
from core.events import Event, Reply
from core.files import FileIntake
from core.i18n import detect_lang, t
from core.models.base import Model
from core.store import Store
from core.tools import registry
from core.tools.base import ToolRegistry
from core.tools.code_interpreter.mode import OFF_NOTE
from core.transcribe import Transcriber
from core.vision import image_message

if TYPE_CHECKING:
    from core.service import Service

log = logging.getLogger(__name__)

ExpiryListener = Callable[[Run], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Incoming:
    """A file a person sent: bytes from a platform download, or a local path (console)."""

    name: str
    data: bytes | None = None
    path: Path | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError("Incoming file has neither data nor path")
        return Path(self.path).read_bytes()


def build_tools(
    settings: Settings, store: Store, ledger: Ledger, assistant: AssistantSpec
) -> tuple[ToolRegistry, list[Any]]:
    """The registry for ``assistant.tools``, plus the tools that hold resources to close."""
    return registry.build_tools(assistant.tools, registry.ToolDeps(settings, store, ledger))


class Tallybot:
    """Settings, store, ledger, file intake and engine, behind the few calls channels need."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: Engine,
        ledger: Ledger,
        intake: FileIntake,
        closeable: Sequence[Any] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.ledger = ledger
        self.intake = intake
        self._closeable = list(closeable)
        self._locks: dict[str, asyncio.Lock] = {}
        self._expiry_listeners: list[ExpiryListener] = []
        self._background: asyncio.Task[None] | None = None
        self.recovery: list[asyncio.Task[None]] = []
        self._warm_up: list[asyncio.Task[None]] = []
        # Set by ``tallybot serve`` (issue 10): leases across replicas, admission, metrics.
        self.service: Service | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        model: Model | None = None,
        assistant: AssistantSpec | None = None,
        tools: ToolRegistry | None = None,
        recover: bool = True,
        channel: str | None = None,
    ) -> Tallybot:
        """Open the store (applying migrations), build tools and model, recover crashed runs.

        ``model=None`` builds one from settings when a model is configured; otherwise the bot
        runs model-free (commands only). ``channel`` ("console", "slack", "telegram") limits
        recovery to that channel's threads, so processes serving different channels on one
        database never resume each other's runs.
        """
        settings.ensure_dirs()
        store = await Store.open(settings.db_url)
        spec = assistant or load_assistant(settings.assistant)
        ledger = Ledger(store, settings)
        closeable: list[Any] = []
        if tools is None:
            tools, closeable = build_tools(settings, store, ledger, spec)
            if "code_interpreter" in spec.tools and "code_interpreter" not in tools:
                spec = spec.with_note(OFF_NOTE)  # the model says in one line why it cannot compute
        if model is None and (settings.model_configured or settings.model.startswith("scripted:")):
            from core.models.provider import deferred_model

            model = deferred_model(settings)
        hooks = registry.ingest_hooks(tools.names(), store)
        intake = FileIntake(settings, store, on_ingested=hooks)
        engine = Engine(settings, store, model, tools, spec)
        bot = cls(settings, store, engine, ledger, intake, closeable)
        if recover:
            await bot._recover(channel)
        return bot

    async def close(self) -> None:
        if self._background:
            self._background.cancel()
            with contextlib.suppress(BaseException):
                await self._background
        for task in [*self.recovery, *self._warm_up]:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        for item in self._closeable:
            with contextlib.suppress(Exception):
                await item.aclose()
        await self.store.close()

    async def __aenter__(self) -> Tallybot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def model_ready(self) -> bool:
        return self.engine.model is not None

    def _lock(self, thread_id: str) -> asyncio.Lock:
        return self._locks.setdefault(thread_id, asyncio.Lock())

    def thread_lock(self, thread_id: str) -> asyncio.Lock:
        """The lock that serialises runs of one thread (for channels that drive the engine)."""
        return self._lock(thread_id)

    @contextlib.asynccontextmanager
    async def _turn(self, thread_id: str) -> AsyncIterator[None]:
        """The thread's lock; when serving, also its lease across processes and a run slot."""
        async with self._lock(thread_id):
            if self.service is None:
                yield
                return
            thread = await self.store.get_thread(thread_id)
            async with self.service.turn(thread):
                yield

    def _watch(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        return events if self.service is None else self.service.watch(events)

    # --- threads and files ---------------------------------------------------------------

    async def thread(
        self,
        key: str,
        *,
        lang: str | None = None,
        place: str | None = None,
        known: Thread | None = None,
        looked_up: bool = False,
    ) -> Thread:
        """The thread for a channel key (created on first use, in its book); remembers the
        language. ``place`` is a book key the adapter names (``tallybot chat --book``);
        ``known``: the thread of ``key`` the caller already read (not read again);
        ``looked_up``: the caller just looked ``key`` up and ``known`` is what it found."""
        thread = known if known or looked_up else await self.store.thread_by_key(key)
        if thread is None:
            thread = await self.store.create_thread(
                key, lang=lang, book=books.chooser(key, self.settings.book_scope, place)
            )
        if lang and thread.lang != lang:
            await self.store.update_thread(thread.id, lang=lang)
            thread.lang = lang
        if place and self.settings.book_scope == "place" and thread.book != place:
            # The thread moves to another book; its current bill stays in the old one.
            await self.store.update_thread(thread.id, book=place, current_bill_id=None)
            thread.book, thread.current_bill_id = place, None
        return thread

    async def attach(self, thread: Thread, incoming: Incoming) -> FileRef:
        """Store a file in the thread (raises FileRejected); sales files teach the catalog."""
        try:
            data = incoming.read()
        except OSError as exc:
            raise FileRejected(
                f"cannot read {incoming.name}: {exc.strerror or exc}",
                zh=f"无法读取文件 {incoming.name}：{exc.strerror or exc}",
            ) from exc
        ref = await self.intake.ingest(thread.id, incoming.name, data)
        if ref.kind == "table":
            # Prices seen in attached sales files (every sheet) fill /add and amend_bill later.
            with contextlib.suppress(UserError, ValueError):
                days = read_sales_days(Path(ref.path), ref.name, date.today().isoformat())
                items = [item for rows in days.days.values() for item in rows]
                await self.ledger.learn_prices(thread.id, items, source=ref.name)
        return ref

    async def active_run(self, thread_id: str) -> Run | None:
        runs = await self.store.list_runs(thread_id=thread_id, statuses=ACTIVE)
        return runs[-1] if runs else None

    # --- messages ------------------------------------------------------------------------

    async def handle(
        self,
        key: str,
        text: str,
        *,
        files: Sequence[Incoming] = (),
        lang: str | None = None,
        user: str | None = None,
        user_name: str | None = None,
        place: str | None = None,
    ) -> AsyncIterator[Event]:
        """Answer one inbound message: attach files, run a command or a model run.

        When the store refuses (disk full, database gone) the person is told to try again
        later and the delivery's receipt (:mod:`core.receipt`) fails, so it is not
        acknowledged as handled.

        ``user`` (the platform's id) and ``user_name`` are recorded on the bill revisions this
        message leads to; ``place`` names the book when the key alone does not (console).
        """
        try:
            async for event in self._handle(
                key, text, files=files, lang=lang, user=user, user_name=user_name, place=place
            ):
                yield event
        except Exception as exc:
            if not _store_error(exc):
                raise
            log.exception("the store failed while handling a message in %s", key)
            current = receipt.current()
            if current is not None:
                await current.failed()
            msg = t("store_unavailable", lang or detect_lang(text))
            yield Reply(t("run_failed", lang or detect_lang(text), message=msg), kind="error")

    async def _handle(
        self,
        key: str,
        text: str,
        *,
        files: Sequence[Incoming] = (),
        lang: str | None = None,
        user: str | None = None,
        user_name: str | None = None,
        place: str | None = None,
    ) -> AsyncIterator[Event]:
        problem = self.service.store_problem() if self.service is not None else None
        if problem:  # never write to a database file that is no longer there
            raise StoreUnavailable(problem)
        existing = await self.store.thread_by_key(key)
        lang = lang or detect_lang(text, default=(existing.lang if existing else None) or "en")
        thread = await self.thread(key, lang=lang, place=place, known=existing, looked_up=True)
        await books.remember_actor(self.store, thread, books.actor_for(key, user, user_name))
        attached: list[FileRef] = []
        for incoming in files:
            try:
                attached.append(await self.attach(thread, incoming))
            except FileRejected as exc:
                yield Reply(exc.localized(lang), kind="error")
        command = commands.parse(text)
        if command is not None:
            async for event in commands.run(self, thread, command, lang, attached):
                yield event
            return
        # Issue 13: a photo goes to a model that sees (or a clear reply says it cannot).
        text, refusal = image_message(self.settings, self.engine.model_name, attached, text, lang)
        if refusal is not None:
            yield refusal
        if not text.strip():
            for ref in attached:
                yield Reply(t("file_attached", lang, name=ref.name))
            return
        if not self.model_ready:
            yield Reply(t("no_model", lang), kind="help")
            return
        # Persisted before the model is called: nothing a person sent is lost.
        current = receipt.current()
        try:
            await self.store.add_message(
                thread.id,
                "user",
                text,
                file_ids=[f.id for f in attached],
                processed=current.claims if current is not None else (),
            )
        except AlreadyHandled:
            # Another process stored this delivery after our claim lapsed: a duplicate.
            log.warning("delivery in %s was stored by another process; skipped", key)
            return
        if current is not None:
            await current.stored()
        async with self._turn(thread.id):
            # Created and started in one transaction, unless a run waits for approval.
            waiting, run = await self.engine.start_run(thread)
            if waiting is not None:
                await self._withdraw(waiting)
                yield Reply(t("cancelled_for_new_message", lang), kind="info")
                _, run = await self.engine.start_run(thread, check_waiting=False)
            if run is None:
                return  # an earlier run already answered this message together with others
            async for event in self._watch(self.engine.execute(run, thread, lang)):
                yield event

    async def transcribe(self, name: str, data: bytes, lang: str | None = None) -> str:
        """A voice note as text (issue 13); raises UserError with a reply for the person."""
        return await self.transcriber.transcribe(name, data, lang)

    @cached_property
    def transcriber(self) -> Transcriber:
        """The provider's audio transcription (TALLYBOT_TRANSCRIBE_MODEL)."""
        return Transcriber(self.settings)

    async def submit_tool_outputs(
        self, run_id: str, decisions: Mapping[str, bool] | bool, *, lang: str | None = None
    ) -> AsyncIterator[Event]:
        """Approve (True) or deny (False) a waiting run's calls, all or by call id; stream on."""
        run = await self.store.get_run(run_id, with_steps=False)
        thread = await self.store.get_thread(run.thread_id)
        lang = lang or thread.lang or "en"
        async with self._turn(thread.id):
            events = self.engine.submit_tool_outputs(run_id, decisions, thread, lang)
            async for event in self._watch(events):
                yield event

    async def cancel(self, key: str) -> bool:
        """Stop the thread's active run, if any. True when something was cancelled."""
        thread = await self.store.thread_by_key(key)
        if thread is None:
            return False
        run = await self.active_run(thread.id)
        if run is None:
            return False
        if run.status == RunStatus.REQUIRES_ACTION:
            return await self._withdraw(run)
        return await self.engine.cancel(await self.store.get_run(run.id))

    async def _withdraw(self, run: Run) -> bool:
        """Cancel a run that waits for approval and tell the channels, as for an expiry."""
        full = await self.store.get_run(run.id)
        cancelled = await self.engine.cancel(full)
        if cancelled:
            await self._notify_closed([full])
        return cancelled

    # --- expiry and recovery -------------------------------------------------------------

    def on_expired(self, callback: ExpiryListener) -> None:
        """Call ``callback(run)`` whenever a run stops waiting for approval without an answer:
        it expired (``run.status`` is ``expired``) or was withdrawn by a new message, /stop or
        /new (``cancelled``). Channels use it to take the approval buttons away."""
        self._expiry_listeners.append(callback)

    async def expire_due(self) -> list[Run]:
        expired = await self.engine.expire_due()
        await self._notify_closed(expired)
        return expired

    async def _notify_closed(self, runs: list[Run]) -> None:
        for run in runs:
            for listener in self._expiry_listeners:
                try:
                    await listener(run)
                except Exception:  # one adapter's failure must not stop the others
                    log.exception("expiry listener failed for %s", run.id)

    def start_background(self, interval: float = 5.0) -> None:
        """Expire overdue approvals every ``interval`` seconds until :meth:`close`."""

        async def _loop() -> None:
            while True:
                try:
                    await self.expire_due()
                except Exception:
                    log.exception("expiry sweep failed")
                await asyncio.sleep(interval)

        if self._background is None:
            self._background = asyncio.create_task(_loop(), name="tallybot-expiry")
        self.warm_up()

    def warm_up(self) -> None:
        """Pre-start sandbox kernels so the first analysis does not pay the start-up.

        Long-running channels call this (via :meth:`start_background`); one-shot commands and
        tests do not, so they never spawn interpreters they will not use."""
        for item in self._closeable:
            start = getattr(item, "start", None)
            if start is not None:
                self._warm_up.append(asyncio.create_task(start(), name="tallybot-warm-up"))

    async def _recover(self, channel: str | None = None) -> None:
        """Resume runs a crash interrupted; fail them cleanly when no model is configured."""
        for run in await self.engine.interrupted_runs():
            thread = await self.store.get_thread(run.thread_id)
            if channel is not None and not thread.key.startswith(f"{channel}:"):
                continue  # another process serves that channel and recovers its own runs
            if thread.key.startswith("api:"):
                continue  # the Assistants API resumes its runs with their own tools (issue 14)
            await self.engine.prepare_resume(run)
            if run.status.terminal:
                continue
            if not self.model_ready:
                await self.engine.fail_interrupted(run, thread.lang or "en")
                continue
            self.recovery.append(asyncio.create_task(self._resume(run, thread)))

    async def _resume(self, run: Run, thread: Thread) -> None:
        async with self._lock(thread.id):
            log.info("resuming run %s after restart", run.id)
            async for _event in self.engine.execute(run, thread, thread.lang or "en"):
                pass

    # --- for chat adapters (bots/ never imports the store) -------------------------------

    @cached_property
    def channels(self) -> ChannelState:
        """Once-only deliveries, persisted records and thread lookups for chat platforms."""
        return ChannelState(
            self.store, lambda: self.service.replica if self.service is not None else None
        )


def _store_error(exc: BaseException) -> bool:
    """SQLAlchemy and OS errors (disk full, file gone): the store, not the person's input."""
    return isinstance(exc, (StoreUnavailable, OSError)) or type(exc).__module__.startswith(
        "sqlalchemy"
    )
