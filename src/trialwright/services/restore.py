"""Restoring a backup into a new database, and proving the copy whole.

The order matters: the manifest's SHA-256 of every file is checked before anything is loaded (a changed file is
refused by name), and so is the audit key (its check value must be the manifest's); the target must be empty (a
restore never overwrites a trial); after loading, the restored trial records ``backup.restored`` in its own trail,
and then the whole audit chain is verified, the entry at the manifest's head sequence must carry the manifest's
head hash, and the restored counts must equal the manifest's.
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
from trialwright.store.audit_keys import AuditKeyError, create_private_file, key_check, load_key
from trialwright.store.engine import make_engine, normalise_url
from trialwright.store.tables import audit_entries

__all__ = ["Placement", "RestoreResult", "check_backup", "restore"]


@dataclass(frozen=True)
class RestoreResult:
    """What a restore found: the chain report, whether the head and the counts match the manifest."""

    trial_id: str
    manifest: dict[str, Any]
    chain: ChainReport
    head_matches: bool
    restored: Snapshot
    audit_seq: int
    placements: tuple[Placement, ...] = ()

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


def _sqlite_target_is_new(url: str) -> bool:
    """Refuse a SQLite target that holds a table; True if the file does not exist yet (this restore creates it)."""
    target = dump.sqlite_path(url)
    if target.exists() and target.stat().st_size > 0:
        with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as conn:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables:
            raise BackupError(f"{target} is not empty: restore into a new database")
    return not target.exists()


def _remove_sqlite(url: str, created: bool) -> None:
    """Undo a SQLite load: the database file this restore created (emptied if it was there, empty, before) and
    its -wal, -shm and -journal files."""
    target = dump.sqlite_path(url)
    for suffix in ("-wal", "-shm", "-journal"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    if created:
        target.unlink(missing_ok=True)
    elif target.exists():
        target.write_bytes(b"")


def _search_path_head(engine: Engine) -> str:
    with engine.connect() as conn:
        path = str(conn.execute(text("SELECT current_setting('search_path')")).scalar_one())
    first = path.split(",")[0].strip().strip('"')
    return "public" if first == "$user" else first


def _check_postgresql_target(url: str, manifest: dict[str, Any]) -> None:
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


@dataclass(frozen=True)
class Placement:
    """What the restore did with one side file: its role, where it came from (``given`` with --key-file, the
    ``backup``'s copy, the ``environment`` secret, or ``absent``), and where it now is (``placed``, ``identical``:
    already there and the same, ``not a file``: the environment secret, ``not placed``: absent)."""

    role: str
    origin: str
    source: Path | None
    target: Path | None
    outcome: str


_ROLE = {"audit_key": "audit key", "audit_anchors": "audit anchors"}
_WHERE_KEY = (
    "give the trial's key with --key-file FILE, or set it in the settings (TRIALWRIGHT_AUDIT_KEY, or "
    "TRIALWRIGHT_AUDIT_KEY_FILE naming the key file); nothing was restored"
)


def _plan_side_files(
    folder: Path, manifest: dict[str, Any], settings: Settings, key_file: Path | None
) -> list[Placement]:
    """Before anything is loaded: which key and anchors go where, refusing a missing or wrong key and a different
    file already at a target (a restore never replaces a key).

    The key is ``key_file`` (kept apart from the backups, as docs/backup.md advises), else the environment secret
    of the settings, else the backup's copy; it must match the manifest's ``audit_key_check`` when the backed-up
    trail is keyed. The anchors come from the backup folder."""
    target_key, target_anchors = audit_keys.audit_files(settings)
    in_backup: dict[str, Path] = {}
    for entry in manifest["files"]:
        if entry["kind"] == "side" and entry.get("role") and str(entry["name"]) not in manifest["missing"]:
            in_backup[entry["role"]] = folder / str(entry["name"])
    plan: list[Placement] = []
    if key_file is not None:
        if not key_file.is_file():
            raise BackupError(f"--key-file {key_file}: no such file; nothing was restored")
        plan.append(Placement("audit_key", "given", key_file, target_key, "placed"))
    elif settings.audit_key is not None:
        plan.append(Placement("audit_key", "environment", None, None, "not a file"))
    elif "audit_key" in in_backup:
        plan.append(Placement("audit_key", "backup", in_backup["audit_key"], target_key, "placed"))
    if "audit_anchors" in in_backup:
        plan.append(Placement("audit_anchors", "backup", in_backup["audit_anchors"], target_anchors, "placed"))
    if "audit_key_check" in manifest:  # backups from before the check value was recorded are checked after loading
        _check_key(manifest["audit_key_check"], plan, settings, target_key)
    checked = []
    for item in plan:
        if item.source is None or item.target is None:
            checked.append(item)
            continue
        if item.target.exists():
            if item.target.read_bytes() != item.source.read_bytes():
                raise BackupError(
                    f"{item.target} exists and differs from the {_ROLE[item.role]} to restore: "
                    "restore next to no other trial's files; nothing was restored"
                )
            item = Placement(item.role, item.origin, item.source, item.target, "identical")
        checked.append(item)
    return checked


def _check_key(expected: str | None, plan: list[Placement], settings: Settings, target_key: Path | None) -> None:
    if expected is None:
        return  # the backed-up trail is not keyed
    key = next((item for item in plan if item.role == "audit_key"), None)
    if key is None and target_key is not None and target_key.is_file():
        key = Placement("audit_key", "already there", target_key, None, "identical")
    if key is None:
        raise BackupError(
            "the backed-up audit trail is keyed, and its audit key is neither in the backup folder (kept apart) "
            f"nor given: {_WHERE_KEY}"
        )
    if key.origin == "environment":
        where, secret = "the environment secret TRIALWRIGHT_AUDIT_KEY", audit_keys.key_for(settings).secret
    else:
        assert key.source is not None
        where = {"given": f"--key-file {key.source}", "backup": f"the backup's copy {key.source}"}.get(
            key.origin, f"the key file already at {key.source}"
        )
        try:
            secret = load_key(key.source).secret
        except AuditKeyError:
            secret = None
    if secret is None or key_check(secret) != expected:
        raise BackupError(
            f"{where} is not this trial's audit key (its check value differs from the manifest's): {_WHERE_KEY}"
        )


def _place(plan: list[Placement]) -> list[Path]:
    """Copy (0600) each planned file to its target; the files this restore created."""
    created = []
    for item in plan:
        if item.outcome != "placed" or item.source is None or item.target is None:
            continue
        item.target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if create_private_file(item.target, item.source.read_bytes()):
            created.append(item.target)
    return created


def restore(folder: Path, url: str, *, settings: Settings | None = None, key_file: Path | None = None) -> RestoreResult:
    """Check the backup in ``folder`` and the audit key, load it into the new database at ``url``, put the audit key
    (``key_file``, or the backup's copy) and anchors where the restored trial's ``settings`` look for them, and
    verify. A failure once loading has begun removes what this restore created (SQLite), or says the target
    database must be dropped and created anew (PostgreSQL: dropping a database is not the restore's to do)."""
    url = normalise_url(url)
    settings = (settings or Settings()).model_copy(update={"database_url": url})
    manifest = check_backup(folder)
    source = _database_file(folder, manifest)
    kind = manifest.get("database")
    if kind != ("postgresql" if url.startswith("postgresql") else "sqlite" if url.startswith("sqlite") else None):
        raise BackupError(f"this is a {kind} backup: restore it into a {kind} database")
    new_file = _sqlite_target_is_new(url) if kind == "sqlite" else False
    if kind != "sqlite":
        _check_postgresql_target(url, manifest)
    plan = _plan_side_files(folder, manifest, settings, key_file)
    placed: list[Path] = []
    try:
        if kind == "sqlite":
            dump.sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
            dump.sqlite_copy(source, dump.sqlite_path(url))
        else:
            dump.pg_restore(url, source)
        placed = _place(plan)
        return _record_and_verify(folder, manifest, settings, tuple(plan))
    except BaseException as exc:
        for path in placed:
            path.unlink(missing_ok=True)
        if kind == "sqlite":
            _remove_sqlite(url, new_file)
            note = "the partly restored database and the files this restore placed were removed; retry when fixed"
        else:
            note = (
                "the target database may now hold part of the restore: drop it and create it anew, empty, "
                "before retrying (the restore does not drop databases); the files it placed were removed"
            )
        if isinstance(exc, Exception):
            raise BackupError(f"{exc} ({note})") from exc
        raise


def _record_and_verify(
    folder: Path, manifest: dict[str, Any], settings: Settings, placements: tuple[Placement, ...]
) -> RestoreResult:
    engine = audit_keys.engine_for(settings)
    try:
        head = manifest["audit_head"]
        with engine.connect() as conn:
            stored_hash = conn.execute(
                select(audit_entries.c.hash).where(audit_entries.c.seq == head["seq"])
            ).scalar_one_or_none()
        seq = audit.record_now(
            engine,
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
        placements=placements,
    )
