"""Whose audit files these are: a new trial never adopts the key file and anchor file another trial left behind.

The key and the anchors are kept outside the database (docs/audit.md "Where the key and the anchors live"): beside a
SQLite file, or under ``~/.local/share/trialwright/audit/`` by PostgreSQL host, port, database and schema. When the
database is deleted (or the schema dropped) they stay, and a new trial made at the same place would find them: its
trail checked against anchors of entries it never wrote (``audit verify`` fails, later, as if the trail had been
re-chained), its entries signed with the other trial's secret. ``init`` creating a new trial (a database with no
audit entry) therefore refuses while the anchor file holds anchors, naming the file and how many; with
``move_aside`` (``--new-audit-files``) the old key and anchor files are renamed aside with a timestamp, and said.
A key file alone (no anchors) is used, and said: a key may be provisioned before the first ``init``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, make_url, select

from trialwright.services import clock
from trialwright.services.audit_keys import audit_files, read_anchors
from trialwright.store.engine import check_connection, make_engine
from trialwright.store.tables import audit_entries

if TYPE_CHECKING:
    from trialwright.settings import Settings

__all__ = ["AuditFilesOfAnotherTrial", "claim_audit_files"]


@dataclass(frozen=True)
class _Found:
    key_file: Path | None
    anchor_file: Path | None
    anchors: int


class AuditFilesOfAnotherTrial(Exception):
    """``init`` of a new trial found an anchor file that holds another trial's anchors (refused until moved away)."""

    def __init__(self, found: _Found) -> None:
        self.anchor_file = found.anchor_file
        self.key_file = found.key_file
        self.anchors = found.anchors
        key = f" and the key file {found.key_file} holds that trial's secret" if found.key_file is not None else ""
        files = " and ".join(str(f) for f in (found.anchor_file, found.key_file) if f is not None)
        super().__init__(
            f"audit: this database has no audit trail yet (a new trial), but the anchor file {found.anchor_file} "
            f"holds {found.anchors} anchor(s) of another trial's trail{key}; a new trial's trail cannot be checked "
            f"against another trial's anchors. Move {files} away, or run init with --new-audit-files to rename them "
            "aside"
        )


def _is_new_trial(url: str) -> bool:
    """Whether the database at ``url`` has no audit entry (a SQLite file that does not exist is not created)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        return True
    engine = make_engine(url)
    try:
        check_connection(engine)  # DatabaseUnavailable, said as init says it, never a driver's error
        if not inspect(engine).has_table("audit_entries"):
            return True
        with engine.connect() as conn:
            return conn.execute(select(audit_entries.c.seq).limit(1)).first() is None
    finally:
        engine.dispose()


def claim_audit_files(settings: Settings, *, move_aside: bool = False) -> list[str]:
    """Before ``init`` creates or upgrades the settings' trial: refuse (``AuditFilesOfAnotherTrial``) a new trial
    whose anchor file holds anchors, or with ``move_aside`` rename the old key and anchor files aside. Returns the
    notes to show (what was moved, or that an existing key file becomes the new trial's key)."""
    key_file, anchor_file = audit_files(settings)
    own_key = key_file if settings.audit_key is None and key_file is not None and key_file.exists() else None
    anchors = len(read_anchors(anchor_file)) if anchor_file is not None else 0
    if (own_key is None and not anchors) or not _is_new_trial(settings.database_url):
        return []
    if move_aside:
        stamp = clock.now().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        notes = []
        for old in (f for f in (own_key, anchor_file) if f is not None and f.exists()):
            aside = old.with_name(f"{old.name}.before-{stamp}")
            old.rename(aside)
            notes.append(f"--new-audit-files: {old} (another trial's) renamed aside to {aside}")
        return notes
    if anchors:
        raise AuditFilesOfAnotherTrial(_Found(own_key, anchor_file, anchors))
    return [
        f"the key file {own_key} existed before this trial and is used as its audit key (pass --new-audit-files "
        "to rename it aside and create a new one)"
    ]
