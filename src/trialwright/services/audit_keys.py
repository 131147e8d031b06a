"""The audit key, the anchors and the allocation digests: what makes the trail hold against an insider.

The key comes from the settings (``audit_key`` secret, else ``audit_key_file``, else the default key file
of the database, see ``trialwright.store.audit_keys``) and is attached to the engine by ``engine_for``.
An anchor is a signed checkpoint of the head appended to the anchor file (``audit_anchor_file``);
``verify_trail`` checks the chain against the key and every anchor, then every allocation entry's digest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from trialwright.domain.audit import Anchor, ChainReport, allocation_digest, anchor_mac, verify_chain
from trialwright.services import clock
from trialwright.services.audit import _entry
from trialwright.store.audit_keys import (
    AuditKey,
    AuditKeyError,
    attach,
    create_private_file,
    default_anchor_file,
    default_key_file,
    key_check,
    key_of,
    load_key,
)
from trialwright.store.engine import check_connection, make_engine
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.tables import audit_entries, audit_keying

if TYPE_CHECKING:
    from trialwright.settings import Settings

__all__ = [
    "AllocationsAltered",
    "AllocationsMissing",
    "AuditKeyError",
    "allocation_intact",
    "audit_files",
    "check_key",
    "checked_allocations",
    "digest_of",
    "engine_for",
    "key_for",
    "read_anchors",
    "side_files",
    "sign_unsigned_allocations",
    "ticking",
    "verify_trail",
    "write_anchor",
]


def audit_files(settings: Settings) -> tuple[Path | None, Path | None]:
    """Where the settings' trial keeps its audit key file and its anchor file (None: none for this database)."""
    return _paths(settings)


def _paths(settings: Settings) -> tuple[Path | None, Path | None]:
    key_file = settings.audit_key_file or default_key_file(settings.database_url)
    anchors = settings.audit_anchor_file or (default_anchor_file(key_file) if key_file is not None else None)
    return key_file, anchors


def key_for(settings: Settings, *, create: bool = False) -> AuditKey:
    """The audit key the settings name; with ``create``, a missing key file is made (0600, never overwritten)."""
    key_file, anchors = _paths(settings)
    if settings.audit_key is not None:
        text = settings.audit_key.get_secret_value().strip()
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = text.encode("utf-8")
        if len(secret) < 16:
            raise AuditKeyError("TRIALWRIGHT_AUDIT_KEY is too short: give at least 32 hexadecimal digits")
        return AuditKey(secret, "environment secret TRIALWRIGHT_AUDIT_KEY", anchors, None)
    if key_file is None:
        return AuditKey(None, "in-memory database: no key file", anchors, None)
    return load_key(key_file, create=create, anchor_file=anchors)


def engine_for(settings: Settings, *, create_key: bool = False) -> Engine:
    """The engine of the settings' database, signing with the settings' audit key.

    With ``create_key`` (``trialwright init`` and the commands that create a trial), a missing key file is
    created, once the database answers and only if its trail is not keyed already: a keyed trial whose key
    is lost is refused (restore the key), never silently given a new one.
    """
    engine = make_engine(settings.database_url, audit_key=key_for(settings))
    if not create_key:
        return engine
    ring = key_of(engine)
    if ring is None or ring.secret is not None or ring.key_file is None:
        return engine
    check_connection(engine)
    if inspect(engine).has_table("audit_keying"):
        with engine.connect() as conn:
            if conn.execute(select(audit_keying.c.id)).first() is not None:
                return engine
    attach(engine, key_for(settings, create=True))
    return engine


def check_key(engine: Engine) -> None:
    """Refuse (``AuditKeyError``) an engine that cannot write this trial's trail: keyed, and the key is missing
    or not this trial's. The web app checks at start, not at the first write."""
    ring = key_of(engine) or AuditKey(None, "this engine was made without one")
    if not _keyed_schema(engine):
        return
    with engine.connect() as conn:
        stored = conn.execute(select(audit_keying.c.key_check)).scalar()
    if stored is None:
        return
    if ring.secret is None:
        raise ring.missing()
    if stored != key_check(ring.secret):
        raise ring.wrong()


def side_files(settings: Settings) -> list[Path]:
    """The files outside the database a backup must include: the key file (unless the key is an environment
    secret, which the operator keeps) and the anchor file."""
    key_file, anchors = _paths(settings)
    files = [] if settings.audit_key is not None or key_file is None else [key_file]
    return files + ([anchors] if anchors is not None else [])


