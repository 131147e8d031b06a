"""Screening, informed consent and enrolment: the use cases from first assessment to a participant id.

Every patient assessed gets a screening number per site; the eligibility decision is re-evaluated on
every change and stored with the values and the protocol version behind it. Consent is recorded from
the participant or a legally authorised representative (LAR); a participant who regains capacity records
their own decision. Enrolment issues the participant id (site code and sequence, RAZ-001) only to an
eligible, consented patient, once. Every step is audited. Site-scoped users reach only their sites'
screenings; another site's record answers exactly as a missing one does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import NaiveTimeError, local_date
from trialwright.domain.calendars import aware as aware_time
from trialwright.domain.eligibility import Decision, EligibilityDecision, ScreeningValueError, evaluate, validate_values
from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.roles import Role
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.protocol.base import SHORT_TEXT
from trialwright.services import audit, clock
from trialwright.services.bulk_reads import once
from trialwright.services.paging import keyset_page
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import inserted_id, read_scope, serialise, session_scope
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals

__all__ = [
    "ConsentView",
    "NonEnrolmentReason",
    "NotFound",
    "ParticipantView",
    "ScreeningError",
    "ScreeningValueError",
    "ScreeningView",
    "WithdrawalCause",
    "WithdrawalScope",
    "check_participant",
    "count_enrolled",
    "enrol",
    "get_screening",
    "list_screenings",
    "page_screenings",
    "participant_row",
    "reconsent_needed",
    "record_consent",
    "require_scope",
    "screen",
    "screening_id_of",
    "set_non_enrolment",
    "update_screening",
    "withdraw",
]


class ScreeningError(ValueError):
    """A screening, consent or enrolment request that breaks a rule; the message names field and rule."""


class NotFound(LookupError):
    """No such record within the user's sites (another site's record answers the same way)."""


class NonEnrolmentReason(StrEnum):
    """Why a screened patient was not enrolled (feeds CONSORT and the recruitment reports)."""

    NOT_ELIGIBLE = "not_eligible"
    DECLINED = "declined"
    CONSENT_NOT_OBTAINABLE = "consent_not_obtainable"
    OTHER_TRIAL = "other_trial"
    OTHER = "other"


class WithdrawalScope(StrEnum):
    """What a participant withdraws from."""

    INTERVENTION = "intervention"
    FOLLOW_UP = "follow_up"
    DATA_USE = "data_use"


class WithdrawalCause(StrEnum):
    """Why a participant left a scope, as CONSORT counts losses after allocation (the reason in words says more)."""

    WITHDREW_CONSENT = "withdrew_consent"  # the participant (or their representative) decided to stop
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"  # could not be reached despite the site's attempts
    INVESTIGATOR_DECISION = "investigator_decision"  # the investigator stopped it (e.g. safety, a new condition)
    ADVERSE_EVENT = "adverse_event"  # stopped because of an adverse event
    OTHER = "other"


#: A cause that only makes sense for some scopes: one is lost to follow-up, not to the intervention.
_CAUSE_SCOPES = {WithdrawalCause.LOST_TO_FOLLOW_UP: {WithdrawalScope.FOLLOW_UP}}


@dataclass(frozen=True)
class ConsentView:
    """One consent record."""

    id: int
    form_version: str
    given_by: str
    representative_name: str | None
    representative_relationship: str | None
    witness: str | None
    obtained_by: str
    obtained_at: dt.datetime
    kind: str
    decision: str


@dataclass(frozen=True)
class ParticipantView:
    """An enrolled participant."""

    participant_id: str
    site: str
    enrolled_at: dt.datetime
    withdrawn_scopes: tuple[str, ...]


@dataclass(frozen=True)
class ScreeningView:
    """A screening log entry with its current decision, consents and, once enrolled, the participant."""

    id: int
    label: str
    site: str
    screened_on: dt.date
    values: Mapping[str, Any]
    decision: Decision
    failed: tuple[dict[str, Any], ...]
    missing: tuple[str, ...]
    protocol_version: str
    non_enrolment_reason: str | None
    non_enrolment_text: str | None
    consents: tuple[ConsentView, ...]
    participant: ParticipantView | None

    @property
    def consented(self) -> bool:
        """Whether the latest consent decision is a consent (not a refusal or withdrawal)."""
        return bool(self.consents) and self.consents[-1].decision in {"consent", "continue"}


def _now() -> dt.datetime:
    return clock.now()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default, ensure_ascii=False)


def _decision_detail(decision: EligibilityDecision) -> dict[str, Any]:
    return {
        "failed": [{"id": r.id, "text": r.text, "values": dict(r.values)} for r in decision.failed],
        "missing": list(decision.missing),
    }


def _known(decision: EligibilityDecision) -> dict[str, Any]:
    """The values to store: those entered and those derived from them (P/F), without the unknown ones."""
    return {k: v for k, v in decision.values.items() if v is not None}


def _check_site(actor: UserView, site: str) -> None:
    if actor.role.site_scoped and site not in actor.sites:
        raise NotFound("no such screening")


def _typed_values(protocol: Protocol, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored JSON values back to typed ones (dates)."""
    dates = {f.id for f in protocol.eligibility.screening_fields if f.type == "date"}
    return {k: (dt.date.fromisoformat(v) if k in dates and isinstance(v, str) else v) for k, v in stored.items()}


