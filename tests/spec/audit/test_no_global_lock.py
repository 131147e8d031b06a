"""Audit entries are appended without a lock held across the writer's transaction.

On PostgreSQL a transaction writes its entries unchained (each signed with the audit key) and the single chainer
chains them right after the commit; so a transaction that has written entries and not yet committed does not hold
up another one. Entries left unchained (a crash between the commit and the chainer) are chained, after their MAC
is checked, by the next pass or by `audit verify`; one altered while it waited, unsigned on a keyed trail, or a
replayed copy is set aside, named in the chain, and never chained as genuine.
On SQLite, one writer at a time, entries are chained as they are written.

Each test runs on SQLite and PostgreSQL where both apply.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.conftest import fresh_database
from trialwright.services import audit
from trialwright.store.audit_keys import load_key
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.migrate import upgrade


def _keyed(url: str, folder: Path) -> Engine:
    engine = make_engine(url, audit_key=load_key(folder / "trial.key", create=True))
    upgrade(engine)
    return engine


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = _keyed(database_url, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(tmp_path: Path, postgres_available: str | None) -> Iterator[Engine]:
    """PostgreSQL only: SQLite has one writer at a time by design and chains in the writer's transaction."""
    with fresh_database("postgresql", tmp_path, postgres_available) as url:
        engine = _keyed(url, tmp_path)
        yield engine
        engine.dispose()


