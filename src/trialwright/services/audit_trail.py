"""Reading the audit trail as one user may: who may read it, which sites' entries, and every value the masking
policy hides from them shown as ``masked`` (``trialwright.domain.audit_masking``).

The audit page, the audit API and ``trialwright audit show`` read the trail through ``read_trail``; exports
read it through their source, which masks the same values unless the export is made with arms.
"""

from __future__ import annotations

from sqlalchemy import Engine

from trialwright.domain.audit import AuditEntry
from trialwright.domain.audit_masking import present_entry
from trialwright.domain.masking import viewer_for
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.randomization import unblinded_participants
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView

__all__ = ["READERS", "AuditReadError", "read_trail"]

#: Who reads the audit trail (monitors only their own sites' entries).
READERS = (Role.ADMINISTRATOR, Role.DATA_MANAGER, Role.MONITOR)


class AuditReadError(PermissionError):
    """The user's role does not read the audit trail."""


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
