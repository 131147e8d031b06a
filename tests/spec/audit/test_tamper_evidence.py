"""The audit trail holds against an insider who holds the database but not the audit key.

Each entry carries an HMAC with a key kept outside the database (a 0600 key file), and signed anchors
(checkpoints of the head) are appended to a file outside it. The insider below has full rights on the
database: they drop the append-only triggers and change rows with raw SQL, recomputing every SHA-256 the
published format lets them compute (the canonical JSON is re-implemented here from docs/audit.md, not
taken from the code under test). `audit verify` names the first bad entry and what was done to it.

Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from trialwright.services import audit
from trialwright.services.audit_keys import write_anchor
from trialwright.store.audit_keys import AuditKeyError, load_key
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.migrate import upgrade

ENTRIES = 6


@dataclass(frozen=True)
class Trail:
    url: str
    engine: Engine
    key_file: Path
    anchor_file: Path


def _keyed_engine(url: str, key_file: Path, *, create: bool = True) -> Engine:
    return make_engine(url, audit_key=load_key(key_file, create=create))


def _write(engine: Engine, n: int, start: int = 1) -> None:
    for i in range(start, start + n):
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
            )


@pytest.fixture
def trail(database_url: str, tmp_path: Path) -> Iterator[Trail]:
    key_file = tmp_path / "keys" / "trial.key"
    engine = _keyed_engine(database_url, key_file)
    upgrade(engine)
    _write(engine, ENTRIES)
    yield Trail(database_url, engine, key_file, tmp_path / "keys" / "trial.anchors")
    engine.dispose()


# --- what the insider does, with raw SQL and the published hash format ---------------------------------------


def _drop_guards(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_entries_no_change ON audit_entries"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
            conn.execute(text("DROP TRIGGER audit_entries_no_delete"))


_FIELDS = [
    "seq",
    "action",
    "actor",
    "role",
    "site",
    "participant",
    "form",
    "field",
    "old_value",
    "new_value",
    "reason",
    "detail",
    "prev_hash",
]


def _sha256(row: dict[str, object]) -> str:
    """The entry hash as docs/audit.md states it: SHA-256 of the sorted, compact JSON of every field but the
    hash and MAC, the time in UTC as YYYY-MM-DDTHH:MM:SS.ffffffZ."""
    content = {name: row[name] for name in _FIELDS}
    content["at"] = row["at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # type: ignore[attr-defined]
    data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _rows(engine: Engine) -> list[dict[str, object]]:
    from trialwright.store.tables import audit_entries  # only to read typed times back, as any client would

    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(audit_entries.select().order_by(audit_entries.c.seq))]


def _rechain(engine: Engine, from_seq: int) -> None:
    """Recompute every hash from ``from_seq`` on (prev_hash included), as an insider without the key can."""
    rows = _rows(engine)
    prev = next((r["hash"] for r in rows if r["seq"] == from_seq - 1), "0" * 64)
    with engine.begin() as conn:
        for row in rows:
            if row["seq"] < from_seq:  # type: ignore[operator]
                continue
            row["prev_hash"] = prev
            new = _sha256(row)
            conn.execute(
                text("UPDATE audit_entries SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": new, "s": row["seq"]},
            )
            prev = new


def _sql(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _alter_and_rehash(engine: Engine) -> None:
    _sql(engine, "UPDATE audit_entries SET new_value = '999' WHERE seq = 3")
    (row,) = [r for r in _rows(engine) if r["seq"] == 3]
    _sql(engine, f"UPDATE audit_entries SET hash = '{_sha256(row)}' WHERE seq = 3")


def _alter_and_rechain(engine: Engine) -> None:
    _sql(engine, "UPDATE audit_entries SET new_value = '999' WHERE seq = 2")
    _rechain(engine, 2)


def _insert_with_recomputed_hash(engine: Engine) -> None:
    """A new entry 3 with a correct hash, later entries renumbered and re-chained: a valid SHA-256 chain."""
    _sql(
        engine,
        "UPDATE audit_entries SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_entries SET seq = seq - 99 WHERE seq >= 100",
        "INSERT INTO audit_entries (seq, at, actor, action, new_value, prev_hash, hash) "
        "SELECT 3, at, 'mallory', 'form.value_changed', '42', hash, 'placeholder' FROM audit_entries WHERE seq = 2",
    )
    _rechain(engine, 3)


def _delete_and_restitch(engine: Engine) -> None:
    _sql(engine, "DELETE FROM audit_entries WHERE seq = 3", "UPDATE audit_entries SET seq = seq - 1 WHERE seq > 3")
    _rechain(engine, 3)


TAMPERING = [
    ("altered value", lambda e: _sql(e, "UPDATE audit_entries SET new_value = '999' WHERE seq = 3"), 3, "altered"),
    ("altered value, its hash recomputed", _alter_and_rehash, 3, "forged"),
    ("deleted row", lambda e: _sql(e, "DELETE FROM audit_entries WHERE seq = 3"), 3, "removed"),
    ("deleted row, the chain re-stitched without the key", _delete_and_restitch, 3, "forged"),
    ("inserted row with a recomputed unkeyed hash", _insert_with_recomputed_hash, 3, "unsigned"),
    ("full re-chain without the key", _alter_and_rechain, 2, "forged"),
    (
        "MACs stripped and the keying record deleted",
        lambda e: _sql(e, "DELETE FROM audit_keying", "UPDATE audit_entries SET mac = NULL"),
        1,
        "keying",
    ),
]


def test_an_untampered_keyed_trail_verifies(trail: Trail) -> None:
    report = audit.verify(trail.engine)
    assert report.ok, report.message
    assert (report.count, report.keyed_from, report.first_bad_seq, report.problem) == (ENTRIES, 1, None, None)
    assert all(row["mac"] is not None and len(row["mac"]) == 64 for row in _rows(trail.engine))  # type: ignore[arg-type]


@pytest.mark.parametrize(("tampering", "act", "first_bad", "kind"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_each_tampering_is_detected_and_named(trail: Trail, tampering, act, first_bad, kind) -> None:  # type: ignore[no-untyped-def]
    write_anchor(trail.engine)
    _drop_guards(trail.engine)
    act(trail.engine)
    report = audit.verify(trail.engine)
    assert not report.ok
    assert (report.first_bad_seq, report.problem) == (first_bad, kind), report
    assert str(first_bad) in report.message


def test_a_deleted_tail_is_found_against_the_anchor(trail: Trail) -> None:
    anchor = write_anchor(trail.engine)
    assert anchor is not None and anchor.seq == ENTRIES
    _drop_guards(trail.engine)
    _sql(trail.engine, "DELETE FROM audit_entries WHERE seq >= 5")
    report = audit.verify(trail.engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 5, "truncated"), report
    assert "deleted tail" in report.message


def test_without_an_anchor_a_deleted_tail_leaves_a_valid_shorter_trail(trail: Trail) -> None:
    """What anchors are for: the tail written after the last anchor can be cut unseen (docs/audit.md)."""
    _drop_guards(trail.engine)
    _sql(trail.engine, "DELETE FROM audit_entries WHERE seq >= 5")
    report = audit.verify(trail.engine)
    assert report.ok and report.count == 4


def test_a_rechained_trail_differs_from_its_anchor_even_before_keying(database_url: str, tmp_path: Path) -> None:
    """Entries written before keying began carry no MAC; an anchor still pins them."""
    engine = make_engine(database_url, audit_key=load_key(tmp_path / "none.key"))  # no key file: unkeyed
    upgrade(engine)
    _write(engine, 4)
    assert write_anchor(engine) is not None  # unsigned, but kept outside the database
    _drop_guards(engine)
    _alter_and_rechain(engine)
    report = audit.verify(engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 4, "anchor"), report


def test_every_anchor_is_signed_and_a_forged_one_is_named(trail: Trail) -> None:
    anchor = write_anchor(trail.engine)
    assert anchor is not None and anchor.mac is not None
    line = trail.anchor_file.read_text(encoding="utf-8").strip()
    assert json.loads(line)["seq"] == ENTRIES and json.loads(line)["mac"] == anchor.mac
    forged = json.loads(line) | {"seq": 2, "hash": "f" * 64}
    with trail.anchor_file.open("a", encoding="utf-8") as out:
        out.write(json.dumps(forged) + "\n")
    report = audit.verify(trail.engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 2, "anchor"), report


# --- the key ----------------------------------------------------------------------------------------------------


def test_a_missing_key_is_refused_naming_the_key_file_and_the_setting(trail: Trail) -> None:
    trail.key_file.rename(trail.key_file.with_name("elsewhere.key"))
    engine = _keyed_engine(trail.url, trail.key_file, create=False)
    with pytest.raises(AuditKeyError, match="no audit key was found") as refused, session_scope(engine) as session:
        audit.record(session, actor="bob", action="test.write")
    assert str(trail.key_file) in str(refused.value) and "audit_key_file" in str(refused.value)
    report = audit.verify(engine)
    assert (report.ok, report.problem) == (False, "key")
    assert audit.count(trail.engine) == ENTRIES


def test_an_engine_made_without_any_key_cannot_write_to_a_keyed_trail(trail: Trail) -> None:
    engine = make_engine(trail.url)  # the URL's default key file does not exist here
    with pytest.raises(AuditKeyError, match="keyed"), session_scope(engine) as session:
        audit.record(session, actor="bob", action="test.write")


def test_a_wrong_key_is_refused_and_never_stored(trail: Trail, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    engine = _keyed_engine(trail.url, other)
    with pytest.raises(AuditKeyError, match="not this trial's key"), session_scope(engine) as session:
        audit.record(session, actor="bob", action="test.write")
    assert (audit.verify(engine).ok, audit.verify(engine).problem) == (False, "key")
    key_hex = trail.key_file.read_text(encoding="ascii").strip()
    with trail.engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM audit_keying")) for v in row)
    assert key_hex not in stored and key_hex.lower() not in stored


def test_an_unkeyed_trail_is_keyed_from_the_first_entry_written_with_a_key(database_url: str, tmp_path: Path) -> None:
    """An old database: its entries stay unkeyed; keying begins where the key first writes, and from then on an
    entry without a MAC is refused by verify. The anchor file records where keying began."""
    old = make_engine(database_url, audit_key=load_key(tmp_path / "absent.key"))
    upgrade(old)
    _write(old, 3)
    keyed = _keyed_engine(database_url, tmp_path / "trial.key")
    _write(keyed, 3, start=4)
    report = audit.verify(keyed)
    assert (report.ok, report.keyed_from, report.count) == (True, 4, 6), report
    anchor = write_anchor(keyed)
    assert anchor is not None and anchor.keyed_from == 4
    assert json.loads((tmp_path / "trial.anchors").read_text(encoding="utf-8"))["keyed_from"] == 4
    _drop_guards(keyed)
    row = {**_rows(keyed)[-1]}
    row |= {"seq": 7, "actor": "mallory", "prev_hash": row["hash"]}
    _sql(
        keyed,
        "INSERT INTO audit_entries (seq, at, actor, role, site, participant, form, field, action, old_value, "
        "new_value, reason, detail, prev_hash, hash) SELECT 7, at, 'mallory', role, site, participant, form, field, "
        f"action, old_value, new_value, reason, detail, hash, '{_sha256(row)}' FROM audit_entries WHERE seq = 6",
    )
    report = audit.verify(keyed)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 7, "unsigned"), report
    # Moving where keying began, to pass the unsigned entry off as an old one, disagrees with the anchor.
    _sql(keyed, "UPDATE audit_keying SET keyed_from = 8")
    report = audit.verify(keyed)
    assert (report.ok, report.problem) == (False, "keying"), report


# --- files are private ------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_sqlite_files_key_files_and_anchor_files_are_0600(tmp_path: Path) -> None:
    before = os.umask(0o022)  # a permissive umask: the files must still be private
    try:
        db = tmp_path / "trial.db"
        engine = _keyed_engine(f"sqlite:///{db}", tmp_path / "trial.db.key")
        upgrade(engine)
        _write(engine, 2)
        assert write_anchor(engine) is not None
        engine.dispose()
    finally:
        os.umask(before)
    assert _mode(db) == 0o600
    assert _mode(tmp_path / "trial.db.key") == 0o600
    assert _mode(tmp_path / "trial.db.anchors") == 0o600
    for side in tmp_path.glob("trial.db-*"):  # -wal, -shm while open
        assert _mode(side) == 0o600, side


def test_an_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    key_file = tmp_path / "trial.key"
    first = load_key(key_file, create=True)
    again = load_key(key_file, create=True)
    assert first.secret is not None and first.secret == again.secret
    assert key_file.read_text(encoding="ascii").strip() == first.secret.hex()


def test_concurrent_keyed_writers_begin_keying_once_and_sign_every_entry(database_url: str, tmp_path: Path) -> None:
    import threading

    key_file = tmp_path / "trial.key"
    setup = _keyed_engine(database_url, key_file)
    upgrade(setup)
    setup.dispose()
    engine = _keyed_engine(database_url, key_file)  # a fresh engine: its key not yet matched with the database
    errors: list[BaseException] = []

    def work() -> None:
        try:
            _write(engine, 3)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_keying")).scalar_one() == 1
    report = audit.verify(engine)
    assert (report.ok, report.count, report.keyed_from) == (True, 24, 1), report
    engine.dispose()
