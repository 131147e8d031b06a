"""Informed consent and enrolment: consents from the participant or a LAR, and the participant id issued
to an eligible, consented patient, once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.assent import assent_problem, own_consent_problem
from trialwright.domain.calendars import NaiveTimeError, local_date
from trialwright.domain.calendars import aware as aware_time
from trialwright.domain.consent import form_version_problem
from trialwright.domain.eligibility import Decision
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.protocol.base import SHORT_TEXT
from trialwright.services import audit
from trialwright.services.lock import require_unlocked
from trialwright.services.screening.common import (
    WRITERS,
    ScreeningError,
    ScreeningView,
    WithdrawalCause,
    WithdrawalScope,
    _now,
    _row,
    _typed_values,
    _view,
    require_role,
)
from trialwright.services.screening.log import _require_unlocked, _store_values
from trialwright.services.screening.withdrawal import _insert_withdrawal
from trialwright.services.trial import current_protocol, protocol_in
from trialwright.services.users import UserView
from trialwright.store.engine import serialise, session_scope
from trialwright.store.screening_tables import consents, participants, screenings

__all__ = [
    "DECISIONS",
    "age_correction_problem",
    "consent_problem",
    "dissent_problem",
    "enrol",
    "enrol_in",
    "record_consent",
    "record_consent_in",
    "screening_assent_problem",
    "screening_own_consent_problem",
]


def record_consent(
    engine: Engine,
    actor: UserView,
    screening_id: int,
    *,
    form_version: str,
    given_by: str,
    obtained_by: str,
    obtained_at: dt.datetime,
    representative_name: str | None = None,
    representative_relationship: str | None = None,
    witness: str | None = None,
    kind: str = "initial",
    decision: str = "consent",
    assent: str | None = None,
    assent_obtained_by: str | None = None,
    assent_obtained_at: dt.datetime | None = None,
    assent_form_version: str | None = None,
    assent_not_sought_reason: str | None = None,
) -> ScreeningView:
    """Record a consent (or a refusal, or a participant's own decision after regaining capacity)."""
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        record_consent_in(
            session, protocol, actor, screening_id, form_version=form_version, given_by=given_by,
            obtained_by=obtained_by, obtained_at=obtained_at, representative_name=representative_name,
            representative_relationship=representative_relationship, witness=witness, kind=kind, decision=decision,
            assent=assent, assent_obtained_by=assent_obtained_by, assent_obtained_at=assent_obtained_at,
            assent_form_version=assent_form_version, assent_not_sought_reason=assent_not_sought_reason,
        )  # fmt: skip
        return _view(session, _row(session, actor, screening_id))


#: The decisions each kind of consent record may carry.
DECISIONS = {"initial": ("consent", "refuse"), "reconsent": ("consent", "refuse"),
             "regained_capacity": ("continue", "withdraw")}  # fmt: skip


def consent_problem(
    protocol: Protocol,
    *,
    site: str,
    screened_on: dt.date,
    form_version: str,
    given_by: str,
    obtained_at: dt.datetime,
    representative_name: str | None,
    representative_relationship: str | None,
    kind: str,
    decision: str,
    earlier_given_by: Sequence[str],
) -> str | None:
    """The first rule a consent record breaks, as ``field: why``, or None: ``record_consent`` and ``import odm``
    (``odm_import_consents``) check a record by these same rules. ``earlier_given_by``: who gave each of the
    screening's records before it, in order."""
    if given_by not in {"participant", "representative"}:
        return "given_by: must be participant or representative"
    if kind not in DECISIONS:
        return "kind: must be initial, reconsent or regained_capacity"
    if decision not in DECISIONS[kind]:
        return f"decision: for {kind} must be one of {', '.join(sorted(DECISIONS[kind]))}"
    if given_by == "representative":
        if kind == "regained_capacity":
            return "given_by: a participant who regained capacity decides for themself"
        if not (representative_name and representative_name.strip()):
            return "representative_name: needed when a legally authorised representative consents"
        if not (representative_relationship and representative_relationship.strip()):
            return "representative_relationship: needed when a representative consents"
    problem = form_version_problem(protocol, site=site, form_version=form_version, obtained_at=obtained_at)
    if problem is not None:
        return problem
    obtained_on = local_date(obtained_at, protocol.site(site).timezone, "obtained_at")
    if obtained_on < screened_on:
        return (f"obtained_at: {obtained_on.isoformat()} at the site is before the screening date "
                f"{screened_on.isoformat()}")  # fmt: skip
    if kind == "regained_capacity" and not protocol.eligibility.regained_capacity:
        return ("kind: the protocol declares that a participant consented for by a representative does not regain "
                "capacity during the trial (eligibility.regained_capacity: false)")  # fmt: skip
    if kind == "regained_capacity" and "representative" not in earlier_given_by:
        return "kind: regained_capacity follows a representative's consent; there is none"
    last_representative = max(i for i, by in enumerate(earlier_given_by) if by == "representative") if (
        kind == "regained_capacity") else 0
    if kind == "regained_capacity" and "participant" in earlier_given_by[last_representative + 1:]:
        # one decision per regained capacity: what the participant decides later is a re-consent or a withdrawal
        return ("kind: the participant already decided for themself after the representative's consent; a later "
                "change is a reconsent or a withdrawal, not another regained_capacity decision")
    return None


def _not_future(at: dt.datetime, name: str) -> dt.datetime:
    """``at`` as an aware time, refused naming ``name`` when naive or in the future (five minutes' clock slack)."""
    try:
        at = aware_time(at, name)
    except NaiveTimeError as exc:
        raise ScreeningError(str(exc)) from None
    if at > _now() + dt.timedelta(minutes=5):
        raise ScreeningError(f"{name}: cannot be in the future")
    return at


def record_consent_in(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    screening_id: int,
    *,
    form_version: str,
    given_by: str,
    obtained_by: str,
    obtained_at: dt.datetime,
    representative_name: str | None = None,
    representative_relationship: str | None = None,
    witness: str | None = None,
    kind: str = "initial",
    decision: str = "consent",
    assent: str | None = None,
    assent_obtained_by: str | None = None,
    assent_obtained_at: dt.datetime | None = None,
    assent_form_version: str | None = None,
    assent_not_sought_reason: str | None = None,
) -> None:
    """``record_consent`` in the caller's transaction, under ``protocol`` (the simulator joins steps in one); the
    caller reads the view it needs."""
    require_role(actor, WRITERS, "record consent")
    if not obtained_by.strip():
        raise ScreeningError("obtained_by: name the person who obtained consent")
    for name, given in (
        ("obtained_by", obtained_by),
        ("representative_name", representative_name),
        ("representative_relationship", representative_relationship),
        ("witness", witness),
        ("assent_obtained_by", assent_obtained_by),
        ("assent_not_sought_reason", assent_not_sought_reason),
    ):
        checked_text(given, name, SHORT_TEXT, multiline=False, error=ScreeningError)
    obtained_at = _not_future(obtained_at, "obtained_at")
    if assent_obtained_at is not None:
        assent_obtained_at = _not_future(assent_obtained_at, "assent_obtained_at")
    row = _row(session, actor, screening_id)
    enrolled = _require_unlocked(session, row)
    previous = session.execute(select(consents).where(consents.c.screening_id == row.id).order_by(consents.c.id)).all()
    problem = consent_problem(
        protocol, site=row.site, screened_on=row.screened_on, form_version=form_version, given_by=given_by,
        obtained_at=obtained_at, representative_name=representative_name,
        representative_relationship=representative_relationship, kind=kind, decision=decision,
        earlier_given_by=[c.given_by for c in previous],
    )  # fmt: skip
    if problem is None:
        problem = _assent_problem(
            protocol, row, given_by=given_by, kind=kind, decision=decision, assent=assent,
            assent_obtained_by=assent_obtained_by, assent_obtained_at=assent_obtained_at,
            assent_form_version=assent_form_version, assent_not_sought_reason=assent_not_sought_reason,
        )  # fmt: skip
    if problem is None:
        problem = screening_own_consent_problem(protocol, row.site, row.screened_on, json.loads(row.screening_values),
                                                given_by=given_by, obtained_at=obtained_at)  # fmt: skip
    if problem is None:
        problem = _initial_after_enrolment(row, kind, enrolled)
    if problem is not None:
        raise ScreeningError(problem)
    obtained_on = local_date(obtained_at, protocol.site(row.site).timezone, "obtained_at")
    session.execute(
        consents.insert().values(
            screening_id=row.id,
            form_version=form_version,
            given_by=given_by,
            representative_name=representative_name,
            representative_relationship=representative_relationship,
            witness=witness,
            obtained_by=obtained_by,
            obtained_at=obtained_at,
            kind=kind,
            decision=decision,
            recorded_at=_now(),
            recorded_by=actor.username,
            assent=assent,
            assent_obtained_by=assent_obtained_by,
            assent_obtained_at=assent_obtained_at,
            assent_form_version=assent_form_version,
            assent_not_sought_reason=assent_not_sought_reason,
        )
    )
    label = f"{row.site}-S{row.number:04d}"
    participant = session.execute(select(participants).where(participants.c.screening_id == row.id)).first()
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=row.site,
        participant=participant.participant_id if participant else None,
        form="consent",
        action=f"consent.{decision}",
        new_value={
            "form_version": form_version,
            "given_by": given_by,
            "representative_name": representative_name,
            "relationship": representative_relationship,
            "witness": witness,
            "obtained_by": obtained_by,
            "obtained_at": obtained_at.isoformat(),
            "kind": kind,
            **(
                {}
                if assent is None
                else {
                    "assent": assent,
                    "assent_obtained_by": assent_obtained_by,
                    "assent_obtained_at": assent_obtained_at.isoformat() if assent_obtained_at else None,
                    "assent_form_version": assent_form_version,
                    "assent_not_sought_reason": assent_not_sought_reason,
                }
            ),
        },
        detail={"screening": label},
    )
    if protocol.eligibility.consent_field is not None and kind != "regained_capacity":
        old = _typed_values(protocol, json.loads(row.screening_values))
        merged = {**old, protocol.eligibility.consent_field: decision == "consent"}
        if merged != old:
            _store_values(
                session, actor, row, protocol, merged, old, "set from the consent record", "screening.changed"
            )
    if decision == "withdraw" and participant is not None:
        for scope in WithdrawalScope:
            _insert_withdrawal(
                session,
                actor,
                participant,
                scope,
                WithdrawalCause.WITHDREW_CONSENT,
                "withdrew on regaining capacity",
                obtained_on,
            )


