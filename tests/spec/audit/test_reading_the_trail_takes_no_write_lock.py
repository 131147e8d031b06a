"""Reading the audit trail takes no write lock, and a page's total is of the same snapshot as its entries.

The audit page, the audit API and ``audit show`` read entries, their count and the reader's unblinded
participants (the masking policy's exceptions) in one read transaction: on SQLite, where a write transaction
begins IMMEDIATE and so waits for every other writer, a reader of the trail would otherwise queue behind each
write; on PostgreSQL the read is READ ONLY and one snapshot.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.audit import AuditEntry
from trialwright.domain.paging import Page
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.audit_trail import page_trail, read_trail
from trialwright.store.engine import session_scope


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    with session_scope(t.engine) as session:
        audit.record_many(session, [{"actor": "tester", "action": "test.note", "detail": {"n": n}} for n in range(7)])
    yield t
    t.engine.dispose()


def test_a_page_of_the_trail_is_read_while_a_writer_holds_its_lock(trial: Trial) -> None:
    manager = who(trial, Role.DATA_MANAGER)
    expected_total = audit.count(trial.engine, action_prefix="test.")
    done = threading.Event()
    read: list[Page[AuditEntry]] = []
    failed: list[BaseException] = []

    def reader() -> None:
        try:
            read.append(page_trail(trial.engine, manager, action_prefix="test.", limit=5))
            read_trail(trial.engine, manager, limit=3)
        except BaseException as exc:  # collected and asserted below
            failed.append(exc)
        done.set()

    with session_scope(trial.engine) as writer:
        # The writer holds the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a row it changed) until it ends.
        writer.execute(text("UPDATE trial SET title = title"))
        worker = threading.Thread(target=reader)
        worker.start()
        assert done.wait(10), "reading the audit trail waited for a writer's transaction to end"
        worker.join()
    assert failed == []
    [page] = read
    assert page.total == expected_total == 7
    assert [e.action for e in page.items] == ["test.note"] * 5 and page.next_cursor is not None
    rest = page_trail(trial.engine, manager, action_prefix="test.", limit=5, cursor=page.next_cursor)
    assert [e.seq for e in page.items + rest.items] == [e.seq for e in read_trail(trial.engine, manager, limit=7)]
