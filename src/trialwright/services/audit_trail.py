"""Reading the audit trail as one user may: who may read it, which sites' entries, and every value the masking
policy hides from them shown as ``masked`` (``trialwright.domain.audit_masking``).

The audit page, the audit API and ``trialwright audit show`` read the trail through ``read_trail``, or a page of it
through ``page_trail``: a keyset page newest first (by ``seq``) with the total the filters match and opaque
cursors, as every other list (``services/paging.py``); exports read it through their source, which masks the
same values unless the export is made with arms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Row, Select, or_, select
from sqlalchemy.orm import Session

from trialwright.domain.audit import AuditEntry
from trialwright.domain.audit_masking import present_entry
from trialwright.domain.masking import Viewer, kept_forms, viewer_for
from trialwright.domain.paging import DEFAULT_LIMIT, Page, check_limit, decode_cursor
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.services import audit
from trialwright.services.paging import keyset_page
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope
from trialwright.store.randomization_tables import unblindings
from trialwright.store.tables import audit_entries

__all__ = ["READERS", "AuditReadError", "page_trail", "read_trail"]

#: Who reads the audit trail (monitors only their own sites' entries).
READERS = (Role.ADMINISTRATOR, Role.DATA_MANAGER, Role.MONITOR)

_COLUMNS = tuple(audit_entries.c.keys())


class AuditReadError(PermissionError):
    """The user's role does not read the audit trail."""


def page_trail(
    engine: Engine,
    actor: UserView,
    *,
    participant: str | None = None,
    by: str | None = None,
    action_prefix: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[AuditEntry]:
    """A page of ``read_trail`` newest first (by sequence), with the number of entries the filters match, all read
    in one snapshot (so the total and the page agree). Entries appended meanwhile are newer than every cursor, so
    they never shift a later page."""
    _check(actor)
    if _holds_nul(participant, by, action_prefix):
        check_limit(limit)
        if cursor:
            decode_cursor(cursor, 1, [int])
        return Page(items=(), total=0, start=0, limit=limit, next_cursor=None, prev_cursor=None)
    protocol = current_protocol(engine).protocol
    query = _query(protocol, actor, participant, by, action_prefix)
    with read_scope(engine) as session:
        viewer = _viewer(session, actor, protocol)

        def shown(_: Session, rows: Sequence[Row[Any]]) -> list[AuditEntry]:
            return [present_entry(viewer, _entry(row)) for row in rows]

        return keyset_page(session, query, [audit_entries.c.seq], shown, limit=limit, cursor=cursor)


def read_trail(
    engine: Engine,
    actor: UserView,
    *,
    participant: str | None = None,
    by: str | None = None,
    action_prefix: str | None = None,
    limit: int = 100,
    before_seq: int | None = None,
) -> list[AuditEntry]:
    """Entries newest first, within the actor's sites, as the masking policy lets the actor read them; read in one
    transaction that takes no write lock, so it never queues behind a writer (``read_scope``)."""
    _check(actor)
    if _holds_nul(participant, by, action_prefix):
        return []
    protocol = current_protocol(engine).protocol
    query = _query(protocol, actor, participant, by, action_prefix).order_by(audit_entries.c.seq.desc()).limit(limit)
    if before_seq is not None:
        query = query.where(audit_entries.c.seq < before_seq)
    with read_scope(engine) as session:
        rows = [_entry(row) for row in session.execute(query)]
        viewer = _viewer(session, actor, protocol)
    return [present_entry(viewer, e) for e in rows]


def _check(actor: UserView) -> None:
    if actor.role not in READERS:
        raise AuditReadError("role: the audit trail is for administrators, data managers and monitors")


def _holds_nul(*filters: str | None) -> bool:
    """Nothing stored holds a NUL (PostgreSQL text cannot), so a filter with one matches nothing."""
    return any("\x00" in f for f in filters if f)


def _query(
    protocol: Protocol, actor: UserView, participant: str | None, by: str | None, action_prefix: str | None
) -> Select[Any]:
    """The entries within the actor's sites that the filters match (those of ``audit.entries``), less every entry
    about a form kept from the actor's masked role (``domain.masking.kept_forms``: its values, its queries, and
    that it was filled at all)."""
    sites = actor.sites if actor.role.site_scoped else None
    found: Select[Any] = audit._filtered(
        select(*(audit_entries.c[c] for c in _COLUMNS)),
        participant=participant,
        actor=by,
        action_prefix=action_prefix,
        sites=sites,
    )
    if kept := kept_forms(protocol, actor.role):
        found = found.where(or_(audit_entries.c.form.is_(None), audit_entries.c.form.not_in(sorted(kept))))
    return found


def _entry(row: Row[Any]) -> AuditEntry:
    values = row._mapping
    return AuditEntry(**{c: values[c] for c in _COLUMNS})


def _viewer(session: Session, actor: UserView, protocol: Protocol) -> Viewer:
    """Whom the entries are shown to, with the participants the actor unblinded (as
    ``randomization.unblinded_participants``, read in this transaction: that one opens a write transaction)."""
    unblinded = frozenset(
        session.execute(
            select(unblindings.c.participant_id).where(unblindings.c.unblinded_by == actor.username)
        ).scalars()
    )
    return viewer_for(protocol, actor.username, actor.role, frozenset(actor.sites), unblinded)
