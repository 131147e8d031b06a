"""A child's dissent recorded at a re-consent after enrolment: a decision the investigator records.

ICH E11 (2.6.3) asks that a child's dissent be respected; it may be overruled only where the ethics committee agrees
that continuing is in the child's interest (e.g. a treatment not available outside the trial). A dissent before
enrolment stops the enrolment (``enrol``); after enrolment, the participant is already in the trial, so the dissent
is an open decision until the investigator records one: **withdraw** (a withdrawal from the intervention, recorded as
any withdrawal is, cause ``withdrew_consent``) or **continue**, with the ethics committee's reason
(``record_dissent_decision``, audited as ``consent.dissent_continued``). Until then the participant is on the
investigator's work list (``open_dissents``) and their page says so.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, exists, select
from sqlalchemy.orm import Session

from trialwright.domain.roles import Role
from trialwright.domain.text import checked_text
from trialwright.services import audit
from trialwright.services.errors import denied
from trialwright.services.lock import require_unlocked
from trialwright.services.screening.common import NotFound, ScreeningError, WithdrawalCause, WithdrawalScope, _now
from trialwright.services.screening.withdrawal import withdraw
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.screening_tables import consents, participants, withdrawals
from trialwright.store.tables import audit_entries

__all__ = ["CONTINUED", "OpenDissent", "open_dissent_of", "open_dissents", "record_dissent_decision"]

#: The audit action of a decision to continue despite a dissent (with the ethics committee's reason).
CONTINUED = "consent.dissent_continued"
#: Who records the decision: the investigator (a medical decision with the ethics committee's agreement).
DECIDERS = (Role.INVESTIGATOR,)


@dataclass(frozen=True)
class OpenDissent:
    """A participant whose own dissent was recorded with a re-consent after their enrolment, no decision yet."""

    participant_id: str
    site: str
    consent_id: int
    obtained_at: dt.datetime
    assent_obtained_at: dt.datetime | None


def _open(session: Session, sites: tuple[str, ...] | None, participant_id: str | None) -> list[OpenDissent]:
    """The open dissents in one statement (the dissent is the consent in force, recorded after enrolment, with no
    withdrawal from the intervention since), then the decisions to continue of those participants in one more."""
    later = consents.alias("later")
    rows = session.execute(
        select(participants.c.participant_id, participants.c.site, consents.c.id, consents.c.obtained_at,
               consents.c.assent_obtained_at)
        .join(consents, consents.c.screening_id == participants.c.screening_id)
        .where(consents.c.assent == "dissent", consents.c.kind != "regained_capacity",
               consents.c.recorded_at >= participants.c.enrolled_at,  # before enrolment, enrolment refused it
               ~exists().where(later.c.screening_id == consents.c.screening_id, later.c.id > consents.c.id,
                               later.c.kind != "regained_capacity"),  # not the consent in force
               ~exists().where(withdrawals.c.participant_id == participants.c.participant_id,
                               withdrawals.c.scope == "intervention"),
               *([participants.c.site.in_(sites)] if sites is not None else []),
               *([participants.c.participant_id == participant_id] if participant_id is not None else []))
        .order_by(participants.c.participant_id)
    ).all()  # fmt: skip
    if not rows:
        return []
    decided = {
        (d.participant, json.loads(d.detail or "{}").get("consent"))
        for d in session.execute(
            select(audit_entries.c.participant, audit_entries.c.detail).where(
                audit_entries.c.action == CONTINUED,
                audit_entries.c.participant.in_(sorted({r.participant_id for r in rows})),
            )
        )
    }
    return [
        OpenDissent(r.participant_id, r.site, r.id, r.obtained_at, r.assent_obtained_at)
        for r in rows
        if (r.participant_id, r.id) not in decided
    ]


def _sites(engine: Engine, actor: UserView) -> tuple[str, ...] | None:
    if not actor.role.site_scoped:
        return None
    codes = tuple(s.code for s in current_protocol(engine).protocol.sites)
    return tuple(c for c in codes if c in actor.sites)


def open_dissents(engine: Engine, actor: UserView) -> tuple[OpenDissent, ...]:
    """The participants of the actor's sites with a dissent after enrolment and no decision recorded yet."""
    with read_scope(engine) as session:
        return tuple(_open(session, _sites(engine, actor), None))


def open_dissent_of(engine: Engine, actor: UserView, participant_id: str) -> OpenDissent | None:
    """The participant's open dissent (their page shows it), or None."""
    sites = _sites(engine, actor)
    with read_scope(engine) as session:
        found = _open(session, sites, participant_id)
    return found[0] if found else None


def record_dissent_decision(
    engine: Engine, actor: UserView, participant_id: str, *, decision: str, reason: str
) -> OpenDissent:
    """Record the investigator's decision on an open dissent: ``withdraw`` (a withdrawal from the intervention, cause
    withdrew_consent, dated the site's today) or ``continue`` (``reason``: the ethics committee's, required)."""
    if actor.role not in DECIDERS:
        raise denied(ScreeningError)("role: the investigator records the decision on a dissent")
    if decision not in ("withdraw", "continue"):
        raise ScreeningError("decision: must be withdraw or continue")
    checked_text(reason, "reason", error=ScreeningError)
    if not reason.strip():
        raise ScreeningError("reason: the ethics committee's reason to continue, or why the participant is withdrawn")
    dissent = open_dissent_of(engine, actor, participant_id)
    if dissent is None:
        raise NotFound(f"participant: {participant_id} has no dissent awaiting a decision")
    if decision == "withdraw":
        withdraw(engine, actor, participant_id, scope=WithdrawalScope.INTERVENTION.value,
                 cause=WithdrawalCause.WITHDREW_CONSENT.value, reason=reason, withdrawn_on=None)  # fmt: skip
        return dissent
    with session_scope(engine) as session:
        require_unlocked(session, participant_id, site=dissent.site, error=ScreeningError)
        detail: dict[str, Any] = {"consent": dissent.consent_id}
        audit.record(session, actor=actor.username, role=actor.role.value, site=dissent.site,
                     participant=participant_id, form="consent", action=CONTINUED,
                     new_value={"decision": "continue", "at": _now().isoformat()}, reason=reason,
                     detail=detail)  # fmt: skip
    return dissent
