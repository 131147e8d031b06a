"""The audit trail is append-only and hash-chained; tampering in the database is detected and named.

Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from trialwright.services import audit
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.migrate import upgrade


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _write(engine, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(1, n + 1):
        with session_scope(engine) as session:
            audit.record(
                session,
                actor="alice",
                role="investigator",
                site="RAZ",
                participant=f"RAZ-{i:03d}",
                form="labs",
                field="crp",
                action="form.value_changed",
                old_value=i,
                new_value=i + 1,
                reason="transcription error",
                detail={"visit": "day7"},
            )


@pytest.mark.covers("REG-1")
def test_every_field_of_an_entry_is_kept(engine) -> None:  # type: ignore[no-untyped-def]
    _write(engine, 1)
    (entry,) = audit.entries(engine)
    assert (entry.seq, entry.actor, entry.role, entry.site, entry.participant, entry.form, entry.field) == (
        1,
        "alice",
        "investigator",
        "RAZ",
        "RAZ-001",
        "labs",
        "crp",
    )
    assert (entry.old_value, entry.new_value, entry.reason) == ("1", "2", "transcription error")
    assert entry.detail == '{"visit":"day7"}'
    assert entry.at.tzinfo is not None and abs(dt.datetime.now(dt.UTC) - entry.at) < dt.timedelta(minutes=1)
    assert entry.prev_hash == "0" * 64 and len(entry.hash) == 64


@pytest.mark.covers("REG-1")
def test_an_intact_trail_verifies(engine) -> None:  # type: ignore[no-untyped-def]
    _write(engine, 5)
    report = audit.verify(engine)
    assert report.ok and report.count == 5 and report.first_bad_seq is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET reason = 'nothing to see' WHERE seq = 2",
        "DELETE FROM audit_entries WHERE seq = 2",
    ],
)
@pytest.mark.covers("REG-1")
def test_the_trail_refuses_updates_and_deletes(engine, statement: str) -> None:  # type: ignore[no-untyped-def]
    _write(engine, 3)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert audit.verify(engine).ok


def _drop_guards(engine) -> None:  # type: ignore[no-untyped-def]
    """What an attacker with database rights would do first."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_entries_no_change ON audit_entries"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
            conn.execute(text("DROP TRIGGER audit_entries_no_delete"))


TAMPERING = [
    ("altered value", ["UPDATE audit_entries SET new_value = '999' WHERE seq = 3"], 3, "altered"),
    ("altered reason", ["UPDATE audit_entries SET reason = NULL WHERE seq = 2"], 2, "altered"),
    ("removed entry", ["DELETE FROM audit_entries WHERE seq = 3"], 3, "removed"),
    ("removed last two", ["DELETE FROM audit_entries WHERE seq >= 4"], None, None),
    (
        "inserted entry (later ones renumbered)",
        [
            "UPDATE audit_entries SET seq = seq + 100 WHERE seq >= 3",
            "UPDATE audit_entries SET seq = seq - 99 WHERE seq >= 100",
            "INSERT INTO audit_entries (seq, at, actor, action, prev_hash, hash) "
            "SELECT 3, at, 'mallory', 'form.value_changed', hash, "
            "'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff' FROM audit_entries WHERE seq = 2",
        ],
        3,
        "altered",
    ),
]


@pytest.mark.covers("REG-1")
@pytest.mark.parametrize(("tampering", "statements", "first_bad", "kind"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_in_the_database_is_detected(engine, tampering, statements, first_bad, kind) -> None:  # type: ignore[no-untyped-def]
    _write(engine, 5)
    _drop_guards(engine)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    report = audit.verify(engine)
    if first_bad is None:
        # Cutting the tail leaves a valid shorter chain: only the count (kept elsewhere) reveals it.
        assert report.ok and report.count == 3
        return
    assert not report.ok
    assert (report.first_bad_seq, report.problem) == (first_bad, kind), report
    assert str(first_bad) in report.message


@pytest.mark.covers("REG-1")
def test_concurrent_appends_make_one_gap_free_chain(engine) -> None:  # type: ignore[no-untyped-def]
    threads, per_thread = 16, 5
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(per_thread):
                with session_scope(engine) as session:
                    audit.record(session, actor=f"user{n}", action="test.append", new_value=i)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    entries = audit.entries(engine, limit=1000)
    assert sorted(e.seq for e in entries) == list(range(1, threads * per_thread + 1))
    report = audit.verify(engine)
    assert report.ok and report.count == threads * per_thread


def test_entries_of_one_transaction_chain_and_a_rolled_back_savepoint_leaves_no_gap(engine) -> None:  # type: ignore[no-untyped-def]
    """Many entries in one transaction continue from each other; entries in a savepoint that is rolled
    back are gone, and the next entry chains to the last one kept (as a bulk import that rejects a row)."""
    with session_scope(engine) as session:
        audit.record(session, actor="a", action="test.one")
        audit.record(session, actor="a", action="test.two")
        kept = session.begin_nested()
        audit.record(session, actor="a", action="test.kept")
        kept.commit()
        dropped = session.begin_nested()
        audit.record(session, actor="a", action="test.dropped")
        dropped.rollback()
        audit.record(session, actor="a", action="test.after")
    with session_scope(engine) as session:
        audit.record(session, actor="a", action="test.next")
    entries = list(reversed(audit.entries(engine)))
    assert [e.action for e in entries] == ["test.one", "test.two", "test.kept", "test.after", "test.next"]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert audit.verify(engine).ok


def test_a_rolled_back_transaction_leaves_no_trace_in_the_chain(engine) -> None:  # type: ignore[no-untyped-def]
    """A transaction that fails after writing entries takes them with it; the next one starts afresh."""
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        audit.record(session, actor="a", action="test.lost")
        raise RuntimeError("the use case failed")
    with session_scope(engine) as session:
        audit.record(session, actor="a", action="test.kept")
    assert [(e.seq, e.action) for e in audit.entries(engine)] == [(1, "test.kept")]
    assert audit.verify(engine).ok and audit.count(engine) == 1
