"""Connections to the trial database: ``make_engine(url)`` for embedded SQLite or PostgreSQL.

SQLite is the embedded default: foreign keys on, WAL journal, and every write transaction begun IMMEDIATE so
that two writers queue instead of reading the same state and colliding (one engine's writers in a first-come,
first-served queue in this process, ``_WriterQueue``; other processes through SQLite's busy timeout); a read
(``read_scope``) begins a deferred transaction, which takes no write lock and so never queues behind a writer
(WAL lets it read while one writes). PostgreSQL is reached through psycopg 3; a read is a REPEATABLE READ, READ
ONLY transaction. Either way every query of one read sees the same snapshot, so a page's rows, its total and its
position agree even while others commit. ``session_scope`` gives one write transaction per use case,
``read_scope`` one read. A hot path's statements run on the driver's cursor through ``store.prepared``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Engine, Insert, case, create_engine, event, func, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session

from trialwright.store.audit_keys import AuditKey, attach, create_private_file, default_key_file, load_key
from trialwright.store.sql_functions import sqlite_local_day

__all__ = [
    "DatabaseUnavailable",
    "after_commit",
    "before_commit",
    "check_connection",
    "commit_now",
    "inserted_id",
    "is_postgresql",
    "make_engine",
    "normalise_url",
    "read_scope",
    "redact",
    "serialise",
    "serialised_by",
    "session_scope",
    "waiting_writers",
]

_SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened; the message names the URL (without password) and why."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach database {url}: {reason}")


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """The URL with any password hidden, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url


def is_postgresql(engine: Engine) -> bool:
    """Whether the engine talks to PostgreSQL (else SQLite)."""
    return engine.dialect.name == "postgresql"


def make_engine(url: str, *, audit_key: AuditKey | None = None) -> Engine:
    """An engine for the URL: sqlite:///FILE (created on demand, 0600) or postgresql+psycopg://...

    The engine signs the audit trail with ``audit_key``; without one, with the key in the default key
    file of the URL if that file exists (see ``trialwright.store.audit_keys``); it never creates a key.
    """
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnavailable(url, "not a database URL (try sqlite:///trialwright.db)") from None
    if parsed.get_backend_name() == "sqlite":
        _create_private_sqlite_file(parsed.database)
        engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
    elif parsed.get_backend_name() == "postgresql":
        try:
            engine = create_engine(url, connect_args={"connect_timeout": 10})
        except ModuleNotFoundError as exc:  # the driver is an extra: say which, not a bare import error
            raise DatabaseUnavailable(
                redact(url), f"PostgreSQL needs the {exc.name} driver: pip install 'trialwright[postgres]'"
            ) from None
        _ping_when_idle(engine)
    else:
        raise DatabaseUnavailable(redact(url), f"unsupported database {parsed.get_backend_name()!r}")
    if audit_key is None:
        default = default_key_file(url)
        audit_key = load_key(default) if default is not None else AuditKey(None, "in-memory database: no key file")
    attach(engine, audit_key)
    return engine


