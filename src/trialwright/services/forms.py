"""Data collection: visits, case report forms with their lifecycle, derived values and queries (the trial lock
and soft locks live in ``services/lock.py`` and are re-exported here). One transaction per use case; every change
is audited field by field (old value, new value, reason), and the same rules hold on every write path (page, API,
bulk import, CLI), which all call here.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.declared import Missing, derivation_order, evaluate
from trialwright.domain.derivations import components, derive
from trialwright.domain.forms import (
    FormState,
    FormValueError,
    SoftBreach,
    StoredValue,
    Transition,
    missing_required,
    next_state,
    validate_entries,
)
from trialwright.domain.roles import SYSTEM_ACTOR, SYSTEM_ACTORS, Role
from trialwright.domain.text import checked_text
from trialwright.domain.visits import HeldVisit, ScheduledVisit, schedule, window_of
from trialwright.protocol import Derivation, Protocol
from trialwright.protocol.base import SHORT_TEXT
from trialwright.protocol.forms import DataCheck, FieldType, FormDef
from trialwright.services import audit, clock
from trialwright.services.coherence import refused_breaches
from trialwright.services.deaths import death_of
from trialwright.services.errors import FormError
from trialwright.services.lock import LockState, lock_state, lock_trial, require_unlocked, unlock_trial
from trialwright.services.reauth import require_password
from trialwright.services.screening import NotFound, participant_row
from trialwright.services.trial import current_protocol
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import inserted_id, session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import participants, screenings, withdrawals

__all__ = [
    "DATA_ENTRY",
    "FormError",
    "FormView",
    "ImportReport",
    "LockState",
    "ParticipantSchedule",
    "QueryView",
    "RefusedValues",
    "answer_query",
    "close_query",
    "complete_form",
    "get_form",
    "import_forms",
    "list_queries",
    "lock_form",
    "lock_state",
    "lock_trial",
    "miss_visit",
    "participant_schedule",
    "raise_automatic_query",
    "raise_query",
    "record_visit",
    "require_unlocked",
    "save_form",
    "sign_form",
    "sign_forms",
    "unlock_form",
    "unlock_trial",
    "verify_form",
    "verify_forms",
]

#: Who enters data (site staff; the outcome assessor reads radiographs).
DATA_ENTRY = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.OUTCOME_ASSESSOR)
#: Who raises queries by hand.
QUERY_RAISERS = (Role.MONITOR, Role.DATA_MANAGER)
#: Who answers queries.
QUERY_ANSWERERS = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.OUTCOME_ASSESSOR)
#: Who reads forms and queries (the blinded team).
READERS = (*DATA_ENTRY, Role.ADMINISTRATOR, Role.MONITOR, Role.DATA_MANAGER)


class RefusedValues(FormValueError, FormError):
    """Values a rule across fields refuses (coherence, a refusing data check, the kit check, a form after
    death): each problem ``field: rule``, so the API answers field by field as it does for a value refused alone."""


@dataclass(frozen=True)
class FormView:
    """One form at one visit, as stored."""

    id: int
    participant_id: str
    visit_id: str
    form_id: str
    state: FormState
    values: Mapping[str, StoredValue]
    version: int
    missing: tuple[str, ...]
    updated_at: dt.datetime
    updated_by: str
    verified_by: str | None
    verified_at: dt.datetime | None
    signed_by: str | None
    signed_at: dt.datetime | None
    signature_meaning: str | None
    locked_by: str | None
    open_queries: int


@dataclass(frozen=True)
class ParticipantSchedule:
    """A participant's visits today, with each form's state (None = not started)."""

    participant_id: str
    site: str
    visits: tuple[ScheduledVisit, ...]
    forms: Mapping[str, Mapping[str, FormState | None]]  # visit id -> form id -> state
    unscheduled: tuple[tuple[str, str, dt.date | None], ...]  # (visit id, label, date)
    open_queries: int


@dataclass(frozen=True)
class QueryView:
    """A data query (never names an arm)."""

    id: int
    participant_id: str
    site: str
    visit_id: str | None
    form_id: str | None
    field: str | None
    origin: str
    check_id: str | None
    text: str
    status: str
    raised_by: str
    raised_at: dt.datetime
    answer: str | None
    answered_by: str | None
    closed_by: str | None
    close_note: str | None
    automatic: bool  # raised by the system (an edit or data check), not by a person


@dataclass(frozen=True)
class ImportReport:
    """What a bulk import did: rows saved and every rejected row with its problems."""

    saved: int
    rejected: tuple[tuple[int, tuple[str, ...]], ...] = field(default=())


# --- guards ---------------------------------------------------------------------------------------


def _role(actor: UserView, roles: Sequence[Role], what: str) -> None:
    if actor.role not in roles:
        names = ", ".join(r.value.replace("_", " ") for r in roles)
        raise FormError(f"role: only {names} {what}")


def _withdrawn(session: Session, participant_id: str) -> None:
    row = session.execute(
        select(withdrawals).where(withdrawals.c.participant_id == participant_id, withdrawals.c.scope == "follow_up")
    ).first()
    if row is not None:
        raise FormError(
            f"participant: {participant_id} withdrew from follow-up on {row.withdrawn_on.isoformat()}; "
            "no further data can be recorded"
        )


def _tz(protocol: Protocol, site: str) -> ZoneInfo:
    return ZoneInfo(protocol.site(site).timezone)


# --- visits ---------------------------------------------------------------------------------------


def _references(session: Session, protocol: Protocol, participant: Any) -> dict[str, dt.date]:
    tz = _tz(protocol, participant.site)
    refs: dict[str, dt.date] = {"enrolment": local_date(participant.enrolled_at, tz)}
    screened = session.execute(
        select(screenings.c.screened_on).where(screenings.c.id == participant.screening_id)
    ).scalar_one()
    refs["screening"] = screened
    randomized = session.execute(
        select(allocation_entries.c.randomized_at).where(
            allocation_entries.c.participant_id == participant.participant_id
        )
    ).scalar()
    if randomized is not None:
        refs["randomization"] = local_date(randomized, tz)
    held = {
        r.visit_id: r.visit_date
        for r in session.execute(
            select(visit_records.c.visit_id, visit_records.c.visit_date).where(
                visit_records.c.participant_id == participant.participant_id
            )
        )
    }
    # Another event (e.g. the infusion) happens on the day its day-0 event visit is held.
    for v in protocol.visits:
        if v.kind == "event" and v.day == 0 and v.reference not in refs and held.get(v.id):
            refs[v.reference] = held[v.id]
    return refs


def _visit_row(session: Session, participant_id: str, visit_id: str) -> Any:
    return session.execute(
        select(visit_records).where(
            visit_records.c.participant_id == participant_id, visit_records.c.visit_id == visit_id
        )
    ).first()


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
    session.execute(
        visit_records.insert().values(
            participant_id=participant.participant_id,
            visit_id=visit_id,
            visit_date=day,
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
        participant=participant.participant_id,
        action="visit.held",
        field="visit_date",
        new_value=day.isoformat(),
        detail={"visit": visit_id},
    )
    return _visit_row(session, participant.participant_id, visit_id)


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
    """The participant's visit timeline today, with each form's state."""
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
        open_count = session.execute(
            select(func.count())
            .select_from(queries)
            .where(queries.c.participant_id == participant_id, queries.c.status != "closed")
        ).scalar_one()
        death = death_of(session, protocol, participant_id)
    held = {r.visit_id: HeldVisit(r.visit_date, r.missed_reason) for r in rows if not r.unscheduled}
    today = local_date(clock.now(), _tz(protocol, participant.site))
    visits = schedule(protocol.visits, refs, held, today, death.on if death else None)
    forms: dict[str, dict[str, FormState | None]] = {v.id: dict.fromkeys(v.forms) for v in protocol.visits}
    for visit_id, form_id, state in states:
        forms.setdefault(visit_id, {})[form_id] = FormState(state)
    unscheduled = tuple((r.visit_id, r.label or "", r.visit_date) for r in rows if r.unscheduled)
    return ParticipantSchedule(participant_id, participant.site, tuple(visits), forms, unscheduled, open_count)


# --- forms ----------------------------------------------------------------------------------------


def _form_def(protocol: Protocol, visit_id: str, form_id: str) -> FormDef:
    try:
        form = protocol.form(form_id)
    except KeyError:
        raise FormError(f"form: {form_id!r} is not a form of the protocol") from None
    if not visit_id.startswith("unscheduled-"):
        try:
            visit = protocol.visit(visit_id)
        except KeyError:
            raise FormError(f"visit: {visit_id!r} is not a visit of the protocol") from None
        if form_id not in visit.forms:
            raise FormError(f"form: {form_id} is not collected at {visit_id} (forms: {', '.join(visit.forms)})")
    return form


def _load(row: Any) -> dict[str, StoredValue]:
    return {k: StoredValue.from_json(v) for k, v in json.loads(row.form_values).items()}


def _dump(values: Mapping[str, StoredValue]) -> str:
    return json.dumps({k: v.as_json() for k, v in values.items()}, sort_keys=True, ensure_ascii=False)


def _typed(kind: FieldType, value: Any) -> Any:
    if value is None:
        return None
    if kind is FieldType.DATE:
        return dt.date.fromisoformat(value)
    if kind is FieldType.DATETIME:
        return dt.datetime.fromisoformat(value)
    return value


_ABSENT = {"not_done": "not done", "not_applicable": "not applicable", "below_lloq": "below the LLOQ",
           "above_uloq": "above the ULOQ", "derived": "not computed"}  # fmt: skip


def _derive_all(
    session: Session,
    protocol: Protocol,
    participant: Any,
    visit_row: Any,
    pending: dict[str, dict[str, StoredValue]],
) -> None:
    """Recompute every derived field of the forms at this visit (``pending``: form id -> values), each
    after the derived fields it reads."""
    screening_values = json.loads(
        session.execute(
            select(screenings.c.screening_values).where(screenings.c.id == participant.screening_id)
        ).scalar_one()
    )

    def value_of(form_id: str, source: str) -> Any:
        """The typed value an input holds, or Missing with why."""
        other, dot, name = source.partition(".")
        if not dot:
            other, name = form_id, source
        if other == "screening":
            value = screening_values.get(name)
            return Missing("empty") if value is None else value
        stored = pending.get(other, {}).get(name)
        if stored is None:
            return Missing("empty")
        if stored.status not in {"value", "derived"} or stored.value is None:
            return Missing(_ABSENT.get(stored.status, stored.status))
        return _typed(protocol.form(other).field(name).type, stored.value)

    for form_id, field_id in derivation_order(protocol):
        if form_id not in pending:
            continue
        values = pending[form_id]
        f = protocol.form(form_id).field(field_id)
        spec = f.derived
        assert spec is not None
        if isinstance(spec, Derivation):
            inputs = {role: value_of(form_id, source) for role, source in spec.inputs.items()}
            inputs = {role: None if isinstance(v, Missing) else v for role, v in inputs.items()}
            try:
                result = derive(spec.name, inputs, spec.parameters)
            except ValueError as exc:
                values[f.id] = StoredValue(None, "derived", reason=f"not computable: {exc}")
                continue
            if result is None:
                values.pop(f.id, None)
            else:
                if isinstance(result, float):
                    result = round(result, f.decimals if f.decimals is not None else 2)
                parts = components(spec.name, inputs, spec.parameters)
                values[f.id] = StoredValue(result, "derived", components=parts)
            continue
        try:
            declared = evaluate(spec, {source: value_of(form_id, source) for source in spec.sources})
        except ValueError as exc:
            values[f.id] = StoredValue(None, "derived", reason=f"not computable: {exc}")
            continue
        number = declared.value
        if number is not None and f.type is FieldType.INTEGER:
            if not float(number).is_integer():  # protocol check refuses such a declaration; never truncate
                values[f.id] = StoredValue(None, "derived", reason=f"not computable: {number:g} is not whole")
                continue
            number = int(number)
        elif number is not None:
            number = round(float(number), f.decimals if f.decimals is not None else 2)
        values[f.id] = StoredValue(number, "derived", reason=declared.note)


def _visit_forms(session: Session, visit_row: Any) -> dict[str, Any]:
    return {
        r.form_id: r
        for r in session.execute(select(form_records).where(form_records.c.visit_record_id == visit_row.id)).all()
    }


def _view(session: Session, protocol: Protocol, row: Any, visit_id: str) -> FormView:
    values = _load(row)
    open_count = session.execute(
        select(func.count())
        .select_from(queries)
        .where(queries.c.form_record_id == row.id, queries.c.status != "closed")
    ).scalar_one()
    return FormView(
        row.id,
        row.participant_id,
        visit_id,
        row.form_id,
        FormState(row.state),
        values,
        row.version,
        tuple(missing_required(protocol.form(row.form_id), values)),
        row.updated_at,
        row.updated_by,
        row.verified_by,
        row.verified_at,
        row.signed_by,
        row.signed_at,
        row.signature_meaning,
        row.locked_by,
        open_count,
    )


def _open_query(
    session: Session,
    actor: str,
    participant: Any,
    form_record_id: int | None,
    field_id: str | None,
    origin: str,
    text: str,
    check_id: str | None = None,
) -> None:
    existing = session.execute(
        select(queries.c.id).where(
            queries.c.participant_id == participant.participant_id,
            queries.c.form_record_id == form_record_id,
            queries.c.origin == origin,
            queries.c.status != "closed",
            (queries.c.field == field_id) if field_id else queries.c.check_id == check_id,
            (queries.c.check_id == check_id) if check_id and field_id else queries.c.id.is_not(None),
        )
    ).first()
    if existing is not None:
        return
    query_id = inserted_id(
        session,
        queries.insert().values(
            participant_id=participant.participant_id,
            site=participant.site,
            form_record_id=form_record_id,
            field=field_id,
            origin=origin,
            check_id=check_id,
            text=text,
            status="open",
            raised_at=clock.now(),
            raised_by=actor,
        ),
    )
    audit.record(
        session,
        actor=actor,
        site=participant.site,
        participant=participant.participant_id,
        field=field_id,
        action="query.raised",
        new_value={"query": query_id, "text": text, "origin": origin},
    )


def _auto_close(
    session: Session,
    participant: Any,
    form_record_id: int,
    origin: str,
    *,
    field_id: str | Sequence[str] | None,
    check_id: str | None,
) -> None:
    """Close the open automatic queries of ``origin`` on a field (or several fields, in one look-up) or a
    check, because the data that raised them changed."""
    where = [
        queries.c.participant_id == participant.participant_id,
        queries.c.form_record_id == form_record_id,
        queries.c.origin == origin,
        queries.c.status != "closed",
    ]
    if isinstance(field_id, str):
        where.append(queries.c.field == field_id)
        if check_id is not None:
            where.append(queries.c.check_id == check_id)
    elif field_id is not None:
        if not field_id:
            return
        where.append(queries.c.field.in_(list(field_id)))
    else:
        where.append(queries.c.check_id == check_id)
    found = session.execute(select(queries.c.id, queries.c.field).where(*where).order_by(queries.c.id)).all()
    for query_id, query_field in found:
        now = clock.now()
        note = "resolved: the value was corrected"
        session.execute(
            queries.update()
            .where(queries.c.id == query_id)
            .values(status="closed", closed_at=now, closed_by=SYSTEM_ACTOR, close_note=note)
        )
        audit.record(
            session,
            actor=SYSTEM_ACTOR,
            site=participant.site,
            participant=participant.participant_id,
            field=query_field,
            action="query.closed",
            new_value={"query": query_id, "note": note},
        )


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}


def _check_value(protocol: Protocol, forms: Mapping[str, Mapping[str, StoredValue]], ref: str) -> Any:
    form_id, _, name = ref.partition(".")
    stored = forms.get(form_id, {}).get(name)
    if stored is None or stored.status not in {"value", "derived"} or stored.value is None:
        return None
    kind = protocol.form(form_id).field(name).type
    return _typed(kind, stored.value)


def _failed(
    protocol: Protocol, check: DataCheck, forms: Mapping[str, Mapping[str, StoredValue]], window: Any
) -> bool | None:
    """Whether a check fails on these forms (None: not applicable yet)."""
    if check.kind == "in_window":
        assert check.field is not None
        value = _check_value(protocol, forms, check.field)
        if value is None or window is None:
            return None
        day = value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else None
        if day is None:
            day = local_date(value, window[2])
        return not window[0] <= day <= window[1]
    left = [_check_value(protocol, forms, r) for r in check.left]
    right = [_check_value(protocol, forms, r) for r in check.right]
    if any(v is None for v in [*left, *right]):
        return None
    if all(isinstance(v, int | float) for v in [*left, *right]):
        lhs: Any = sum(left)
        rhs: Any = sum(right) + check.tolerance
    else:  # dates and times compare one to one
        lhs, rhs = left[0], right[0]
    assert check.op is not None
    return not _OPS[check.op](lhs, rhs)


def _refs(check: DataCheck) -> list[str]:
    return [*check.left, *check.right, *([check.field] if check.field else [])]


def _window(session: Session, protocol: Protocol, participant: Any, visit_row: Any) -> Any:
    """The visit's window as (earliest, latest, site zone), or None (an event or unscheduled visit)."""
    if visit_row.visit_id.startswith("unscheduled-"):
        return None
    visit = protocol.visit(visit_row.visit_id)
    reference = _references(session, protocol, participant).get(visit.reference)
    if reference is None or visit.kind != "scheduled":
        return None
    _, earliest, latest = window_of(visit, reference)
    return earliest, latest, _tz(protocol, participant.site)


