"""Safety: adverse event reports and follow-ups, reporting deadlines and submissions, safety tables and
line listings, deaths into the hospital course, and the DSMB's safety pause. One transaction per use
case; every report is audited field by field; nothing here names an arm to a blinded viewer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date, on_site_clock, parse_moment
from trialwright.domain.masking import MASKED, sees_arms
from trialwright.domain.paging import DEFAULT_LIMIT, Page, page_of
from trialwright.domain.roles import Role
from trialwright.domain.safety import (
    ActionTaken,
    Assessment,
    Classification,
    DeadlineKind,
    DeadlineState,
    EventOutcome,
    PauseState,
    SafetyInputError,
    SafetyRow,
    Seriousness,
    classify,
    deadline_state,
    deadlines,
    merge_report,
    pause_state,
    safety_table,
    validate_report,
)
from trialwright.domain.text import checked_text
from trialwright.domain.wording import in_words, words_for
from trialwright.protocol import Protocol
from trialwright.protocol.outcomes import BlindedTables
from trialwright.services import audit, clock
from trialwright.services.audit_keys import checked_allocations
from trialwright.services.forms import (
    FormError,
    get_form,
    participant_schedule,
    raise_automatic_query,
    require_unlocked,
    save_form,
)
from trialwright.services.paging import keyset_page
from trialwright.services.reauth import require_password
from trialwright.services.screening import NotFound, ScreeningError, participant_row, require_scope
from trialwright.services.trial import current_protocol
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.engine import inserted_id, read_scope, serialise, session_scope
from trialwright.store.randomization_tables import allocation_lists, notifications
from trialwright.store.safety_tables import adverse_events, ae_reports, ae_submissions, dsmb_decisions

__all__ = [
    "DECIDERS",
    "REPORTERS",
    "AdverseEventView",
    "DeadlineView",
    "Decision",
    "OverdueItem",
    "ReportView",
    "SafetyError",
    "SafetyTables",
    "check_pause",
    "decisions",
    "export_listing",
    "follow_up",
    "get_event",
    "list_events",
    "listing_rows",
    "overdue_for",
    "page_events",
    "pause",
    "record_decision",
    "record_submission",
    "report_event",
    "safety_tables",
]

#: Who reports adverse events and records their submission to the sponsor (site staff).
REPORTERS = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR)
#: Who reads adverse events and the (masked) safety tables.
READERS = (
    *REPORTERS,
    Role.MONITOR,
    Role.DATA_MANAGER,
    Role.ADMINISTRATOR,
    Role.BLINDED_STATISTICIAN,
    Role.UNBLINDED_STATISTICIAN,
    Role.DSMB_MEMBER,
)
#: Who opens the DSMB's closed page (by arm). Elsewhere the arm shows to whoever the trial's masking lets see it
#: (``trialwright.domain.masking.sees_arms``): in a double-blind trial the DSMB and the unblinded statistician.
BY_ARM = (Role.DSMB_MEMBER, Role.UNBLINDED_STATISTICIAN)
#: Who records decisions on the safety pause.
DECIDERS = (Role.DSMB_MEMBER,)
#: Whose home page lists overdue reports.
RESPONSIBLE = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER)
#: The decisions the DSMB can record.
DECISION_CODES = ("resume", "pause", "stop")


class SafetyError(ValueError):
    """A safety request that breaks a rule; the message is ``field: rule``."""

    @property
    def problems(self) -> tuple[tuple[str, str], ...]:
        """The one (field, rule) the message names, shaped as ``SafetyInputError.problems``."""
        field, _, rule = str(self).partition(": ")
        return ((field, rule),)


@dataclass(frozen=True)
class DeadlineView:
    """One report due for an event, with its state now."""

    kind: DeadlineKind
    rule: str
    clock_start: dt.datetime
    due_at: dt.datetime
    state: DeadlineState
    submitted_at: dt.datetime | None


@dataclass(frozen=True)
class ReportView:
    """One report about an event: the initial one (sequence 0) or a follow-up."""

    sequence: int
    assessment: Assessment
    classification: Classification
    reported_at: dt.datetime
    reported_by: str
    reason: str | None

    @property
    def kind(self) -> str:
        """initial or follow-up N."""
        return "initial" if self.sequence == 0 else f"follow-up {self.sequence}"


@dataclass(frozen=True)
class AdverseEventView:
    """An adverse event as one viewer may see it: its current assessment, history and deadlines; the arm
    only for the DSMB and the unblinded statistician (``masked`` otherwise)."""

    ae_number: str
    participant_id: str
    site: str
    timezone: str
    current: Assessment
    classification: Classification
    reports: tuple[ReportView, ...]
    deadlines: tuple[DeadlineView, ...]
    arm: str

    @property
    def overdue(self) -> tuple[DeadlineView, ...]:
        """Deadlines passed without a submission."""
        return tuple(d for d in self.deadlines if d.state is DeadlineState.OVERDUE)


@dataclass(frozen=True)
class SafetyTables:
    """Participants with at least one event, per group. ``grouping``: pooled, unnamed_groups or by_arm."""

    grouping: str
    groups: tuple[str, ...]
    rows: tuple[SafetyRow, ...]
    participants: int  # randomized participants (the denominator)
    events: int  # adverse events of randomized participants
    not_randomized_events: int  # events of participants not randomized (listed, not tabulated)


@dataclass(frozen=True)
class Decision:
    """A DSMB decision on the safety pause."""

    decision: str
    reason: str
    related_saes: int
    decided_at: dt.datetime
    decided_by: str


@dataclass(frozen=True)
class OverdueItem:
    """An overdue report, for the home page of the responsible roles."""

    ae_number: str
    participant_id: str
    kind: DeadlineKind
    due_at: dt.datetime
    timezone: str  # the site's: the page shows the due time on the site's clock


# --- guards and loading ------------------------------------------------------------------------------


def _role(actor: UserView, roles: Sequence[Role], what: str) -> None:
    if actor.role not in roles:
        names = ", ".join(r.value.replace("_", " ") for r in roles)
        raise SafetyError(f"role: only {names} {what}")


def _tz(protocol: Protocol, site: str) -> ZoneInfo:
    return ZoneInfo(protocol.site(site).timezone)


def _assessment(text: str) -> Assessment:
    data = json.loads(text)
    return Assessment(
        term=data["term"],
        onset=dt.date.fromisoformat(data["onset"]),
        end=dt.date.fromisoformat(data["end"]) if data.get("end") else None,
        grade=int(data["grade"]),
        serious=bool(data["serious"]),
        criteria=tuple(Seriousness(c) for c in data["seriousness_criteria"]),
        causality=data["causality"],
        expected_event=data.get("expected_event"),
        action_taken=ActionTaken(data["action_taken"]),
        outcome=EventOutcome(data["outcome"]),
        aware_at=dt.datetime.fromisoformat(data["aware_at"]),
        death_date=dt.date.fromisoformat(data["death_date"]) if data.get("death_date") else None,
        death_cause=data.get("death_cause"),
        narrative=data.get("narrative"),
    )


def _event_row(session: Session, actor: UserView, ae_number: str) -> Any:
    row = session.execute(select(adverse_events).where(adverse_events.c.ae_number == ae_number)).first()
    if row is None or (actor.role.site_scoped and row.site not in actor.sites):
        raise NotFound(f"no adverse event {ae_number}")
    return row


def _arms(session: Session) -> dict[str, str]:
    """Each randomized participant's arm, every entry checked against its keyed digest first."""
    return {r.participant_id: r.arm for r in checked_allocations(session)}


