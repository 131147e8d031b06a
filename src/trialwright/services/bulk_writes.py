"""Deferred inserts for a bulk import: the new visit and form records of a batch written by one executemany each,
not one INSERT ... RETURNING (a round trip) per record.

Inside ``deferring`` a new record gets its id at once (PostgreSQL: a block of the table's sequence, taken with one
statement; SQLite: one more than the largest, the writer lock held since the transaction began IMMEDIATE), and its
row, built in Python with every column as the INSERT would have returned it, is kept to be written later. The
pending rows are written, in the order they were made, before the next statement the session's connection
executes (``before_execute``: a read of the records, a query that refers to one, a savepoint, its release or
rollback; and ``before_cursor_execute``, which a statement run on the driver's cursor fires too:
``store.prepared.Prepared``, the audit trail's pending insert) and when the block ends, so no statement ever
sees the table without them: what a save reads and what it writes are those of the row-by-row path. Nothing
here decides anything; a block left by an exception drops what it had not written (its transaction is being
rolled back).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table, bindparam, event, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.ddl import sort_tables

from trialwright.store.prepared import Prepared

__all__ = ["deferred_insert", "deferred_update", "deferring", "row_type"]

_STATE = "trialwright.deferred_inserts"
#: Ids taken from a PostgreSQL sequence at a time (unused ones are gaps, as a rolled-back insert leaves).
BLOCK = 500


class _Deferred:
    """A block's pending rows by table (in the order made), the next free id of each table, and its listener."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.pending: dict[Table, list[dict[str, Any]]] = {}
        self.waiting: dict[tuple[str, int], dict[str, Any]] = {}  # the pending rows by table name and id
        self.free: dict[Table, list[int]] = {}
        self.next_id: dict[Table, int] = {}
        self.writing = False

    def flush(self, *_: Any) -> None:
        """Write every pending row (one executemany per table, rows in the order made, a table after those its
        foreign keys name: visits before their forms)."""
        if self.writing or not self.pending:
            return
        self.writing = True
        try:
            pending, self.pending, self.waiting = self.pending, {}, {}
            for table in sort_tables(pending):
                self.connection.execute(table.insert(), pending[table])
        finally:
            self.writing = False

    def take_id(self, table: Table) -> int:
        if self.connection.dialect.name == "postgresql":
            free = self.free.setdefault(table, [])
            if not free:
                self.writing = True  # reading the sequence writes nothing pending
                try:
                    free.extend(
                        self.connection.execute(
                            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                            {"t": table.name, "n": BLOCK},
                        ).scalars()
                    )
                finally:
                    self.writing = False
                free.reverse()
            return free.pop()
        if table not in self.next_id:
            self.writing = True  # none of this table's rows waits yet: the largest id is the one written
            try:
                self.next_id[table] = int(self.connection.execute(select(func.max(table.c.id))).scalar() or 0) + 1
            finally:
                self.writing = False
        taken = self.next_id[table]
        self.next_id[table] = taken + 1
        return taken


_ROWS: dict[str, Any] = {}
_RETURNING: dict[str, Any] = {}
_UPDATES: dict[tuple[str, ...], Prepared] = {}


def row_type(table: Table) -> Any:
    """A row with the table's columns as attributes, in order (as a RETURNING of every column reads)."""
    if table.name not in _ROWS:
        _ROWS[table.name] = namedtuple(f"{table.name}_row", [c.name for c in table.columns])
    return _ROWS[table.name]


@contextmanager
def deferring(session: Session) -> Iterator[None]:
    """Defer the inserts ``deferred_insert`` makes in the session until the next statement or the block's end."""
    if session.info.get(_STATE) is not None:
        yield
        return
    connection = session.connection()
    state = _Deferred(connection)
    session.info[_STATE] = state
    event.listen(connection, "before_execute", state.flush)
    event.listen(connection, "before_cursor_execute", state.flush)  # a Prepared statement on the driver's cursor
    try:
        yield
        state.flush()
    finally:
        event.remove(connection, "before_execute", state.flush)
        event.remove(connection, "before_cursor_execute", state.flush)
        session.info.pop(_STATE, None)


def deferred_insert(session: Session, table: Table, values: dict[str, Any]) -> Any:
    """Insert a row (``values`` without its id; every other column given, as none has a default the database
    fills) and return it as ``INSERT ... RETURNING`` every column would: at once outside ``deferring``, else
    with its id taken now and the row written with the block's next statement."""
    state: _Deferred | None = session.info.get(_STATE)
    if state is None:
        if table.name not in _RETURNING:  # built once per table, not per insert
            _RETURNING[table.name] = table.insert().returning(*table.c)
        return session.execute(_RETURNING[table.name], values).one()
    # The session's connection asked for first: a savepoint begun since its last statement (``begin_nested`` sends
    # SAVEPOINT only when the session next uses its connection) is sent now, after the rows made before it are
    # written, so this row is written inside it and its rollback takes the row too (a review found a refused
    # import row's visit kept, unaudited, when nothing else sent the savepoint).
    session.connection()
    missing = [c.name for c in table.columns if c.name != "id" and c.default is not None and c.name not in values]
    if missing:  # a default SQLAlchemy would fill: give it, so the row kept is the row written
        raise ValueError(f"{table.name}: give {', '.join(missing)}")
    row = {c.name: values.get(c.name) for c in table.columns}
    row["id"] = taken = state.take_id(table)
    state.pending.setdefault(table, []).append(row)
    state.waiting[(table.name, taken)] = row
    return row_type(table)(**row)


def deferred_update(session: Session, table: Table, row_id: int, values: dict[str, Any]) -> Any:
    """Set ``values`` on the row ``row_id`` and return it as ``UPDATE ... RETURNING`` every column would: a row
    still pending (inserted in this block, not yet written) is changed where it waits, with no statement."""
    state: _Deferred | None = session.info.get(_STATE)
    row = None if state is None else state.waiting.get((table.name, row_id))
    if row is not None:
        row.update(values)
        return row_type(table)(**row)
    key = (table.name, *values)
    update = _UPDATES.get(key)
    if update is None:  # compiled once per table and set of columns (``Prepared``), not built at every update
        update = _UPDATES[key] = Prepared(
            table.update()
            .where(table.c.id == bindparam("row_id", type_=table.c.id.type))
            .values({name: bindparam(f"set_{name}", type_=table.c[name].type) for name in values})
            .returning(*table.c)
        )
    (changed,) = update.rows(session, {"row_id": row_id, **{f"set_{name}": v for name, v in values.items()}})
    return row_type(table)(**changed)