def _refused_checks(
    session: Session,
    protocol: Protocol,
    participant: Any,
    visit_row: Any,
    pending: Mapping[str, Mapping[str, StoredValue]],
    changed: Mapping[str, Sequence[str]],
) -> list[str]:
    """The data checks declared ``severity: refuse`` that this save would break, as messages naming the fields."""
    out = []
    for check in (c for c in protocol.data_checks if c.severity == "refuse"):
        refs = _refs(check)
        if not any(ref.partition(".")[2] in changed.get(ref.partition(".")[0], ()) for ref in refs):
            continue
        if _failed(protocol, check, pending, _window(session, protocol, participant, visit_row)):
            out.append(f"{', '.join(refs)}: {check.message} (data check {check.id})")
    return out


def _run_checks(
    session: Session,
    protocol: Protocol,
    participant: Any,
    visit_row: Any,
    rows: Mapping[str, Any],
    changed: Mapping[str, Sequence[str]],
) -> None:
    """Evaluate the checks that read a field changed now (a query once closed is not raised again for
    the same data)."""
    forms = {form_id: _load(row) for form_id, row in rows.items()}
    window = _window(session, protocol, participant, visit_row)
    for check in protocol.data_checks:
        refs = _refs(check)
        first = refs[0].partition(".")[0]
        touched = any(ref.partition(".")[2] in changed.get(ref.partition(".")[0], ()) for ref in refs)
        if first not in rows or not touched or check.severity == "refuse":
            continue
        failed = _failed(protocol, check, forms, window)
        # A query on each field concerned, on its own form of the visit.
        concerned = [(fid, name) for fid, _, name in (ref.partition(".") for ref in refs) if fid in rows]
        for fid, name in concerned:
            if failed:
                _open_query(session, SYSTEM_ACTOR, participant, rows[fid].id, name, "data_check", check.message,
                            check.id)  # fmt: skip
            elif failed is False:
                _auto_close(session, participant, rows[fid].id, "data_check", field_id=name, check_id=check.id)