def _create_private_sqlite_file(database: str | None) -> None:
    """A new SQLite file is created empty and 0600 before SQLite opens it (its -wal and -shm take its mode)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir() and not path.exists():
        create_private_file(path)


#: A pooled PostgreSQL connection idle in the pool for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 5.0
_IDLE_SINCE = "trialwright.idle_since"


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only if it sat idle in the pool for more than ``IDLE_PING_SECONDS``
    (SQLAlchemy's ``pool_pre_ping`` pings at every checkout: one more round trip for every transaction). A connection
    the server dropped while idle (a restart, an idle timeout) is replaced before a request uses it, as with the
    pre-ping; one dropped within seconds of its last use makes that request fail with the database's error, nothing
    of it committed, and SQLAlchemy then renews the whole pool (its disconnect handling)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since <= IDLE_PING_SECONDS:
            return  # new, or used moments ago
        try:
            ok = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # a dropped connection: the pool discards it and connects again
            raise DisconnectionError(str(exc)) from exc
        if not ok:
            raise DisconnectionError("the connection did not answer its ping")


class _WriterQueue:
    """SQLite's one write lock, handed from writer to writer of one engine in the order they asked for it.

    Without it, the threads of a process waiting for SQLite's write lock wait in SQLite's busy handler, which
    sleeps and polls at growing intervals (up to 100 ms): the lock is often free while every waiter sleeps, and a
    writer that arrives just as it is released overtakes those who have waited for seconds (the long p99 of
    ``bench/form_saves.py``). Here a write transaction takes its turn before its ``BEGIN IMMEDIATE`` and gives it
    to the next in line as soon as it has committed or rolled back. It is held only by write transactions (a read,
    ``read_scope``, never waits for it), so it orders what SQLite would serialise anyway. Writers of other
    processes (a command run beside the server) still meet this process's writers in SQLite's busy timeout."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        """Wait for this writer's turn (first come, first served); False if it did not come within ``timeout``."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        try:
            if turn.acquire(timeout=timeout):
                return True
        except BaseException:  # interrupted while waiting (e.g. KeyboardInterrupt): never leave a dead waiter in line
            with self._mutex:
                handed = turn not in self._waiting
                if not handed:
                    self._waiting.remove(turn)
            if handed:  # the turn came to this writer as it was interrupted: pass it on
                self.release()
            raise
        with self._mutex:
            if turn in self._waiting:  # still in line: leave it
                self._waiting.remove(turn)
                return False
        return True  # handed the turn just as the wait ran out: it is this writer's

    def waiting(self) -> int:
        with self._mutex:
            return len(self._waiting)

    def release(self) -> None:
        """Hand the turn to the longest-waiting writer, or free it."""
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._held = False


def _info(dbapi_connection: Any) -> dict[Any, Any]:
    """The pool's record of a connection given to the dialect ({} for the throw-away one of the first connect)."""
    try:
        return dbapi_connection.info  # type: ignore[no-any-return]
    except (AttributeError, NotImplementedError):
        return {}


#: Each SQLite engine's queue of writers, by its dialect (shared by the engine's ``execution_options`` copies).
_WRITERS: weakref.WeakKeyDictionary[Any, _WriterQueue] = weakref.WeakKeyDictionary()


def waiting_writers(engine: Engine) -> int:
    """How many of this process's write transactions on ``engine`` wait for their turn (SQLite); 0 on PostgreSQL,
    whose writers do not queue for one lock."""
    writers = _WRITERS.get(engine.dialect)
    return writers.waiting() if writers is not None else 0


def _configure_sqlite(engine: Engine) -> None:
    writers = _WRITERS[engine.dialect] = _WriterQueue()

    def release(info: dict[Any, Any]) -> None:
        if info.pop(_WRITER_TURN, False):
            writers.release()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling defers it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()
        # What PostgreSQL's AT TIME ZONE does, for the expressions of ``store.sql_functions``.
        dbapi_connection.create_function("tw_local_day", 2, sqlite_local_day, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_READ):
            connection.exec_driver_sql("BEGIN")
            return
        # This process's writers in line; past the busy timeout, SQLite's own wait decides (as without the queue).
        if writers.acquire(timeout=_SQLITE_BUSY_TIMEOUT_MS / 1000):
            connection.info[_WRITER_TURN] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release(connection.info)
            raise

    # The turn passes on once the transaction has ended in SQLite (after its COMMIT or ROLLBACK, not before them, or
    # the next writer's BEGIN IMMEDIATE would find the lock still held), or when its connection is discarded.
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            release(_info(dbapi_connection))

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            release(_info(dbapi_connection))

    setattr(dialect, "do_commit", do_commit)  # noqa: B010 (this engine's dialect instance only)
    setattr(dialect, "do_rollback", do_rollback)  # noqa: B010

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(_dbapi_connection: Any, record: Any, _exception: Any) -> None:
        release(record.info)

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection: Any, record: Any) -> None:
        release(record.info)