def _views(
    session: Session, protocol: Protocol, actor: UserView, events: Sequence[Any], now: dt.datetime
) -> list[AdverseEventView]:
    if not events:
        return []
    ids = [e.id for e in events]
    reports: dict[int, list[Any]] = {}
    for r in session.execute(
        select(ae_reports).where(ae_reports.c.event_id.in_(ids)).order_by(ae_reports.c.event_id, ae_reports.c.sequence)
    ).all():
        reports.setdefault(r.event_id, []).append(r)
    sent: dict[int, dict[DeadlineKind, dt.datetime]] = {}
    for s in session.execute(select(ae_submissions).where(ae_submissions.c.event_id.in_(ids))).all():
        sent.setdefault(s.event_id, {})[DeadlineKind(s.kind)] = s.submitted_at
    arms = _arms(session) if sees_arms(protocol, actor.role) else {}
    settings = protocol.safety
    out = []
    for event in events:
        tz = _tz(protocol, event.site)
        history = []
        for r in reports.get(event.id, []):
            a = _assessment(r.assessment)
            history.append(ReportView(r.sequence, a, classify(a, settings), r.reported_at, r.reported_by, r.reason))
        submitted = sent.get(event.id, {})
        due = deadlines([(h.assessment, h.classification) for h in history], settings, tz, submitted)
        out.append(
            AdverseEventView(
                ae_number=event.ae_number,
                participant_id=event.participant_id,
                site=event.site,
                timezone=protocol.site(event.site).timezone,
                current=history[-1].assessment,
                classification=history[-1].classification,
                reports=tuple(history),
                deadlines=tuple(
                    DeadlineView(
                        d.kind,
                        d.rule,
                        d.clock_start,
                        d.due_at,
                        deadline_state(d, submitted.get(d.kind), now),
                        submitted.get(d.kind),
                    )
                    for d in due
                ),
                arm=arms.get(event.participant_id, "not randomized") if sees_arms(protocol, actor.role) else MASKED,
            )
        )
    return out


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


