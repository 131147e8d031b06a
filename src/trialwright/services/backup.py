"""Taking a consistent online backup of a trial, described by a manifest that a restore can check.

A backup is a folder (0700) holding the database copy (``database.sqlite3`` from SQLite's online backup API, or
``database.dump`` from ``pg_dump --format=custom``), the side files that live outside the database, and
``manifest.json``: the trial, protocol version, database kind, schema revision, the audit head (sequence and
hash) and the counts of participants, form records and audit entries *in the copy*, the UTC time, and the SHA-256
of every file, and the audit key's check value (``audit_keying.key_check``, an HMAC of a fixed label, never the
key; null when the trail is not keyed) so a restore can refuse a missing or wrong key before loading. Each file
is created 0600. Taking a backup is audited in the source trial (``backup.taken``, with the head and the
database file's SHA-256), so the source trail itself vouches for the copy.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, func, inspect, select, text

from trialwright import __version__
from trialwright.services import audit, audit_keys, clock
from trialwright.settings import Settings
from trialwright.store import dump
from trialwright.store.data_tables import form_records
from trialwright.store.engine import is_postgresql, make_engine
from trialwright.store.files import file_sha256
from trialwright.store.migrate import current_revision
from trialwright.store.screening_tables import participants
from trialwright.store.tables import audit_entries, audit_keying, audit_pending, protocol_versions, trial

__all__ = [
    "MANIFEST",
    "BackupError",
    "BackupResult",
    "Snapshot",
    "file_sha256",
    "read_snapshot",
    "side_files",
    "take_backup",
]

MANIFEST = "manifest.json"
FORMAT = "trialwright-backup/1"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.dump"
SIDE_FOLDER = "side"


class BackupError(Exception):
    """A backup that cannot be taken, or a backup folder that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class Snapshot:
    """What one consistent view of a trial database holds: the facts a manifest records and a restore checks."""

    trial_id: str
    protocol_version: str
    schema_revision: str | None
    head_seq: int
    head_hash: str | None
    participants: int
    form_records: int
    audit_entries: int
    key_check: str | None = None

    def counts(self) -> dict[str, int]:
        return {
            "participants": self.participants,
            "form_records": self.form_records,
            "audit_entries": self.audit_entries,
        }


@dataclass(frozen=True)
class BackupResult:
    """A backup taken: its folder, its manifest (as written) and the audit entry that records it."""

    folder: Path
    manifest: dict[str, Any]
    snapshot: Snapshot
    audit_seq: int


def side_files(settings: Settings) -> list[tuple[Path, str]]:
    """The files outside the database that a restore needs beside it, taken into every backup, each with its
    role (``audit_key``, ``audit_anchors``): the audit key file (unless the key is the environment secret) and
    the anchor file, where they exist. In production the key must not travel with the database copies: see
    docs/backup.md (a backup holding both lets whoever holds it re-chain the trail)."""
    key_file, anchor_file = audit_keys.audit_files(settings)
    roles = {key_file: "audit_key", anchor_file: "audit_anchors"}
    return [(path, roles[path]) for path in audit_keys.side_files(settings) if path.is_file()]


def read_snapshot(conn: Connection) -> Snapshot:
    """The trial's facts as this connection's transaction sees them."""
    row = conn.execute(
        select(trial.c.trial_id, protocol_versions.c.version).join(
            protocol_versions, protocol_versions.c.id == trial.c.current_protocol_version_id
        )
    ).first()
    if row is None:
        raise BackupError("this database holds no trial yet: nothing to back up")
    head = conn.execute(
        select(audit_entries.c.seq, audit_entries.c.hash).order_by(audit_entries.c.seq.desc()).limit(1)
    ).first()

    def count(table: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    keyed = inspect(conn).has_table("audit_keying")
    check = conn.execute(select(audit_keying.c.key_check)).scalar() if keyed else None
    # Entries committed but not chained yet (PostgreSQL, written while the backup ran) are in the copy too, and
    # chained when it is restored: they count as entries.
    pending = count(audit_pending) if inspect(conn).has_table("audit_pending") else 0
    return Snapshot(
        trial_id=row.trial_id,
        protocol_version=row.version,
        schema_revision=revision,
        head_seq=head.seq if head is not None else 0,
        head_hash=head.hash if head is not None else None,
        participants=count(participants),
        form_records=count(form_records),
        audit_entries=count(audit_entries) + pending,
        key_check=check,
    )


def _new_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} already exists and is not an empty folder: name a new folder for the backup")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)


