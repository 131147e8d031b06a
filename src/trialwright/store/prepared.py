"""Statements on the driver's cursor: ``Prepared`` compiles a Core statement once per dialect and runs it on the
DBAPI cursor of a session's connection, in the session's innermost transaction (a savepoint's, if one is open), for
the few statements of a hot path (a randomization's, the audit trail's pending insert and head, the protocol's
version, the trial lock, a form record's update), on PostgreSQL and SQLite alike.

What ``session.execute`` would do is kept: the columns' types convert parameters and rows, and the engine's
``before_cursor_execute`` and ``after_cursor_execute`` events fire, so a listener there still runs first (the bulk
writer's deferred inserts are flushed before the statement, ``services.bulk_writes.deferring``; statements are
counted and faults injected as for any other). ``innermost_connection`` is the connection it runs on, kept per
savepoint so that a statement first in a savepoint runs inside it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

__all__ = ["CONNECTION_KEY", "CompiledStatement", "Prepared", "innermost_connection", "insert_many"]

#: Where ``innermost_connection`` keeps the session's connection and the transaction it belongs to (``session.info``).
CONNECTION_KEY = "trialwright.connection"


def innermost_connection(session: Session) -> Any:
    """``session.connection()``, kept for the session's innermost transaction (asking the session again costs more
    than the driver's statement). Kept per savepoint, not per root transaction: SQLAlchemy sends a savepoint begun
    with ``begin_nested`` only at the next ``session.connection()``, so a statement on the driver's cursor first in
    a savepoint must ask for it, or it would run outside the savepoint and outlive its rollback."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    kept = session.info.get(CONNECTION_KEY)
    if kept is not None and transaction is not None and kept[0] is transaction:
        return kept[1]
    connection = session.connection()
    session.info[CONNECTION_KEY] = (transaction, connection)
    return connection


class Prepared:
    """A Core statement compiled once per dialect and run on the DBAPI cursor of a session's connection, in its
    transaction, for the few statements of a hot path (a randomization's): SQLAlchemy's per-execution work (the
    statement's cache key, the execution context, the result's metadata) costs about three times the driver's own
    (measured in docs/benchmarks.md). What ``session.execute`` would do is kept: the columns' types convert the
    parameters and the rows (``UTCDateTime``), the engine's cursor events fire (statements are counted, faults
    injected as before), and a driver error is raised as SQLAlchemy's (``DBAPIError`` and its subclasses), the
    connection invalidated when the error says it was lost. On both databases (SQLite's parameters by position, in
    the order its compiled statement names them): a simulated patient's own statements are mostly such look-ups,
    and SQLAlchemy's work per statement was about a fifth of the simulator's CPU on SQLite (docs/benchmarks.md).
    Rows are dicts of the statement's column names.

    For statements without expanding (``IN``) parameters; every parameter without a value in the statement is
    required at each run (``KeyError`` naming it, never a guess)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[Any, CompiledStatement] = {}

    def _for(self, dialect: Any) -> CompiledStatement:
        compiled = self._compiled.get(dialect)
        if compiled is None:
            form = cast("SQLCompiler", cast("ClauseElement", self.statement).compile(dialect=dialect))
            defaults: dict[str, Any] = {}
            binds: dict[str, Any] = {}
            for bind, name in form.bind_names.items():
                if bind.expanding:
                    raise ValueError(f"Prepared: parameter {name!r} expands (IN): run it with session.execute")
                if not bind.required:
                    defaults[name] = bind.effective_value
                # the dialect's own type (SQLite's DATETIME: text), as session.execute converts
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    binds[name] = processor
            columns = getattr(self.statement, "selected_columns", None) or getattr(self.statement, "_returning", ())
            rows = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns or ()]  # text(): none
            order = tuple(form.positiontup or ()) if form.positional else None
            compiled = self._compiled[dialect] = CompiledStatement(
                form.string, defaults, binds, rows if any(rows) else [], order
            )
        return compiled

    def rows(self, session: Session, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        """Run the statement in the session's transaction; its rows (none for a statement without them)."""
        connection = innermost_connection(session)
        compiled = self._for(connection.dialect)
        sql, named = compiled.sql, {**compiled.defaults, **parameters}
        for name, processor in compiled.binds.items():
            named[name] = processor(named[name])
        # SQLite's driver takes its parameters by position (qmark), PostgreSQL's by name.
        values: Any = named if compiled.order is None else tuple(named[name] for name in compiled.order)
        dbapi = connection.dialect.loaded_dbapi
        cursor = connection.connection.cursor()
        try:
            events = connection._has_events or connection.engine._has_events  # as Connection.execute checks
            if events:
                for before in connection.dispatch.before_cursor_execute:
                    sql, values = before(connection, cursor, sql, values, None, False)
            try:
                cursor.execute(sql, values)
            except dbapi.Error as exc:
                lost = connection.dialect.is_disconnect(exc, connection.connection, cursor)
                if lost:
                    connection.invalidate(exc)
                error = DBAPIError.instance(sql, values, exc, dbapi.Error, lost, dialect=connection.dialect)
                raise error from exc
            if events:
                connection.dispatch.after_cursor_execute(connection, cursor, sql, values, None, False)
            description = cursor.description  # built anew at each access
            if description is None:
                return []
            names = [d[0] for d in description]
            rows = cursor.fetchall()
            if compiled.rows:  # the columns' conversions, by position
                rows = [[v if p is None else p(v) for p, v in zip(compiled.rows, row, strict=True)] for row in rows]
            return [dict(zip(names, row, strict=True)) for row in rows]
        finally:
            cursor.close()