def _meaning(value: StoredValue | None) -> Any:
    return None if value is None else (value.value, value.status, value.reason, value.limit)


def _shown(value: StoredValue | None) -> Any:
    return None if value is None else value.as_json()


def _save(
    session: Session,
    protocol: Protocol,
    version: str,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    entries: Mapping[str, Any],
    *,
    reason: str | None,
    visit_date: dt.date | None,
    typed_on_site_clock: bool = False,
) -> int:
    _role(actor, DATA_ENTRY, "enter form data")
    checked_text(reason, "reason", error=FormError)
    require_unlocked(session)
    participant = participant_row(session, actor, participant_id)
    require_unlocked(session, participant_id)  # a soft lock of the participant or their site
    _withdrawn(session, participant_id)
    form = _form_def(protocol, visit_id, form_id)
    tz = _tz(protocol, participant.site)
    validated = validate_entries(
        form,
        entries,
        today=local_date(clock.now(), tz),
        enrolled_on=local_date(participant.enrolled_at, tz, "enrolled_at"),
        timezone=protocol.site(participant.site).timezone,
        typed_on_site_clock=typed_on_site_clock,
    )
    visit_row = _ensure_visit(session, protocol, actor, participant, visit_id, visit_date)
    _after_death(session, protocol, participant_id, visit_row, reason)
    if visit_row.missed_reason:
        raise FormError(f"visit: {visit_id} is recorded as missed ({visit_row.missed_reason})")
    rows = _visit_forms(session, visit_row)
    row = rows.get(form_id)
    state = FormState(row.state) if row is not None else FormState.DRAFT
    try:
        new_state = next_state(state, Transition.EDIT)
    except ValueError as exc:
        raise FormError(str(exc)) from None
    old = _load(row) if row is not None else {}
    merged = dict(old)
    for name, stored in validated.values.items():
        if stored is None:
            merged.pop(name, None)
        else:
            merged[name] = stored
    # A value re-sent unchanged (the same canonical value and status) is not a change.
    changed = [name for name in validated.values if _meaning(old.get(name)) != _meaning(merged.get(name))]
    if not changed:
        if row is not None:
            return int(row.id)
        return _create_empty(session, version, actor, participant, visit_row, form_id, reason)
    _kit_check(session, protocol, participant.participant_id, form_id, merged, changed)
    # A draft may be corrected without a reason (the trail still keeps the old value); after that, not.
    if state is not FormState.DRAFT and not (reason or "").strip():
        raise FormError(f"reason: the form is {state.value}; a change needs a reason for change")
    pending = {fid: _load(r) for fid, r in rows.items()}
    pending[form_id] = merged
    before = {fid: dict(v) for fid, v in pending.items()}
    _derive_all(session, protocol, participant, visit_row, pending)
    derived_now = {fid: [n for n in v if _shown(before[fid].get(n)) != _shown(v.get(n))] for fid, v in pending.items()}
    touched = {fid: [*names, *(changed if fid == form_id else ())] for fid, names in derived_now.items()}
    refused = refused_breaches(session, protocol, participant, form_id, pending, touched)
    refused += _refused_checks(session, protocol, participant, visit_row, pending, touched)
    if refused:
        raise RefusedValues(refused)
    now = clock.now()
    if row is None:
        record_id = inserted_id(
            session,
            form_records.insert().values(
                participant_id=participant_id,
                visit_record_id=visit_row.id,
                form_id=form_id,
                state=new_state.value,
                form_values=_dump(pending[form_id]),
                version=1,
                protocol_version=version,
                updated_at=now,
                updated_by=actor.username,
            ),
        )
    else:
        record_id = row.id
        voided = {}
        if state in {FormState.VERIFIED, FormState.SIGNED}:
            voided = {"verified_at": None, "verified_by": None, "signed_at": None, "signed_by": None,
                      "signature_meaning": None}  # fmt: skip
        session.execute(
            form_records.update()
            .where(form_records.c.id == row.id)
            .values(
                state=new_state.value,
                form_values=_dump(pending[form_id]),
                version=row.version + 1,
                updated_at=now,
                updated_by=actor.username,
                **voided,
            )
        )
        if state is not new_state:
            audit.record(
                session,
                actor=actor.username,
                role=actor.role.value,
                site=participant.site,
                participant=participant_id,
                form=form_id,
                action="form.signature_voided" if state is FormState.SIGNED else "form.verification_voided",
                old_value=state.value,
                new_value=new_state.value,
                reason=reason,
                detail={"visit": visit_id},
            )
    for name in changed:
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            form=form_id,
            field=name,
            action="form.value_changed" if name in old else "form.value_entered",
            old_value=_shown(old.get(name)),
            new_value=_shown(merged.get(name)),
            reason=reason,
            detail={"visit": visit_id},
        )
    # Derived values that changed, in this form and in the other forms of the visit.
    for fid, values in pending.items():
        derived = {f.id for f in protocol.form(fid).fields if f.derived is not None}
        for name in derived:
            if _shown(before[fid].get(name)) != _shown(values.get(name)):
                audit.record(
                    session,
                    actor=SYSTEM_ACTOR,
                    site=participant.site,
                    participant=participant_id,
                    form=fid,
                    field=name,
                    action="form.value_derived",
                    old_value=_shown(before[fid].get(name)),
                    new_value=_shown(values.get(name)),
                    detail={"visit": visit_id, "because": f"{form_id} changed"},
                )
        if fid != form_id and _dump(values) != _dump(before[fid]):
            session.execute(
                form_records.update().where(form_records.c.id == rows[fid].id).values(form_values=_dump(values))
            )
    for breach in (b for b in validated.soft if b.field in changed):
        _open_query(
            session,
            SYSTEM_ACTOR,
            participant,
            record_id,
            breach.field,
            "soft_limit",
            _soft_text(breach),
        )
    breached = {b.field for b in validated.soft}
    if row is not None:  # a form saved for the first time has no queries to close yet
        fixed = [name for name in changed if name not in breached]
        _auto_close(session, participant, record_id, "soft_limit", field_id=fixed, check_id=None)
    _run_checks(session, protocol, participant, visit_row, _visit_forms(session, visit_row), {form_id: changed})
    return int(record_id)


