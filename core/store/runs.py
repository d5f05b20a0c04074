"""Runs, their steps and tool calls, and the status log.

Every status change goes through :meth:`RunsRepo.set_run_status` /
:meth:`RunsRepo.set_step_status`, which check the transition table and persist the timestamp and
a status-log row in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.domain import (
    Run,
    RunStatus,
    RunStep,
    StepStatus,
    StepType,
    ToolCall,
    check_run_transition,
    check_step_transition,
    new_id,
    utcnow,
)
from core.errors import IllegalTransition, NotFound
from core.store.base import Database
from core.store.fast import Joined, Prepared
from core.store.tables import run_steps, runs, status_log, tool_calls

_RUN_STAMP = {
    RunStatus.IN_PROGRESS: "started_at",
    RunStatus.COMPLETED: "completed_at",
    RunStatus.FAILED: "failed_at",
    RunStatus.CANCELLED: "cancelled_at",
}
_STEP_STAMP = {
    StepStatus.COMPLETED: "completed_at",
    StepStatus.FAILED: "failed_at",
    StepStatus.CANCELLED: "cancelled_at",
    StepStatus.EXPIRED: "expired_at",
}


# The steps of runs with their calls, in one statement (issue 12: a round trip less on
# PostgreSQL for every run read with its steps, the history window's included): run_steps
# LEFT OUTER JOIN tool_calls, in (run, step seq, call seq) order -- one row per call, one row
# of NULL call columns for a step without calls (:class:`core.store.fast.Joined`).
_CALLS_JOINED = Joined(tool_calls, run_steps, "c_")
_WITH_CALLS = sa.select(run_steps, *_CALLS_JOINED.columns).select_from(
    run_steps.outerjoin(
        tool_calls,
        sa.and_(tool_calls.c.run_id == run_steps.c.run_id, tool_calls.c.step_id == run_steps.c.id),
    )
)
_STEPS_OF = _WITH_CALLS.where(
    run_steps.c.run_id.in_(sa.bindparam("w_runs", expanding=True))
).order_by(run_steps.c.run_id, run_steps.c.seq, tool_calls.c.seq)
# The same for one run, the common case of a turn's history (the run before it): no expanding
# IN to render, so it runs on the driver's cursor (core.store.fast).
_STEPS_OF_ONE = Prepared(
    _WITH_CALLS.where(run_steps.c.run_id == sa.bindparam("w_run")).order_by(
        run_steps.c.seq, tool_calls.c.seq
    )
)


class RunsRepo:
    """Runs (with their status machine), run steps, tool calls and each run's status history."""

    db: Database

    @staticmethod
    def _run(row: Any) -> Run:
        return Run(
            id=row.id,
            thread_id=row.thread_id,
            model=row.model,
            status=RunStatus(row.status),
            upto_seq=row.upto_seq,
            created_at=row.created_at,
            started_at=row.started_at,
            completed_at=row.completed_at,
            failed_at=row.failed_at,
            cancelled_at=row.cancelled_at,
            expires_at=row.expires_at,
            last_error=row.last_error,
            usage=dict(row.usage or {}),
            required_action=row.required_action,
            incomplete_details=row.incomplete_details,
        )

    async def create_run(self, run: Run) -> Run:
        def work(conn: sa.Connection) -> None:
            conn.execute(
                runs.insert().values(
                    id=run.id,
                    thread_id=run.thread_id,
                    model=run.model,
                    status=run.status.value,
                    upto_seq=run.upto_seq,
                    created_at=run.created_at,
                    expires_at=run.expires_at,
                    usage=run.usage,
                )
            )
            conn.execute(
                status_log.insert().values(
                    run_id=run.id, status=run.status.value, at=run.created_at
                )
            )

        await self.db.write(work)
        return run

    async def get_run(self, run_id: str, *, with_steps: bool = True) -> Run:
        def work(conn: sa.Connection) -> Run:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"no run {run_id}")
            run = self._run(row)
            if with_steps:
                run.steps = self._steps_of(conn, [run_id]).get(run_id, [])
            return run

        return await self.db.read(work)

    async def load_steps(self, runs: list[Run]) -> None:
        """Fill ``run.steps`` of many runs with two queries in all (history building)."""
        if not runs:
            return
        ids = [r.id for r in runs]
        by_run = await self.db.read(lambda conn: self._steps_of(conn, ids))
        for run in runs:
            run.steps = by_run.get(run.id, [])

    @staticmethod
    def _steps_of(conn: sa.Connection, run_ids: list[str]) -> dict[str, list[RunStep]]:
        rows: Sequence[Any]
        if len(run_ids) == 1:
            rows = _STEPS_OF_ONE.all(conn, {"w_run": run_ids[0]})
        else:
            rows = conn.execute(_STEPS_OF, {"w_runs": run_ids}).all()
        steps: dict[str, RunStep] = {}
        for r in rows:
            step = steps.get(r.id)
            if step is None:
                step = steps[r.id] = RunStep(
                    id=r.id,
                    run_id=r.run_id,
                    type=StepType(r.type),
                    status=StepStatus(r.status),
                    text=r.text,
                    created_at=r.created_at,
                    completed_at=r.completed_at,
                    details=dict(r.details or {}),
                )
            if (call := _CALLS_JOINED.part(r)) is not None:
                step.tool_calls.append(RunsRepo._call(call))
        by_run: dict[str, list[RunStep]] = {}
        for step in steps.values():  # insertion order is (run, seq) order
            by_run.setdefault(step.run_id, []).append(step)
        return by_run

    @staticmethod
    def _call(c: Any) -> ToolCall:
        return ToolCall(
            id=c.id,
            run_id=c.run_id,
            step_id=c.step_id,
            name=c.name,
            arguments=c.arguments,
            output=c.output,
            is_error=c.is_error,
            approval=c.approval,
            created_at=c.created_at,
            completed_at=c.completed_at,
        )

    async def list_runs(
        self,
        *,
        thread_id: str | None = None,
        statuses: Iterable[RunStatus] | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        q = sa.select(runs)
        if thread_id is not None:
            q = q.where(runs.c.thread_id == thread_id)
        if statuses is not None:
            q = q.where(runs.c.status.in_([s.value for s in statuses]))
        q = q.order_by(runs.c.created_at, runs.c.id)
        if limit:
            q = q.limit(limit)
        rows = await self.db.read(lambda conn: conn.execute(q).all())
        return [self._run(r) for r in rows]

    async def set_run_status(self, run: Run, new: RunStatus, **values: Any) -> Run:
        """Move ``run`` to ``new`` (checked against the table), stamp it, log it; in place."""
        now = run_change(run, new, values)
        await self.db.write(lambda conn: write_run_status(conn, run, new, values, now))
        return run_applied(run, new, values)

    async def update_run(self, run: Run, **values: Any) -> None:
        """Non-status fields: usage, required_action, last_error, expires_at, upto_seq."""
        await self.db.write(lambda conn: RUN_SET.run(conn, {"w_id": run.id, **values}))
        for key, value in values.items():
            setattr(run, key, value)

    async def run_status(self, run_id: str) -> RunStatus:
        value = await self.db.read(
            lambda conn: conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar()
        )
        if value is None:
            raise NotFound(f"no run {run_id}")
        return RunStatus(value)

    async def status_history(self, run_id: str) -> list[tuple[str | None, str, datetime]]:
        q = (
            sa.select(status_log.c.step_id, status_log.c.status, status_log.c.at)
            .where(status_log.c.run_id == run_id)
            .order_by(status_log.c.id)
        )
        rows = await self.db.read(lambda conn: conn.execute(q).all())
        return [(r.step_id, r.status, r.at) for r in rows]

    # --- steps and tool calls --------------------------------------------------------------

    async def add_step(self, run: Run, type_: StepType) -> RunStep:
        step = RunStep(id=new_id("step"), run_id=run.id, type=type_)
        await self.db.write(lambda conn: insert_step(conn, step))
        run.steps.append(step)
        return step

    async def set_step_status(
        self, step: RunStep, new: StepStatus, *, text: str | None = None
    ) -> None:
        now, values = step_change(step, new, text)
        await self.db.write(lambda conn: write_step_status(conn, step, new, values, now))
        step_applied(step, new, now, text)

    async def set_step_details(self, step: RunStep, details: dict[str, Any]) -> None:
        """Replace a step's details (its reasoning); issue 13."""
        await self.db.write(
            lambda conn: conn.execute(
                run_steps.update().where(run_steps.c.id == step.id).values(details=details)
            )
        )
        step.details = details

    async def add_tool_call(self, step: RunStep, call: ToolCall) -> ToolCall:
        def work(conn: sa.Connection) -> None:
            seq = conn.execute(
                sa.select(sa.func.count())
                .select_from(tool_calls)
                .where(tool_calls.c.run_id == call.run_id)
            ).scalar_one()
            conn.execute(
                tool_calls.insert().values(
                    run_id=call.run_id,
                    id=call.id,
                    step_id=step.id,
                    seq=seq,
                    name=call.name,
                    arguments=call.arguments,
                    approval=call.approval,
                    is_error=False,
                    created_at=call.created_at,
                )
            )

        await self.db.write(work)
        step.tool_calls.append(call)
        return call

    async def set_tool_output(self, call: ToolCall, output: str, *, is_error: bool) -> None:
        now = utcnow()
        await self.db.write(lambda conn: write_output(conn, call, output, is_error, now))
        call.output, call.is_error, call.completed_at = output, is_error, now

    async def set_tool_approval(self, call: ToolCall, approval: str) -> None:
        await self.db.write(
            lambda conn: conn.execute(
                tool_calls.update()
                .where(tool_calls.c.run_id == call.run_id, tool_calls.c.id == call.id)
                .values(approval=approval)
            )
        )
        call.approval = approval


# --- one status change, as sync pieces a combined transaction puts together (issue 12) -----
#
# The hot path's statements are built once and run on the driver's cursor (core.store.fast).

_LOG = Prepared(status_log.insert())
_RUN_MOVE = Prepared(
    runs.update().where(runs.c.id == sa.bindparam("w_id"), runs.c.status == sa.bindparam("w_from"))
)
RUN_SET = Prepared(runs.update().where(runs.c.id == sa.bindparam("w_id")))
_STEP_SET = Prepared(run_steps.update().where(run_steps.c.id == sa.bindparam("w_id")))
_CALL_SET = Prepared(
    tool_calls.update().where(
        tool_calls.c.run_id == sa.bindparam("w_run"), tool_calls.c.id == sa.bindparam("w_id")
    )
)
# A new step's seq, in the INSERT itself: the run's (``w_run``) steps so far.
STEP_SEQ = (
    sa.select(sa.func.count())
    .select_from(run_steps)
    .where(run_steps.c.run_id == sa.bindparam("w_run"))
    .scalar_subquery()
)
# The calls of a new step (``w_step``), numbered after the run's earlier calls in the same
# statement (as run_steps' seq is), plus each call's index: the count leaves out the step's own
# calls, so a batch's seqs are the earlier calls' count + its index whether or not a row of the
# batch sees the ones before it.
CALL_SEQ = (
    sa.select(sa.func.count())
    .select_from(tool_calls)
    .where(
        tool_calls.c.run_id == sa.bindparam("w_run"),
        tool_calls.c.step_id != sa.bindparam("w_step"),
    )
    .scalar_subquery()
)
_STEP_INSERT = Prepared(run_steps.insert().values(seq=STEP_SEQ))
_RUN_STATUS = Prepared(sa.select(runs.c.status).where(runs.c.id == sa.bindparam("w_id")))


def write_output(
    conn: sa.Connection, call: ToolCall, output: str, is_error: bool, now: datetime
) -> None:
    _CALL_SET.run(
        conn,
        {
            "w_run": call.run_id,
            "w_id": call.id,
            "output": output,
            "is_error": is_error,
            "completed_at": now,
        },
    )


def run_change(run: Run, new: RunStatus, values: dict[str, Any]) -> datetime:
    """Check ``run.status -> new`` against the table; add the status's stamp to ``values``."""
    check_run_transition(run.status, new)
    now = utcnow()
    stamp = _RUN_STAMP.get(new)
    if stamp and not (stamp == "started_at" and run.started_at):
        values[stamp] = now
    return now


def write_run_status(
    conn: sa.Connection,
    run: Run,
    new: RunStatus,
    values: dict[str, Any],
    now: datetime,
    earlier: Sequence[dict[str, Any]] = (),
) -> None:
    """The update (only from the status ``run`` is in) and its status-log row; ``earlier``:
    status-log rows of the same transaction written before it, in the same INSERT (one
    statement less). When the update matches nothing, nothing is logged, ``earlier`` neither."""
    params = {"w_id": run.id, "w_from": run.status.value, **values, "status": new.value}
    if _RUN_MOVE.run(conn, params) != 1:
        raise moved_first(conn, run, new)
    row = {"run_id": run.id, "status": new.value, "at": now}
    # Rows of one executemany have the same columns: a step's row has its step_id.
    _LOG.run(conn, [*earlier, {**row, "step_id": None}] if earlier else row)


def moved_first(conn: sa.Connection, run: Run, new: RunStatus) -> IllegalTransition:
    """The error when a move of ``run`` to ``new`` matched nothing: someone else moved it
    first (cancel racing completion); its status is read again for the message."""
    current = _RUN_STATUS.scalar(conn, {"w_id": run.id})
    return IllegalTransition(
        f"run {run.id} is {current}, not {run.status.value}; cannot move to {new.value}"
    )


def run_applied(run: Run, new: RunStatus, values: dict[str, Any]) -> Run:
    """``run`` in memory as :func:`write_run_status` left it in the database."""
    run.status = new
    for key, value in values.items():
        if hasattr(run, key):
            setattr(run, key, value)
    return run


def step_change(
    step: RunStep, new: StepStatus, text: str | None
) -> tuple[datetime, dict[str, Any]]:
    """Check ``step.status -> new``; the time and the columns to set."""
    check_step_transition(step.status, new)
    now = utcnow()
    values: dict[str, Any] = {"status": new.value}
    if stamp := _STEP_STAMP.get(new):
        values[stamp] = now
    if text is not None:
        values["text"] = text
    return now, values


def write_step_status(
    conn: sa.Connection, step: RunStep, new: StepStatus, values: dict[str, Any], now: datetime
) -> None:
    _STEP_SET.run(conn, {"w_id": step.id, **values})
    _LOG.run(conn, {"run_id": step.run_id, "step_id": step.id, "status": new.value, "at": now})


def step_applied(step: RunStep, new: StepStatus, now: datetime, text: str | None) -> None:
    step.status = new
    if new == StepStatus.COMPLETED:
        step.completed_at = now
    if text is not None:
        step.text = text


def insert_step(
    conn: sa.Connection,
    step: RunStep,
    values: dict[str, Any] | None = None,
    log: list[tuple[StepStatus, datetime]] | None = None,
    *,
    logged: bool = True,
) -> list[dict[str, Any]]:
    """A new step (numbered after its run's others in the same statement) and its log rows.

    By default the row is ``step`` as it is now, with one log row of its status; ``values``
    (columns) and ``log`` (status, time) write it as later changes would have left it.
    Returns the log rows; with ``logged=False`` they are not written here (the caller writes
    them with a later INSERT of the same transaction)."""
    _STEP_INSERT.run(conn, {"w_run": step.run_id, **step_row(step, values)})
    rows = step_log(step, log)
    if logged:
        _LOG.run(conn, rows)
    return rows


def step_row(step: RunStep, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns :func:`insert_step` writes (its seq aside): ``step`` as it is now, and
    ``values`` over it. No ``details`` column when the step has none (NULL, not JSON null)."""
    row: dict[str, Any] = {
        "id": step.id,
        "run_id": step.run_id,
        "type": step.type.value,
        "status": step.status.value,
        "text": step.text,
        "created_at": step.created_at,
    }
    if step.details:
        row["details"] = step.details
    row.update(values or {})
    return row


def step_log(
    step: RunStep, log: list[tuple[StepStatus, datetime]] | None = None
) -> list[dict[str, Any]]:
    """Status-log rows of ``step``: ``log`` (status, time), by default one of its status."""
    return [
        {"run_id": step.run_id, "step_id": step.id, "status": s.value, "at": at}
        for s, at in (log or [(step.status, step.created_at)])
    ]