def digest_of(session: Session, entry: Mapping[str, Any]) -> str | None:
    """The keyed digest of an allocation entry with the session's key (None: no key)."""
    ring = key_of(session.get_bind())
    return allocation_digest(ring.secret, entry) if ring is not None and ring.secret is not None else None


def allocation_intact(session: Session, entry: Mapping[str, Any]) -> bool:
    """Whether an allocation entry matches its keyed digest (checked before the entry is used).

    Without keying (no key, and no digest on the entry) there is nothing to check. A digest and no key is
    refused (``AuditKeyError``): the entry cannot be checked.
    """
    ring = key_of(session.get_bind())
    if ring is None or ring.secret is None:
        if entry.get("digest") is not None:
            raise (ring or AuditKey(None, "this engine was made without one")).missing()
        return True
    if entry.get("digest") is None and session.execute(select(audit_keying.c.id)).first() is None:
        return True  # keying has not begun: the next audit entry gives every entry its digest
    return entry.get("digest") == allocation_digest(ring.secret, entry)


class AllocationsAltered(Exception):
    """Allocation entries that no longer match their keyed digest: no arm is read from the list until they are
    explained (an analysis, a table by arm or an export would otherwise carry an arm altered in the database)."""

    def __init__(self, entry_ids: Sequence[int], participants: Sequence[str] = ()) -> None:
        self.entry_ids = tuple(entry_ids)
        self.participants = tuple(participants)
        shown = ", ".join(str(i) for i in self.entry_ids[:10]) + (" ..." if len(self.entry_ids) > 10 else "")
        whose = ", ".join(self.participants[:10]) + (" ..." if len(self.participants) > 10 else "")
        super().__init__(
            f"allocation: {len(self.entry_ids)} entries of the list do not match their keyed digest (altered in the "
            f"database): {shown}{f' (participants {whose})' if whose else ''}; no arm is read from it. Run "
            "`trialwright audit verify` and tell the sponsor"
        )


class AllocationsMissing(AllocationsAltered):
    """Participants the audit trail records as randomized whose allocation entry is gone (deleted, or moved to
    another participant in the database): no arm is read for them rather than show them as not randomized."""

    def __init__(self, participants: Sequence[str]) -> None:
        self.entry_ids = ()
        self.participants = tuple(participants)
        shown = ", ".join(self.participants[:10]) + (" ..." if len(self.participants) > 10 else "")
        Exception.__init__(
            self,
            f"allocation: {len(self.participants)} participants the audit trail records as randomized have no "
            f"allocation entry (removed or moved in the database): {shown}; no arm is read from the list. Run "
            "`trialwright audit verify` and tell the sponsor",
        )


def checked_allocations(
    session: Session, *, claimed_only: bool = True, participants: Collection[str] | None = None
) -> list[Any]:
    """Every allocation entry (only those given to a participant unless ``claimed_only`` is false; only those of
    ``participants`` when given), each checked against its keyed digest first: the one way to read arms for an
    analysis, a table by arm, a page of events or an export.

    Raises ``AllocationsAltered`` naming every entry that does not match (``AuditKeyError`` with digests and no
    key)."""
    query = select(allocation_entries).order_by(allocation_entries.c.id)
    if claimed_only:
        query = query.where(allocation_entries.c.participant_id.is_not(None))
    if participants is not None:
        query = query.where(allocation_entries.c.participant_id.in_(sorted(set(participants))))
    rows = list(session.execute(query).all())
    ring = key_of(session.get_bind())
    secret = ring.secret if ring is not None else None
    if secret is None:
        if any(row.digest is not None for row in rows):
            raise (ring or AuditKey(None, "this engine was made without one")).missing()
        return rows
    keyed = session.execute(select(audit_keying.c.id)).first() is not None
    altered = [
        int(row.id)
        for row in rows
        if (row.digest is not None or keyed) and row.digest != allocation_digest(secret, row._mapping)
    ]
    if altered:
        raise AllocationsAltered(altered)
    return rows


def sign_unsigned_allocations(session: Session, secret: bytes) -> None:
    """Give each allocation entry without a digest its digest (when keying begins on an existing trial)."""
    rows = session.execute(select(allocation_entries).where(allocation_entries.c.digest.is_(None))).all()
    for row in rows:
        session.execute(
            allocation_entries.update()
            .where(allocation_entries.c.id == row.id)
            .values(digest=allocation_digest(secret, row._mapping))
        )


def _keyed_schema(engine: Engine) -> bool:
    """Whether the database has the keyed trail's tables (revision 0013 on); older ones verify as a plain chain
    until they are upgraded (``trialwright init``)."""
    return inspect(engine).has_table("audit_keying")