def _pending(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_pending")).scalar_one())


def test_a_committed_transaction_leaves_its_entries_chained(engine: Engine) -> None:
    with session_scope(engine) as session:
        audit.record_many(session, [{"actor": "a", "action": "test.one"}, {"actor": "a", "action": "test.two"}])
    assert _pending(engine) == 0
    assert [(e.seq, e.action) for e in reversed(audit.entries(engine))] == [(1, "test.one"), (2, "test.two")]
    assert audit.verify(engine).ok


def test_an_open_writer_does_not_hold_up_another_writer(pg_engine: Engine) -> None:
    engine = pg_engine
    with session_scope(engine) as slow:
        audit.record(slow, actor="slow", action="test.slow")
        done = threading.Event()

        def other() -> None:
            with session_scope(engine) as session:
                audit.record(session, actor="fast", action="test.fast")
            done.set()

        worker = threading.Thread(target=other)
        worker.start()
        # With a lock held across the writer's transaction the other writer would wait for this one to end.
        assert done.wait(20), "a second writer waited for an open transaction that had written audit entries"
        worker.join()
    assert [e.actor for e in reversed(audit.entries(engine))] == ["fast", "slow"]
    assert _pending(engine) == 0 and audit.verify(engine).ok


def _crash_before_chaining(monkeypatch: pytest.MonkeyPatch, engine: Engine, n: int) -> None:
    """Entries committed, then the process dies before the chainer runs (the after-commit step is skipped)."""
    monkeypatch.setattr(audit, "_chain_after_commit", lambda engine, last: None)
    for i in range(n):
        with session_scope(engine) as session:
            audit.record(session, actor="alice", action="test.pending", new_value=i)
    monkeypatch.undo()


def test_entries_left_pending_by_a_crash_are_chained_by_verify(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = pg_engine
    _crash_before_chaining(monkeypatch, engine, 3)
    assert _pending(engine) == 3 and audit.count(engine) == 0
    report = audit.verify(engine)
    assert report.ok and report.count == 3, report
    assert _pending(engine) == 0
    assert [e.new_value for e in reversed(audit.entries(engine))] == ["0", "1", "2"]


def test_the_next_write_chains_what_a_crash_left_pending_first(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = pg_engine
    _crash_before_chaining(monkeypatch, engine, 2)
    with session_scope(engine) as session:
        audit.record(session, actor="bob", action="test.next")
    assert [e.actor for e in reversed(audit.entries(engine))] == ["alice", "alice", "bob"]
    assert audit.verify(engine).ok


def _keyed_trail_with_pending(engine: Engine, monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """A keyed trail (one entry chained), then ``n`` entries a crash left pending: their pending ids."""
    with session_scope(engine) as session:
        audit.record(session, actor="alice", action="test.first")
    _crash_before_chaining(monkeypatch, engine, n)
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT id FROM audit_pending ORDER BY id")).scalars())


def _chained(engine: Engine) -> list[tuple[str, str | None]]:
    return [(e.action, e.detail) for e in reversed(audit.entries(engine))]


def test_a_pending_entry_altered_while_it_waited_is_set_aside_and_named(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = pg_engine
    first, _ = _keyed_trail_with_pending(engine, monkeypatch, 2)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_pending SET actor = 'mallory' WHERE id = :id"), {"id": first})
    report = audit.verify(engine)
    assert not report.ok and report.problem == "forged" and report.count == 3
    assert f"refused 1 pending audit entries: {first} (altered" in report.message
    assert [a for a, _ in _chained(engine)] == ["test.first", "audit.pending_rejected", "test.pending"]
    assert audit.rejected_pending(engine) == [(first, "altered")] and _pending(engine) == 0
    assert all(e.actor != "mallory" for e in audit.entries(engine))


def test_an_entry_without_its_mac_on_a_keyed_trail_is_never_chained_as_genuine(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone with write access to the database but not the key adds a pending entry with no MAC."""
    engine = pg_engine
    _keyed_trail_with_pending(engine, monkeypatch, 0)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_pending (at, actor, action, mac) VALUES (now(), 'mallory', "
                          "'participant.withdrawn', NULL)"))  # fmt: skip
    report = audit.verify(engine)
    assert not report.ok and report.problem == "forged" and "(unsigned)" in report.message
    assert [a for a, _ in _chained(engine)] == ["test.first", "audit.pending_rejected"]
    assert "participant.withdrawn" not in {e.action for e in audit.entries(engine)}


def test_a_copy_of_a_genuine_pending_entry_is_refused_as_a_replay(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A genuine pending row read before it was chained (or from a backup) and inserted again, now or later."""
    engine = pg_engine
    (genuine,) = _keyed_trail_with_pending(engine, monkeypatch, 1)
    columns = "at, actor, role, site, participant, form, field, action, old_value, new_value, reason, detail, mac, "
    columns += "nonce"
    copy = text(f"INSERT INTO audit_pending ({columns}) SELECT {columns} FROM audit_pending WHERE id = :id")
    with engine.begin() as conn:
        conn.execute(copy, {"id": genuine})  # a copy beside the original: the same pass
        kept = dict(conn.execute(text("SELECT * FROM audit_pending WHERE id = :id"), {"id": genuine}).mappings().one())
    assert audit.chain_pending(engine) == 2  # the original, and the rejection of its copy
    with engine.begin() as conn:  # the same copy again, after the original was chained
        conn.execute(
            text(f"INSERT INTO audit_pending ({columns}) VALUES "
                 f"({', '.join(':' + c.strip() for c in columns.split(','))})"),
            {c.strip(): kept[c.strip()] for c in columns.split(",")},
        )  # fmt: skip
    report = audit.verify(engine)
    assert not report.ok and report.message.count("(replayed)") == 2
    assert [a for a, _ in _chained(engine)] == [
        "test.first", "test.pending", "audit.pending_rejected", "audit.pending_rejected"
    ]  # fmt: skip
    assert [e.new_value for e in audit.entries(engine) if e.action == "test.pending"] == ["0"]


def test_one_forged_pending_entry_never_stops_the_trail(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = pg_engine
    (first,) = _keyed_trail_with_pending(engine, monkeypatch, 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_pending SET new_value = '99' WHERE id = :id"), {"id": first})
    for i in range(3):  # later writers: each acknowledged write is chained at once
        with session_scope(engine) as session:
            audit.record(session, actor="bob", action="test.later", new_value=i)
        assert _pending(engine) == 0
    assert [a for a, _ in _chained(engine)] == [
        "test.first", "audit.pending_rejected", "test.later", "test.later", "test.later"
    ]  # fmt: skip
    assert audit.rejected_pending(engine) == [(first, "altered")]


def test_sqlite_chains_entries_inside_the_writers_transaction(tmp_path: Path) -> None:
    engine = _keyed(f"sqlite:///{tmp_path / 'trial.db'}", tmp_path)
    try:
        with session_scope(engine) as session:
            audit.record(session, actor="a", action="test.inside")
            seen = session.execute(text("SELECT seq, action FROM audit_entries")).all()
            assert [tuple(row) for row in seen] == [(1, "test.inside")]
        assert _pending(engine) == 0 and audit.verify(engine).ok
    finally:
        engine.dispose()


def test_a_writer_without_the_key_of_a_keyed_trail_stores_nothing(database_url: str, engine: Engine) -> None:
    with session_scope(engine) as session:
        audit.record(session, actor="a", action="test.keyed")
    keyless = make_engine(database_url, audit_key=load_key(Path("/nonexistent/none.key")))
    try:
        with pytest.raises(audit.AuditKeyError), session_scope(keyless) as session:
            audit.record(session, actor="b", action="test.unkeyed")
    finally:
        keyless.dispose()
    assert audit.count(engine) == 1 and _pending(engine) == 0


def test_entries_are_chained_in_the_order_their_transactions_commit(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T2 writes its entry, then waits for a lock T1 holds; T1 writes its entry and commits; then T2 commits; one
    chainer pass (after a crash, say) finds both. The chain has T1's entry first, as the data tables saw the
    changes (the replay folds the trail in chain order)."""
    engine = pg_engine
    monkeypatch.setattr(audit, "_chain_after_commit", lambda engine, last: None)
    t1_locked, t2_written = threading.Event(), threading.Event()
    lock = text("SELECT pg_advisory_xact_lock(42)")

    def t1() -> None:
        with session_scope(engine) as session:
            session.execute(lock)  # stands for a row lock (the same form, the same participant)
            t1_locked.set()
            assert t2_written.wait(10)
            audit.record(session, actor="t1", action="test.first_to_commit")

    def t2() -> None:
        assert t1_locked.wait(10)
        with session_scope(engine) as session:
            audit.record(session, actor="t2", action="test.second_to_commit")  # written first ...
            t2_written.set()
            session.execute(lock)  # ... but it waits for T1, and commits after it

    threads = [threading.Thread(target=t1), threading.Thread(target=t2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    audit.chain_pending(engine)
    assert [e.actor for e in reversed(audit.entries(engine))] == ["t1", "t2"]