def check_pause(session: Session, protocol: Protocol) -> None:
    """Refuse a randomization while the safety pause holds (the randomization service calls this holding the
    randomization lock, shared; ``record_decision`` holds it alone, so no randomization slips past a decision)."""
    state = _pause(session, protocol)
    if state.active:
        raise SafetyError(state.message)


def record_decision(
    engine: Engine, actor: UserView, decision: str, reason: str, password: str, *, policy: AccessPolicy | None = None
) -> PauseState:
    """A DSMB member records a decision on the pause (resume, pause, stop), confirming with their password."""
    _role(actor, DECIDERS, "record safety decisions")
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
        session.execute(
            dsmb_decisions.insert().values(
                decision=decision,
                reason=reason.strip(),
                related_saes=before.related_saes,
                decided_at=now,
                decided_by=actor.username,
            )
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


# --- reports -----------------------------------------------------------------------------------------


def _store_report(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    event: Any,
    sequence: int,
    assessment: Assessment,
    previous: Assessment | None,
    reason: str | None,
) -> None:
    c = classify(assessment, protocol.safety)
    session.execute(
        ae_reports.insert().values(
            event_id=event.id,
            sequence=sequence,
            assessment=json.dumps(assessment.as_json(), sort_keys=True, ensure_ascii=False),
            aware_at=assessment.aware_at,
            serious=c.serious,
            related=c.related,
            expected=c.expected,
            susar=c.susar,
            reason=reason,
            reported_at=clock.now(),
            reported_by=actor.username,
            protocol_version=protocol.version.number,
        )
    )
    new = assessment.as_json()
    old = previous.as_json() if previous is not None else {}
    for name, value in new.items():
        if old.get(name) == value or (previous is None and value is None):
            continue
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=event.site,
            participant=event.participant_id,
            form=f"adverse_event:{event.ae_number}",
            field=name,
            action="ae.reported" if previous is None else "ae.followed_up",
            old_value=old.get(name),
            new_value=value,
            reason=reason or ("initial report" if previous is None else f"follow-up report {sequence}"),
        )
    was_serious = previous is not None and classify(previous, protocol.safety).serious
    if c.serious and not was_serious:
        now = clock.now()
        for role in (Role.DSMB_MEMBER, Role.INVESTIGATOR, Role.MONITOR):
            session.execute(
                notifications.insert().values(
                    role=role.value,
                    subject=f"Serious adverse event {event.ae_number} ({assessment.term}) at {event.site}",
                    participant_id=event.participant_id,
                    created_at=now,
                )
            )


