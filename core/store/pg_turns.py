"""PostgreSQL: each write of a turn as ONE statement, run in autocommit (issue 12).

On SQLite a turn's writes are small transactions of a few statements on the store's worker
thread, which cost little. On PostgreSQL every statement is a round trip and BEGIN and COMMIT
are one each -- a turn took ~32 -- and on 127.0.0.1 a round trip costs more client CPU (a send,
a wake-up of the event loop, a task step) than the statement's own work.

Here each hot write is one statement: its writes are data-modifying CTEs of a SELECT, and
:meth:`core.store.base.Database.write_alone` runs it in autocommit, so the server commits it
when it ends -- one round trip, one transaction, all or nothing as before:

- :func:`start_run`: what to answer (and whether a run waits for approval), the run and its
  log rows (:meth:`~core.store.turns.TurnsRepo.start_run`; the first request's context is read
  after it);
- :func:`record_calls`: the step, its log row, its calls and the run's usage, then the thread
  and its files;
- :func:`store_output`: the call's output and, for the step's last call, the step's status
  and log row, then the thread and its files;
- :func:`finish_message`: the answer's step, message, the run's move or usage and the log rows.

What makes one statement the same as the separate statements:

- every CTE sees the tables as they were before the statement, and none of them reads what
  another writes: a new step's ``seq`` counts the run's earlier steps, a call's ``seq`` the
  calls of the run's other steps (plus its index), the SELECTs read threads and files, which
  nothing here writes, or what to answer, which the separate statements also read first;
- a conditional write depends on another only through its RETURNING (``EXISTS``): the run is
  inserted only when there is a message to answer, its usage updated only when the move did
  not match, so no row is written twice;
- the log rows of a statement are one INSERT in their order (``ORDER BY``), so the log's order
  is the separate statements';
- foreign keys are checked when the whole statement ends: a call and a log row may name the
  step or run inserted beside them.

``tests/store/test_pg_turns.py`` compares every row these statements write, and what they
return, with the separate statements' (which still run on PostgreSQL when
``Database.folds_writes`` is off).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.domain import Message, Run, RunStatus, RunStep, StepStatus
from core.store.fast import Prepared
from core.store.runs import CALL_SEQ, STEP_SEQ, step_log, step_row
from core.store.tables import messages, run_steps, runs, status_log, tool_calls
from core.store.threads import message_row

LOG_COLUMNS = ("run_id", "step_id", "status", "at")
# Statements compiled per shape (the columns given, the number of calls of a step, ...): few in
# practice, bounded all the same (a model decides how many calls a step has).
_SHAPES = 64


def _binds(table: sa.Table, prefix: str, columns: Iterable[str]) -> dict[str, Any]:
    """Each column a parameter ``<prefix><column>`` of the column's type."""
    return {c: sa.bindparam(f"{prefix}{c}", type_=table.c[c].type) for c in columns}