def _view(session: Session, row: Any) -> ScreeningView:
    detail = json.loads(row.decision_detail)
    consent_rows = session.execute(
        select(consents).where(consents.c.screening_id == row.id).order_by(consents.c.id)
    ).all()
    participant = session.execute(select(participants).where(participants.c.screening_id == row.id)).first()
    pview = None
    if participant is not None:
        scopes = tuple(
            sorted(
                session.execute(
                    select(withdrawals.c.scope).where(withdrawals.c.participant_id == participant.participant_id)
                ).scalars()
            )
        )
        pview = ParticipantView(participant.participant_id, participant.site, participant.enrolled_at, scopes)
    return ScreeningView(
        id=row.id,
        label=f"{row.site}-S{row.number:04d}",
        site=row.site,
        screened_on=row.screened_on,
        values=json.loads(row.screening_values),
        decision=Decision(row.decision),
        failed=tuple(detail["failed"]),
        missing=tuple(detail["missing"]),
        protocol_version=row.protocol_version,
        non_enrolment_reason=row.non_enrolment_reason,
        non_enrolment_text=row.non_enrolment_text,
        consents=tuple(
            ConsentView(
                c.id,
                c.form_version,
                c.given_by,
                c.representative_name,
                c.representative_relationship,
                c.witness,
                c.obtained_by,
                c.obtained_at,
                c.kind,
                c.decision,
            )
            for c in consent_rows
        ),
        participant=pview,
    )


def screening_id_of(engine: Engine, actor: UserView, reference: str) -> int:
    """The screening a person names: its label as printed (``RAZ-S0001``) or its number in the database."""
    text = reference.strip()
    if text.isdigit():
        return int(text)
    site, sep, number = text.rpartition("-S")
    if not sep or not number.isdigit():
        raise ScreeningError(f"screening: {reference!r} is neither a label like RAZ-S0001 nor a number")
    with session_scope(engine) as session:
        found = session.execute(
            select(screenings.c.id).where(screenings.c.site == site, screenings.c.number == int(number))
        ).scalar()
        if found is None or (actor.role.site_scoped and site not in actor.sites):
            raise NotFound(f"no screening {text}")
        return int(found)


def participant_row(session: Session, actor: UserView, participant_id: str) -> Any:
    """A participant's row within the actor's sites; for anyone else the participant does not exist."""
    row = once(
        session,
        ("participant", participant_id),
        lambda: session.execute(select(participants).where(participants.c.participant_id == participant_id)).first(),
    )
    if row is None or (actor.role.site_scoped and row.site not in actor.sites):
        raise NotFound("no such participant")
    return row


def check_participant(engine: Engine, actor: UserView, participant_id: str) -> None:
    """Raise NotFound unless the participant exists within the actor's sites (pages that only show a form)."""
    with session_scope(engine) as session:
        participant_row(session, actor, participant_id)


def _row(session: Session, actor: UserView, screening_id: int) -> Any:
    row = session.execute(select(screenings).where(screenings.c.id == screening_id)).first()
    if row is None:
        raise NotFound("no such screening")
    _check_site(actor, row.site)
    return row


