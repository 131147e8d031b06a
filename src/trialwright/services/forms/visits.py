"""Visits: recording a visit held (scheduled or unscheduled) or missed, the reference dates a schedule
counts from, and a participant's visit timeline with each form's state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.forms import FormState
from trialwright.domain.masking import kept_forms
from trialwright.domain.text import checked_text
from trialwright.domain.visits import HeldVisit, references, schedule
from trialwright.protocol import Protocol
from trialwright.protocol.base import SHORT_TEXT
from trialwright.services import audit, clock
from trialwright.services.bulk_reads import held, keep, once, peek
from trialwright.services.bulk_writes import deferred_insert
from trialwright.services.deaths import death_of
from trialwright.services.errors import FormError
from trialwright.services.forms.common import (
    DATA_ENTRY,
    READERS,
    ParticipantSchedule,
    _role,
    _tz,
    _visit_row,
    _withdrawn,
    forms_key,
    not_on_kept_forms,
    visit_key,
    visits_locked,
)
from trialwright.services.lock import require_unlocked
from trialwright.services.screening import NotFound, participant_row
from trialwright.services.trial import current_protocol, visit_additions_in
from trialwright.services.users import UserView
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import screenings

__all__ = [
    "miss_visit",
    "missed_refusal",
    "participant_schedule",
    "record_visit",
]


def _references(session: Session, protocol: Protocol, participant: Any) -> dict[str, dt.date]:
    tz = _tz(protocol, participant.site)
    screened = once(
        session,
        ("screened_on", participant.screening_id),
        lambda: session.execute(
            select(screenings.c.screened_on).where(screenings.c.id == participant.screening_id)
        ).scalar_one(),
    )
    randomized = once(
        session,
        ("randomized_at", participant.participant_id),
        lambda: session.execute(
            select(allocation_entries.c.randomized_at).where(
                allocation_entries.c.participant_id == participant.participant_id
            )
        ).scalar(),
    )
    dates = held(
        session,
        _dates_key(participant.participant_id),
        lambda: {
            r.visit_id: r.visit_date
            for r in session.execute(
                select(visit_records.c.visit_id, visit_records.c.visit_date).where(
                    visit_records.c.participant_id == participant.participant_id
                )
            )
        },
    )
    base = {"enrolment": local_date(participant.enrolled_at, tz), "screening": screened,
            "randomization": local_date(randomized, tz) if randomized is not None else None}  # fmt: skip
    return references(protocol.visits, base, dates)


def _dates_key(participant_id: str) -> tuple[str, str]:
    """The key a participant's visit dates are ``held`` by in a bulk block."""
    return ("visit_dates", participant_id)


def missed_refusal(visit_id: str, reason: str) -> FormError:
    """The refusal of a form saved at a visit recorded as missed, with or without a visit date (one sentence)."""
    return FormError(f"visit: {visit_id} is recorded as missed ({reason})")


def _ensure_visit(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    participant: Any,
    visit_id: str,
    visit_date: dt.date | None,
) -> Any:
    row = _visit_row(session, participant.participant_id, visit_id)
    if row is not None:
        if visit_date is not None and row.missed_reason:  # no date: said as without one (walk 6 F7)
            raise missed_refusal(visit_id, row.missed_reason)
        if visit_date is not None and row.visit_date != visit_date:
            raise FormError(
                f"visit_date: visit {visit_id} is recorded on {row.visit_date}; change it on the visit, not the form"
            )
        return row
    if visit_id.startswith("unscheduled-"):
        raise NotFound(f"no unscheduled visit {visit_id}")
    protocol.visit(visit_id)  # KeyError for an unknown visit, reported by the caller
    tz = _tz(protocol, participant.site)
    day = visit_date or local_date(clock.now(), tz)
    _check_visit_date(day, participant, tz)
    _check_added(session, visit_id, day)
    row = deferred_insert(  # a bulk import writes it with its next statement (``services/bulk_writes.py``)
        session,
        visit_records,
        {"participant_id": participant.participant_id, "visit_id": visit_id, "visit_date": day,
         "unscheduled": False, "created_at": clock.now(), "created_by": actor.username},
    )  # fmt: skip
    keep(session, visit_key(participant.participant_id, visit_id), row)
    keep(session, forms_key(row.id), {})  # a visit just recorded has no form yet
    visits_locked(session, [row.id])  # a row this transaction inserted is its own until it commits
    dates = peek(session, _dates_key(participant.participant_id))
    if dates is not None:
        keep(session, _dates_key(participant.participant_id), {**dates, visit_id: day})
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=participant.site,
        participant=participant.participant_id,
        action="visit.held",
        field="visit_date",
        new_value=day.isoformat(),
        detail={"visit": visit_id},
    )
    return row


def _check_added(session: Session, visit_id: str, day: dt.date) -> None:
    """Refuse a visit held before the protocol version that added it took effect (``amendments[].date``): no site
    could hold a visit no protocol yet defined (walk 4, F3: the simulator held them months before)."""
    addition = visit_additions_in(session).get(visit_id)
    if addition is not None and day < addition.effective:
        raise FormError(
            f"visit_date: {visit_id} on {day.isoformat()} is before amendment {addition.version}, which added the "
            f"visit, took effect on {addition.effective.isoformat()}: a visit an amendment adds is held only from "
            "its amendment's date"
        )