def _backup_sqlite(url: str, out: Path) -> tuple[Path, Snapshot]:
    source = dump.sqlite_path(url)
    if not source.is_file():
        raise BackupError(f"{source}: no such database file")
    target = out / SQLITE_FILE
    dump.sqlite_copy(source, target)
    copy = create_engine(f"sqlite:///file:{target}?mode=ro&uri=true")
    try:
        with copy.connect() as conn:
            return target, read_snapshot(conn)
    finally:
        copy.dispose()


def _backup_postgresql(url: str, out: Path) -> tuple[Path, Snapshot]:
    engine = make_engine(url)
    target = out / PG_FILE
    try:
        with engine.connect() as plain:
            conn = plain.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot_id = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                schema = conn.execute(text("SELECT current_schema()")).scalar_one()
                facts = read_snapshot(conn)
                dump.pg_dump(url, target, snapshot=snapshot_id, schema=schema)
    finally:
        engine.dispose()
    return target, facts


def _copy_side_file(path: Path, out: Path) -> Path:
    if not path.is_file():
        raise BackupError(f"side file {path} does not exist")
    folder = out / SIDE_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / path.name
    if target.exists():
        raise BackupError(f"two side files are named {path.name}")
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    shutil.copyfile(path, target)
    return target


def _entry(out: Path, path: Path, kind: str, source: Path | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": path.relative_to(out).as_posix(),
        "kind": kind,
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
    }
    if source is not None:
        entry["source"] = str(source)
    return entry


def take_backup(settings: Settings, out: Path) -> BackupResult:
    """Back up the trial database of ``settings`` and its side files into the new folder ``out``."""
    url = settings.database_url
    engine = make_engine(url)
    try:
        if current_revision(engine) is None:
            raise BackupError("this database holds no trial yet: nothing to back up")
        postgres = is_postgresql(engine)
    finally:
        engine.dispose()
    _new_folder(out)
    if postgres:  # entries still pending (a crash) are chained first, so the copy's head holds them
        chainer = audit_keys.engine_for(settings)
        try:
            audit.chain_pending(chainer)
        finally:
            chainer.dispose()
    database_file, facts = _backup_postgresql(url, out) if postgres else _backup_sqlite(url, out)
    files = [_entry(out, database_file, "database")]
    for side, role in side_files(settings):
        files.append({**_entry(out, _copy_side_file(side, out), "side", side), "role": role})
    taken_at = clock.now().astimezone(dt.UTC)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "trial_id": facts.trial_id,
        "protocol_version": facts.protocol_version,
        "database": "postgresql" if postgres else "sqlite",
        "schema_revision": facts.schema_revision,
        "audit_head": {"seq": facts.head_seq, "hash": facts.head_hash},
        "counts": facts.counts(),
        "audit_key_check": facts.key_check,
        "taken_at": taken_at.isoformat().replace("+00:00", "Z"),
        "trialwright_version": __version__,
        "files": files,
    }
    if postgres:
        manifest["postgresql_schema"] = _schema_of(url)
    manifest_path = out / MANIFEST
    os.close(os.open(manifest_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    source = audit_keys.engine_for(settings)
    try:
        seq = audit.record_now(
            source,
            actor="system",
            action="backup.taken",
            new_value={
                "folder": str(out.resolve()),
                "head_seq": facts.head_seq,
                "head_hash": facts.head_hash,
                "database_sha256": files[0]["sha256"],
            },
            detail={"os_user": _os_user()},
        )
    finally:
        source.dispose()
    return BackupResult(folder=out, manifest=manifest, snapshot=facts, audit_seq=seq)


def _schema_of(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT current_schema()")).scalar_one())
    finally:
        engine.dispose()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. in a container)
        return str(os.getuid())