def _after_death(session: Session, protocol: Protocol, participant_id: str, visit_row: Any, reason: str | None) -> None:
    """A form at a visit held after the participant's death needs a reason (e.g. post-mortem results); the visit
    that records the death (the protocol's death record) does not."""
    record = protocol.safety.death_record
    if visit_row.visit_date is None or (record is not None and visit_row.visit_id == record.visit):
        return
    death = death_of(session, protocol, participant_id)
    if death is not None and visit_row.visit_date > death.on and not (reason or "").strip():
        raise RefusedValues([
            f"visit_date: {visit_row.visit_id} on {visit_row.visit_date.isoformat()} is after the participant's "
            f"death on {death.on.isoformat()} ({death.source}); a form after death needs a reason"
        ])


def _kit_check(
    session: Session,
    protocol: Protocol,
    participant_id: str,
    form_id: str,
    values: Mapping[str, StoredValue],
    changed: Sequence[str],
) -> None:
    """The kit check: a preparation code entered on the form the protocol names as recording the
    administration (``analysis_plan.treatment``: its ``form`` and ``code_field``) must be the code allocated to
    this participant, and not one another participant's administration record holds already.

    The refusal says only "not this participant's code": never whose code it is, which arm, or what the right
    code is, so a blinded nurse learns nothing from a wrong label but to stop.
    """
    plan = protocol.analysis_plan
    treatment = plan.treatment if plan is not None else None
    if treatment is None or treatment.code_field is None or form_id != treatment.form:
        return
    name = treatment.code_field
    stored = values.get(name)
    if name not in changed or stored is None or stored.status != "value" or stored.value is None:
        return
    code = str(stored.value)
    allocated = session.execute(
        select(allocation_entries.c.preparation_code).where(allocation_entries.c.participant_id == participant_id)
    ).scalar()
    if allocated is None:
        raise RefusedValues([
            f"{name}: {code} is not the code allocated to participant {participant_id} (kit check: "
            f"{participant_id} is not randomized, so no preparation is theirs yet)"
        ])
    if code != allocated:
        raise RefusedValues([
            f"{name}: {code} is not the code allocated to participant {participant_id} (kit check); do not give "
            "it: check the label against the participant's randomization record"
        ])
    others = session.execute(
        select(form_records.c.form_values).where(
            form_records.c.form_id == form_id,
            form_records.c.participant_id != participant_id,
            form_records.c.form_values.contains(code, autoescape=True),
        )
    ).scalars()
    for text in others:
        other = json.loads(text).get(name) or {}
        if other.get("status", "value") == "value" and str(other.get("value")) == code:
            raise RefusedValues([
                f"{name}: {code} is recorded already on another participant's {form_id} form (kit check: a "
                "preparation code is given once); the data manager resolves the other record first"
            ])