def _validate(protocol: Protocol, site: str, data: Mapping[str, Any], typed_on_site_clock: bool) -> Assessment:
    return validate_report(
        data, protocol.safety, _tz(protocol, site), clock.now(), typed_on_site_clock=typed_on_site_clock
    )


def _unlocked(session: Session) -> None:
    try:
        require_unlocked(session)
    except FormError as exc:
        raise SafetyError(str(exc)) from None


def report_event(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    data: Mapping[str, Any],
    *,
    typed_on_site_clock: bool = False,
) -> AdverseEventView:
    """Report a new adverse event (the initial report). Raises SafetyInputError naming every field.
    ``aware_at`` needs its UTC offset unless ``typed_on_site_clock`` (a page whose input says "site time")."""
    _role(actor, REPORTERS, "report adverse events")
    loaded = current_protocol(engine)
    protocol = loaded.protocol
    try:
        require_scope(engine, participant_id, "follow_up")
    except ScreeningError as exc:
        raise SafetyError(str(exc)) from None
    with session_scope(engine) as session:
        _unlocked(session)
        participant = participant_row(session, actor, participant_id)
        assessment = _validate(protocol, participant.site, data, typed_on_site_clock)
        if participant.enrolled_at is not None:
            enrolled = local_date(participant.enrolled_at, _tz(protocol, participant.site), "enrolled_at")
            if assessment.end is not None and assessment.end < enrolled:
                raise SafetyInputError([("end", f"the event ended before enrolment ({enrolled.isoformat()})")])
        serialise(session, "adverse_events")
        count = session.execute(select(func.count()).select_from(adverse_events)).scalar_one()
        number = f"AE-{count + 1:04d}"
        event_id = inserted_id(
            session,
            adverse_events.insert().values(
                ae_number=number,
                participant_id=participant_id,
                site=participant.site,
                created_at=clock.now(),
                created_by=actor.username,
            ),
        )
        event = session.execute(select(adverse_events).where(adverse_events.c.id == event_id)).one()
        _store_report(session, protocol, actor, event, 0, assessment, None, None)
    _record_death(engine, actor, protocol, number, participant_id, assessment, None)
    return get_event(engine, actor, number)


def follow_up(
    engine: Engine,
    actor: UserView,
    ae_number: str,
    data: Mapping[str, Any],
    reason: str | None = None,
    *,
    typed_on_site_clock: bool = False,
) -> AdverseEventView:
    """A follow-up report: the fields it gives overlay what was known; the whole is checked again.
    ``aware_at`` is when the site learned the new information."""
    _role(actor, REPORTERS, "report adverse events")
    checked_text(reason, "reason", error=SafetyError)
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        _unlocked(session)
        row = session.execute(select(adverse_events).where(adverse_events.c.ae_number == ae_number)).first()
        if row is None or (actor.role.site_scoped and row.site not in actor.sites):
            raise SafetyError(
                f"initial_report: there is no adverse event {ae_number}; a follow-up needs its initial report"
            )
        last = session.execute(
            select(ae_reports).where(ae_reports.c.event_id == row.id).order_by(ae_reports.c.sequence.desc()).limit(1)
        ).one()
        previous = _assessment(last.assessment)
        if "aware_at" not in data or data.get("aware_at") in (None, ""):
            raise SafetyInputError([("aware_at", "is required: when the site learned the follow-up information")])
        assessment = _validate(protocol, row.site, merge_report(previous, data), typed_on_site_clock)
        if assessment.aware_at < previous.aware_at:
            raise SafetyInputError([("aware_at", "is before the previous report's awareness time")])
        if assessment.as_json() == {**previous.as_json(), "aware_at": assessment.aware_at.isoformat()}:
            raise SafetyError("follow-up: it changes nothing in the report")
        _store_report(session, protocol, actor, row, last.sequence + 1, assessment, previous, reason)
    _record_death(engine, actor, protocol, ae_number, row.participant_id, assessment, previous)
    return get_event(engine, actor, ae_number)