_READ = "trialwright_read"
_WRITER_TURN = "trialwright.writer_turn"
_AFTER_COMMIT = "trialwright.after_commit"
_BEFORE_COMMIT = "trialwright.before_commit"


def check_connection(engine: Engine) -> None:
    """Connect once, raising ``DatabaseUnavailable`` with one clear line if that fails."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise DatabaseUnavailable(redact(str(engine.url.render_as_string(hide_password=False))), reason) from None


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One write transaction: commit when the block ends (then run what ``after_commit`` registered), roll back if
    it raises."""
    session = Session(bind=engine, expire_on_commit=False)
    try:
        yield session
        _commit(session)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    _after(session)


def commit_now(session: Session) -> None:
    """Commit the transaction of ``session`` (a ``session_scope``) now, as its end would (what ``before_commit``
    registered, the commit, then what ``after_commit`` registered), rolling it back if that raises; the scope's
    end then finds nothing left to commit. For a request that must answer only once its change is committed."""
    try:
        _commit(session)
    except BaseException:
        session.rollback()
        raise
    hooks = session.info.pop(_AFTER_COMMIT, ())
    # What the committed transaction held (its pending audit entries' state, the visits it locked, what a bulk block
    # read ahead) ends with it: a later write in this session starts afresh, its hooks registered again.
    session.info.clear()
    for hook in hooks:
        hook()


def _commit(session: Session) -> None:
    for before in session.info.pop(_BEFORE_COMMIT, ()):
        before()
    session.commit()


def _after(session: Session) -> None:
    for hook in session.info.pop(_AFTER_COMMIT, ()):
        hook()


def before_commit(session: Session, hook: Callable[[], None]) -> None:
    """Run ``hook`` in the transaction of ``session`` (a ``session_scope``) just before it commits, after everything
    else the use case did; never if it raises first."""
    session.info.setdefault(_BEFORE_COMMIT, []).append(hook)


def after_commit(session: Session, hook: Callable[[], None]) -> None:
    """Run ``hook`` once the transaction of ``session`` (a ``session_scope``) has committed; never if it rolls
    back."""
    session.info.setdefault(_AFTER_COMMIT, []).append(hook)


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """One read transaction: a consistent snapshot that takes no write lock. SQLite: a deferred transaction, whose
    snapshot is fixed by its first read (WAL). PostgreSQL: REPEATABLE READ, so every query sees the snapshot of the
    first one (READ COMMITTED would take a new one per query), and READ ONLY, so a write in it is refused by the
    database. Nothing in it is committed."""
    session = Session(bind=engine.execution_options(**{_READ: True}), expire_on_commit=False)
    try:
        if engine.dialect.name == "postgresql":
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        yield session
    finally:
        session.rollback()
        session.close()


def inserted_id(session: Session, statement: Insert) -> int:
    """Run an INSERT of one row and return its new primary key."""
    result = cast("CursorResult[Any]", session.execute(statement))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def serialise(session: Session, name: str, *, shared: bool = False) -> None:
    """Hold a transaction-scoped lock named ``name`` until the transaction ends.

    PostgreSQL: an advisory lock on the name's hash; ``shared`` holders run together and only exclude an exclusive
    holder (many randomizations at once, none while a DSMB decision is being recorded). SQLite needs none: every
    transaction already begins IMMEDIATE (see ``make_engine``), so writers are serialised.
    """
    if session.get_bind().dialect.name == "postgresql":
        lock = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        session.execute(text(f"SELECT {lock}(hashtext(:name))"), {"name": name})


def serialised_by(name: str, *, shared_if: ColumnElement[bool]) -> ColumnElement[Any]:
    """PostgreSQL: the lock ``serialise`` takes, as an expression of the statement that reads what decides its mode
    (one round trip fewer): shared when ``shared_if`` holds for the row read, else exclusive. The statement takes it
    when it evaluates its columns, so what it reads in other columns comes from its own snapshot, taken before."""
    key = func.hashtext(name)
    return case((shared_if, func.pg_advisory_xact_lock_shared(key)), else_=func.pg_advisory_xact_lock(key))
