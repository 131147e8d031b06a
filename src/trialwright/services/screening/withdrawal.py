"""Withdrawal from a scope (intervention, follow-up, data use), and the check each scope's writes make."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Engine, ScalarSelect, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.roles import Role
from trialwright.domain.text import checked_text
from trialwright.services import audit
from trialwright.services.deaths import death_of
from trialwright.services.errors import denied
from trialwright.services.lock import require_unlocked
from trialwright.services.screening.common import (
    _CAUSE_SCOPES,
    NotFound,
    ParticipantView,
    ScreeningError,
    WithdrawalCause,
    WithdrawalScope,
    _check_site,
    _now,
)
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import participants, withdrawals

__all__ = ["refuse_withdrawn", "require_scope", "withdraw", "withdrawn_on"]


def _insert_withdrawal(
    session: Session,
    actor: UserView,
    participant: Any,
    scope: WithdrawalScope,
    cause: WithdrawalCause,
    reason: str,
    on: dt.date,
) -> None:
    session.execute(
        withdrawals.insert().values(
            participant_id=participant.participant_id,
            scope=scope.value,
            cause=cause.value,
            reason=reason,
            withdrawn_on=on,
            recorded_at=_now(),
            recorded_by=actor.username,
        )
    )
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=participant.site,
        participant=participant.participant_id,
        action="participant.withdrawn",
        new_value={"scope": scope.value, "cause": cause.value, "withdrawn_on": on.isoformat()},
        reason=reason,
    )


def withdraw(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    *,
    scope: str,
    cause: str,
    reason: str,
    withdrawn_on: dt.date | None,
) -> ParticipantView:
    """Record a withdrawal of one scope, with its cause (CONSORT's losses by reason) and the reason in words;
    afterwards data in that scope is refused. ``withdrawn_on`` is the site's local date (None: today at the
    site), from the site's date of enrolment to the site's today, and not after a death the records give
    (``services.deaths.death_of``). Site staff record it: the investigator or the study coordinator."""
    if actor.role not in (Role.INVESTIGATOR, Role.STUDY_COORDINATOR):
        raise denied(ScreeningError)("role: the investigator or the study coordinator records a withdrawal")
    try:
        scope_ = WithdrawalScope(scope)
    except ValueError:
        raise ScreeningError(f"scope: must be one of {', '.join(s.value for s in WithdrawalScope)}") from None
    try:
        cause_ = WithdrawalCause(cause)
    except ValueError:
        raise ScreeningError(f"cause: must be one of {', '.join(c.value for c in WithdrawalCause)}") from None
    if scope_ not in _CAUSE_SCOPES.get(cause_, set(WithdrawalScope)):
        allowed = ", ".join(sorted(s.value for s in _CAUSE_SCOPES[cause_]))
        raise ScreeningError(f"cause: {cause_.value} applies only to the scope {allowed}, not {scope_.value}")
    checked_text(reason, "reason", error=ScreeningError)
    if not reason.strip():
        raise ScreeningError("reason: a withdrawal needs a reason")
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        participant = session.execute(
            select(participants).where(participants.c.participant_id == participant_id)
        ).first()
        if participant is None:
            raise NotFound("no such participant")
        _check_site(actor, participant.site)
        require_unlocked(session, participant_id, site=participant.site, error=ScreeningError)
        zone = protocol.site(participant.site).timezone
        today = local_date(_now(), zone)
        if withdrawn_on is None:
            withdrawn_on = today
        if withdrawn_on > today:
            raise ScreeningError(
                f"withdrawn_on: {withdrawn_on.isoformat()} is in the future (today is {today.isoformat()} at the site)"
            )
        enrolled_on = local_date(participant.enrolled_at, zone, "enrolled_at")
        if withdrawn_on < enrolled_on:
            raise ScreeningError(
                f"withdrawn_on: {withdrawn_on.isoformat()} is before enrolment on {enrolled_on.isoformat()} at the site"
            )
        death = death_of(session, protocol, participant_id)
        if death is not None and withdrawn_on > death.on:
            # A death ends follow-up; a withdrawal dated after it would count the participant twice in CONSORT
            # (a death and a loss) and say they chose what they no longer could.
            raise ScreeningError(
                f"withdrawn_on: {withdrawn_on.isoformat()} is after {participant_id}'s death on "
                f"{death.on.isoformat()} ({death.source}); a participant who has died is not withdrawn"
            )
        existing = set(
            session.execute(select(withdrawals.c.scope).where(withdrawals.c.participant_id == participant_id)).scalars()
        )
        if scope_.value in existing:
            raise ScreeningError(f"scope: {participant_id} has already withdrawn from {scope_.value}")
        _insert_withdrawal(session, actor, participant, scope_, cause_, reason, withdrawn_on)
        return ParticipantView(
            participant_id, participant.site, participant.enrolled_at, tuple(sorted(existing | {scope_.value}))
        )


def require_scope(engine: Engine, participant_id: str, scope: str) -> None:
    """Refuse work within a scope the participant has withdrawn from (data entry calls this)."""
    with session_scope(engine) as session:
        on = session.execute(
            select(withdrawals.c.withdrawn_on).where(
                withdrawals.c.participant_id == participant_id, withdrawals.c.scope == scope
            )
        ).scalar()
    refuse_withdrawn(participant_id, scope, on)


def withdrawn_on(participant: ColumnElement[str], scope: str) -> ScalarSelect[dt.date]:
    """When ``participant`` withdrew from ``scope`` (NULL: not withdrawn), as a scalar subquery, so that a use case
    reads it in one statement with the participant's other facts (then ``refuse_withdrawn``)."""
    return (
        select(withdrawals.c.withdrawn_on)
        .where(withdrawals.c.participant_id == participant, withdrawals.c.scope == scope)
        .limit(1)
        .scalar_subquery()
    )


def refuse_withdrawn(participant_id: str, scope: str, on: dt.date | None) -> None:
    """Refuse work within ``scope`` if the participant withdrew from it on ``on`` (read by ``withdrawn_on``)."""
    if on is not None:
        raise ScreeningError(
            f"participant: {participant_id} withdrew from {scope.replace('_', ' ')} on "
            f"{on.isoformat()}; nothing in that scope can be recorded"
        )