@dataclass(frozen=True)
class CompiledStatement:
    """A ``Prepared`` statement for one dialect: its SQL, the values it holds, the parameters' and columns'
    conversions (the columns' by position; empty: none converts), and for a driver taking parameters by position
    (SQLite's) their names in that order (None: by name)."""

    sql: str
    defaults: dict[str, Any]
    binds: dict[str, Any]
    rows: list[Any]
    order: tuple[str, ...] | None = None


#: Per (table, dialect): an INSERT of every column compiled once, its parameters' order and their conversions.
_INSERTS: dict[tuple[Table, Any], tuple[str, Any, tuple[tuple[int, Any], ...]]] = {}


def insert_many(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (every column of ``table`` in each, by name) with one executemany, as
    ``connection.execute(table.insert(), rows)`` would, in the same statement.

    On SQLite the statement is compiled once per table and its parameters are converted by the columns' types
    (``UTCDateTime`` too) in one loop, and run on the driver's cursor with the engine's cursor events (counted,
    and the bulk writer's deferred rows flushed first, as for any statement), without SQLAlchemy's per-row parameter
    building (a dict per row, every column's bind looked up). Elsewhere it is ``connection.execute`` (PostgreSQL's
    audit entries already go as one JSON parameter); a row without every column is refused there too."""
    if not rows:
        return
    dialect = connection.dialect
    if dialect.name != "sqlite":
        missing = [c.key for c in table.columns if c.key not in rows[0]]  # SQLAlchemy's later rows need the first's
        if missing:
            raise KeyError(missing[0])  # as the SQLite path: never a column left to the database's default
        connection.execute(table.insert(), rows)
        return
    kept = _INSERTS.get((table, dialect))
    if kept is None:
        form = table.insert().compile(dialect=dialect)
        names = tuple(form.positiontup or ())
        if set(names) != {c.key for c in table.columns} or len(names) != len(table.columns) or len(names) < 2:
            raise ValueError(f"insert_many: {table.name}'s INSERT does not name each column once")  # never a guess
        # The compiled statement's own conversions (the dialect's implementation of each type, as an execution
        # applies them: SQLite's DATETIME writes every time with its microseconds; the generic type's would not).
        by_name: dict[str, Any] = dict(form._bind_processors)  # name -> one conversion (no expanding binds here)
        processors = tuple((index, by_name[name]) for index, name in enumerate(names) if by_name.get(name) is not None)
        kept = _INSERTS[(table, dialect)] = (form.string, operator.itemgetter(*names), processors)
    sql, take, processors = kept
    values: Any = [take(row) for row in rows]  # a tuple per row, in the statement's order
    if processors:  # the columns whose types convert (a time to its text), only those
        for position, row_values in enumerate(values):
            converted = list(row_values)
            for index, processor in processors:
                converted[index] = processor(converted[index])
            values[position] = converted
    dbapi = dialect.loaded_dbapi
    cursor = connection.connection.cursor()
    try:
        events = connection._has_events or connection.engine._has_events  # as Connection.execute checks
        if events:
            for before in connection.dispatch.before_cursor_execute:
                sql, values = before(connection, cursor, sql, values, None, True)
        try:
            cursor.executemany(sql, values)
        except dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, connection.connection, cursor)
            if lost:
                connection.invalidate(exc)
            raise DBAPIError.instance(sql, values, exc, dbapi.Error, lost, dialect=dialect) from exc
        if events:
            connection.dispatch.after_cursor_execute(connection, cursor, sql, values, None, True)
    finally:
        cursor.close()
