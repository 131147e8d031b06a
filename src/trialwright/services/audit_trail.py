"""Reading the audit trail as one user may: who may read it, which sites' entries, and every value the masking
policy hides from them shown as ``masked`` (``trialwright.domain.audit_masking``).

The audit page, the audit API and ``trialwright audit show`` read the trail through ``read_trail`` (a page of it,
with the total and the cursor of the next page, through ``read_page``); exports
read it through their source, which masks the same values unless the export is made with arms.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from trialwright.domain.audit import AuditEntry
from trialwright.domain.audit_masking import present_entry
from trialwright.domain.masking import viewer_for
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.randomization import unblinded_participants
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView

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
    """A page of ``read_trail`` with the number of entries the filters match and the cursor of the next page."""
    rows = read_trail(engine, actor, participant=participant, by=by, action_prefix=action_prefix,
                      limit=limit + 1, before_seq=before_seq)  # fmt: skip
    if any("\x00" in f for f in (participant, by, action_prefix) if f):
        return TrailPage([], 0, None)
    total = audit.count(engine, participant=participant, actor=by, action_prefix=action_prefix,
                        sites=actor.sites if actor.role.site_scoped else None)  # fmt: skip
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
    if actor.role not in READERS:
        raise AuditReadError("role: the audit trail is for administrators, data managers and monitors")
    if any("\x00" in f for f in (participant, by, action_prefix) if f):
        return []  # nothing stored holds a NUL (PostgreSQL text cannot), so nothing matches
    rows = audit.entries(
        engine,
        participant=participant,
        actor=by,
        action_prefix=action_prefix,
        limit=limit,
        before_seq=before_seq,
        sites=actor.sites if actor.role.site_scoped else None,
    )
    viewer = viewer_for(
        current_protocol(engine).protocol,
        actor.username,
        actor.role,
        frozenset(actor.sites),
        unblinded_participants(engine, actor.username),
    )
    return [present_entry(viewer, e) for e in rows]