def prefixed(prefix: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row``'s values under the parameter names :func:`_binds` gave them."""
    return {f"{prefix}{k}": v for k, v in row.items()}


def log_params(
    n: int | str, run_id: str, step_id: str | None, status: str, at: datetime | None
) -> dict[str, Any]:
    """The parameters of log row ``n`` (``l<n>_<column>``; ``l_`` with ``n=""``)."""
    row = {"run_id": run_id, "step_id": step_id, "status": status, "at": at}
    return prefixed(f"l{n}_", row)


@functools.lru_cache(maxsize=_SHAPES)
def record_calls(
    context: sa.Select[Any],
    step_columns: tuple[str, ...],
    call_columns: tuple[str, ...],
    calls: int,
) -> Prepared:
    """The step (``step_columns``; parameters ``s_<column>``), its log row (``l_``), its
    ``calls`` calls (``call_columns``, ``c<i>_``; the run ``w_run``, the step ``w_step``) and
    the run's usage (``u_id``, ``u_usage``), written by ``context`` run as one statement."""
    step = run_steps.insert().values({**_binds(run_steps, "s_", step_columns), "seq": STEP_SEQ})
    log = status_log.insert().values(_binds(status_log, "l_", LOG_COLUMNS))
    usage = (
        runs.update()
        .where(runs.c.id == sa.bindparam("u_id"))
        .values(usage=sa.bindparam("u_usage", type_=runs.c.usage.type))
    )
    ctes = [step.cte("new_step"), log.cte("new_step_log"), usage.cte("run_usage")]
    if calls:
        rows = [
            {**_binds(tool_calls, f"c{i}_", call_columns), "seq": CALL_SEQ + i}
            for i in range(calls)
        ]
        ctes.append(tool_calls.insert().values(rows).cte("new_calls"))
    return Prepared(context.add_cte(*ctes))


@functools.lru_cache(maxsize=_SHAPES)
def store_output(context: sa.Select[Any], step_columns: tuple[str, ...] | None) -> Prepared:
    """The call's output (``o_output``, ``o_is_error``, ``o_completed_at`` of the call
    ``o_run``, ``o_id``) and, with ``step_columns``, its step's new status (``t_<column>`` of
    the step ``t_id``) and that change's log row (``l_``), written by ``context`` run as one
    statement."""
    call = (
        tool_calls.update()
        .where(
            tool_calls.c.run_id == sa.bindparam("o_run"),
            tool_calls.c.id == sa.bindparam("o_id"),
        )
        .values(_binds(tool_calls, "o_", ("output", "is_error", "completed_at")))
    )
    ctes = [call.cte("call_output")]
    if step_columns is not None:
        step = (
            run_steps.update()
            .where(run_steps.c.id == sa.bindparam("t_id"))
            .values(_binds(run_steps, "t_", step_columns))
        )
        log = status_log.insert().values(_binds(status_log, "l_", LOG_COLUMNS))
        ctes += [step.cte("step_status"), log.cte("step_status_log")]
    return Prepared(context.add_cte(*ctes))


@functools.lru_cache(maxsize=_SHAPES)
def finish_message(
    step_columns: tuple[str, ...],
    message_columns: tuple[str, ...] | None,
    move_columns: tuple[str, ...] | None,
) -> Prepared:
    """The answer's step (``s_``; its run ``w_run``) and its two log rows (``l0_``, ``l1_``);
    with ``message_columns`` the assistant message (``m_``; its seq is the statement's
    ``seq``); with ``move_columns`` the run moved from ``r_from`` (``r_<column>`` of the run
    ``r_id``) and, when it moved, its log row (``l2_``) -- else only its usage
    (``u_usage``), as the separate statements do when someone else moved the run first. One
    row: ``seq``, ``moved``.

    The move is the one UPDATE that may match nothing. The usage UPDATE of the same run runs
    only when it did not (``NOT EXISTS`` on the move's RETURNING), so no row is updated
    twice; the log rows are one INSERT, numbered in their order (``ORDER BY``)."""
    step = run_steps.insert().values({**_binds(run_steps, "s_", step_columns), "seq": STEP_SEQ})
    ctes: list[Any] = [step.cte("answer_step")]
    run_id = sa.bindparam("r_id", type_=runs.c.id.type)
    logged = [_log_row(i) for i in (0, 1)]
    seq: Any = sa.null()
    moved: Any = sa.false()
    usage = runs.update().where(runs.c.id == run_id)
    if message_columns is not None:
        m = messages.insert().values(_binds(messages, "m_", message_columns))
        added = m.returning(messages.c.seq).cte("answer_message")
        ctes.append(added)
        seq = sa.select(added.c.seq).scalar_subquery()
    if move_columns is not None:
        move = (
            runs.update()
            .where(runs.c.id == run_id, runs.c.status == sa.bindparam("r_from"))
            .values(_binds(runs, "r_", move_columns))
            .returning(runs.c.id)
            .cte("run_moved")
        )
        ctes.append(move)
        moved = sa.exists(sa.select(move.c.id))
        usage = usage.where(~moved)
        logged.append(_log_row(2).where(moved))
    ctes.append(
        usage.values(usage=sa.bindparam("u_usage", type_=runs.c.usage.type)).cte("run_usage")
    )
    rows = sa.union_all(*logged).subquery("log_rows")
    ordered = sa.select(*(rows.c[c] for c in LOG_COLUMNS)).order_by(rows.c.n)
    ctes.append(status_log.insert().from_select(list(LOG_COLUMNS), ordered).cte("answer_log"))
    return Prepared(sa.select(seq.label("seq"), moved.label("moved")).add_cte(*ctes))


def _log_row(n: int) -> sa.Select[Any]:
    """One status-log row of parameters ``l<n>_<column>``, and ``n`` to order it by."""
    binds = _binds(status_log, f"l{n}_", LOG_COLUMNS)
    return sa.select(sa.literal(n).label("n"), *(binds[c].label(c) for c in LOG_COLUMNS))


@functools.lru_cache(maxsize=_SHAPES)
def start_run(
    decide: sa.Select[Any], waiting: bool, run_columns: tuple[str, ...], logs: int
) -> Prepared:
    """A run (``run_columns``, parameters ``n_<column>``; its ``upto_seq`` the one
    ``decide`` finds) and its ``logs`` log rows (``l<i>_``), inserted only when ``decide``
    found a user message to answer (``upto``) and, with ``waiting``, no run of the thread
    waits for approval (``status``). One row: ``decide``'s, as the separate statements read it
    before they inserted anything."""
    decided = decide.cte("decided")
    found: sa.ColumnElement[bool] = decided.c.upto.is_not(None)
    if waiting:
        status = decided.c.status
        found = found & (status.is_(None) | (status != RunStatus.REQUIRES_ACTION.value))
    binds = _binds(runs, "n_", run_columns)
    source = sa.select(*(binds[c] for c in run_columns), decided.c.upto).where(found)
    new = runs.insert().from_select([*run_columns, "upto_seq"], source)
    created = new.returning(runs.c.id).cte("new_run")
    rows = sa.union_all(*(_log_row(i) for i in range(logs))).subquery("log_rows")
    ordered = (
        sa.select(*(rows.c[c] for c in LOG_COLUMNS))
        .where(sa.exists(sa.select(created.c.id)))
        .order_by(rows.c.n)
    )
    log = status_log.insert().from_select(list(LOG_COLUMNS), ordered).cte("new_run_log")
    return Prepared(sa.select(decided).add_cte(created, log))


def answer_params(
    run: Run,
    step: RunStep,
    values: dict[str, Any],
    logs: list[tuple[StepStatus, datetime]],
    message: Message | None,
    usage: dict[str, int],
) -> tuple[tuple[str, ...], tuple[str, ...] | None, dict[str, Any]]:
    """For :func:`finish_message`: the step's and the message's columns (None: no message),
    and the parameters of the step, its log rows, the message and the usage."""
    row = step_row(step, values)
    first, then = step_log(step, logs)
    params = {
        **prefixed("s_", row),
        "w_run": step.run_id,
        **prefixed("l0_", first),
        **prefixed("l1_", then),
        "r_id": run.id,
        "u_usage": usage,
    }
    if message is None:
        return tuple(row), None, params
    added = message_row(message)
    return tuple(row), tuple(added), {**params, **prefixed("m_", added)}


def move_params(run: Run, moved_to: dict[str, Any], at: datetime | None) -> dict[str, Any]:
    """For :func:`finish_message`: the parameters of the run's move (from its status now)
    and of its log row."""
    log = log_params(2, run.id, None, moved_to["status"], at)
    return {**prefixed("r_", moved_to), "r_from": run.status.value, **log}