def _record_death(
    engine: Engine,
    actor: UserView,
    protocol: Protocol,
    ae_number: str,
    participant_id: str,
    assessment: Assessment,
    previous: Assessment | None,
) -> None:
    """Write a newly reported death into the hospital-course form (the protocol's ``death_record``), in its
    own transaction after the report is safe; where the form cannot take it, raise a query instead."""
    record = protocol.safety.death_record
    if record is None or assessment.outcome is not EventOutcome.FATAL or assessment.death_date is None:
        return
    if previous is not None and previous.outcome is EventOutcome.FATAL and previous.death_date == assessment.death_date:
        return
    try:
        current = get_form(engine, actor, participant_id, record.visit, record.form)
        values = current.values if current is not None else {}
        status = values.get(record.status_field)
        ended = values.get(record.date_field)
        if (
            status is not None
            and status.value in record.alive_values
            and ended is not None
            and ended.value is not None
            and dt.date.fromisoformat(str(ended.value)) <= assessment.death_date
        ):
            return  # the stay ended alive before the death: the hospital course stands
        entries: dict[str, Any] = {
            record.status_field: record.status_value,
            record.date_field: assessment.death_date.isoformat(),
        }
        if record.cause_field and assessment.death_cause:
            entries[record.cause_field] = assessment.death_cause
        held = any(
            v.visit_id == record.visit and v.visit_date is not None
            for v in participant_schedule(engine, actor, participant_id).visits
        )
        save_form(
            engine,
            actor,
            participant_id,
            record.visit,
            record.form,
            entries,
            reason=f"death reported in {ae_number}",
            visit_date=None if held else assessment.death_date,
        )
    except (FormError, ScreeningError) as exc:
        raise_automatic_query(
            engine,
            participant_id,
            f"Death on {assessment.death_date.isoformat()} reported in {ae_number}; the "
            f"{protocol.form(record.form).name} form could not be updated "
            f"({in_words(str(exc), words_for(protocol, form_id=record.form))}). Please record it.",
            check_id=f"death:{ae_number}",
        )


def record_submission(
    engine: Engine,
    actor: UserView,
    ae_number: str,
    kind: str,
    submitted_at: dt.datetime | str,
    note: str | None = None,
    *,
    typed_on_site_clock: bool = False,
) -> AdverseEventView:
    """Record that a due report was sent (to the sponsor, or the SUSAR's reports), and when. ``submitted_at``
    needs its UTC offset unless ``typed_on_site_clock`` (a page whose input says "site time")."""
    _role(actor, REPORTERS, "record report submissions")
    checked_text(note, "note", error=SafetyError)
    protocol = current_protocol(engine).protocol
    try:
        which = DeadlineKind(kind)
    except ValueError:
        raise SafetyError(f"kind: {kind!r} is not one of {', '.join(DeadlineKind)}") from None
    with session_scope(engine) as session:
        _unlocked(session)
        row = _event_row(session, actor, ae_number)
        tz = _tz(protocol, row.site)
        text = submitted_at if isinstance(submitted_at, str) else submitted_at.isoformat()
        try:
            when = parse_moment(on_site_clock(text, tz, "submitted_at") if typed_on_site_clock else text,
                                "submitted_at").astimezone(dt.UTC)  # fmt: skip
        except ValueError as exc:
            raise SafetyError(str(exc)) from None
        now = clock.now()
        if when > now:
            raise SafetyError("submitted_at: is in the future")
        view = _views(session, protocol, actor, [row], now)[0]
        due = {d.kind: d for d in view.deadlines}
        if which not in due:
            raise SafetyError(f"kind: {ae_number} has no {which.value.replace('_', ' ')} report due")
        if due[which].submitted_at is not None:
            raise SafetyError(f"kind: the {which.value.replace('_', ' ')} report of {ae_number} is recorded already")
        if when < due[which].clock_start:
            raise SafetyError("submitted_at: is before the site became aware of the event")
        session.execute(
            ae_submissions.insert().values(
                event_id=row.id, kind=which.value, submitted_at=when, note=note, recorded_at=now,
                recorded_by=actor.username,
            )
        )  # fmt: skip
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=row.site,
            participant=row.participant_id,
            form=f"adverse_event:{ae_number}",
            field=which.value,
            action="ae.submitted",
            new_value={"submitted_at": when.isoformat(), "due_at": due[which].due_at.isoformat(), "note": note},
        )
    return get_event(engine, actor, ae_number)


