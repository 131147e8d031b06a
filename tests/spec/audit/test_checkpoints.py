"""Verification checkpoints: a page load verifies only the entries written since the last checkpoint (at most a
cap), refuses a checkpoint an insider without the key forged or moved, and never runs the full verification or
the replay; `trialwright audit verify` still reads the whole trail and records its outcome for the page.

Entries verified are counted by wrapping ``trialwright.domain.audit.entry_hash`` (every entry the chain check
reads is hashed once): no timing. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text, update
from typer.testing import CliRunner

import trialwright.domain.audit as domain_audit
from trialwright.cli.main import app as cli
from trialwright.domain.audit import AuditEntry, entry_hash
from trialwright.services import audit
from trialwright.services.audit_checkpoints import check_new_entries, last_full_verify, record_full_verify
from trialwright.services.replay import replay
from trialwright.store.audit_keys import load_key
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.migrate import upgrade
from trialwright.store.tables import audit_checkpoints, audit_entries


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(database_url, audit_key=load_key(tmp_path / "trial.key", create=True))
    upgrade(engine)
    _write(engine, 6)
    yield engine
    engine.dispose()


def _write(engine: Engine, n: int, *, action: str = "form.value_changed", participant: str = "RAZ-001") -> None:
    for i in range(n):
        with session_scope(engine) as session:
            audit.record(session, actor="alice", action=action, participant=participant, new_value=i)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sequence numbers of the entries whose hash was recomputed (each entry the chain check read)."""
    seen: list[int] = []
    real = domain_audit.entry_hash

    def counting(entry: domain_audit.AuditEntry) -> str:
        seen.append(entry.seq)
        return real(entry)

    monkeypatch.setattr(domain_audit, "entry_hash", counting)
    return seen


def _checkpoints(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_checkpoints)).scalar_one())


