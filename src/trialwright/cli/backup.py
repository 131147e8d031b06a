"""``trialwright backup`` and ``trialwright restore``: a consistent online backup, and its restore drill into a new
database, verified by the audit chain (docs/backup.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trialwright.cli.common import DatabaseOption, JsonOption, console, emit, fail, fail_with, settings_for

if TYPE_CHECKING:
    from trialwright.services.restore import RestoreResult

__all__ = ["backup", "restore"]


def backup(
    out: Annotated[
        Path, typer.Option("--out", help="A new (or empty) folder for the backup; created 0700.", show_default=False)
    ],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Take a consistent online backup of the trial database (while the app may be writing) with its manifest."""
    from trialwright.services.backup import BackupError, take_backup
    from trialwright.store.audit_keys import AuditKeyError
    from trialwright.store.dump import DumpError
    from trialwright.store.engine import DatabaseUnavailable, check_connection, make_engine

    settings = settings_for(database)
    try:
        check_connection(make_engine(settings.database_url))
        result = take_backup(settings, out)
    except (DatabaseUnavailable, BackupError, DumpError, AuditKeyError) as exc:
        fail_with(exc)
    if emit(result, as_json):
        return
    facts = result.snapshot
    console.print(
        f"Backed up trial {facts.trial_id} (protocol {facts.protocol_version}, {result.manifest['database']}) "
        f"into {result.folder}: {facts.participants} participants, {facts.form_records} form records, "
        f"{facts.audit_entries} audit entries; audit head {facts.head_seq} {facts.head_hash}.",
        highlight=False,
    )
    for entry in result.manifest["files"]:
        if entry.get("role") == "audit_key":
            console.print(
                f"Warning: the audit key ({entry['source']}) travelled with the database copy, as "
                f"{result.folder / entry['name']}. In production keep it apart: move it to a separate place with "
                "separate access and give it at restore with --key-file (docs/backup.md).",
                highlight=False,
            )


def restore(
    source: Annotated[
        Path, typer.Option("--from", help="The backup folder (with its manifest.json).", show_default=False)
    ],
    database: Annotated[
        str,
        typer.Option(
            "--database",
            help="URL of the NEW, empty database to restore into (sqlite:///FILE, or an empty PostgreSQL database).",
            show_default=False,
        ),
    ],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="The trial's audit key file, kept apart from the backups; without it, the backup's copy (if any) "
            "is used. It must be the trial's key (checked before anything is loaded); it is copied (0600) to where the "
            "restored trial's settings look for its key.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Restore a backup into a new database: check every file's SHA-256, load it, verify the audit chain.

    Exit status 0 only when the chain is intact, its head is the manifest's, and the counts match."""
    from trialwright.services.backup import BackupError
    from trialwright.services.restore import restore as restore_backup
    from trialwright.store.audit_keys import AuditKeyError
    from trialwright.store.dump import DumpError
    from trialwright.store.engine import DatabaseUnavailable

    try:
        result = restore_backup(source, database, key_file=key_file)
    except (DatabaseUnavailable, BackupError, DumpError, AuditKeyError) as exc:
        fail_with(exc)
    manifest = result.manifest
    console.print(
        f"Restored trial {result.trial_id} from the backup taken {manifest['taken_at']} "
        f"(audit entry {result.audit_seq} records the restore).",
        highlight=False,
    )
    restored = result.restored.counts()
    restored["audit_entries"] -= 1  # the restore's own entry
    for name, expected in manifest["counts"].items():
        console.print(f"  {name}: {restored[name]} restored, {expected} in the backup", highlight=False)
    if not result.chain.ok:
        fail(f"the audit trail is broken: {result.chain.message}")
    console.print(f"The audit trail is intact: {result.chain.count} entries verified.", highlight=False)
    if not result.head_matches:
        fail(f"audit entry {manifest['audit_head']['seq']} does not carry the manifest's head hash")
    if not result.counts_match:
        fail("the restored counts differ from the manifest's")
    console.print(f"Audit head {manifest['audit_head']['seq']} matches the manifest.", highlight=False)
    _print_placements(result)


def _print_placements(result: RestoreResult) -> None:
    done = set()
    for item in result.placements:
        what = "Audit key" if item.role == "audit_key" else "Audit anchors"
        where = {
            "given": f"given with --key-file {item.source}",
            "backup": f"the backup's copy {item.source}",
            "environment": "the environment secret TRIALWRIGHT_AUDIT_KEY (not a file: nothing placed)",
        }[item.origin]
        outcome = {
            "placed": f"; placed at {item.target} (0600)",
            "identical": f"; already at {item.target} and identical (left as it was)",
        }.get(item.outcome, "")
        console.print(f"{what}: {where}{outcome}.", highlight=False)
        done.add(item.role)
    for entry in result.manifest["files"]:
        if entry["kind"] == "side" and entry.get("role") not in done and entry["name"] in result.manifest["missing"]:
            console.print(
                f"Side file {entry['name']} (from {entry.get('source')}) is not in the backup folder: not placed.",
                highlight=False,
            )