# --- reading -----------------------------------------------------------------------------------------


def get_event(engine: Engine, actor: UserView, ae_number: str) -> AdverseEventView:
    """One adverse event with its history and deadlines."""
    _role(actor, READERS, "read adverse events")
    protocol = current_protocol(engine).protocol
    with read_scope(engine) as session:
        row = _event_row(session, actor, ae_number)
        return _views(session, protocol, actor, [row], clock.now())[0]


def _events_query(
    actor: UserView, participant_id: str | None, site: str | None, serious: bool, participant: str | None = None
) -> Select[Any]:
    _role(actor, READERS, "read adverse events")
    query = select(adverse_events)
    if actor.role.site_scoped:
        query = query.where(adverse_events.c.site.in_(actor.sites))
    if participant_id:
        query = query.where(adverse_events.c.participant_id == participant_id)
    if participant:
        query = query.where(adverse_events.c.participant_id.startswith(participant, autoescape=True))
    if site:
        query = query.where(adverse_events.c.site == site)
    if serious:  # only an event that was ever serious has a deadline
        query = query.where(adverse_events.c.id.in_(select(ae_reports.c.event_id).where(ae_reports.c.serious)))
    return query


def _kept(view: AdverseEventView, serious_only: bool, overdue_only: bool) -> bool:
    return (not serious_only or view.classification.serious) and (not overdue_only or bool(view.overdue))


def list_events(
    engine: Engine,
    actor: UserView,
    *,
    participant_id: str | None = None,
    site: str | None = None,
    overdue_only: bool = False,
    serious_only: bool = False,
    now: dt.datetime | None = None,
) -> list[AdverseEventView]:
    """Every adverse event within the actor's sites, newest first (pages: ``page_events``)."""
    query = _events_query(actor, participant_id, site, serious_only or overdue_only)
    protocol = current_protocol(engine).protocol
    with read_scope(engine) as session:
        rows = session.execute(query.order_by(adverse_events.c.id.desc())).all()
        views = _views(session, protocol, actor, rows, now or clock.now())
    return [v for v in views if _kept(v, serious_only, overdue_only)]


def page_events(
    engine: Engine,
    actor: UserView,
    *,
    participant_id: str | None = None,
    participant: str | None = None,
    site: str | None = None,
    overdue_only: bool = False,
    serious_only: bool = False,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    now: dt.datetime | None = None,
) -> Page[AdverseEventView]:
    """A page of the adverse events within the actor's sites, newest first (by id). Seriousness now and
    overdue deadlines are judged in Python, so with those filters the candidates (events ever serious) are
    read whole and paged in memory by the same cursors."""
    query = _events_query(actor, participant_id, site, serious_only or overdue_only, participant)
    protocol = current_protocol(engine).protocol
    moment = now or clock.now()
    with read_scope(engine) as session:
        if not (serious_only or overdue_only):
            return keyset_page(
                session,
                query,
                (adverse_events.c.id,),
                lambda s, rows: _views(s, protocol, actor, rows, moment),
                limit=limit,
                cursor=cursor,
            )
        rows = session.execute(query).all()
        views = _views(session, protocol, actor, rows, moment)
    kept = [(r.id, v) for r, v in zip(rows, views, strict=True) if _kept(v, serious_only, overdue_only)]
    found = page_of(kept, lambda pair: (pair[0],), limit=limit, cursor=cursor)
    views_only: tuple[AdverseEventView, ...] = tuple(v for _, v in found.items)
    return Page(views_only, found.total, found.start, found.limit, found.next_cursor, found.prev_cursor)


def overdue_for(engine: Engine, actor: UserView) -> list[OverdueItem]:
    """Overdue reports within the actor's sites, for the responsible roles' home page (empty for others)."""
    if actor.role not in RESPONSIBLE:
        return []
    return [
        OverdueItem(v.ae_number, v.participant_id, d.kind, d.due_at, v.timezone)
        for v in list_events(engine, actor, overdue_only=True)
        for d in v.overdue
    ]