def _check_visit_date(day: dt.date, participant: Any, tz: ZoneInfo) -> None:
    today = local_date(clock.now(), tz)
    if day > today:
        raise FormError(f"visit_date: {day.isoformat()} is in the future (today is {today.isoformat()} at the site)")
    enrolled = local_date(participant.enrolled_at, tz)
    if day < enrolled:
        raise FormError(f"visit_date: {day.isoformat()} is before enrolment on {enrolled.isoformat()}")


def record_visit(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    visit_id: str | None,
    visit_date: dt.date,
    *,
    label: str | None = None,
) -> str:
    """Record that a visit was held on a date; ``visit_id=None`` adds an unscheduled visit. Returns its id."""
    _role(actor, DATA_ENTRY, "record visits")
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        require_unlocked(session)
        participant = participant_row(session, actor, participant_id)
        require_unlocked(session, participant_id)
        _withdrawn(session, participant_id)
        _check_visit_date(visit_date, participant, _tz(protocol, participant.site))
        if visit_id is None:
            n = session.execute(
                select(func.count())
                .select_from(visit_records)
                .where(visit_records.c.participant_id == participant_id, visit_records.c.unscheduled.is_(True))
            ).scalar_one()
            visit_id = f"unscheduled-{n + 1}"
            if not (label or "").strip():
                raise FormError("label: say why the unscheduled visit took place")
            checked_text(label, "label", SHORT_TEXT, multiline=False, error=FormError)
        else:
            try:
                protocol.visit(visit_id)
            except KeyError:
                raise FormError(f"visit: {visit_id!r} is not a visit of the protocol") from None
            if _visit_row(session, participant_id, visit_id) is not None:
                raise FormError(f"visit: {visit_id} is recorded already")
            _check_added(session, visit_id, visit_date)
        session.execute(
            visit_records.insert().values(
                participant_id=participant_id,
                visit_id=visit_id,
                visit_date=visit_date,
                unscheduled=visit_id.startswith("unscheduled-"),
                label=label,
                created_at=clock.now(),
                created_by=actor.username,
            )
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            action="visit.held",
            field="visit_date",
            new_value=visit_date.isoformat(),
            detail={"visit": visit_id, "label": label},
        )
    return visit_id


def miss_visit(engine: Engine, actor: UserView, participant_id: str, visit_id: str, reason: str) -> None:
    """Record that a scheduled visit did not take place, and why."""
    _role(actor, DATA_ENTRY, "record visits")
    checked_text(reason, "reason", error=FormError)
    if not reason.strip():
        raise FormError("reason: say why the visit was missed")
    protocol = current_protocol(engine).protocol
    try:
        protocol.visit(visit_id)
    except KeyError:
        raise FormError(f"visit: {visit_id!r} is not a visit of the protocol") from None
    with session_scope(engine) as session:
        require_unlocked(session)
        participant = participant_row(session, actor, participant_id)
        require_unlocked(session, participant_id)
        if _visit_row(session, participant_id, visit_id) is not None:
            raise FormError(f"visit: {visit_id} is recorded already")
        session.execute(
            visit_records.insert().values(
                participant_id=participant_id,
                visit_id=visit_id,
                missed_reason=reason,
                unscheduled=False,
                created_at=clock.now(),
                created_by=actor.username,
            )
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            action="visit.missed",
            reason=reason,
            detail={"visit": visit_id},
        )


def participant_schedule(engine: Engine, actor: UserView, participant_id: str) -> ParticipantSchedule:
    """The participant's visit timeline today, with each form's state; only a role of ``READERS`` reads it."""
    _role(actor, READERS, "read forms")
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        participant = participant_row(session, actor, participant_id)
        refs = _references(session, protocol, participant)
        rows = session.execute(select(visit_records).where(visit_records.c.participant_id == participant_id)).all()
        states = session.execute(
            select(visit_records.c.visit_id, form_records.c.form_id, form_records.c.state)
            .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
            .where(form_records.c.participant_id == participant_id)
        ).all()
        kept = kept_forms(protocol, actor.role)
        open_count = session.execute(
            select(func.count())
            .select_from(queries)
            .where(
                queries.c.participant_id == participant_id,
                queries.c.status != "closed",
                not_on_kept_forms(queries.c.form_record_id, kept),
            )
        ).scalar_one()
        death = death_of(session, protocol, participant_id)
        added = visit_additions_in(session)
    held_visits = {r.visit_id: HeldVisit(r.visit_date, r.missed_reason) for r in rows if not r.unscheduled}
    today = local_date(clock.now(), _tz(protocol, participant.site))
    visits = schedule(protocol.visits, refs, held_visits, today, death.on if death else None, added)
    # A form kept from a masked role is not on their schedule at all: neither its state nor that it is due.
    forms: dict[str, dict[str, FormState | None]] = {
        v.id: dict.fromkeys(f for f in v.forms if f not in kept) for v in protocol.visits
    }
    for visit_id, form_id, state in states:
        if form_id not in kept:
            forms.setdefault(visit_id, {})[form_id] = FormState(state)
    unscheduled = tuple((r.visit_id, r.label or "", r.visit_date) for r in rows if r.unscheduled)
    return ParticipantSchedule(participant_id, participant.site, tuple(visits), forms, unscheduled, open_count)