def _soft_text(breach: SoftBreach) -> str:
    return f"{breach.value:g} is outside the expected range {breach.limits}; please confirm or correct"


def _create_empty(
    session: Session, version: str, actor: UserView, participant: Any, visit_row: Any, form_id: str, reason: str | None
) -> int:
    """A form started with no value yet (a draft), audited so that every form record has an entry that explains it."""
    now = clock.now()
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=participant.site,
        participant=participant.participant_id,
        form=form_id,
        action="form.started",
        new_value=FormState.DRAFT.value,
        reason=reason,
        detail={"visit": visit_row.visit_id},
    )
    return inserted_id(
        session,
        form_records.insert().values(
            participant_id=participant.participant_id,
            visit_record_id=visit_row.id,
            form_id=form_id,
            state=FormState.DRAFT.value,
            form_values="{}",
            version=1,
            protocol_version=version,
            updated_at=now,
            updated_by=actor.username,
        ),
    )


def save_form(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    entries: Mapping[str, Any],
    *,
    reason: str | None = None,
    visit_date: dt.date | None = None,
    complete: bool = False,
    typed_on_site_clock: bool = False,
) -> FormView:
    """Enter or change values on one form (the visit is recorded on its first form, today unless given).

    Dates are the site's local dates; a date and time needs its UTC offset unless ``typed_on_site_clock``
    (a page whose input says "site time") reads an offset-less time on the site's clock.

    With ``complete``, a draft that now has every required field is also marked complete, in the same
    transaction ("save and mark complete"); one that still lacks some is saved as a draft, and the
    returned view lists what is missing.
    """
    loaded = current_protocol(engine)
    with session_scope(engine) as session:
        record_id = _save(
            session,
            loaded.protocol,
            loaded.protocol.version.number,
            actor,
            participant_id,
            visit_id,
            form_id,
            entries,
            reason=reason,
            visit_date=visit_date,
            typed_on_site_clock=typed_on_site_clock,
        )
        # The form as this transaction leaves it (the same rows a fresh get_form would read).
        row = session.execute(select(form_records).where(form_records.c.id == record_id)).one()
        protocol = loaded.protocol
        if complete and row.state == FormState.DRAFT.value and not missing_required(protocol.form(form_id), _load(row)):
            return _move(session, protocol, actor, participant_id, visit_id, form_id, Transition.COMPLETE)
        return _view(session, protocol, row, visit_id)


