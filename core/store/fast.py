"""The hot path's prepared statements, run straight on the driver's cursor (issue 12).

Why: 1,000 concurrent conversations were bound by the SQLite store's one worker thread, and
what it did per turn (~0.7 ms) was SQLAlchemy Core executing ~20 small cached statements: a
``conn.execute(stmt, params).first()`` ~21 us, the same on the sqlite3 connection ~5 us (the
cost is the execution context and result machinery, not compiling).

What: :class:`Prepared` wraps one statement built once (a module constant). SQLAlchemy compiles
it once per dialect -- per set of parameter names for INSERT/UPDATE, as its own cache does --
giving the SQL, the parameters' order and their types' bind and result processors
(``type.dialect_impl(dialect)``), so tables.py's types stay the one source of every
conversion. It runs on the DBAPI connection under the SQLAlchemy connection the work function
got, inside its transaction (on PostgreSQL SQLAlchemy's asyncpg adapter, whose synchronous face
works in the greenlet :class:`core.store.base.Database` runs each transaction in). Rows are a
namedtuple class per statement. Driver errors are raised as SQLAlchemy's
(``DBAPIError.instance``: ``IntegrityError``, ...); a dead connection is invalidated
(``connection_invalidated``: ``Database`` retries; SQLAlchemy would also mark the pool's older
connections stale, a private call). ``before_cursor_execute`` listeners see every statement.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

Params = Mapping[str, Any]
_NEEDED = object()  # a parameter the caller must give


class _Plan:
    """A statement as one dialect runs it: SQL, parameters in order, processors."""

    __slots__ = ("sql", "positional", "binds", "row", "results", "returning")

    def __init__(self, stmt: Any, dialect: sa.Dialect, keys: Sequence[str] | None) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=keys)
        self.sql: str = compiled.string
        if "POSTCOMPILE" in self.sql or getattr(compiled, "insert_prefetch", None):
            raise ValueError(f"not preparable (expanding IN or a Python default): {self.sql}")
        if getattr(compiled, "update_prefetch", None):
            raise ValueError(f"not preparable (a Python onupdate): {self.sql}")
        self.positional = compiled.positiontup is not None
        names = compiled.positiontup or dict.fromkeys(compiled.bind_names.values())
        self.binds: list[tuple[str, Callable[[Any], Any] | None, Any]] = []
        for name in names:
            bind = compiled.binds[name]
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            fixed = _NEEDED if bind.required else bind.effective_value
            if fixed is not _NEEDED and proc is not None:
                fixed = proc(fixed)  # a value of the statement itself: processed once, here
            self.binds.append((name, proc, fixed))
        self.returning = bool(getattr(compiled, "effective_returning", None))
        columns = list(compiled.effective_returning) if self.returning else []
        if stmt.is_select:
            columns = list(stmt.selected_columns)
        fields = [c.key for c in columns]  # an unlabeled expression's: "count", "max"
        self.row: Any = namedtuple("Row", fields, rename=True) if columns else None  # type: ignore[misc]
        self.results = [
            (i, p)
            for i, c in enumerate(columns)
            if (p := c.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        ]

    def args(self, params: Params) -> Any:
        out = []
        for name, proc, fixed in self.binds:
            if fixed is _NEEDED or name in params:
                value = params[name]
                out.append(value if proc is None else proc(value))
            else:
                out.append(fixed)
        if self.positional:
            return out
        return {name: value for (name, _, _), value in zip(self.binds, out, strict=True)}

    def make(self, raw: Sequence[Any]) -> Any:
        assert self.row is not None
        if not self.results:
            return self.row._make(raw)
        values = list(raw)
        for i, proc in self.results:
            values[i] = proc(values[i])
        return self.row._make(values)


class Prepared:
    """One statement of the hot path, compiled once per dialect (see the module docstring).

    ``params`` are the names SQLAlchemy's ``conn.execute(stmt, params)`` takes (a list of them:
    executemany); an INSERT or UPDATE is compiled for the names given, as SQLAlchemy does, so
    columns not given are left out and none may need a Python-side default."""

    __slots__ = ("stmt", "_plans")

    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt
        self._plans: dict[Any, _Plan] = {}

    def _plan(self, dialect: sa.Dialect, params: Params) -> _Plan:
        key = (type(dialect), tuple(params)) if self.stmt.is_dml else type(dialect)
        plan = self._plans.get(key)
        if plan is None:
            keys = list(params) if self.stmt.is_dml else None
            plan = self._plans[key] = _Plan(self.stmt, dialect, keys)
        return plan

    def _run(self, conn: sa.Connection, params: Params | Sequence[Params]) -> tuple[_Plan, Any]:
        if type(params) is dict or isinstance(params, Mapping):
            plan = self._plan(conn.dialect, params)
            return plan, _execute(conn, plan.sql, plan.args(params), False)
        if len(params) == 1:
            return self._run(conn, params[0])
        plan = self._plan(conn.dialect, params[0])
        return plan, _execute(conn, plan.sql, [plan.args(p) for p in params], True)

    def first(self, conn: sa.Connection, params: Params) -> Any:
        """The first row, None when there is none."""
        plan, cursor = self._run(conn, params)
        raw = cursor.fetchone()
        cursor.close()
        return None if raw is None else plan.make(raw)

    def all(self, conn: sa.Connection, params: Params) -> list[Any]:
        rows, make = self.unprocessed(conn, params)
        return [make(raw) for raw in rows]

    def unprocessed(
        self, conn: sa.Connection, params: Params
    ) -> tuple[list[Sequence[Any]], Callable[[Sequence[Any]], Any]]:
        """The rows as the driver returns them, and the function that makes one of them the
        row :meth:`all` would: for a caller that builds only some rows (the history window
        keeps most of its rows from earlier turns; a key column like an id reads the same
        unprocessed)."""
        plan, cursor = self._run(conn, params)
        rows = cursor.fetchall()
        cursor.close()
        return rows, plan.make

    def scalar(self, conn: sa.Connection, params: Params) -> Any:
        """The first column of the first row; None when there is no row."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn: sa.Connection, params: Params | Sequence[Params]) -> int:
        """An INSERT, UPDATE or DELETE (a list of params: executemany); the rows it matched."""
        _, cursor = self._run(conn, params)
        count = int(cursor.rowcount)
        cursor.close()
        return count

    def insert(self, conn: sa.Connection, params: Params) -> Any:
        """One INSERT; the integer primary key the database gave the row (RETURNING where
        the dialect compiles one, else the driver's ``lastrowid``)."""
        plan, cursor = self._run(conn, params)
        key = plan.make(cursor.fetchone())[0] if plan.returning else cursor.lastrowid
        cursor.close()
        return key


