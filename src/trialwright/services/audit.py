"""Writing and reading the audit trail.

``record`` appends one entry inside the caller's transaction, chained to the previous entry. Appends
are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by the IMMEDIATE write
transaction every session begins (see ``trialwright.store.engine``), so two writers never chain to the same
head. Values are stored as canonical JSON text, and that exact text is what the hash covers.

Each entry is signed (HMAC) with the audit key the engine was made with (``trialwright.store.audit_keys``).
The first entry written with a key begins keying: ``audit_keying`` records its sequence number and the
key's check value, and allocation entries made before then are given their digest. A trial keyed so is
never written to without the key: the head entry carries a MAC, so a writer without a key is refused
without an extra query, and a writer's key is matched with the check value once per engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.audit import GENESIS, AuditEntry, ChainReport, canonical
from trialwright.services import clock
from trialwright.store.audit_keys import AuditKey, AuditKeyError, is_checked, key_check, key_of, mark_checked
from trialwright.store.engine import serialise, session_scope
from trialwright.store.tables import audit_entries, audit_keying

if TYPE_CHECKING:
    from trialwright.settings import Settings

__all__ = ["AuditEntry", "AuditKeyError", "begin_keying", "count", "entries", "record", "side_files", "verify"]


def _json(value: object) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    role: str | None = None,
    site: str | None = None,
    participant: str | None = None,
    form: str | None = None,
    field: str | None = None,
    old_value: object = None,
    new_value: object = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Append one entry to the audit trail in the caller's transaction; returns its sequence number.

    Raises ``AuditKeyError`` when the trail is keyed and this engine has no key, or not this trial's key.
    """
    seq, prev, head_signed = _head(session)
    key = _signing_key(session, seq, head_signed)
    entry = AuditEntry(
        seq=seq,
        at=(at or clock.now()).astimezone(dt.UTC),
        actor=actor,
        action=action,
        role=role,
        site=site,
        participant=participant,
        form=form,
        field=field,
        old_value=_json(old_value),
        new_value=_json(new_value),
        reason=reason,
        detail=_json(detail),
        prev_hash=prev,
    )
    data = canonical(entry)  # once: the hash and the MAC cover the same bytes
    mac = hmac.new(key, data, hashlib.sha256).hexdigest() if key is not None else None
    entry = replace(entry, hash=hashlib.sha256(data).hexdigest(), mac=mac)
    session.execute(_INSERT, [entry.__dict__])
    session.info[_HEAD] = (_innermost(session), seq, entry.hash, key is not None)
    return seq


_INSERT = audit_entries.insert()
_HEAD_QUERY = (
    select(audit_entries.c.seq, audit_entries.c.hash, audit_entries.c.mac).order_by(audit_entries.c.seq.desc()).limit(1)
)
_HEAD = "trialwright.audit.head"


def _signing_key(session: Session, seq: int, head_signed: bool) -> bytes | None:
    """The key to sign entry ``seq`` with (None: the trail is not keyed and no key is configured).

    A keyed head and no key is refused. A key is matched against the database's check value the first time
    an engine writes (then remembered for the engine); if keying has not begun, it begins with this entry.
    """
    bind = session.get_bind()
    ring = key_of(bind)
    if ring is None or ring.secret is None:
        if head_signed:
            raise (ring or AuditKey(None, "this engine was made without one")).missing()
        return None
    if is_checked(bind):
        return ring.secret
    row = session.execute(select(audit_keying.c.key_check)).first()
    if row is None:
        _begin(session, ring.secret, seq)
    elif row.key_check != key_check(ring.secret):
        raise ring.wrong()
    else:
        mark_checked(bind)
    return ring.secret


def _begin(session: Session, secret: bytes, seq: int) -> None:
    from trialwright.services.audit_keys import sign_unsigned_allocations

    session.execute(audit_keying.insert().values(keyed_from=seq, key_check=key_check(secret), keyed_at=clock.now()))
    sign_unsigned_allocations(session, secret)


def begin_keying(engine: Engine, *, actor: str = "system") -> int | None:
    """Begin keying the trail now if the engine has a key and the trail is not keyed yet (``audit.keyed``).

    Returns the sequence number keying began at (None: no key, or keyed already). ``trialwright init`` calls
    this, so a new trial is keyed from its first entry and an upgraded one from the upgrade.
    """
    ring = key_of(engine)
    if ring is None or ring.secret is None:
        return None
    with session_scope(engine) as session:
        serialise(session, "audit")
        if session.execute(select(audit_keying.c.id)).first() is not None:
            return None
        return record(session, actor=actor, action="audit.keyed", detail={"key_check": key_check(ring.secret)})


def _innermost(session: Session) -> object:
    return session.get_nested_transaction() or session.get_transaction()


def _head(session: Session) -> tuple[int, str, bool]:
    """The next sequence number and the hash to chain to.

    The first entry of a transaction takes the audit lock and reads the head; later entries of the same
    (innermost) transaction continue from the entry written last, which only they can have moved, since
    the lock is held to the end of the transaction. A savepoint begun, released or rolled back in between
    changes the innermost transaction, so the head is read again and a rolled-back entry is never chained.
    """
    cached = session.info.get(_HEAD)
    if cached is not None and cached[0] is _innermost(session):
        return cached[1] + 1, cached[2], cached[3]
    serialise(session, "audit")
    head = session.execute(_HEAD_QUERY).first()
    return (head.seq + 1, head.hash, head.mac is not None) if head is not None else (1, GENESIS, False)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(**row._mapping)


def entries(
    engine: Engine,
    *,
    participant: str | None = None,
    actor: str | None = None,
    action_prefix: str | None = None,
    limit: int = 100,
    before_seq: int | None = None,
    sites: Sequence[str] | None = None,
) -> list[AuditEntry]:
    """Entries newest first, filtered; page with ``before_seq``; ``sites`` keeps only those sites' entries."""
    query = select(audit_entries).order_by(audit_entries.c.seq.desc()).limit(limit)
    if sites is not None:
        query = query.where(audit_entries.c.site.in_(list(sites)))
    if participant is not None:
        query = query.where(audit_entries.c.participant == participant)
    if actor is not None:
        query = query.where(audit_entries.c.actor == actor)
    if action_prefix is not None:
        query = query.where(audit_entries.c.action.startswith(action_prefix, autoescape=True))
    if before_seq is not None:
        query = query.where(audit_entries.c.seq < before_seq)
    with session_scope(engine) as session:
        return [_entry(row) for row in session.execute(query)]


def count(engine: Engine) -> int:
    """How many entries the trail holds."""
    with session_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(audit_entries)).scalar_one())


def verify(engine: Engine, *, batch: int = 5000) -> ChainReport:
    """Recompute the whole chain (streaming, in sequence order), check it against the anchors and the key,
    then every allocation entry's digest; see ``trialwright.services.audit_keys.verify_trail``."""
    from trialwright.services.audit_keys import verify_trail

    return verify_trail(engine, batch=batch)


def side_files(settings: Settings) -> list[Path]:
    """The files outside the database a backup must hold (apart from it): the audit key file, unless the key
    is the secret TRIALWRIGHT_AUDIT_KEY, and the anchor file. Either may not exist yet."""
    from trialwright.services.audit_keys import side_files as files

    return files(settings)