def get_form(engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str) -> FormView | None:
    """One form as stored (None if not started)."""
    protocol = current_protocol(engine).protocol
    _form_def(protocol, visit_id, form_id)
    with session_scope(engine) as session:
        participant_row(session, actor, participant_id)
        visit_row = _visit_row(session, participant_id, visit_id)
        if visit_row is None:
            return None
        row = _visit_forms(session, visit_row).get(form_id)
        return None if row is None else _view(session, protocol, row, visit_id)


def _transition(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    move: Transition,
    *,
    reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
    check: Callable[[Any, Protocol], None] | None = None,
) -> FormView:
    protocol = current_protocol(engine).protocol
    _form_def(protocol, visit_id, form_id)
    with session_scope(engine) as session:
        require_unlocked(session)
        return _move(session, protocol, actor, participant_id, visit_id, form_id, move, reason, extra, check)


def _move(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    move: Transition,
    reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
    check: Callable[[Any, Protocol], None] | None = None,
) -> FormView:
    """One lifecycle step of one form inside the caller's transaction, with its audit entry."""
    participant = participant_row(session, actor, participant_id)
    require_unlocked(session, participant_id)  # a soft lock of the participant or their site
    visit_row = _visit_row(session, participant_id, visit_id)
    row = _visit_forms(session, visit_row).get(form_id) if visit_row is not None else None
    if row is None:
        raise FormError(f"form: {form_id} at {visit_id} has no data yet")
    state = FormState(row.state)
    try:
        before_lock = FormState(row.state_before_lock) if row.state_before_lock else None
        new_state = next_state(state, move, before_lock=before_lock)
    except ValueError as exc:
        raise FormError(str(exc)) from None
    if check is not None:
        check(row, protocol)
    now = clock.now()
    values: dict[str, Any] = {"state": new_state.value}
    if move is Transition.VERIFY:
        values |= {"verified_at": now, "verified_by": actor.username}
    if move is Transition.SIGN:
        values |= {"signed_at": now, "signed_by": actor.username, "signature_meaning": protocol.signature_meaning}
    if move is Transition.LOCK:
        values |= {"locked_at": now, "locked_by": actor.username, "state_before_lock": state.value}
    if move is Transition.UNLOCK:
        values |= {"locked_at": None, "locked_by": None, "state_before_lock": None}
    session.execute(form_records.update().where(form_records.c.id == row.id).values(**values, **(extra or {})))
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=participant.site,
        participant=participant_id,
        form=form_id,
        action=_ACTIONS[move],
        old_value=state.value,
        new_value=new_state.value,
        reason=reason,
        detail={"visit": visit_id, **({"meaning": protocol.signature_meaning} if move is Transition.SIGN else {})},
    )
    return _view(
        session, protocol, session.execute(select(form_records).where(form_records.c.id == row.id)).one(), visit_id
    )


_ACTIONS = {
    Transition.COMPLETE: "form.completed",
    Transition.VERIFY: "form.verified",
    Transition.SIGN: "form.signed",
    Transition.LOCK: "form.locked",
    Transition.UNLOCK: "form.unlocked",
}


