"""A pooled PostgreSQL connection is pinged before use only after it sat idle in the pool (issue 22 item 5).

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` at every checkout: one more round trip for every transaction, a
randomization's included. The store pings a connection only when it has been idle in the pool for longer than
``IDLE_PING_SECONDS`` (``store/engine.py``): a connection used moments ago is handed out as it is, and one the
server dropped while it sat idle (a restart, an idle timeout) is replaced before a request uses it.

PostgreSQL only: SQLite's connections are files opened in the process, never dropped by a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from tests.conftest import POSTGRES_URL, _plain_postgres_dsn, fresh_database
from trialwright.store import engine as store
from trialwright.store.engine import make_engine, session_scope


@pytest.fixture
def engine(tmp_path: Any, postgres_available: str | None) -> Iterator[Engine]:
    with fresh_database("postgresql", tmp_path, postgres_available) as url:
        made = make_engine(url)
        yield made
        made.dispose()


def _pings(engine: Engine) -> list[int]:
    """A list that grows by one at every ping the dialect sends."""
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


def _backend_pid(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_used_moments_ago_is_not_pinged(engine: Engine) -> None:
    pings = _pings(engine)
    first = _backend_pid(engine)
    again = _backend_pid(engine)
    assert again == first, "the pool hands out the same connection"
    assert pings == [], "no SELECT 1 before a transaction on a connection just checked in"


def test_a_connection_idle_in_the_pool_is_pinged_and_replaced_when_the_server_dropped_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = _pings(engine)
    dropped = _backend_pid(engine)
    with psycopg.connect(_plain_postgres_dsn(POSTGRES_URL), autocommit=True) as other:  # the server ends it
        other.execute("SELECT pg_terminate_backend(%s)", (dropped,))
    monkeypatch.setattr(store, "IDLE_PING_SECONDS", -1.0)  # as if it had sat idle for longer than the limit
    fresh = _backend_pid(engine)
    assert pings, "a connection idle in the pool is pinged before use"
    assert fresh != dropped, "the dropped connection is replaced, and the transaction runs on a new one"