class Joined:
    """The columns of ``table`` in a LEFT OUTER JOIN after all of ``parent``'s, labelled
    ``<prefix><column>`` so no name clashes, and a joined row's part of them made a row of
    ``table`` again: None where the join found none (its ``id`` is NULL). One statement for a
    row and its children (issue 12: a round trip less on PostgreSQL)."""

    __slots__ = ("columns", "_at", "_id", "_row")

    def __init__(self, table: sa.Table, parent: sa.Table, prefix: str) -> None:
        self.columns = [c.label(f"{prefix}{c.key}") for c in table.c]
        self._at = len(parent.c)
        self._id = self._at + table.c.keys().index("id")
        self._row: Any = namedtuple(f"{table.name}_row", table.c.keys())  # type: ignore[misc]

    def part(self, row: Sequence[Any]) -> Any | None:
        return None if row[self._id] is None else self._row._make(row[self._at :])


def _execute(conn: sa.Connection, sql: str, args: Any, many: bool) -> Any:
    """``sql`` on a new cursor of ``conn``'s DBAPI connection; driver errors as SQLAlchemy's."""
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    dialect = conn.dialect
    try:
        if listeners := conn.dispatch.before_cursor_execute:
            for fn in listeners:
                sql, args = fn(conn, cursor, sql, args, None, many)
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
    except dialect.loaded_dbapi.Error as err:
        gone = bool(dialect.is_disconnect(err, dbapi_conn, cursor))
        error = sa.exc.DBAPIError.instance(
            sql, args, err, dialect.loaded_dbapi.Error, connection_invalidated=gone,
            dialect=dialect, ismulti=many,
        )  # fmt: skip
        if gone:
            conn.invalidate(error)
        raise error from err
    return cursor


def driver_sql(conn: sa.Connection, sql: str) -> None:
    """``sql`` without parameters (``BEGIN IMMEDIATE``, ...) on the driver; its errors as
    SQLAlchemy's."""
    _execute(conn, sql, (), False).close()
