"""A read never takes a write lock, so it never queues behind a writer.

SQLite has one writer at a time: a read that began its transaction IMMEDIATE would wait for every writer. Reads
(the current protocol, a user, a browser session or an API token looked up, lists) begin a deferred transaction
and, in WAL mode, read while a writer holds its lock. On PostgreSQL a read is a READ ONLY transaction, so a read
path that tried to write would be refused by the database.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.trialfixtures import Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.services.screening import list_screenings
from trialwright.services.tokens import issue_token, resolve_token
from trialwright.services.trial import current_protocol
from trialwright.services.users import get_user
from trialwright.store.engine import read_scope, session_scope


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _finishes_while_a_writer_holds_its_lock(trial: Trial, read: Callable[[], object]) -> None:
    done = threading.Event()
    failed: list[BaseException] = []

    def reader() -> None:
        try:
            read()
        except BaseException as exc:  # collected and asserted below
            failed.append(exc)
        done.set()

    with session_scope(trial.engine) as writer:
        # The writer holds the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a row it changed) until it ends.
        writer.execute(text("UPDATE trial SET title = title"))
        worker = threading.Thread(target=reader)
        worker.start()
        assert done.wait(10), "the read waited for a writer's transaction to end"
        worker.join()
    assert failed == []


def test_the_protocol_users_and_tokens_are_read_while_a_writer_holds_its_lock(trial: Trial) -> None:
    coordinator = get_user(trial.engine, username(Role.STUDY_COORDINATOR))
    assert coordinator is not None
    token, _view = issue_token(trial.engine, coordinator.username, actor=coordinator.username, name="script")
    resolve_token(trial.engine, token)  # the first use is audited (a write); the next ones within a minute only read

    def reads() -> None:
        assert current_protocol(trial.engine).protocol.trial_id
        assert get_user(trial.engine, coordinator.username) == coordinator
        assert resolve_token(trial.engine, token) == coordinator
        list_screenings(trial.engine, coordinator)

    _finishes_while_a_writer_holds_its_lock(trial, reads)


def test_a_read_scope_cannot_write(trial: Trial, backend: str) -> None:
    if backend == "sqlite":
        # SQLite: a deferred transaction that writes would take the write lock; nothing in it is ever committed.
        with read_scope(trial.engine) as session:
            session.execute(text("UPDATE trial SET title = 'changed in a read'"))
        with read_scope(trial.engine) as session:
            assert session.execute(text("SELECT title FROM trial")).scalar_one() != "changed in a read"
        return
    with pytest.raises(DBAPIError, match="read-only transaction"), read_scope(trial.engine) as session:
        session.execute(text("UPDATE trial SET title = 'changed in a read'"))
