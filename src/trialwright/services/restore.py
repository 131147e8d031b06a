"""Restoring a backup into a new database, and proving the copy whole.

The order matters: the manifest's SHA-256 of every file is checked before anything is loaded (a changed file is
refused by name); the target must be empty (a restore never overwrites a trial); after loading, the restored
trial records ``backup.restored`` in its own trail, and then the whole audit chain is verified, the entry at the
manifest's head sequence must carry the manifest's head hash, and the restored counts must equal the manifest's.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Engine, select, text

from trialwright.domain.audit import ChainReport
from trialwright.services import audit, audit_keys
from trialwright.services.backup import FORMAT, MANIFEST, BackupError, Snapshot, file_sha256, read_snapshot
from trialwright.settings import Settings
from trialwright.store import dump
from trialwright.store.audit_keys import create_private_file
from trialwright.store.engine import make_engine, normalise_url, session_scope
from trialwright.store.tables import audit_entries

__all__ = ["RestoreResult", "check_backup", "restore"]


@dataclass(frozen=True)
class RestoreResult:
    """What a restore found: the chain report, whether the head and the counts match the manifest."""

    trial_id: str
    manifest: dict[str, Any]
    chain: ChainReport
    head_matches: bool
    restored: Snapshot
    audit_seq: int

    @property
    def side_files(self) -> list[tuple[str, str | None, bool]]:
        """Each side file of the backup: its name in the folder, where it came from, and whether it is there."""
        missing = set(self.manifest["missing"])
        return [
            (entry["name"], entry.get("source"), entry["name"] not in missing)
            for entry in self.manifest["files"]
            if entry["kind"] == "side"
        ]

    @property
    def counts_match(self) -> bool:
        expected = self.manifest["counts"]
        restored = self.restored.counts()
        # The restore adds its own entry to the trail; everything else must be exactly as backed up.
        return restored == {**expected, "audit_entries": expected["audit_entries"] + 1}

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.head_matches and self.counts_match


def check_backup(folder: Path) -> dict[str, Any]:
    """The folder's manifest, once every file it lists has its recorded SHA-256.

    The database file must be there. A side file may be absent (the audit key is kept apart from the database
    copies, docs/backup.md); the manifest's ``missing`` then names it. One that is there must match."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{path}: no manifest; is {folder} a trialwright backup?") from None
    except json.JSONDecodeError as exc:
        raise BackupError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: not a {FORMAT} manifest")
    files = manifest.get("files") or []
    if sum(1 for entry in files if entry.get("kind") == "database") != 1:
        raise BackupError(f"{path}: the manifest must list exactly one database file")
    missing = []
    for entry in files:
        name = PurePosixPath(str(entry.get("name", "")))
        if name.is_absolute() or ".." in name.parts or not name.parts:
            raise BackupError(f"{path}: file name {str(name)!r} leaves the backup folder")
        file = folder / name
        if not file.is_file() and entry.get("kind") == "side":
            missing.append(str(name))
            continue
        if not file.is_file():
            raise BackupError(f"{name}: listed in the manifest but missing from the backup")
        if file_sha256(file) != entry.get("sha256"):
            raise BackupError(f"{name}: its SHA-256 differs from the manifest's; the backup was changed or damaged")
    return {**manifest, "missing": missing}


def _database_file(folder: Path, manifest: dict[str, Any]) -> Path:
    entry = next(entry for entry in manifest["files"] if entry["kind"] == "database")
    return folder / str(entry["name"])


def _restore_sqlite(source: Path, url: str) -> None:
    target = dump.sqlite_path(url)
    if target.exists() and target.stat().st_size > 0:
        with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as conn:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables:
            raise BackupError(f"{target} is not empty: restore into a new database")
    target.parent.mkdir(parents=True, exist_ok=True)
    dump.sqlite_copy(source, target)


def _search_path_head(engine: Engine) -> str:
    with engine.connect() as conn:
        path = str(conn.execute(text("SELECT current_setting('search_path')")).scalar_one())
    first = path.split(",")[0].strip().strip('"')
    return "public" if first == "$user" else first