def _assent_problem(protocol: Protocol, row: Any, **sent: Any) -> str | None:
    return screening_assent_problem(protocol, row.site, row.screened_on, json.loads(row.screening_values), **sent)


def screening_assent_problem(
    protocol: Protocol, site: str, screened_on: dt.date, values: Mapping[str, Any], **sent: Any
) -> str | None:
    """The assent rule (``trialwright.domain.assent``) over a screening's recorded age (``values``: its screening
    values as stored); an assent sought before the screening date is refused like a consent. ``sent``: the consent
    record's ``given_by``, ``kind``, ``decision`` and five assent fields. The ODM import applies it too."""
    rule = protocol.eligibility.assent
    age, age_unit = None, None
    if rule is not None:
        typed = _typed_values(protocol, dict(values))
        age = typed.get(rule.age_field)
        field = next((f for f in protocol.eligibility.screening_fields if f.id == rule.age_field), None)
        age_unit = field.unit if field is not None else None
    problem = assent_problem(rule, age=age, age_unit=age_unit, **sent)
    at = sent["assent_obtained_at"]
    if problem is None and at is not None:
        on = local_date(at, protocol.site(site).timezone, "assent_obtained_at")
        if on < screened_on:
            return f"assent_obtained_at: {on.isoformat()} at the site is before the screening date {screened_on}"
    return problem


