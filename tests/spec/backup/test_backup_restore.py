"""The restore drill: `trialwright backup` takes a consistent copy while the trial is being written, `trialwright
restore` loads it into a new database, and the restored trial is the backed-up one (its audit chain verifies, its
head is the manifest's, its participants, form values and audit entries are the same).

Each test runs on SQLite and PostgreSQL. The restored PostgreSQL trial goes into a new database created for the
test (a restore never writes into a database that holds anything).
"""

from __future__ import annotations

import json
import stat
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from tests.conftest import FIRST_PROTOCOL, POSTGRES_URL, must_have
from trialwright.cli.main import app
from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.store.engine import make_engine, session_scope

runner = CliRunner()


@pytest.fixture
def source(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    init_trial(engine, load_protocol(FIRST_PROTOCOL))
    simulate(engine, FIRST_PROTOCOL, 6, seed=7)
    yield engine
    engine.dispose()


@contextmanager
def new_database(source_url: str, folder: Path) -> Iterator[str]:
    """A URL to a new, empty database of the same kind as ``source_url``."""
    if source_url.startswith("sqlite"):
        yield f"sqlite:///{folder / 'restored.db'}"
        return
    import psycopg

    engine = make_engine(source_url)
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    engine.dispose()
    name = f"tw_restore_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.split("?", 1)[0].rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _rows(engine: Engine, query: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(query))]


FORM_VALUES = "SELECT participant_id, form_id, version, form_values FROM form_records ORDER BY id"
AUDIT = "SELECT seq, action, hash FROM audit_entries ORDER BY seq"


@pytest.mark.covers("REG-15")
def test_a_restored_backup_is_the_same_trial_and_its_chain_verifies(source: Engine, tmp_path: Path) -> None:
    url = source.url.render_as_string(hide_password=False)
    folder = tmp_path / "backup"
    taken = _cli("backup", "--out", str(folder), "--database", url)
    assert taken.exit_code == 0, taken.output
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for file in folder.rglob("*"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    participants = _rows(source, "SELECT participant_id FROM participants ORDER BY participant_id")
    forms = _rows(source, FORM_VALUES)
    trail = _rows(source, AUDIT)
    assert participants and forms
    # the source records the backup after the copy was taken: the copy's head is the entry before it
    assert trail[-1][1] == "backup.taken"
    assert manifest["audit_head"] == {"seq": trail[-2][0], "hash": trail[-2][2]}
    assert manifest["counts"] == {
        "participants": len(participants),
        "form_records": len(forms),
        "audit_entries": len(trail) - 1,
    }
    assert (manifest["trial_id"], manifest["protocol_version"]) == ("IRCT20190101042197N2", "2.0")

    with new_database(url, tmp_path) as target:
        restored = _cli("restore", "--from", str(folder), "--database", target)
        assert restored.exit_code == 0, restored.output
        assert "The audit trail is intact" in restored.output
        verified = _cli("audit", "verify", "--database", target)
        assert verified.exit_code == 0, verified.output
        copy = make_engine(target)
        try:
            assert _rows(copy, "SELECT participant_id FROM participants ORDER BY participant_id") == participants
            assert _rows(copy, FORM_VALUES) == forms
            copied = _rows(copy, AUDIT)
            assert copied[:-2] == trail[:-1]  # everything up to the head, without the source's backup.taken
            assert [row[1] for row in copied[-2:]] == ["backup.restored", "audit.verified"]  # then the verify
            head = [row for row in copied if row[0] == manifest["audit_head"]["seq"]]
            assert head == [(manifest["audit_head"]["seq"], trail[-2][1], manifest["audit_head"]["hash"])]
        finally:
            copy.dispose()


@pytest.mark.covers("REG-15")
def test_a_backup_taken_while_the_trial_is_written_is_consistent(source: Engine, tmp_path: Path) -> None:
    url = source.url.render_as_string(hide_password=False)
    stop = threading.Event()
    written = threading.Semaphore(0)
    errors: list[BaseException] = []

    def writer() -> None:
        engine = make_engine(url)
        try:
            i = 0
            while not stop.is_set():
                i += 1
                with session_scope(engine) as session:
                    audit.record(session, actor="writer", action="test.write", new_value=i)
                written.release()
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(20):  # the writer is running before the backup begins
            assert written.acquire(timeout=30)
        taken = _cli("backup", "--out", str(tmp_path / "backup"), "--database", url)
        for _ in range(20):  # ... and still after it
            assert written.acquire(timeout=30)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    assert taken.exit_code == 0, taken.output
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text(encoding="utf-8"))
    writes_in_backup = manifest["counts"]["audit_entries"]
    assert writes_in_backup < audit.count(source)

    with new_database(url, tmp_path) as target:
        restored = _cli("restore", "--from", str(tmp_path / "backup"), "--database", target)
        assert restored.exit_code == 0, restored.output
        copy = make_engine(target)
        try:
            report = audit.verify(copy)
            assert report.ok, report.message
            copied = _rows(copy, AUDIT)
            assert len(copied) == writes_in_backup + 1
            head_seq = manifest["audit_head"]["seq"]
            assert copied[head_seq - 1][0::2] == (head_seq, manifest["audit_head"]["hash"])
            # Up to the head the copy is the source's trail: nothing half-written. Entries after it were committed
            # but not chained yet when the copy was taken (PostgreSQL's pending entries, counted in the manifest):
            # the restore chained them, before its own entry.
            assert copied[:head_seq] == _rows(source, AUDIT)[:head_seq]
        finally:
            copy.dispose()


@pytest.mark.covers("REG-15")
def test_a_changed_backup_file_is_refused_by_its_sha256(source: Engine, tmp_path: Path) -> None:
    url = source.url.render_as_string(hide_password=False)
    folder = tmp_path / "backup"
    assert _cli("backup", "--out", str(folder), "--database", url).exit_code == 0
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    database_file = folder / manifest["files"][0]["name"]
    data = bytearray(database_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    database_file.write_bytes(bytes(data))
    with new_database(url, tmp_path) as target:
        refused = _cli("restore", "--from", str(folder), "--database", target)
        assert refused.exit_code == 1
        assert "SHA-256 differs from the manifest" in refused.output
        assert manifest["files"][0]["name"] in refused.output
        if target.startswith("sqlite"):
            assert not (tmp_path / "restored.db").exists()
        else:
            empty = make_engine(target)
            try:
                tables = _rows(empty, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                assert tables == []
            finally:
                empty.dispose()


def test_a_restore_into_a_database_that_holds_anything_is_refused(source: Engine, tmp_path: Path) -> None:
    url = source.url.render_as_string(hide_password=False)
    folder = tmp_path / "backup"
    assert _cli("backup", "--out", str(folder), "--database", url).exit_code == 0
    before = audit.count(source)
    refused = _cli("restore", "--from", str(folder), "--database", url)
    assert refused.exit_code == 1
    assert "not empty" in refused.output
    assert audit.count(source) == before


def test_a_backup_never_overwrites_a_folder_that_holds_files(source: Engine, tmp_path: Path) -> None:
    url = source.url.render_as_string(hide_password=False)
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "notes.txt").write_text("keep me", encoding="utf-8")
    refused = _cli("backup", "--out", str(tmp_path / "backup"), "--database", url)
    assert refused.exit_code == 1
    assert "not an empty folder" in refused.output
    assert (tmp_path / "backup" / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_without_pg_dump_a_postgresql_backup_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from trialwright.store import dump

    monkeypatch.setattr(dump.shutil, "which", lambda name: None)
    monkeypatch.setattr(dump.glob, "glob", lambda pattern: [])
    with pytest.raises(dump.DumpError, match=r"pg_dump was not found .* install the PostgreSQL client tools"):
        dump.find_pg_tool("pg_dump")
    monkeypatch.setattr(
        dump.glob, "glob", lambda pattern: [f"/usr/lib/postgresql/{v}/bin/pg_dump" for v in ["9", "16", "15"]]
    )
    assert dump.find_pg_tool("pg_dump") == Path("/usr/lib/postgresql/16/bin/pg_dump")


@pytest.mark.covers("REG-15")
def test_a_restore_whose_audit_chain_is_broken_fails(source: Engine, tmp_path: Path) -> None:
    url = source.url.render_as_string(hide_password=False)
    with source.begin() as conn:  # someone with database rights drops the guard and alters an entry
        if source.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_entries_no_change ON audit_entries"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
        conn.execute(text("UPDATE audit_entries SET reason = 'altered' WHERE seq = 3"))
    folder = tmp_path / "backup"
    assert _cli("backup", "--out", str(folder), "--database", url).exit_code == 0
    with new_database(url, tmp_path) as target:
        restored = _cli("restore", "--from", str(folder), "--database", target)
        assert restored.exit_code == 1
        assert "the audit trail is broken" in restored.output and "3" in restored.output


@pytest.mark.covers("REG-15")
def test_a_trial_in_the_public_schema_of_its_own_postgresql_database_is_restored(
    postgres_available: str | None, tmp_path: Path
) -> None:
    """The production layout: a database of its own, tables in ``public`` (which a new database already has)."""
    if postgres_available is not None:
        must_have("PostgreSQL at " + POSTGRES_URL, postgres_available)
    import psycopg

    admin = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    base = POSTGRES_URL.split("?", 1)[0].rsplit("/", 1)[0]
    names = [f"tw_{kind}_{uuid.uuid4().hex[:10]}" for kind in ("source", "copy")]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        source_url, target_url = (f"{base}/{name}" for name in names)
        engine = make_engine(source_url)
        init_trial(engine, load_protocol(FIRST_PROTOCOL))
        trail = _rows(engine, AUDIT)
        engine.dispose()
        assert _cli("backup", "--out", str(tmp_path / "backup"), "--database", source_url).exit_code == 0
        restored = _cli("restore", "--from", str(tmp_path / "backup"), "--database", target_url)
        assert restored.exit_code == 0, restored.output
        copy = make_engine(target_url)
        try:
            assert _rows(copy, AUDIT)[:-1] == trail
            with copy.connect() as conn:
                schemas = (
                    conn.execute(
                        text(
                            "SELECT DISTINCT table_schema FROM information_schema.tables "
                            "WHERE table_name = 'audit_entries'"
                        )
                    )
                    .scalars()
                    .all()
                )
            assert schemas == ["public"]
        finally:
            copy.dispose()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.covers("REG-15")
def test_the_audit_key_and_anchors_travel_as_side_files_or_are_given_apart(database_url: str, tmp_path: Path) -> None:
    """A keyed trial's audit key and anchor file are copied 0600 into ``side/`` with their SHA-256 and role. A
    restore puts them where the restored trial looks for them; a changed one is refused; a key kept apart from
    the backup (as production should) is given with --key-file, and without it the keyed trail cannot be restored."""
    from trialwright.services.audit_keys import audit_files, engine_for
    from trialwright.settings import Settings

    settings = Settings(database_url=database_url)
    engine = engine_for(settings, create_key=True)
    init_trial(engine, load_protocol(FIRST_PROTOCOL))
    engine.dispose()
    key, anchors = audit_files(settings)
    assert key is not None and key.is_file() and anchors is not None
    assert _cli("audit", "anchor", "--database", database_url).exit_code == 0
    folders = [tmp_path / name for name in ("whole", "changed", "kept-apart")]
    for folder in folders:
        taken = _cli("backup", "--out", str(folder), "--database", database_url)
        assert taken.exit_code == 0, taken.output
        assert "Warning: the audit key" in taken.output and "keep it apart" in taken.output, taken.output
        sides = {e["role"]: e for e in json.loads((folder / "manifest.json").read_text("utf-8"))["files"][1:]}
        assert set(sides) == {"audit_key", "audit_anchors"}
        copied = folder / sides["audit_key"]["name"]
        assert copied.read_bytes() == key.read_bytes() and stat.S_IMODE(copied.stat().st_mode) == 0o600
    key_name = sides["audit_key"]["name"]
    (folders[1] / key_name).write_bytes(b"x" * 64)
    (folders[2] / key_name).unlink()

    with new_database(database_url, tmp_path / "a") as target:
        placed, placed_anchors = audit_files(Settings(database_url=target))
        assert placed_anchors is not None
        placed_anchors.parent.mkdir(parents=True, exist_ok=True)
        placed_anchors.write_bytes(anchors.read_bytes())  # the same anchors are already there
        restored = _cli("restore", "--from", str(folders[0]), "--database", target)
        assert restored.exit_code == 0, restored.output
        key_copy = folders[0] / key_name
        assert f"Audit key: the backup's copy {key_copy}; placed at {placed} (0600)." in restored.output
        assert f"already at {placed_anchors} and identical (left as it was)." in restored.output
        assert placed is not None and placed.read_bytes() == key.read_bytes()
        assert stat.S_IMODE(placed.stat().st_mode) == 0o600
        assert _cli("audit", "verify", "--database", target).exit_code == 0
    with new_database(database_url, tmp_path / "b") as target:
        refused = _cli("restore", "--from", str(folders[1]), "--database", target)
        assert refused.exit_code == 1 and f"{key_name}: its SHA-256 differs" in refused.output
    with new_database(database_url, tmp_path / "c") as target:
        without = _cli("restore", "--from", str(folders[2]), "--database", target)
        assert without.exit_code == 1 and "key" in without.output, without.output
    with new_database(database_url, tmp_path / "d") as target:
        given = _cli("restore", "--from", str(folders[2]), "--database", target, "--key-file", str(key))
        assert given.exit_code == 0, given.output
        placed, placed_anchors = audit_files(Settings(database_url=target))
        assert f"Audit key: given with --key-file {key}; placed at {placed} (0600)." in given.output, given.output
        assert f"placed at {placed_anchors} (0600)" in given.output
        assert "is not in the backup folder" not in given.output
        assert _cli("audit", "verify", "--database", target).exit_code == 0


def _keyed_trial_backed_up(database_url: str, folder: Path) -> tuple[Path, str]:
    """A keyed trial with an anchor, backed up into ``folder``; its key file and the backup's key file name."""
    from trialwright.services.audit_keys import audit_files, engine_for
    from trialwright.settings import Settings

    settings = Settings(database_url=database_url)
    engine = engine_for(settings, create_key=True)
    init_trial(engine, load_protocol(FIRST_PROTOCOL))
    engine.dispose()
    assert _cli("audit", "anchor", "--database", database_url).exit_code == 0
    taken = _cli("backup", "--out", str(folder), "--database", database_url)
    assert taken.exit_code == 0, taken.output
    key, _ = audit_files(settings)
    assert key is not None
    entries = json.loads((folder / "manifest.json").read_text("utf-8"))["files"]
    return key, next(e["name"] for e in entries if e.get("role") == "audit_key")


def _nothing_written(target: str, tmp_path: Path) -> None:
    """The target holds no table, and no file of this restore lies beside a SQLite target."""
    if target.startswith("sqlite"):
        leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("restored.db"))
        assert leftovers == []
        return
    empty = make_engine(target)
    try:
        tables = _rows(empty, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        assert tables == []
    finally:
        empty.dispose()


@pytest.mark.covers("REG-15")
def test_a_missing_audit_key_is_refused_before_anything_is_written_and_the_retry_with_key_file_works(
    database_url: str, tmp_path: Path
) -> None:
    """The manifest records the trail's key check value (never the key). Without the key in the backup folder or
    --key-file, the restore is refused before loading, naming --key-file and the settings; the same target then
    takes the retry with --key-file."""
    from trialwright.store.audit_keys import key_check, load_key

    folder = tmp_path / "backup"
    key, key_name = _keyed_trial_backed_up(database_url, folder)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    secret = load_key(key).secret
    assert secret is not None
    assert manifest["audit_key_check"] == key_check(secret)
    assert secret.hex() not in (folder / "manifest.json").read_text("utf-8")
    (folder / key_name).unlink()
    with new_database(database_url, tmp_path / "t") as target:
        (tmp_path / "t").mkdir(exist_ok=True)
        refused = _cli("restore", "--from", str(folder), "--database", target)
        assert refused.exit_code == 1
        assert "--key-file" in refused.output and "TRIALWRIGHT_AUDIT_KEY" in refused.output, refused.output
        assert "nothing was restored" in refused.output
        _nothing_written(target, tmp_path / "t")
        retried = _cli("restore", "--from", str(folder), "--database", target, "--key-file", str(key))
        assert retried.exit_code == 0, retried.output
        assert "The audit trail is intact" in retried.output
        assert _cli("audit", "verify", "--database", target).exit_code == 0


@pytest.mark.covers("REG-15")
def test_a_wrong_key_file_is_refused_and_leaves_nothing(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    key, key_name = _keyed_trial_backed_up(database_url, folder)
    (folder / key_name).unlink()
    wrong = tmp_path / "wrong.key"
    wrong.write_text("ab" * 32 + "\n", encoding="ascii")
    with new_database(database_url, tmp_path / "t") as target:
        (tmp_path / "t").mkdir(exist_ok=True)
        refused = _cli("restore", "--from", str(folder), "--database", target, "--key-file", str(wrong))
        assert refused.exit_code == 1
        assert f"--key-file {wrong} is not this trial's audit key" in refused.output, refused.output
        _nothing_written(target, tmp_path / "t")
        if not target.startswith("sqlite"):
            from trialwright.services.audit_keys import audit_files
            from trialwright.settings import Settings

            placed, anchors = audit_files(Settings(database_url=target))
            assert placed is not None and not placed.exists() and anchors is not None and not anchors.exists()
        retried = _cli("restore", "--from", str(folder), "--database", target, "--key-file", str(key))
        assert retried.exit_code == 0, retried.output


def test_a_failure_after_loading_removes_what_the_restore_created(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite restore that fails once loaded leaves no database, -wal/-shm or side file; a PostgreSQL one says the
    target must be dropped and created anew (a restore does not drop databases)."""
    from trialwright.services import restore as restore_service

    folder = tmp_path / "backup"
    key, _ = _keyed_trial_backed_up(database_url, folder)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(restore_service, "_record_and_verify", broken)
    with new_database(database_url, tmp_path / "t") as target:
        (tmp_path / "t").mkdir(exist_ok=True)
        failed = _cli("restore", "--from", str(folder), "--database", target, "--key-file", str(key))
        assert failed.exit_code == 1
        assert "the disk went away" in failed.output
        from trialwright.services.audit_keys import audit_files
        from trialwright.settings import Settings

        placed, anchors = audit_files(Settings(database_url=target))
        assert placed is not None and not placed.exists() and anchors is not None and not anchors.exists()
        if target.startswith("sqlite"):
            _nothing_written(target, tmp_path / "t")
            assert "were removed" in failed.output
        else:
            assert "drop it and create it anew" in " ".join(failed.output.split())