def _restore_postgresql(source: Path, url: str, manifest: dict[str, Any]) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            ).scalar_one()
        if tables:
            raise BackupError("the target database is not empty: create a new, empty database and restore into it")
        schema = manifest.get("postgresql_schema", "public")
        if _search_path_head(engine) != schema:
            raise BackupError(
                f"the backup's tables are in schema {schema!r}; name it in the URL "
                f"(?options=-csearch_path%3D{schema}) so the restored trial is the one opened"
            )
    finally:
        engine.dispose()
    dump.pg_restore(url, source)


def _place_side_files(folder: Path, manifest: dict[str, Any], settings: Settings, key_file: Path | None) -> None:
    """Put the audit key and anchors where the restored trial's settings look for them, never over a file there.

    The key comes from ``key_file`` (kept apart from the backups, as docs/backup.md advises) or else from the
    backup folder; the anchors from the backup folder. A file already at the target is kept only if it is the
    same file; a different one is refused (a restore never replaces a key)."""
    target_key, target_anchors = audit_keys.audit_files(settings)
    sources: dict[str, Path] = {}
    for entry in manifest["files"]:
        if entry["kind"] == "side" and entry.get("role") and str(entry["name"]) not in manifest["missing"]:
            sources[entry["role"]] = folder / str(entry["name"])
    if key_file is not None:
        if not key_file.is_file():
            raise BackupError(f"{key_file}: no such key file")
        sources["audit_key"] = key_file
    if settings.audit_key is not None:
        sources.pop("audit_key", None)  # the key is the environment secret the operator holds
    for role, target in (("audit_key", target_key), ("audit_anchors", target_anchors)):
        source = sources.get(role)
        if source is None or target is None:
            continue
        if target.exists():
            if target.read_bytes() != source.read_bytes():
                raise BackupError(
                    f"{target} exists and differs from the backup's {role.replace('_', ' ')}: "
                    "restore next to no other trial's files"
                )
            continue
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_private_file(target, source.read_bytes())


def restore(folder: Path, url: str, *, settings: Settings | None = None, key_file: Path | None = None) -> RestoreResult:
    """Check the backup in ``folder``, load it into the new database at ``url``, put its audit key (``key_file``,
    or the backup's copy) and anchors where the restored trial's ``settings`` look for them, and verify."""
    url = normalise_url(url)
    settings = (settings or Settings()).model_copy(update={"database_url": url})
    manifest = check_backup(folder)
    source = _database_file(folder, manifest)
    kind = manifest.get("database")
    if kind != ("postgresql" if url.startswith("postgresql") else "sqlite" if url.startswith("sqlite") else None):
        raise BackupError(f"this is a {kind} backup: restore it into a {kind} database")
    if kind == "sqlite":
        _restore_sqlite(source, url)
    else:
        _restore_postgresql(source, url, manifest)
    _place_side_files(folder, manifest, settings, key_file)
    engine = audit_keys.engine_for(settings)
    try:
        head = manifest["audit_head"]
        with engine.connect() as conn:
            stored_hash = conn.execute(
                select(audit_entries.c.hash).where(audit_entries.c.seq == head["seq"])
            ).scalar_one_or_none()
        with session_scope(engine) as session:
            seq = audit.record(
                session,
                actor="system",
                action="backup.restored",
                new_value={"head_seq": head["seq"], "head_hash": head["hash"], "taken_at": manifest["taken_at"]},
                detail={"folder": str(folder.resolve()), "database": manifest["database"]},
            )
        chain = audit.verify(engine)
        with engine.connect() as conn:
            restored = read_snapshot(conn)
    finally:
        engine.dispose()
    return RestoreResult(
        trial_id=restored.trial_id,
        manifest=manifest,
        chain=chain,
        head_matches=stored_hash == head["hash"],
        restored=restored,
        audit_seq=seq,
    )