def _every_required(row: Any, protocol: Protocol) -> None:
    missing = missing_required(protocol.form(row.form_id), _load(row))
    if missing:
        raise FormError(
            f"{missing[0]}: required; enter a value or record it as not done with a reason "
            f"(also missing: {', '.join(missing[1:]) or 'nothing else'})"
        )


def complete_form(engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str) -> FormView:
    """Mark a draft complete: every required field has a value or a reason."""
    _role(actor, DATA_ENTRY, "complete forms")
    return _transition(engine, actor, participant_id, visit_id, form_id, Transition.COMPLETE, check=_every_required)


def verify_form(engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str) -> FormView:
    """Source data verification by the monitor."""
    (view,) = verify_forms(engine, actor, [(participant_id, visit_id, form_id)])
    return view


def verify_forms(engine: Engine, actor: UserView, forms: Sequence[tuple[str, str, str]]) -> tuple[FormView, ...]:
    """Source data verification of a series of forms, each ``(participant, visit, form)``, as a monitor does
    them at a monitoring visit: one verification and audit entry per form; all or nothing."""
    _role(actor, [Role.MONITOR], "verify forms against source")
    return _series(engine, actor, forms, Transition.VERIFY, "verified")


def _series(
    engine: Engine, actor: UserView, forms: Sequence[tuple[str, str, str]], move: Transition, done: str
) -> tuple[FormView, ...]:
    """One lifecycle step on many forms in one transaction; the first form that cannot take it stops all."""
    if not forms:
        raise FormError("forms: name at least one form")
    protocol = current_protocol(engine).protocol
    for _, visit_id, form_id in forms:
        _form_def(protocol, visit_id, form_id)
    with session_scope(engine) as session:
        require_unlocked(session)
        views = []
        for participant_id, visit_id, form_id in forms:
            try:
                views.append(_move(session, protocol, actor, participant_id, visit_id, form_id, move))
            except FormError as exc:
                if len(forms) == 1:
                    raise
                raise FormError(f"{exc} ({participant_id} {visit_id}; nothing was {done})") from None
        return tuple(views)


def sign_form(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    *,
    password: str,
    policy: AccessPolicy | None = None,
) -> FormView:
    """The investigator's electronic signature: the password re-entered; the meaning is stored with it."""
    (view,) = sign_forms(engine, actor, [(participant_id, visit_id, form_id)], password=password, policy=policy)
    return view


def sign_forms(
    engine: Engine,
    actor: UserView,
    forms: Sequence[tuple[str, str, str]],
    *,
    password: str,
    policy: AccessPolicy | None = None,
) -> tuple[FormView, ...]:
    """Sign a series of forms, each ``(participant, visit, form)``, with one entry of the password.

    21 CFR 11.200(a)(1): a series of signings in one continuous session; the password is re-entered
    for the series, and each form still gets its own signature (signer, time, meaning) and audit entry.
    All or nothing: if one form cannot be signed, none is, and the error names that form. A wrong password
    counts toward the account lockout (``policy``; ``trialwright.services.reauth``).
    """
    _role(actor, [Role.INVESTIGATOR], "sign forms")
    if not forms:
        raise FormError("forms: name at least one form to sign")
    require_password(engine, actor.username, password, policy, purpose="sign", error=FormError,
                     message="password: re-enter your own password to sign")  # fmt: skip
    return _series(engine, actor, forms, Transition.SIGN, "signed")


def lock_form(engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str) -> FormView:
    """Lock one form (data manager): no edits until it is unlocked with a reason."""
    _role(actor, [Role.DATA_MANAGER], "lock forms")
    return _transition(engine, actor, participant_id, visit_id, form_id, Transition.LOCK)


def unlock_form(
    engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str, *, reason: str
) -> FormView:
    """Unlock one form with a reason (data manager); it returns to its state before the lock."""
    _role(actor, [Role.DATA_MANAGER], "unlock forms")
    checked_text(reason, "reason", error=FormError)
    if not reason.strip():
        raise FormError("reason: say why the form is unlocked")
    return _transition(engine, actor, participant_id, visit_id, form_id, Transition.UNLOCK, reason=reason)


# --- bulk import ----------------------------------------------------------------------------------


def import_forms(
    engine: Engine, actor: UserView, rows: Sequence[Mapping[str, Any]], *, all_or_nothing: bool = True
) -> ImportReport:
    """Save many forms in one request with exactly the rules of ``save_form``.

    Each row: ``participant``, ``visit``, ``form``, ``values``, and optionally ``reason`` and
    ``visit_date``. Every rejected row is reported with its problems. With ``all_or_nothing`` (the
    default) one rejected row saves nothing; otherwise the good rows are saved.
    """
    loaded = current_protocol(engine)
    rejected: list[tuple[int, tuple[str, ...]]] = []
    saved = 0
    with session_scope(engine) as session:
        for index, item in enumerate(rows, start=1):
            nested = session.begin_nested()
            try:
                visit_date = item.get("visit_date")
                _save(
                    session,
                    loaded.protocol,
                    loaded.protocol.version.number,
                    actor,
                    str(item.get("participant", "")),
                    str(item.get("visit", "")),
                    str(item.get("form", "")),
                    dict(item.get("values") or {}),
                    reason=item.get("reason"),
                    visit_date=dt.date.fromisoformat(visit_date) if isinstance(visit_date, str) else visit_date,
                )
                nested.commit()
                saved += 1
            except FormValueError as exc:
                nested.rollback()
                rejected.append((index, exc.problems))
            except (FormError, NotFound, ValueError) as exc:
                nested.rollback()
                rejected.append((index, (str(exc),)))
        if rejected and all_or_nothing:
            session.rollback()
            return ImportReport(0, tuple(rejected))
        if saved:
            audit.record(
                session,
                actor=actor.username,
                role=actor.role.value,
                action="form.bulk_import",
                detail={"rows": len(rows), "saved": saved, "rejected": [i for i, _ in rejected]},
            )
    return ImportReport(saved, tuple(rejected))