def screen(
    engine: Engine, actor: UserView, *, site: str, screened_on: dt.date | None, values: Mapping[str, Any]
) -> ScreeningView:
    """Add a patient to the screening log with whatever values are known; the decision is computed.
    ``screened_on`` is the site's local date (None: today at the site) and may not be after the site's today."""
    protocol = current_protocol(engine).protocol
    if site not in protocol.site_codes:
        raise ScreeningError(f"site: unknown site {site!r} (sites: {', '.join(protocol.site_codes)})")
    if actor.role.site_scoped and site not in actor.sites:  # a new screening: the site is public, nothing leaks
        raise ScreeningError(f"site: you screen at {', '.join(actor.sites) or 'no site'}, not at {site}")
    today = local_date(_now(), protocol.site(site).timezone)
    if screened_on is None:
        screened_on = today
    if screened_on > today:
        raise ScreeningError(
            f"screened_on: {screened_on.isoformat()} is in the future (today is {today.isoformat()} at the site)"
        )
    consent_field = protocol.eligibility.consent_field
    if consent_field is not None and consent_field in values:
        raise ScreeningError(f"{consent_field}: is set from the consent record, not typed in")
    typed = validate_values(protocol, values)
    decision = evaluate(protocol, typed)
    now = _now()
    with session_scope(engine) as session:
        serialise(session, f"screening:{site}")
        number = (
            session.execute(select(func.max(screenings.c.number)).where(screenings.c.site == site)).scalar() or 0
        ) + 1
        new_id = inserted_id(
            session,
            screenings.insert().values(
                site=site,
                number=number,
                screened_on=screened_on,
                screening_values=_dump(typed),
                decision=decision.decision.value,
                decision_detail=_dump(_decision_detail(decision)),
                protocol_version=protocol.version.number,
                created_at=now,
                created_by=actor.username,
                updated_at=now,
            ),
        )
        label = f"{site}-S{number:04d}"
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=site,
            form="screening",
            action="screening.created",
            new_value={"values": typed, "decision": decision.decision.value},
            detail={"screening": label, "protocol_version": protocol.version.number},
        )
        return _view(session, _row(session, actor, new_id))


def update_screening(
    engine: Engine, actor: UserView, screening_id: int, *, values: Mapping[str, Any], reason: str | None = None
) -> ScreeningView:
    """Change screening values; changing a saved value needs a reason. The decision is re-evaluated."""
    protocol = current_protocol(engine).protocol
    consent_field = protocol.eligibility.consent_field
    if consent_field is not None and consent_field in values:
        raise ScreeningError(f"{consent_field}: is set from the consent record, not typed in")
    typed = validate_values(protocol, values)
    checked_text(reason, "reason", error=ScreeningError)
    with session_scope(engine) as session:
        row = _row(session, actor, screening_id)
        old = _typed_values(protocol, json.loads(row.screening_values))
        changed = {k: v for k, v in typed.items() if old.get(k) != v}
        overwritten = [k for k in changed if old.get(k) is not None]
        if overwritten and not (reason and reason.strip()):
            raise ScreeningError(f"reason: changing saved values ({', '.join(sorted(overwritten))}) needs a reason")
        if not changed:
            return _view(session, row)
        return _store_values(session, actor, row, protocol, {**old, **changed}, old, reason, "screening.changed")


def _store_values(
    session: Session,
    actor: UserView,
    row: Any,
    protocol: Protocol,
    merged: dict[str, Any],
    old: Mapping[str, Any],
    reason: str | None,
    action: str,
) -> ScreeningView:
    decision = evaluate(protocol, merged)
    session.execute(
        screenings.update()
        .where(screenings.c.id == row.id)
        .values(
            screening_values=_dump(merged),
            decision=decision.decision.value,
            decision_detail=_dump(_decision_detail(decision)),
            protocol_version=protocol.version.number,
            updated_at=_now(),
        )
    )
    old_changed = {k: old.get(k) for k in merged if old.get(k) != merged[k]}
    new_changed = {k: merged[k] for k in old_changed}
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=row.site,
        form="screening",
        action=action,
        old_value={"values": old_changed, "decision": row.decision},
        new_value={"values": new_changed, "decision": decision.decision.value},
        reason=reason,
        detail={"screening": f"{row.site}-S{row.number:04d}"},
    )
    return _view(session, session.execute(select(screenings).where(screenings.c.id == row.id)).first())


