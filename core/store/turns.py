"""One turn's writes and reads, each one transaction (issue 12).

The engine writes where crash recovery needs it -- the run started, the calls recorded, each
tool output, the answer stored (its ``message_creation`` step is inserted with it, not at
the first text) -- and reads what a model request is built from in one go: the
thread, its files and the history window (never every run of the thread) -- for a run's first
request in the transaction that starts it (:meth:`TurnsRepo.start_run`; on PostgreSQL right
after it). What the engine already holds in memory (the run, its steps and calls) is written,
not read back. On PostgreSQL each write is one statement (:mod:`core.store.pg_turns`).

Status changes go through the same checked pieces as :meth:`RunsRepo.set_run_status` and
:meth:`RunsRepo.set_step_status` (:func:`core.store.runs.run_change` and friends), so the
status log of a run is row for row what the one-change-per-transaction methods wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from core.domain import (
    FileRef,
    Message,
    Run,
    RunStatus,
    RunStep,
    StepStatus,
    Thread,
    ToolCall,
    utcnow,
)
from core.errors import IllegalTransition, NotFound
from core.store import pg_turns
from core.store.base import Database
from core.store.fast import Joined, Prepared
from core.store.files import FilesRepo
from core.store.history import History, HistoryCache, read_history
from core.store.runs import (
    CALL_SEQ,
    RUN_SET,
    RunsRepo,
    insert_step,
    moved_first,
    run_applied,
    run_change,
    step_applied,
    step_change,
    step_log,
    step_row,
    write_output,
    write_run_status,
    write_step_status,
)
from core.store.tables import files, messages, runs, status_log, threads, tool_calls
from core.store.threads import ThreadsRepo, insert_message

# Statuses of a run that is not finished (core.engine.ACTIVE).
_ACTIVE = [
    s.value
    for s in (
        RunStatus.QUEUED,
        RunStatus.IN_PROGRESS,
        RunStatus.REQUIRES_ACTION,
        RunStatus.CANCELLING,
    )
]


@dataclass(slots=True)
class TurnContext:
    """What one model request or tool call is built from, read in one transaction."""

    thread: Thread
    files: list[FileRef] = field(default_factory=list)
    history: History | None = None


class Started(NamedTuple):
    """What :meth:`TurnsRepo.start_run` did: the run that waits for approval (nothing
    written), or the run created; with it, when asked, what its first request reads."""

    waiting: Run | None
    run: Run | None
    context: TurnContext | None = None


# Prepared once (core.store.fast): the hot path's statements, run on the driver's cursor.
#
# The thread and its files in one statement (issue 12: a round trip less on PostgreSQL, three
# times a turn): the thread LEFT OUTER JOIN its files, one row per file in created_at order --
# the order list_files gives -- or one row of NULL file columns when it has none; no row when
# there is no such thread.
_FILES_JOINED = Joined(files, threads, "f_")
_CONTEXT = Prepared(
    sa.select(threads, *_FILES_JOINED.columns)
    .select_from(threads.outerjoin(files, files.c.thread_id == threads.c.id))
    .where(threads.c.id == sa.bindparam("w_thread"))
    .order_by(files.c.created_at)
)
# The newest user message no run answers yet (NULL when there is none).
_UPTO = sa.select(sa.func.max(messages.c.seq).label("upto")).where(
    messages.c.thread_id == sa.bindparam("w_thread"),
    messages.c.role == "user",
    messages.c.seq
    > sa.select(sa.func.coalesce(sa.func.max(runs.c.upto_seq), 0))
    .where(runs.c.thread_id == sa.bindparam("w_thread"))
    .scalar_subquery(),
)
_UNANSWERED = Prepared(_UPTO)
# The thread's newest run that is not finished, for start_run's stop_at_waiting: its id. The
# statuses are bound one by one, not as a list: a list is an "expanding" parameter, rendered
# into the SQL anew at every execution.
_active = runs.alias("active")
_LAST_ACTIVE_ID = (
    sa.select(_active.c.id)
    .where(
        _active.c.thread_id == sa.bindparam("w_thread"),
        _active.c.status.in_([sa.literal(s, _active.c.status.type) for s in _ACTIVE]),
    )
    .order_by(_active.c.created_at.desc(), _active.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
# Both in one statement (a round trip less on PostgreSQL): always exactly one row, the
# aggregate's, with ``upto`` and the newest unfinished run's columns (NULL when there is none).
_upto = _UPTO.subquery("unanswered")
_ACTIVE_AND_UNANSWERED = Prepared(
    sa.select(runs, _upto.c.upto).select_from(_upto.outerjoin(runs, runs.c.id == _LAST_ACTIVE_ID))
)
# A new step's calls, numbered in the INSERT (core.store.runs.CALL_SEQ).
_INSERT_CALL = Prepared(
    tool_calls.insert().values(seq=CALL_SEQ + sa.bindparam("w_index", type_=sa.Integer))
)
_INSERT_RUN = Prepared(runs.insert())
_LOG = Prepared(status_log.insert())


class TurnsRepo:
    """The hot path of a turn: few transactions, no re-reads of what the engine holds."""

    db: Database
    _history_cache: HistoryCache | None = None

    def _history(self) -> HistoryCache:
        # What the history window read and never changes (core.store.history): the window's
        # ids are read every turn, the rows of its finished runs and messages only once.
        if self._history_cache is None:
            self._history_cache = HistoryCache()
        return self._history_cache

    async def start_run(
        self,
        run: Run,
        *,
        expires_at: datetime | None,
        stop_at_waiting: bool = False,
        window: int | None = None,
    ) -> Started:
        """Create ``run`` answering the thread's unanswered user messages and, with
        ``expires_at``, move it ``queued -> in_progress``: one transaction.

        Returns :class:`Started`: with ``stop_at_waiting``, a run of the thread that waits for
        approval is returned as ``waiting`` and nothing is written; ``run`` is None when every
        user message is answered already. ``run.upto_seq`` is set here. With ``window`` (and
        ``expires_at``), the same transaction also reads what the run's first model request
        is built from -- :meth:`turn_context` with that window -- as ``context`` (PostgreSQL:
        one statement starts the run and a read right after it reads that)."""
        started: dict[str, Any] = {"expires_at": expires_at}

        def work(conn: sa.Connection) -> Started:
            thread = {"w_thread": run.thread_id}
            if stop_at_waiting:
                row = _ACTIVE_AND_UNANSWERED.first(conn, thread)
                if row.status == RunStatus.REQUIRES_ACTION.value:
                    return Started(RunsRepo._run(row), None)
                upto = row.upto
            else:
                upto = _UNANSWERED.scalar(conn, thread)
            if upto is None:
                return Started(None, None)
            run.upto_seq = upto
            if expires_at is None:
                _insert_run(conn, run, [])
                return Started(None, run)
            # Created and moved queued -> in_progress at once: the row is written as the move
            # leaves it (nobody can see it in between), and both log rows as before.
            now = run_change(run, RunStatus.IN_PROGRESS, started)
            queued = run.status
            run_applied(run, RunStatus.IN_PROGRESS, started)
            _insert_run(conn, run, [(queued, run.created_at), (run.status, now)])
            if window is None:
                return Started(None, run)
            ctx = _read_context(conn, run.thread_id)
            ctx.history = read_history(conn, run, window, self._history())
            return Started(None, run, ctx)

        if self.db.folds_writes:
            return await self._start_run_alone(run, expires_at, stop_at_waiting, window)
        try:
            return await self.db.write(work)
        except BaseException:
            run.status, run.started_at = RunStatus.QUEUED, None  # as it was: nothing stored
            raise

    async def _start_run_alone(
        self, run: Run, expires_at: datetime | None, stop_at_waiting: bool, window: int | None
    ) -> Started:
        """:meth:`start_run` on PostgreSQL: what to answer, the run and its log rows in ONE
        statement (:func:`core.store.pg_turns.start_run`, autocommit), then the first
        request's context in one read. ``run`` is moved in memory first, and put back when
        nothing was stored."""
        before = run.status, run.started_at, run.expires_at
        log = [(run.status, run.created_at)]
        if expires_at is not None:  # created and moved queued -> in_progress at once
            started: dict[str, Any] = {"expires_at": expires_at}
            now = run_change(run, RunStatus.IN_PROGRESS, started)
            run_applied(run, RunStatus.IN_PROGRESS, started)
            log.append((run.status, now))
        row = _run_row(run)
        params = {"w_thread": run.thread_id, **pg_turns.prefixed("n_", row)}
        for i, (status, at) in enumerate(log):
            params.update(pg_turns.log_params(i, run.id, None, status.value, at))
        decide = _ACTIVE_AND_UNANSWERED if stop_at_waiting else _UNANSWERED
        stmt = pg_turns.start_run(decide.stmt, stop_at_waiting, tuple(row), len(log))
        try:
            found = await self.db.write_alone(lambda conn: stmt.first(conn, params))
        except BaseException:
            run.status, run.started_at, run.expires_at = before  # as it was: nothing stored
            raise
        waiting = stop_at_waiting and found.status == RunStatus.REQUIRES_ACTION.value
        if waiting or found.upto is None:
            run.status, run.started_at, run.expires_at = before
            return Started(RunsRepo._run(found) if waiting else None, None)
        run.upto_seq = found.upto
        if expires_at is None or window is None:
            return Started(None, run)
        return Started(None, run, await self.turn_context(run.thread_id, run, window=window))

    async def turn_context(
        self, thread_id: str, run: Run | None = None, *, window: int = 0
    ) -> TurnContext:
        """The thread (its current bill may have moved) and its files; with ``run``, also the
        history window before it: at most ``window`` earlier runs and their user messages."""

        def work(conn: sa.Connection) -> TurnContext:
            ctx = _read_context(conn, thread_id)
            if run is not None:
                ctx.history = read_history(conn, run, window, self._history())
            return ctx

        return await self.db.read(work)

    async def record_calls(
        self, run: Run, step: RunStep, calls: list[ToolCall], *, usage: dict[str, int]
    ) -> TurnContext:
        """A new ``tool_calls`` step (in memory already, details included) with its calls and
        the run's usage so far, before any call runs: one transaction, which also reads the
        thread and its files for the first call (:meth:`turn_context`)."""

        def work(conn: sa.Connection) -> TurnContext:
            insert_step(conn, step)
            if calls:
                _INSERT_CALL.run(
                    conn,
                    [
                        {"w_run": run.id, "w_step": step.id, "w_index": i, **_call_row(c, step)}
                        for i, c in enumerate(calls)
                    ],
                )
            RUN_SET.run(conn, {"w_id": run.id, "usage": usage})
            return _read_context(conn, run.thread_id)

        def one_statement(conn: sa.Connection) -> TurnContext:
            row = step_row(step)
            params = {
                "w_thread": run.thread_id,
                **pg_turns.prefixed("s_", row),
                **pg_turns.prefixed("l_", step_log(step)[0]),
                "u_id": run.id,
                "u_usage": usage,
                "w_run": run.id,
                "w_step": step.id,
            }
            added = [_call_row(c, step) for c in calls]
            for i, call_row in enumerate(added):
                params.update(pg_turns.prefixed(f"c{i}_", call_row))
            columns = tuple(added[0]) if added else ()
            stmt = pg_turns.record_calls(_CONTEXT.stmt, tuple(row), columns, len(added))
            return _context(stmt.all(conn, params), run.thread_id)

        if self.db.folds_writes:
            ctx = await self.db.write_alone(one_statement)
        else:
            ctx = await self.db.write(work)
        run.usage = usage
        return ctx

    async def store_output(
        self,
        call: ToolCall,
        output: str,
        *,
        is_error: bool,
        complete: RunStep | None,
        thread_id: str,
    ) -> TurnContext:
        """A call's output; ``complete``: its step, whose last open call this is, completes
        too. One transaction, which reads the thread and its files as the call left them,
        for the next call or model request (:meth:`turn_context`)."""
        now = utcnow()
        done = step_change(complete, StepStatus.COMPLETED, None) if complete else None

        def work(conn: sa.Connection) -> TurnContext:
            write_output(conn, call, output, is_error, now)
            if complete is not None and done is not None:
                write_step_status(conn, complete, StepStatus.COMPLETED, done[1], done[0])
            return _read_context(conn, thread_id)

        def one_statement(conn: sa.Connection) -> TurnContext:
            params: dict[str, Any] = {
                "w_thread": thread_id,
                "o_run": call.run_id,
                "o_id": call.id,
                "o_output": output,
                "o_is_error": is_error,
                "o_completed_at": now,
            }
            columns = None
            if complete is not None and done is not None:
                columns = tuple(done[1])
                params.update(pg_turns.prefixed("t_", done[1]))
                params["t_id"] = complete.id
                status = done[1]["status"]
                params.update(
                    pg_turns.log_params("", complete.run_id, complete.id, status, done[0])
                )
            stmt = pg_turns.store_output(_CONTEXT.stmt, columns)
            return _context(stmt.all(conn, params), thread_id)

        if self.db.folds_writes:
            ctx = await self.db.write_alone(one_statement)
        else:
            ctx = await self.db.write(work)
        call.output, call.is_error, call.completed_at = output, is_error, now
        if complete is not None and done is not None:
            step_applied(complete, StepStatus.COMPLETED, done[0], None)
        return ctx

    async def keep_partial(self, step: RunStep, text: str) -> None:
        """A ``message_creation`` step (in memory, not stored yet) whose stream broke off
        after ``text``: inserted ``in_progress`` with that text, as its insert at the first
        text and a text update left it; the failure, cancel or recovery that follows moves
        it on. One transaction."""
        await self.db.write(lambda conn: insert_step(conn, step, {"text": text}))
        step.text = text

    async def finish_message(
        self,
        run: Run,
        step: RunStep,
        text: str,
        *,
        message_id: str | None,
        usage: dict[str, int],
        complete: dict[str, Any] | None = None,
    ) -> None:
        """A ``message_creation`` step done: the step (in memory since the first text, not
        stored yet) inserted ``completed`` with its text and details, and the two status-log
        rows a separate insert and completion wrote (``in_progress`` at its creation, then
        ``completed``); the assistant message (``message_id``, None for an empty answer); the
        run's usage; and with ``complete`` (the values for the run's row) the run
        ``in_progress -> completed``. One transaction. If someone else moved the run first,
        the step and message are kept and :class:`~core.errors.IllegalTransition` is raised,
        as a separate status change would."""
        step_now, step_values = step_change(step, StepStatus.COMPLETED, text)
        logs = [(step.status, step.created_at), (StepStatus.COMPLETED, step_now)]
        run_values = {**(complete or {}), "usage": usage}
        run_now = run_change(run, RunStatus.COMPLETED, run_values) if complete is not None else None
        message = Message(
            id=message_id or "", thread_id=run.thread_id, role="assistant", text=text, run_id=run.id
        )

        def work(conn: sa.Connection) -> Exception | None:
            # The step's log rows go in with the run's (one INSERT less), in the same order.
            logged = insert_step(conn, step, step_values, logs, logged=False)
            if message_id is not None:
                message.seq = insert_message(conn, message)
            raced: Exception | None = None
            if run_now is not None:
                try:
                    # Its UPDATE matched nothing when it raises: nothing to undo.
                    write_run_status(conn, run, RunStatus.COMPLETED, run_values, run_now, logged)
                    return None
                except IllegalTransition as exc:
                    raced = exc
            RUN_SET.run(conn, {"w_id": run.id, "usage": usage})
            _LOG.run(conn, logged)
            return raced

        def one_statement(conn: sa.Connection) -> bool:
            """True unless the run was to move and someone else moved it first."""
            answer = message if message_id is not None else None
            moved_to = (
                None if run_now is None else {**run_values, "status": RunStatus.COMPLETED.value}
            )
            columns, message_columns, params = pg_turns.answer_params(
                run, step, step_values, logs, answer, usage
            )
            move = None
            if moved_to is not None:
                move = tuple(moved_to)
                params.update(pg_turns.move_params(run, moved_to, run_now))
            stmt = pg_turns.finish_message(columns, message_columns, move)
            got = stmt.first(conn, params)
            if answer is not None:
                answer.seq = got.seq
            return moved_to is None or bool(got.moved)

        if self.db.folds_writes:
            raced: Exception | None = None
            if not await self.db.write_alone(one_statement):  # kept: the step, message, usage
                raced = await self.db.read(lambda c: moved_first(c, run, RunStatus.COMPLETED))
        else:
            raced = await self.db.write(work)
        step_applied(step, StepStatus.COMPLETED, step_now, text)
        run.usage = usage
        if raced is not None:
            raise raced
        if run_now is not None:
            run_applied(run, RunStatus.COMPLETED, run_values)


def _read_context(conn: sa.Connection, thread_id: str) -> TurnContext:
    """The thread and its files (:data:`_CONTEXT`, one statement)."""
    return _context(_CONTEXT.all(conn, {"w_thread": thread_id}), thread_id)


def _context(rows: list[Any], thread_id: str) -> TurnContext:
    """The thread and its files from :data:`_CONTEXT`'s rows."""
    if not rows:
        raise NotFound(f"no thread {thread_id}")
    return TurnContext(
        ThreadsRepo._thread(rows[0]),
        [FilesRepo._file(f) for r in rows if (f := _FILES_JOINED.part(r)) is not None],
    )


def _call_row(call: ToolCall, step: RunStep) -> dict[str, Any]:
    """A new call's columns (its seq aside)."""
    return {
        "run_id": call.run_id,
        "id": call.id,
        "step_id": step.id,
        "name": call.name,
        "arguments": call.arguments,
        "approval": call.approval,
        "is_error": False,
        "created_at": call.created_at,
    }


def _run_row(run: Run) -> dict[str, Any]:
    """A new run's columns, its ``upto_seq`` aside."""
    return {
        "id": run.id,
        "thread_id": run.thread_id,
        "model": run.model,
        "status": run.status.value,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "expires_at": run.expires_at,
        "usage": run.usage,
    }


def _insert_run(conn: sa.Connection, run: Run, log: list[tuple[RunStatus, datetime]]) -> None:
    """The run's row as ``run`` is now, and its status-log rows (``log``; by default the one
    of its status)."""
    _INSERT_RUN.run(conn, {**_run_row(run), "upto_seq": run.upto_seq})
    rows = log or [(run.status, run.created_at)]
    _LOG.run(conn, [{"run_id": run.id, "status": s.value, "at": at} for s, at in rows])