# --- queries --------------------------------------------------------------------------------------


def _query_view(session: Session, row: Any) -> QueryView:
    visit_id = form_id = None
    if row.form_record_id is not None:
        found = session.execute(
            select(visit_records.c.visit_id, form_records.c.form_id)
            .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
            .where(form_records.c.id == row.form_record_id)
        ).first()
        if found is not None:
            visit_id, form_id = found
    return QueryView(
        row.id,
        row.participant_id,
        row.site,
        visit_id,
        form_id,
        row.field,
        row.origin,
        row.check_id,
        row.text,
        row.status,
        row.raised_by,
        row.raised_at,
        row.answer,
        row.answered_by,
        row.closed_by,
        row.close_note,
        row.raised_by in SYSTEM_ACTORS,
    )


def list_queries(
    engine: Engine,
    actor: UserView,
    *,
    participant_id: str | None = None,
    status: str | None = None,
    site: str | None = None,
    limit: int = 500,
) -> list[QueryView]:
    """The query inbox within the actor's sites, open first, newest first."""
    _role(actor, READERS, "read queries")
    query = select(queries).order_by((queries.c.status == "closed").asc(), queries.c.id.desc()).limit(limit)
    if actor.role.site_scoped:
        query = query.where(queries.c.site.in_(actor.sites))
    if participant_id:
        query = query.where(queries.c.participant_id == participant_id)
    if status:
        query = query.where(queries.c.status == status)
    if site:
        query = query.where(queries.c.site == site)
    with session_scope(engine) as session:
        return [_query_view(session, r) for r in session.execute(query).all()]


def raise_query(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    text: str,
    *,
    visit_id: str | None = None,
    form_id: str | None = None,
    field_id: str | None = None,
) -> QueryView:
    """A query raised by hand by a monitor or data manager, on a participant, form or field."""
    _role(actor, QUERY_RAISERS, "raise queries")
    checked_text(text, "text", error=FormError)
    if not text.strip():
        raise FormError("text: write the question")
    with session_scope(engine) as session:
        require_unlocked(session)
        participant = participant_row(session, actor, participant_id)
        record_id = None
        if form_id:
            visit_row = _visit_row(session, participant_id, visit_id or "")
            row = _visit_forms(session, visit_row).get(form_id) if visit_row is not None else None
            if row is None:
                raise FormError(f"form: {form_id} at {visit_id} has no data to query")
            record_id = row.id
        query_id = inserted_id(
            session,
            queries.insert().values(
                participant_id=participant_id,
                site=participant.site,
                form_record_id=record_id,
                field=field_id,
                origin="manual",
                text=text,
                status="open",
                raised_at=clock.now(),
                raised_by=actor.username,
            ),
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            form=form_id,
            field=field_id,
            action="query.raised",
            new_value={"query": query_id, "text": text, "origin": "manual"},
        )
        return _query_view(session, session.execute(select(queries).where(queries.c.id == query_id)).one())


def raise_automatic_query(engine: Engine, participant_id: str, text: str, *, check_id: str) -> None:
    """A query another capability raises on a participant (e.g. a reported death the hospital course
    lacks); one open query per ``check_id``."""
    with session_scope(engine) as session:
        participant = session.execute(select(participants).where(participants.c.participant_id == participant_id)).one()
        _open_query(session, SYSTEM_ACTOR, participant, None, None, "system", text, check_id=check_id)


def _query_row(session: Session, actor: UserView, query_id: int) -> Any:
    row = session.execute(select(queries).where(queries.c.id == query_id)).first()
    if row is None or (actor.role.site_scoped and row.site not in actor.sites):
        raise NotFound("no such query")
    return row


def answer_query(engine: Engine, actor: UserView, query_id: int, answer: str) -> QueryView:
    """Site staff answer an open query."""
    _role(actor, QUERY_ANSWERERS, "answer queries")
    checked_text(answer, "answer", error=FormError)
    if not answer.strip():
        raise FormError("answer: write the answer")
    with session_scope(engine) as session:
        require_unlocked(session)
        row = _query_row(session, actor, query_id)
        if row.status == "closed":
            raise FormError(f"query: {query_id} is closed")
        now = clock.now()
        session.execute(
            queries.update()
            .where(queries.c.id == query_id)
            .values(status="answered", answer=answer, answered_at=now, answered_by=actor.username)
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=row.site,
            participant=row.participant_id,
            field=row.field,
            action="query.answered",
            old_value=row.answer,
            new_value={"query": query_id, "answer": answer},
        )
        return _query_view(session, _query_row(session, actor, query_id))


def close_query(engine: Engine, actor: UserView, query_id: int, note: str = "") -> QueryView:
    """Close a query: its raiser, or for an automatic query a monitor or data manager."""
    checked_text(note, "note", error=FormError)
    with session_scope(engine) as session:
        require_unlocked(session)
        row = _query_row(session, actor, query_id)
        automatic = row.raised_by in SYSTEM_ACTORS
        if not (row.raised_by == actor.username or (automatic and actor.role in QUERY_RAISERS)):
            raise FormError(
                "role: only whoever raised a query closes it (a monitor or data manager for automatic ones)"
            )
        if row.status == "closed":
            raise FormError(f"query: {query_id} is closed already")
        now = clock.now()
        session.execute(
            queries.update()
            .where(queries.c.id == query_id)
            .values(status="closed", closed_at=now, closed_by=actor.username, close_note=note or None)
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=row.site,
            participant=row.participant_id,
            field=row.field,
            action="query.closed",
            old_value=row.status,
            new_value={"query": query_id, "note": note},
        )
        return _query_view(session, _query_row(session, actor, query_id))