def read_anchors(path: Path | None) -> list[Anchor]:
    """The anchors in the anchor file (none if it does not exist); ValueError naming a line that is not one."""
    if path is None or not path.exists():
        return []
    anchors = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    anchors.append(Anchor.parse(line))
                except ValueError as exc:
                    raise ValueError(f"{path} line {number}: {exc}") from None
    return anchors


def write_anchor(engine: Engine) -> Anchor | None:
    """Append a signed checkpoint of the head to the anchor file and return it (None: empty trail or no file).

    The file is created 0600 if missing. Without a key the anchor is unsigned (it still records the head).
    """
    ring = key_of(engine)
    if ring is None or ring.anchor_file is None:
        return None
    keyed = _keyed_schema(engine)
    with engine.connect() as conn:
        head = conn.execute(
            select(audit_entries.c.seq, audit_entries.c.hash).order_by(audit_entries.c.seq.desc()).limit(1)
        ).first()
        keyed_from = conn.execute(select(audit_keying.c.keyed_from)).scalar() if keyed else None
    if head is None:
        return None
    anchor = Anchor(head.seq, head.hash, clock.now(), keyed_from)
    if ring.secret is not None:
        anchor = Anchor(anchor.seq, anchor.hash, anchor.at, keyed_from, anchor_mac(ring.secret, anchor))
    create_private_file(ring.anchor_file)
    with ring.anchor_file.open("a", encoding="utf-8") as out:
        out.write(anchor.line() + "\n")
        out.flush()
        os.fsync(out.fileno())
    return anchor


def ticking(rows: Iterable[Any], progress: Callable[[int], None] | None, every: int = 1000) -> Iterator[Any]:
    """``rows`` unchanged, calling ``progress`` with how many were read since the last call, every ``every``."""
    n = 0
    for row in rows:
        yield row
        n += 1
        if progress is not None and n == every:
            progress(n)
            n = 0
    if progress is not None and n:
        progress(n)


def verify_trail(engine: Engine, *, batch: int = 5000, progress: Callable[[int], None] | None = None) -> ChainReport:
    """Verify the chain with the engine's key against every anchor (streaming), then every allocation digest.

    ``progress`` is called with the number of entries read since its last call (a progress bar's advance)."""
    ring = key_of(engine) or AuditKey(None, "this engine was made without one")
    secret = ring.secret
    keyed_schema = _keyed_schema(engine)
    with engine.connect() as conn:
        keying = conn.execute(select(audit_keying)).first() if keyed_schema else None
    keyed_from = keying.keyed_from if keying is not None else None
    if keying is not None:
        if secret is None:
            return ChainReport(False, 0, keyed_from, "key", str(ring.missing()), keyed_from)
        if keying.key_check != key_check(secret):
            return ChainReport(False, 0, keyed_from, "key", str(ring.wrong()), keyed_from)
    try:
        anchors = read_anchors(ring.anchor_file)
    except ValueError as exc:
        return ChainReport(False, 0, None, "anchor", f"the anchor file is damaged: {exc}", keyed_from)
    columns = audit_entries.c if keyed_schema else [c for c in audit_entries.c if c.name != "mac"]
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(select(*columns).order_by(audit_entries.c.seq))
        report = verify_chain(
            ticking((_entry(row) for row in result), progress), key=secret, keyed_from=keyed_from, anchors=anchors
        )
    if not report.ok or not keyed_schema:
        return report
    checked = 0
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(
            select(allocation_entries).order_by(allocation_entries.c.id)
        )
        for row in result:
            checked += 1
            if keyed_from is None or secret is None:
                continue
            entry = row._mapping
            if entry["digest"] is None or entry["digest"] != allocation_digest(secret, entry):
                what = "carries no digest" if entry["digest"] is None else "does not match its keyed digest"
                return ChainReport(
                    False,
                    report.count,
                    row.id,
                    "allocation",
                    f"allocation entry {row.id} (stratum {row.stratum}, sequence {row.sequence}) {what} "
                    "(altered in the database)",
                    keyed_from,
                    report.anchors,
                    checked,
                )
    keyed = f", keyed from entry {keyed_from}" if keyed_from is not None else ", not keyed"
    return ChainReport(
        True,
        report.count,
        message=f"audit trail intact: {report.count} entries{keyed}, {len(anchors)} anchors, "
        f"{checked} allocation entries",
        keyed_from=keyed_from,
        anchors=report.anchors,
        allocations=checked,
    )
