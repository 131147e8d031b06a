"""Reading the audit trail as one user may: who may read it, which sites' entries, and every value the masking
policy hides from them shown as ``masked`` (``trialwright.domain.audit_masking``).

The audit page, the audit API and ``trialwright audit show`` read the trail through ``read_trail`` (a page of it,
with the total and the cursor of the next page, through ``read_page``); exports
read it through their source, which masks the same values unless the export is made with arms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, func, select

from trialwright.domain.audit import AuditEntry
from trialwright.domain.audit_masking import present_entry
from trialwright.domain.masking import viewer_for
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope
from trialwright.store.randomization_tables import unblindings
from trialwright.store.tables import audit_entries

__all__ = ["READERS", "AuditReadError", "TrailPage", "read_page", "read_trail"]

#: Who reads the audit trail (monitors only their own sites' entries).
READERS = (Role.ADMINISTRATOR, Role.DATA_MANAGER, Role.MONITOR)


class AuditReadError(PermissionError):
    """The user's role does not read the audit trail."""


@dataclass(frozen=True)
class TrailPage:
    """One page of the trail, newest first: ``total`` entries match the filters; ``next`` is the ``before_seq`` of
    the next (older) page, None on the last. Entries appended meanwhile never shift a later page: they are newer
    than every cursor."""

    entries: list[AuditEntry]
    total: int
    next: int | None


def read_page(
    engine: Engine,
    actor: UserView,
    *,
    participant: str | None = None,
    by: str | None = None,
    action_prefix: str | None = None,
    limit: int = 100,
    before_seq: int | None = None,
) -> TrailPage:
    """A page of ``read_trail`` with the number of entries the filters match and the cursor of the next page,
    all read in one snapshot (so the total and the page agree)."""
    rows, total = _read(engine, actor, participant, by, action_prefix, limit + 1, before_seq, with_total=True)
    more = len(rows) > limit
    rows = rows[:limit]
    return TrailPage(rows, total, rows[-1].seq if more else None)


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
    """Entries newest first, within the actor's sites, as the masking policy lets the actor read them."""
    return _read(engine, actor, participant, by, action_prefix, limit, before_seq, with_total=False)[0]


def _read(
    engine: Engine,
    actor: UserView,
    participant: str | None,
    by: str | None,
    action_prefix: str | None,
    limit: int,
    before_seq: int | None,
    *,
    with_total: bool,
) -> tuple[list[AuditEntry], int]:
    """The entries (and, if asked, how many match) and the reader's unblinded participants, in one read
    transaction: reading the trail takes no write lock, so it never queues behind a writer (``read_scope``)."""
    if actor.role not in READERS:
        raise AuditReadError("role: the audit trail is for administrators, data managers and monitors")
    if any("\x00" in f for f in (participant, by, action_prefix) if f):
        return [], 0  # nothing stored holds a NUL (PostgreSQL text cannot), so nothing matches
    protocol = current_protocol(engine).protocol
    sites = actor.sites if actor.role.site_scoped else None

    def filtered(query: Select[Any]) -> Select[Any]:
        # The filters of ``audit.entries`` and ``audit.count``, applied here so that both run in this transaction.
        found: Select[Any] = audit._filtered(
            query, participant=participant, actor=by, action_prefix=action_prefix, sites=sites
        )
        return found

    query = filtered(select(audit_entries).order_by(audit_entries.c.seq.desc()).limit(limit))
    if before_seq is not None:
        query = query.where(audit_entries.c.seq < before_seq)
    with read_scope(engine) as session:
        rows = [audit._entry(row) for row in session.execute(query)]
        total = (
            int(session.execute(filtered(select(func.count()).select_from(audit_entries))).scalar_one())
            if with_total
            else 0
        )
        # As ``randomization.unblinded_participants``, read in this transaction (it opens a write transaction).
        unblinded = frozenset(
            session.execute(
                select(unblindings.c.participant_id).where(unblindings.c.unblinded_by == actor.username)
            ).scalars()
        )
    viewer = viewer_for(protocol, actor.username, actor.role, frozenset(actor.sites), unblinded)
    return [present_entry(viewer, e) for e in rows], total