def age_correction_problem(
    session: Session, protocol: Protocol, screening_id: int, changed: Mapping[str, Any]
) -> str | None:
    """Why a change of screening values (``changed``, as stored now) that corrects the age deciding a child's assent
    (``eligibility.assent.age_field``) is refused, or None: the consent record in force (the latest, a decision after
    regaining capacity aside, as ``enrol`` reads it) checked again by the assent rule over the corrected age. A
    consent recorded again after the correction is that record, so recording it again with the assent the corrected
    age needs lets the correction stand."""
    rule = protocol.eligibility.assent
    if rule is None or rule.age_field not in changed:
        return None
    row = session.execute(select(screenings).where(screenings.c.id == screening_id)).one()
    latest = session.execute(
        select(consents)
        .where(consents.c.screening_id == screening_id, consents.c.kind != "regained_capacity")
        .order_by(consents.c.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    label = f"{row.site}-S{row.number:04d}"
    values = json.loads(row.screening_values)
    own = screening_own_consent_problem(
        protocol, row.site, row.screened_on, values, given_by=latest.given_by, obtained_at=latest.obtained_at
    )
    if own is not None:
        return (
            f"{rule.age_field}: corrected to {changed[rule.age_field]}, {label}'s consent record in force "
            f"({latest.kind}, {latest.obtained_at:%Y-%m-%d}) is the participant's own, no longer allowed ({own}); "
            "record the consent again with the correction, by a representative with the assent the corrected age "
            "needs"
        )
    problem = screening_assent_problem(
        protocol, row.site, row.screened_on, values, given_by=latest.given_by,
        kind=latest.kind, decision=latest.decision, assent=latest.assent,
        assent_obtained_by=latest.assent_obtained_by, assent_obtained_at=latest.assent_obtained_at,
        assent_form_version=latest.assent_form_version, assent_not_sought_reason=latest.assent_not_sought_reason,
    )  # fmt: skip
    if problem is None:
        return None
    return (
        f"{rule.age_field}: corrected to {changed[rule.age_field]}, {label}'s consent record in force "
        f"({latest.kind}, {latest.obtained_at:%Y-%m-%d}) no longer meets the assent rule (eligibility.assent: "
        f"{problem}); record the consent again with the correction, with the assent the corrected age needs"
    )


def screening_own_consent_problem(
    protocol: Protocol, site: str, screened_on: dt.date, values: Mapping[str, Any], *, given_by: str,
    obtained_at: dt.datetime,
) -> str | None:
    """The age-of-consent rule (``trialwright.domain.assent.own_consent_problem``) over a screening's recorded age
    (``values``: its screening values as stored) and the days from screening to the record at the site."""
    rule = protocol.eligibility.assent
    if rule is None or given_by != "participant":
        return None
    age = _typed_values(protocol, dict(values)).get(rule.age_field)
    field = next((f for f in protocol.eligibility.screening_fields if f.id == rule.age_field), None)
    on = local_date(obtained_at, protocol.site(site).timezone, "obtained_at")
    return own_consent_problem(rule, age=age, age_unit=field.unit if field is not None else None, given_by=given_by,
                               days_since=(on - screened_on).days)  # fmt: skip


def _initial_after_enrolment(row: Any, kind: str, enrolled: str | None) -> str | None:
    """An initial consent is the one a participant is enrolled on: once enrolled (``enrolled``: the participant the
    screening ``row`` enrolled, as the lock check read it), a later decision (a dissent included) is a re-consent
    (``kind: reconsent``) or a decision on regaining capacity, never a second initial consent that nothing would
    read."""
    if kind != "initial" or enrolled is None:
        return None
    return (f"kind: {row.site}-S{row.number:04d} is enrolled as {enrolled}; an initial consent is recorded before "
            "enrolment, and a later one is a re-consent (kind: reconsent)")  # fmt: skip


def dissent_problem(label: str) -> str:
    """Why ``enrol`` refuses a screening whose latest consent record carries the child's dissent (``label``: the
    screening's number); the ODM import refuses such an enrolment in the same words."""
    return (
        f"assent: {label}'s own dissent is recorded with the representative's consent; a dissent is respected "
        "and the participant is not enrolled (eligibility.assent)"
    )


def enrol(engine: Engine, actor: UserView, screening_id: int) -> ScreeningView:
    """Enrol an eligible, consented patient; issues the participant id. Never twice."""
    require_role(actor, WRITERS, "enrol participants")
    with session_scope(engine) as session:
        row, _ = enrol_in(session, actor, screening_id)
        return _view(session, row)


def enrol_in(session: Session, actor: UserView, screening_id: int) -> tuple[Any, str]:
    """``enrol`` in the caller's transaction (the simulator joins steps in one): the screening's row as read before
    the enrolment, and the participant id issued."""
    require_role(actor, WRITERS, "enrol participants")
    row = _row(session, actor, screening_id)
    label = f"{row.site}-S{row.number:04d}"
    require_unlocked(session, site=row.site, error=ScreeningError)
    if session.execute(select(participants).where(participants.c.screening_id == row.id)).first():
        raise ScreeningError(f"screening: {label} is already enrolled")
    if row.decision != Decision.ELIGIBLE.value:
        raise ScreeningError(
            f"eligibility: {label} is {row.decision.replace('_', ' ')}; only an eligible patient is enrolled"
        )
    latest = session.execute(
        select(consents)
        .where(consents.c.screening_id == row.id, consents.c.kind != "regained_capacity")
        .order_by(consents.c.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.decision != "consent":
        raise ScreeningError(f"consent: {label} has no recorded consent")
    if latest.assent == "dissent":
        raise ScreeningError(dissent_problem(label))
    if latest.given_by == "participant":  # the age of consent, again: the age may have been corrected since
        protocol = protocol_in(session).protocol
        own = screening_own_consent_problem(
            protocol, row.site, row.screened_on, json.loads(row.screening_values), given_by=latest.given_by,
            obtained_at=latest.obtained_at,
        )  # fmt: skip
        if own is not None:
            raise ScreeningError(f"consent: {label}'s consent in force is the participant's own: {own}")
    serialise(session, f"participant:{row.site}")
    number = (
        session.execute(select(func.max(participants.c.number)).where(participants.c.site == row.site)).scalar() or 0
    ) + 1
    participant_id = f"{row.site}-{number:03d}"
    session.execute(
        participants.insert().values(
            participant_id=participant_id,
            site=row.site,
            number=number,
            screening_id=row.id,
            enrolled_at=_now(),
            enrolled_by=actor.username,
        )
    )
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=row.site,
        participant=participant_id,
        action="participant.enrolled",
        new_value={"participant_id": participant_id},
        detail={"screening": label},
    )
    return row, participant_id