def set_non_enrolment(
    engine: Engine, actor: UserView, screening_id: int, *, reason: str, text_: str | None = None
) -> ScreeningView:
    """Record why a screened patient was not enrolled, as a coded reason (and text for 'other')."""
    try:
        code = NonEnrolmentReason(reason)
    except ValueError:
        raise ScreeningError(f"reason: must be one of {', '.join(r.value for r in NonEnrolmentReason)}") from None
    if code is NonEnrolmentReason.OTHER and not (text_ and text_.strip()):
        raise ScreeningError("text: 'other' needs a description")
    checked_text(text_, "text", error=ScreeningError)
    with session_scope(engine) as session:
        row = _row(session, actor, screening_id)
        if code is NonEnrolmentReason.NOT_ELIGIBLE and row.decision != Decision.NOT_ELIGIBLE.value:
            raise ScreeningError(f"reason: the patient is {row.decision.replace('_', ' ')}, not 'not eligible'")
        if session.execute(select(participants).where(participants.c.screening_id == row.id)).first():
            raise ScreeningError("reason: the patient is enrolled")
        old = {"reason": row.non_enrolment_reason, "text": row.non_enrolment_text}
        session.execute(
            screenings.update()
            .where(screenings.c.id == row.id)
            .values(non_enrolment_reason=code.value, non_enrolment_text=text_, updated_at=_now())
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=row.site,
            form="screening",
            field="non_enrolment_reason",
            action="screening.not_enrolled",
            old_value=old,
            new_value={"reason": code.value, "text": text_},
            detail={"screening": f"{row.site}-S{row.number:04d}"},
        )
        return _view(session, _row(session, actor, screening_id))


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
) -> ScreeningView:
    """Record a consent (or a refusal, or a participant's own decision after regaining capacity)."""
    protocol = current_protocol(engine).protocol
    if given_by not in {"participant", "representative"}:
        raise ScreeningError("given_by: must be participant or representative")
    if kind not in {"initial", "reconsent", "regained_capacity"}:
        raise ScreeningError("kind: must be initial, reconsent or regained_capacity")
    allowed = {
        "initial": {"consent", "refuse"},
        "reconsent": {"consent", "refuse"},
        "regained_capacity": {"continue", "withdraw"},
    }[kind]
    if decision not in allowed:
        raise ScreeningError(f"decision: for {kind} must be one of {', '.join(sorted(allowed))}")
    if given_by == "representative":
        if kind == "regained_capacity":
            raise ScreeningError("given_by: a participant who regained capacity decides for themself")
        if not (representative_name and representative_name.strip()):
            raise ScreeningError("representative_name: needed when a legally authorised representative consents")
        if not (representative_relationship and representative_relationship.strip()):
            raise ScreeningError("representative_relationship: needed when a representative consents")
    if not obtained_by.strip():
        raise ScreeningError("obtained_by: name the person who obtained consent")
    for name, given in (
        ("obtained_by", obtained_by),
        ("representative_name", representative_name),
        ("representative_relationship", representative_relationship),
        ("witness", witness),
    ):
        checked_text(given, name, SHORT_TEXT, multiline=False, error=ScreeningError)
    try:
        obtained_at = aware_time(obtained_at, "obtained_at")
    except NaiveTimeError as exc:
        raise ScreeningError(str(exc)) from None
    if obtained_at > _now() + dt.timedelta(minutes=5):
        raise ScreeningError("obtained_at: cannot be in the future")
    version = next((v for v in protocol.consent_versions if v.version == form_version), None)
    if version is None:
        known = ", ".join(v.version for v in protocol.consent_versions)
        raise ScreeningError(f"form_version: unknown consent form version {form_version!r} (versions: {known})")
    with session_scope(engine) as session:
        row = _row(session, actor, screening_id)
        # Dates are the site's local dates, whatever offset the time was sent with.
        obtained_on = local_date(obtained_at, protocol.site(row.site).timezone, "obtained_at")
        if obtained_on < version.effective_from:
            raise ScreeningError(
                f"form_version: {form_version} is in use only from {version.effective_from.isoformat()} "
                f"(consent obtained on {obtained_on.isoformat()} at the site)"
            )
        if obtained_on < row.screened_on:
            raise ScreeningError(
                f"obtained_at: {obtained_on.isoformat()} at the site is before the screening date "
                f"{row.screened_on.isoformat()}"
            )
        previous = session.execute(
            select(consents).where(consents.c.screening_id == row.id).order_by(consents.c.id)
        ).all()
        if kind == "regained_capacity" and not any(c.given_by == "representative" for c in previous):
            raise ScreeningError("kind: regained_capacity follows a representative's consent; there is none")
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
        return _view(session, _row(session, actor, screening_id))


