"""Adverse event reports: the initial report, follow-ups, a death written into the hospital course, and
the submissions of due reports. Every report is audited field by field.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date, on_site_clock, parse_moment
from trialwright.domain.roles import Role
from trialwright.domain.safety import (
    Assessment,
    DeadlineKind,
    EventOutcome,
    SafetyInputError,
    classify,
    merge_report,
    names_death,
    validate_report,
)
from trialwright.domain.text import checked_text
from trialwright.domain.wording import in_words, words_for
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.email.outbox import enqueue, recipients
from trialwright.services.forms import (
    FormError,
    get_form,
    participant_schedule,
    raise_automatic_query,
    require_unlocked,
    save_form,
)
from trialwright.services.safety.common import (
    REPORTERS,
    AdverseEventView,
    SafetyError,
    _assessment,
    _event_row,
    _role,
    _tz,
    _views,
)
from trialwright.services.safety.dsmb_pause import PAUSE_NOTIFIED, _pause
from trialwright.services.safety.reading import get_event
from trialwright.services.screening import ScreeningError, participant_row, require_scope
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import inserted_id, serialise, session_scope
from trialwright.store.randomization_tables import notifications
from trialwright.store.safety_tables import adverse_events, ae_reports, ae_submissions, criteria_text

__all__ = ["SAE_NOTIFIED", "death_term_query", "follow_up", "record_submission", "report_event"]

#: Who is told of a new serious adverse event (in the app, and by e-mail: a site-scoped role at the event's site).
SAE_NOTIFIED = (Role.DSMB_MEMBER, Role.INVESTIGATOR, Role.MONITOR)

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
    watch_pause = protocol.safety.pause is not None and c.serious and c.related
    paused_before = watch_pause and _pause(session, protocol).active
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
            grade=assessment.grade,
            causality=assessment.causality,
            expected_event=assessment.expected_event,
            criteria=criteria_text(c.value for c in assessment.criteria),
        )
    )
    new = assessment.as_json()
    old = previous.as_json() if previous is not None else {}
    with audit.batched(session):  # one entry per field of the report, written in this order with one INSERT
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
    if watch_pause and not paused_before:
        after = _pause(session, protocol)
        if after.active:  # this report brought the related SAEs to the protocol's rule: the pause begins
            enqueue(
                session,
                "pause",
                recipients(session, PAUSE_NOTIFIED, None),
                {"related_saes": after.related_saes, "at": (after.since or assessment.aware_at).isoformat()},
                key=f"pause:{event.ae_number}:{sequence}",
            )
    was_serious = previous is not None and classify(previous, protocol.safety).serious
    if c.serious and not was_serious:
        now = clock.now()
        enqueue(
            session,
            "sae",
            recipients(session, SAE_NOTIFIED, event.site),
            {"ae_number": event.ae_number, "participant_id": event.participant_id, "site": event.site,
             "reported_by": actor.username, "at": assessment.aware_at.isoformat()},
            key=f"sae:{event.ae_number}",
            site=event.site,
            participant_id=event.participant_id,
            at=now,
        )  # fmt: skip
        for role in SAE_NOTIFIED:
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
        # The largest number so far plus one (the last entry of its index; under the lock, so no two reports take
        # the same one): AE-0001, AE-0002, ... as a count of the events made them, without reading every event.
        last = session.execute(select(func.max(adverse_events.c.number))).scalar()
        number = f"AE-{(last or 0) + 1:04d}"
        event_id = inserted_id(
            session,
            adverse_events.insert().values(
                ae_number=number,
                number=(last or 0) + 1,
                participant_id=participant_id,
                site=participant.site,
                created_at=clock.now(),
                created_by=actor.username,
            ),
        )
        event = session.execute(select(adverse_events).where(adverse_events.c.id == event_id)).one()
        _store_report(session, protocol, actor, event, 0, assessment, None, None)
    _record_death(engine, actor, protocol, number, participant_id, assessment, None)
    _ask_for_the_cause(engine, number, participant_id, assessment)
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
    _ask_for_the_cause(engine, ae_number, row.participant_id, assessment)
    return get_event(engine, actor, ae_number)


def death_term_query(ae_number: str, term: str) -> str:
    """The automatic query's text (stored in English; ``web.query_words`` says it in the viewer's language)."""
    return (
        f"{ae_number}: the reported term {term!r} names death, which is the outcome; please report the event that "
        "caused it as the term in a follow-up."
    )


def _ask_for_the_cause(engine: Engine, ae_number: str, participant_id: str, assessment: Assessment) -> None:
    """A report whose term is death itself is accepted (it is due within hours, often before the cause is known;
    refusing it would delay the report), and the system asks for the cause at once by an automatic query on the
    participant (one open per event), in its own transaction after the report is safe. The SDTM export also lists
    such a term in its README until a follow-up names the cause (death is the outcome: AEOUT FATAL)."""
    if names_death(assessment.term):
        raise_automatic_query(
            engine, participant_id, death_term_query(ae_number, assessment.term), check_id=f"death-term:{ae_number}"
        )


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