def group_labels(session: Session, protocol: Protocol) -> dict[str, str]:
    """Arm code -> Group A, B, ... in an order fixed by the secret list seed, so the labels say nothing."""
    head = session.execute(select(allocation_lists.c.seed).order_by(allocation_lists.c.id).limit(1)).scalar()
    secret = str(head or "")
    order = sorted(protocol.arms, key=lambda arm: hashlib.sha256(f"{secret}:{arm.code}".encode()).hexdigest())
    return {arm.code: f"Group {chr(ord('A') + i)}" for i, arm in enumerate(order)}


def safety_tables(engine: Engine, actor: UserView) -> SafetyTables:
    """Participants (randomized) with at least one AE / SAE, by criterion, worst grade and relatedness: by
    arm for the DSMB and the unblinded statistician; for everyone else pooled, or in unnamed groups when
    the protocol allows."""
    _role(actor, READERS, "read the safety tables")
    protocol = current_protocol(engine).protocol
    with read_scope(engine) as session:
        arms = _arms(session)
        if sees_arms(protocol, actor.role):
            grouping = "by_arm"
            names = {a.code: a.name for a in protocol.arms}
            groups = tuple(a.name for a in protocol.arms)
            group_of = {pid: names[code] for pid, code in arms.items()}
        elif protocol.safety.blinded_tables is BlindedTables.UNNAMED_GROUPS:
            grouping = "unnamed_groups"
            labels = group_labels(session, protocol)
            groups = tuple(sorted(labels.values()))
            group_of = {pid: labels[code] for pid, code in arms.items()}
        else:
            grouping = "pooled"
            groups = ("All participants",)
            group_of = {pid: "All participants" for pid in arms}
        views = _views(session, protocol, actor, session.execute(select(adverse_events)).all(), clock.now())
    events = [(v.participant_id, v.current, v.classification) for v in views]
    rows = safety_table(events, group_of, groups)
    in_table = sum(1 for v in views if v.participant_id in group_of)
    return SafetyTables(grouping, groups, tuple(rows), len(group_of), in_table, len(views) - in_table)


def listing_rows(engine: Engine, actor: UserView) -> list[dict[str, object]]:
    """The line listing (one row per event, current assessment, deadlines), for pages and CSV; the arm
    column only for the DSMB and the unblinded statistician."""
    protocol = current_protocol(engine).protocol
    causality = {c.code: c.label for c in protocol.safety.causality}
    out: list[dict[str, object]] = []
    for v in reversed(list_events(engine, actor)):
        a, c = v.current, v.classification
        row: dict[str, object] = {
            "ae_number": v.ae_number,
            "participant_id": v.participant_id,
            "site": v.site,
        }
        if sees_arms(protocol, actor.role):
            row["arm"] = v.arm
        row.update(
            {
                "term": a.term,
                "onset": a.onset.isoformat(),
                "end": a.end.isoformat() if a.end else "",
                "grade": a.grade,
                "serious": "yes" if c.serious else "no",
                "seriousness_criteria": " ".join(x.value for x in a.criteria),
                "causality": causality[a.causality],
                "related": "yes" if c.related else "no",
                "expected": "yes" if c.expected else "no",
                "susar": "yes" if c.susar else "no",
                "action_taken": str(a.action_taken),
                "outcome": a.outcome.value,
                "death_date": a.death_date.isoformat() if a.death_date else "",
                "reports": len(v.reports),
                "deadlines": "; ".join(
                    f"{d.kind.value} due {d.due_at.astimezone(ZoneInfo(v.timezone)):%Y-%m-%d %H:%M} {d.state.value}"
                    for d in v.deadlines
                ),
            }
        )
        out.append(row)
    return out


def export_listing(engine: Engine, actor: UserView) -> list[dict[str, object]]:
    """The line listing as a file: the same rows as ``listing_rows``, and the export is audited."""
    rows = listing_rows(engine, actor)
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="safety.listing_exported",
            new_value={"rows": len(rows), "by_arm": sees_arms(current_protocol(engine).protocol, actor.role)},
        )
    return rows