def enrol(engine: Engine, actor: UserView, screening_id: int) -> ScreeningView:
    """Enrol an eligible, consented patient; issues the participant id. Never twice."""
    with session_scope(engine) as session:
        row = _row(session, actor, screening_id)
        label = f"{row.site}-S{row.number:04d}"
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
        serialise(session, f"participant:{row.site}")
        number = (
            session.execute(select(func.max(participants.c.number)).where(participants.c.site == row.site)).scalar()
            or 0
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
        return _view(session, row)


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
    site), from the site's date of enrolment to the site's today. Site staff record it: the investigator or the
    study coordinator."""
    if actor.role not in (Role.INVESTIGATOR, Role.STUDY_COORDINATOR):
        raise ScreeningError("role: the investigator or the study coordinator records a withdrawal")
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
        found = session.execute(
            select(withdrawals).where(withdrawals.c.participant_id == participant_id, withdrawals.c.scope == scope)
        ).first()
    if found is not None:
        raise ScreeningError(
            f"participant: {participant_id} withdrew from {scope.replace('_', ' ')} on "
            f"{found.withdrawn_on.isoformat()}; nothing in that scope can be recorded"
        )


def get_screening(engine: Engine, actor: UserView, screening_id: int) -> ScreeningView:
    """One screening (within the actor's sites)."""
    with read_scope(engine) as session:
        return _view(session, _row(session, actor, screening_id))


def _screenings_query(
    actor: UserView, site: str | None, decision: str | None, participant: str | None = None
) -> Select[Any]:
    query = select(screenings)
    if actor.role.site_scoped:
        query = query.where(screenings.c.site.in_(actor.sites))
    if site:
        query = query.where(screenings.c.site == site)
    if decision:
        query = query.where(screenings.c.decision == decision)
    if participant:
        enrolled = select(participants.c.screening_id).where(
            participants.c.participant_id.startswith(participant, autoescape=True)
        )
        query = query.where(screenings.c.id.in_(enrolled))
    return query


def list_screenings(
    engine: Engine, actor: UserView, *, site: str | None = None, decision: str | None = None
) -> list[ScreeningView]:
    """The whole screening log, newest first, within the actor's sites (pages: ``page_screenings``)."""
    query = _screenings_query(actor, site, decision).order_by(screenings.c.screened_on.desc(), screenings.c.id.desc())
    with read_scope(engine) as session:
        return [_view(session, row) for row in session.execute(query)]


def page_screenings(
    engine: Engine,
    actor: UserView,
    *,
    site: str | None = None,
    decision: str | None = None,
    participant: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[ScreeningView]:
    """A page of the screening log within the actor's sites, newest first (by screening date, then id);
    ``participant`` keeps the screenings whose participant id starts with it."""
    query = _screenings_query(actor, site, decision, participant)
    with read_scope(engine) as session:
        return keyset_page(
            session,
            query,
            (screenings.c.screened_on, screenings.c.id),
            lambda s, rows: [_view(s, r) for r in rows],
            limit=limit,
            cursor=cursor,
        )


@dataclass(frozen=True)
class ReconsentDue:
    """A participant whose consent predates a consent form version that requires re-consent."""

    participant_id: str
    site: str
    consented_on_version: str
    required_version: str


def reconsent_needed(engine: Engine, actor: UserView) -> list[ReconsentDue]:
    """Enrolled, not withdrawn participants (within the actor's sites) who must re-consent on a newer form."""
    protocol = current_protocol(engine).protocol
    required = [v for v in protocol.consent_versions if v.reconsent_required]
    if not required:
        return []
    due: list[ReconsentDue] = []
    with read_scope(engine) as session:
        rows = session.execute(select(participants).order_by(participants.c.participant_id)).all()
        for p in rows:
            if actor.role.site_scoped and p.site not in actor.sites:
                continue
            withdrawn = set(
                session.execute(
                    select(withdrawals.c.scope).where(withdrawals.c.participant_id == p.participant_id)
                ).scalars()
            )
            if WithdrawalScope.FOLLOW_UP.value in withdrawn:
                continue
            latest = session.execute(
                select(consents)
                .where(consents.c.screening_id == p.screening_id, consents.c.decision.in_(["consent", "continue"]))
                .order_by(consents.c.obtained_at.desc())
                .limit(1)
            ).first()
            if latest is None:
                continue
            newest = max(required, key=lambda v: v.effective_from)
            obtained_on = local_date(latest.obtained_at, protocol.site(p.site).timezone, "obtained_at")
            if obtained_on < newest.effective_from and latest.form_version != newest.version:
                due.append(ReconsentDue(p.participant_id, p.site, latest.form_version, newest.version))
    return due


def count_enrolled(engine: Engine) -> int:
    """How many participants are enrolled (trial-wide)."""
    with read_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(participants)).scalar_one())
