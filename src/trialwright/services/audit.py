"""Writing and reading the audit trail.

``record`` appends one entry inside the caller's transaction, chained to the previous entry. Appends
are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by the IMMEDIATE write
transaction every session begins (see ``trialwright.store.engine``), so two writers never chain to the same
head. Values are stored as canonical JSON text, and that exact text is what the hash covers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.audit import GENESIS, AuditEntry, ChainReport, entry_hash, verify_chain
from trialwright.services import clock
from trialwright.store.engine import serialise, session_scope
from trialwright.store.tables import audit_entries

__all__ = ["AuditEntry", "count", "entries", "record", "verify"]


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
    """Append one entry to the audit trail in the caller's transaction; returns its sequence number."""
    seq, prev = _head(session)
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
    entry = replace(entry, hash=entry_hash(entry))
    session.execute(_INSERT, [entry.__dict__])
    session.info[_HEAD] = (_innermost(session), seq, entry.hash)
    return seq


_INSERT = audit_entries.insert()
_HEAD_QUERY = select(audit_entries.c.seq, audit_entries.c.hash).order_by(audit_entries.c.seq.desc()).limit(1)
_HEAD = "trialwright.audit.head"


def _innermost(session: Session) -> object:
    return session.get_nested_transaction() or session.get_transaction()


def _head(session: Session) -> tuple[int, str]:
    """The next sequence number and the hash to chain to.

    The first entry of a transaction takes the audit lock and reads the head; later entries of the same
    (innermost) transaction continue from the entry written last, which only they can have moved, since
    the lock is held to the end of the transaction. A savepoint begun, released or rolled back in between
    changes the innermost transaction, so the head is read again and a rolled-back entry is never chained.
    """
    cached = session.info.get(_HEAD)
    if cached is not None and cached[0] is _innermost(session):
        return cached[1] + 1, cached[2]
    serialise(session, "audit")
    head = session.execute(_HEAD_QUERY).first()
    return (head.seq + 1, head.hash) if head is not None else (1, GENESIS)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(**{column: getattr(row, column) for column in audit_entries.c.keys()})  # noqa: SIM118 - a ColumnCollection, not a dict


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
    """Recompute the whole chain from the database, streaming in sequence order."""
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(select(audit_entries).order_by(audit_entries.c.seq))
        return verify_chain(_entry(row) for row in result)
