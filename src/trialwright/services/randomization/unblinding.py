"""Emergency unblinding: revealing one participant's arm to the investigator (reason and password, no
approval step), the notices it sends to the designated roles, and the log of every unblinding.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, func, select

from trialwright.domain.masking import unblinding_applies
from trialwright.domain.roles import Role
from trialwright.domain.text import checked_text
from trialwright.services import audit, clock
from trialwright.services.email.outbox import enqueue, recipients
from trialwright.services.errors import denied
from trialwright.services.randomization.common import RandomizationError, Randomized
from trialwright.services.reauth import require_password
from trialwright.services.screening import NotFound
from trialwright.services.trial import current_protocol
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.engine import inserted_id, read_scope, session_scope
from trialwright.store.randomization_tables import allocation_entries, notifications, unblindings
from trialwright.store.screening_tables import participants

__all__ = [
    "Notification",
    "UnblindingRecord",
    "count_notifications_for",
    "emergency_unblind",
    "notifications_for",
    "unblinded_participants",
    "unblinding_log",
]


@dataclass(frozen=True)
class UnblindingRecord:
    """One emergency unblinding: who, when, why, whom (never the arm)."""

    participant_id: str
    unblinded_by: str
    unblinded_at: dt.datetime
    reason: str


def may_unblind(actor: UserView) -> None:
    """Refuse, with the role rule, a user whose role may never unblind in an emergency (the command line asks it
    before it asks a password)."""
    if actor.role is not Role.INVESTIGATOR:
        raise denied(RandomizationError)("role: an investigator performs an emergency unblinding")


def emergency_unblind(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    *,
    reason: str,
    password: str,
    policy: AccessPolicy | None = None,
) -> Randomized:
    """Reveal one participant's arm to the investigator at once: no approval step, a reason and the
    password are required, the designated roles are notified, and the participant is flagged as unblinded.
    """
    protocol = current_protocol(engine).protocol
    if not unblinding_applies(protocol):
        raise RandomizationError(
            f"blinding: this trial is {protocol.masking.blinding or 'not blinded'} for the investigator, who sees "
            "the arm already; there is nothing to unblind"
        )
    may_unblind(actor)
    checked_text(reason, "reason", error=RandomizationError)
    if not reason.strip():
        raise RandomizationError("reason: an emergency unblinding needs a reason")
    require_password(engine, actor.username, password, policy, purpose="emergency unblinding",
                     error=RandomizationError, message="password: re-enter your own password to confirm")  # fmt: skip
    now = clock.now()
    with session_scope(engine) as session:
        entry = session.execute(
            select(allocation_entries).where(allocation_entries.c.participant_id == participant_id)
        ).first()
        participant = session.execute(
            select(participants).where(participants.c.participant_id == participant_id)
        ).first()
        if participant is None or entry is None or participant.site not in actor.sites:
            raise NotFound("no randomized participant with this id at your sites")
        unblinding_id = inserted_id(
            session,
            unblindings.insert().values(
                participant_id=participant_id, unblinded_by=actor.username, unblinded_at=now, reason=reason
            ),
        )
        for role in protocol.masking.unblinding_notify:
            session.execute(
                notifications.insert().values(
                    role=role,
                    subject=f"Emergency unblinding of {participant_id} by {actor.username}",
                    participant_id=participant_id,
                    created_at=now,
                )
            )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            action="participant.unblinded",
            reason=reason,
            detail={"notified": list(protocol.masking.unblinding_notify)},
        )
        # The e-mail says who unblinded whom, when and why, never the arm (whoever it goes to).
        enqueue(
            session,
            "unblinding",
            recipients(session, protocol.masking.unblinding_notify, participant.site),
            {"participant_id": participant_id, "site": participant.site, "unblinded_by": actor.username,
             "reason": reason.strip()},
            key=f"unblinding:{unblinding_id}",
            site=participant.site,
            participant_id=participant_id,
            at=now,
        )  # fmt: skip
        return Randomized(
            participant_id,
            entry.randomization_number,
            entry.stratum,
            entry.randomized_at,
            entry.preparation_code,
            entry.arm,
            True,
        )


def unblinded_participants(engine: Engine, username: str) -> frozenset[str]:
    """The participants emergency-unblinded to this user (the masking policy's per-viewer exceptions)."""
    with session_scope(engine) as session:
        return frozenset(
            session.execute(
                select(unblindings.c.participant_id).where(unblindings.c.unblinded_by == username)
            ).scalars()
        )


def unblinding_log(engine: Engine, actor: UserView) -> list[UnblindingRecord]:
    """Every emergency unblinding, for the unblinded roles and the DSMB (the pharmacist: of their sites)."""
    if actor.role not in {Role.UNBLINDED_STATISTICIAN, Role.UNBLINDED_PHARMACIST, Role.DSMB_MEMBER}:
        raise denied(RandomizationError)("role: the unblinding log is for the unblinded roles and the DSMB")
    query = select(unblindings).order_by(unblindings.c.id)
    if actor.role.site_scoped:
        query = query.join(participants, participants.c.participant_id == unblindings.c.participant_id).where(
            participants.c.site.in_(actor.sites)
        )
    with session_scope(engine) as session:
        rows = session.execute(query).all()
    return [UnblindingRecord(r.participant_id, r.unblinded_by, r.unblinded_at, r.reason) for r in rows]


@dataclass(frozen=True)
class Notification:
    """A notice to a role (e.g. of an emergency unblinding); never carries an arm."""

    subject: str
    participant_id: str | None
    at: dt.datetime


def _notices_query(actor: UserView) -> Select[Any]:
    query = select(notifications).where(notifications.c.role == actor.role.value)
    if actor.role.site_scoped:
        query = query.outerjoin(participants, participants.c.participant_id == notifications.c.participant_id).where(
            notifications.c.participant_id.is_(None) | participants.c.site.in_(actor.sites)
        )
    return query


def notifications_for(engine: Engine, actor: UserView, limit: int = 20) -> list[Notification]:
    """The newest ``limit`` notices addressed to the actor's role (for a site-scoped role: none about another
    site's participant); ``count_notifications_for`` says how many there are in all."""
    with session_scope(engine) as session:
        rows = session.execute(_notices_query(actor).order_by(notifications.c.id.desc()).limit(limit)).all()
    return [Notification(r.subject, r.participant_id, r.created_at) for r in rows]


def count_notifications_for(engine: Engine, actor: UserView) -> int:
    """How many notices are addressed to the actor's role (within their sites), so a page showing the newest
    can say "the newest 20 of 57"."""
    query = _notices_query(actor).with_only_columns(func.count(), maintain_column_froms=True)
    with read_scope(engine) as session:
        return int(session.execute(query).scalar_one())
