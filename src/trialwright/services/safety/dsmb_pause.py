"""The DSMB's safety pause: the related SAEs that trigger it, the decisions that lift or confirm it, and the
check a randomization makes against it. It names no arm and no participant.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from trialwright.domain.roles import Role
from trialwright.domain.safety import (
    PauseState,
    pause_state,
)
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.email.outbox import enqueue, recipients
from trialwright.services.reauth import require_password
from trialwright.services.safety.common import (
    DECIDERS,
    DECISION_CODES,
    READERS,
    Decision,
    SafetyError,
    _role,
)
from trialwright.services.safety.sql import current_reports
from trialwright.services.trial import current_protocol
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.engine import inserted_id, read_scope, serialise, session_scope
from trialwright.store.randomization_tables import notifications
from trialwright.store.safety_tables import ae_reports, dsmb_decisions

__all__ = ["PAUSE_FACTS", "PAUSE_NOTIFIED", "check_pause", "decisions", "pause", "record_decision", "saes_to_review"]

#: Who is told, in the app and by e-mail, when the safety pause begins and of each DSMB decision on it.
PAUSE_NOTIFIED = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER)

# --- the pause ---------------------------------------------------------------------------------------


def _related_sae_times(session: Session) -> list[dt.datetime]:
    """For each event that is now a related SAE, when it first became one (its report's awareness time)."""
    # Only events that were ever a related SAE matter (few), so a randomization reads little.
    candidates = select(ae_reports.c.event_id).where(ae_reports.c.serious, ae_reports.c.related)
    rows = session.execute(
        select(ae_reports.c.event_id, ae_reports.c.serious, ae_reports.c.related, ae_reports.c.aware_at)
        .where(ae_reports.c.event_id.in_(candidates))
        .order_by(ae_reports.c.event_id, ae_reports.c.sequence)
    ).all()
    by_event: dict[int, list[Any]] = {}
    for r in rows:
        by_event.setdefault(r.event_id, []).append(r)
    times = []
    for reports in by_event.values():
        if not (reports[-1].serious and reports[-1].related):
            continue
        times.append(next(r.aware_at for r in reports if r.serious and r.related))
    return times


def _pause(session: Session, protocol: Protocol) -> PauseState:
    rule = protocol.safety.pause
    rows = session.execute(select(dsmb_decisions).order_by(dsmb_decisions.c.id)).all()
    return pause_state(
        _related_sae_times(session),
        [(r.decided_at, r.decision) for r in rows],
        rule.related_saes if rule is not None else None,
    )


def pause(engine: Engine) -> PauseState:
    """The safety pause now (for every role: it names no arm and no participant)."""
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        return _pause(session, protocol)


#: Whether there is anything the pause is decided from: a DSMB decision, or a report of a related SAE. Without
#: either the pause is what ``pause_state`` makes of nothing, so a randomization that read this (in one statement with
#: its other facts, after taking the randomization lock) need not read the pause's rows.
PAUSE_FACTS = or_(
    select(dsmb_decisions.c.id).exists(),
    select(ae_reports.c.event_id).where(ae_reports.c.serious, ae_reports.c.related).exists(),
)


def check_pause(session: Session, protocol: Protocol, *, facts: bool = True) -> None:
    """Refuse a randomization while the safety pause holds (the randomization service calls this holding the
    randomization lock, shared; ``record_decision`` holds it alone, so no randomization slips past a decision).
    ``facts``: what ``PAUSE_FACTS`` read in this transaction after that lock (False: nothing to read)."""
    if facts:
        state = _pause(session, protocol)
    else:
        rule = protocol.safety.pause
        state = pause_state([], [], rule.related_saes if rule is not None else None)
    if state.active:
        raise SafetyError(state.message)


def may_decide(actor: UserView) -> None:
    """Refuse, with the role rule, a user whose role may never record a safety decision (the command line asks it
    before it asks a password)."""
    _role(actor, DECIDERS, "record safety decisions")


def record_decision(
    engine: Engine, actor: UserView, decision: str, reason: str, password: str, *, policy: AccessPolicy | None = None
) -> PauseState:
    """A DSMB member records a decision on the pause (resume, pause, stop), confirming with their password."""
    may_decide(actor)
    if decision not in DECISION_CODES:
        raise SafetyError(f"decision: {decision!r} is not one of {', '.join(DECISION_CODES)}")
    checked_text(reason, "reason", error=SafetyError)
    if not reason.strip():
        raise SafetyError("reason: a decision needs its reason")
    require_password(engine, actor.username, password, policy, purpose="DSMB decision", error=SafetyError,
                     message="password: the password is not correct")  # fmt: skip
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        serialise(session, "randomization")
        before = _pause(session, protocol)
        if before.stopped:
            raise SafetyError("decision: the DSMB has stopped recruitment; that decision is final here")
        now = clock.now()
        decision_id = inserted_id(
            session,
            dsmb_decisions.insert().values(
                decision=decision,
                reason=reason.strip(),
                related_saes=before.related_saes,
                decided_at=now,
                decided_by=actor.username,
            ),
        )
        after = _pause(session, protocol)
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="safety.decision",
            old_value={"paused": before.active},
            new_value={"decision": decision, "paused": after.active, "related_saes": before.related_saes},
            reason=reason.strip(),
        )
        enqueue(
            session,
            "decision",
            recipients(session, PAUSE_NOTIFIED, None),
            {"decision": decision, "paused": after.active, "decided_by": actor.username},
            key=f"decision:{decision_id}",
            at=now,
        )
        for role in (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.UNBLINDED_STATISTICIAN):
            session.execute(
                notifications.insert().values(
                    role=role.value,
                    subject=f"DSMB decision on the safety pause: {decision}",
                    participant_id=None,
                    created_at=now,
                )
            )
        return after


def decisions(engine: Engine, actor: UserView) -> list[Decision]:
    """Every DSMB decision on the pause, oldest first."""
    _role(actor, READERS, "read safety decisions")
    with read_scope(engine) as session:
        rows = session.execute(select(dsmb_decisions).order_by(dsmb_decisions.c.id)).all()
    return [Decision(r.decision, r.reason, r.related_saes, r.decided_at, r.decided_by) for r in rows]


def saes_to_review(engine: Engine, actor: UserView) -> int:
    """The DSMB's review work: how many adverse events are serious now and were first reported serious after the
    DSMB's last decision (all of them before any decision), counted in SQL. A count only: no arm, no participant
    (the DSMB page lists them)."""
    _role(actor, DECIDERS, "review serious adverse events")
    with read_scope(engine) as session:
        last = session.execute(select(func.max(dsmb_decisions.c.decided_at))).scalar_one_or_none()
        first = (
            select(ae_reports.c.event_id, func.min(ae_reports.c.reported_at).label("first_serious"))
            .where(ae_reports.c.serious)
            .group_by(ae_reports.c.event_id)
            .subquery("first_serious")
        )
        current = current_reports().subquery("current")
        query = (
            select(func.count())
            .select_from(current.join(first, first.c.event_id == current.c.event_id))
            .where(current.c.serious)
        )
        if last is not None:
            query = query.where(first.c.first_serious > last)
        return int(session.execute(query).scalar_one())