def _tamper(engine: Engine, sql: str) -> None:
    """An insider with full rights on the database: drop the append-only guards, change rows with raw SQL."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_change ON audit_entries"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_update"))
        conn.execute(text(sql))


def test_a_page_load_verifies_only_the_entries_written_since_the_last_checkpoint(
    engine: Engine, hashed: list[int]
) -> None:
    head = audit.count(engine)
    first = check_new_entries(engine, by="web:dm")
    assert first.ok and first.verified_to == head and first.checked == head and first.unverified == 0
    assert sorted(hashed) == list(range(1, head + 1))
    hashed.clear()
    again = check_new_entries(engine, by="web:dm")
    assert again.ok and again.checked == 0 and hashed == []
    _write(engine, 3)
    third = check_new_entries(engine, by="web:dm")
    assert third.ok and third.verified_to == head + 3 and third.checked == 3
    assert sorted(hashed) == [head + 1, head + 2, head + 3]


def test_a_page_load_verifies_at_most_the_cap_and_says_how_many_wait(engine: Engine, hashed: list[int]) -> None:
    check_new_entries(engine, by="web:dm")
    head = audit.count(engine)
    _write(engine, 7)
    hashed.clear()
    status = check_new_entries(engine, by="web:dm", cap=5)
    assert status.ok and status.checked == 5 and status.verified_to == head + 5 and status.unverified == 2
    assert sorted(hashed) == list(range(head + 1, head + 6))
    hashed.clear()
    rest = check_new_entries(engine, by="web:dm", cap=5)
    assert rest.ok and rest.checked == 2 and rest.unverified == 0 and sorted(hashed) == [head + 6, head + 7]


@pytest.mark.parametrize("change", ["seq", "hash"])
def test_a_checkpoint_changed_without_the_key_is_refused_and_reported(
    engine: Engine, hashed: list[int], change: str
) -> None:
    check_new_entries(engine, by="web:dm")  # a valid checkpoint at entry 6
    _write(engine, 2)
    check_new_entries(engine, by="web:dm")  # and at entry 8
    _write(engine, 2)  # 9 and 10, not verified yet
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(audit_checkpoints.c.id))).scalar_one()
        head_hash = conn.execute(text("SELECT hash FROM audit_entries WHERE seq = 10")).scalar_one()
    values = {"seq": 10, "hash": head_hash} if change == "seq" else {"hash": "f" * 64}
    with engine.begin() as conn:  # move the checkpoint past entries never verified (or corrupt it)
        conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.id == newest).values(**values))
    before = _checkpoints(engine)
    hashed.clear()
    status = check_new_entries(engine, by="web:dm")
    assert not status.ok and status.problem == "checkpoint"
    assert "not signed with the audit key" in status.message and "not verified since entry 6" in status.message
    assert status.verified_to == 6 and status.unverified == 4
    assert hashed == [] and _checkpoints(engine) == before  # nothing verified nor checkpointed in the request


def test_an_entry_rechained_under_a_checkpoint_is_reported_without_a_full_verify(
    engine: Engine, hashed: list[int]
) -> None:
    check_new_entries(engine, by="web:dm")
    _tamper(engine, "UPDATE audit_entries SET hash = '" + "e" * 64 + "' WHERE seq = 6")
    hashed.clear()
    status = check_new_entries(engine, by="web:dm")
    assert (
        not status.ok
        and status.problem == "checkpoint"
        and "entry 6 no longer has the checkpointed hash" in (status.message)
    )
    assert status.verified_to == 0 and hashed == []


def test_tampering_before_the_checkpoint_is_still_found_by_the_full_verify(engine: Engine) -> None:
    assert check_new_entries(engine, by="web:dm").verified_to == 6
    _tamper(engine, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2")
    # The page checks only what is new: entry 6 still has its hash, so the checkpoint holds ...
    assert check_new_entries(engine, by="web:dm").ok
    # ... and the full verification, which trusts no checkpoint, names the entry.
    report = audit.verify(engine)
    assert not report.ok and report.problem == "altered" and report.first_bad_seq == 2
    record_full_verify(engine, report, replay(engine, limit=0), by="cli:test")
    full = last_full_verify(engine)
    assert full is not None and full.signed and not full.chain_ok and full.problem == "altered"


def test_a_full_verify_record_changed_without_the_key_shows_as_unsigned(engine: Engine) -> None:
    record_full_verify(engine, audit.verify(engine), replay(engine, limit=0), by="cli:test")
    full = last_full_verify(engine)
    assert full is not None and full.signed and full.chain_ok and full.entries == 6
    with engine.begin() as conn:
        conn.execute(update(audit_checkpoints).values(replay_disagreements=0, replay_ok=True, entries=9))
    forged = last_full_verify(engine)
    assert forged is not None and not forged.signed


def test_audit_verify_records_its_outcome_and_a_checkpoint_at_the_head(
    database_url: str, first_protocol_path: Path
) -> None:
    runner = CliRunner()
    init = runner.invoke(cli, ["init", "--protocol", str(first_protocol_path), "--database", database_url])
    assert init.exit_code == 0, init.output
    result = runner.invoke(cli, ["audit", "verify", "--database", database_url])
    assert result.exit_code == 0, result.output
    assert "Verifying the chain" in result.output and "Replaying the trail" in result.output
    from trialwright.services.audit_keys import engine_for
    from trialwright.settings import Settings

    engine = engine_for(Settings(database_url=database_url))
    try:
        full = last_full_verify(engine)
        assert full is not None and full.signed and full.chain_ok and full.replay_ok
        with engine.connect() as conn:
            seq = conn.execute(select(audit_checkpoints.c.seq).where(audit_checkpoints.c.kind == "full")).scalar_one()
        assert seq == full.entries > 0
        # A page load after it verifies only what was written since (here: nothing).
        assert check_new_entries(engine, by="web:dm").verified_to >= seq
    finally:
        engine.dispose()


def test_moving_where_keying_began_voids_every_checkpoint(engine: Engine, hashed: list[int]) -> None:
    """An insider without the key moves the keying record far ahead (so unsigned entries would pass), strips the
    MACs after a checkpoint, changes an entry and re-hashes the tail: the page refuses the checkpoint, whose MAC
    covers where keying began, instead of certifying the forged entries with a new one."""
    check_new_entries(engine, by="web:dm")  # a genuine checkpoint at entry 6
    _write(engine, 2)  # 7 and 8
    _tamper(engine, f"UPDATE audit_keying SET keyed_from = {10**9}")
    with engine.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_entries WHERE seq = 6")).scalar_one()
        for seq in (7, 8):
            row = dict(conn.execute(select(audit_entries).where(audit_entries.c.seq == seq)).mappings().one())
            if seq == 7:
                row["new_value"] = "99"
            forged = AuditEntry(**{f: row[f] for f in row if f not in {"hash", "mac"}} | {"prev_hash": prev})
            prev = entry_hash(forged)
            conn.execute(
                update(audit_entries).where(audit_entries.c.seq == seq)
                .values(new_value=forged.new_value, prev_hash=forged.prev_hash, hash=prev, mac=None)
            )  # fmt: skip
    before = _checkpoints(engine)
    status = check_new_entries(engine, by="web:dm")
    assert not status.ok and status.problem == "checkpoint" and "not signed with the audit key" in status.message
    assert status.verified_to == 0 and _checkpoints(engine) == before  # nothing certified
    assert not audit.verify(engine).ok  # and the full verification names it too


def test_deleting_a_failed_full_verify_record_does_not_bring_back_an_older_intact_one(engine: Engine) -> None:
    """Each full verify's outcome is also chained (audit.verified): the page's record must agree with it."""
    record_full_verify(engine, audit.verify(engine), replay(engine, limit=0), by="cli:test")  # intact
    _tamper(engine, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2")
    record_full_verify(engine, audit.verify(engine), replay(engine, limit=0), by="cli:test")  # broken
    failed = last_full_verify(engine)
    assert failed is not None and failed.signed and not failed.chain_ok
    with engine.begin() as conn:  # the insider removes the failed record
        newest = conn.execute(select(func.max(audit_checkpoints.c.id))).scalar_one()
        conn.execute(audit_checkpoints.delete().where(audit_checkpoints.c.id == newest))
    shown = last_full_verify(engine)
    assert shown is not None and shown.chain_ok and not shown.signed  # the older "intact" is not trusted
    (said,) = [e for e in audit.entries(engine, action_prefix="audit.verified")][:1]
    assert '"chain_ok":false' in (said.detail or "")
