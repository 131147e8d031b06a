"""What the data-collection modules share: who may do what, the typed results (a form, a participant's
schedule, a query, an import report) and the small look-ups every use case makes (the participant's site
zone, a visit's row and forms, a form's definition and stored values).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.forms import (
    FormState,
    FormValueError,
    StoredValue,
    ValidatedEntry,
    dump_values,
    missing_required,
    validate_entries,
)
from trialwright.domain.masking import may_see_form
from trialwright.domain.roles import Role, only_roles_may
from trialwright.domain.visits import ScheduledVisit
from trialwright.protocol import Protocol
from trialwright.protocol.forms import FormDef
from trialwright.services import clock
from trialwright.services.bulk_reads import held, keep, once, peek
from trialwright.services.errors import AccessDenied, FormError, denied
from trialwright.services.users import UserView
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.screening_tables import withdrawals

__all__ = [
    "DATA_ENTRY",
    "KEPT_FROM_MASKED",
    "QUERY_ANSWERERS",
    "QUERY_RAISERS",
    "READERS",
    "FormView",
    "ImportReport",
    "ParticipantSchedule",
    "QueryView",
    "RefusedValues",
    "form_created",
    "form_queried",
    "is_kept",
    "kept_from",
    "no_query_on",
    "not_on_kept_forms",
    "validated_for",
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
    log_id: str | None = None  # a query on a log entry: its log and sequence (then visit and form are None)
    sequence: int | None = None

    @property
    def on(self) -> str:
        """Where the query is, in words: ``day7 labs``, ``conmeds entry 2``, or ``""`` (the participant)."""
        if self.log_id is not None:
            return f"{self.log_id} entry {self.sequence}"
        return " ".join(p for p in (self.visit_id, self.form_id) if p)


@dataclass(frozen=True)
class ImportReport:
    """What a bulk import did: rows saved and every rejected row with its problems."""

    saved: int
    rejected: tuple[tuple[int, tuple[str, ...]], ...] = field(default=())


def _role(actor: UserView, roles: Sequence[Role], what: str) -> None:
    if actor.role not in roles:
        raise denied(FormError)(f"role: {only_roles_may(roles, what)}")


def _withdrawn(session: Session, participant_id: str) -> None:
    row = once(
        session,
        ("withdrawn", participant_id),
        lambda: session.execute(
            select(withdrawals).where(
                withdrawals.c.participant_id == participant_id, withdrawals.c.scope == "follow_up"
            )
        ).first(),
    )
    if row is not None:
        raise FormError(
            f"participant: {participant_id} withdrew from follow-up on {row.withdrawn_on.isoformat()}; "
            "no further data can be recorded"
        )


def _tz(protocol: Protocol, site: str) -> ZoneInfo:
    return ZoneInfo(protocol.site(site).timezone)


def validated_for(
    protocol: Protocol, participant: Any, form: FormDef, entries: Mapping[str, Any], *, typed_on_site_clock: bool
) -> ValidatedEntry:
    """``entries`` validated for this participant (a participants row): dates on their site's calendar and clock,
    against today there, the moment now (a date and time may not be after it) and their enrolment day;
    ``FormValueError`` with every problem."""
    tz = _tz(protocol, participant.site)
    now = clock.now()
    return validate_entries(
        form,
        entries,
        now=now,
        today=local_date(now, tz),
        enrolled_on=local_date(participant.enrolled_at, tz, "enrolled_at"),
        timezone=protocol.site(participant.site).timezone,
        typed_on_site_clock=typed_on_site_clock,
    )


def _visit_row(session: Session, participant_id: str, visit_id: str) -> Any:
    """The visit's row (None if not held or missed); held in a bulk block (``_ensure_visit`` keeps the row it
    inserts)."""
    return held(
        session,
        visit_key(participant_id, visit_id),
        lambda: session.execute(
            select(visit_records).where(
                visit_records.c.participant_id == participant_id, visit_records.c.visit_id == visit_id
            )
        ).first(),
    )


def visit_key(participant_id: str, visit_id: str) -> tuple[str, str, str]:
    """The key a visit's row is ``held`` by in a bulk block."""
    return ("visit", participant_id, visit_id)


#: The refusal of a form kept from a masked role (``domain.masking.may_see_form``), after the form's id.
KEPT_FROM_MASKED = "reveals the arm and is kept from the roles this trial masks (reveals_arm)"


def kept_from(protocol: Protocol, role: Role, form_id: str | None) -> None:
    """The one refusal of a form that reveals the arm to a role the trial masks (``FormError``, access denied)."""
    if not may_see_form(protocol, role, form_id):
        raise denied(FormError)(f"form: {form_id} {KEPT_FROM_MASKED}")


def is_kept(error: BaseException) -> bool:
    """Whether ``error`` is ``kept_from``'s refusal (the pages and the API answer it 403, saying the rule)."""
    return isinstance(error, AccessDenied) and str(error).endswith(KEPT_FROM_MASKED)


def not_on_kept_forms(record_id: ColumnElement[Any], kept: frozenset[str]) -> ColumnElement[bool]:
    """A where-clause keeping rows (a query, an audit entry) whose form record ``record_id`` (nullable: about no
    form) is not one of the ``kept`` forms (``domain.masking.kept_forms``); true when nothing is kept."""
    if not kept:
        return true()
    on_kept = select(form_records.c.id).where(form_records.c.form_id.in_(sorted(kept)))
    return or_(record_id.is_(None), record_id.not_in(on_kept))


def _form_def(protocol: Protocol, visit_id: str, form_id: str, role: Role) -> FormDef:
    """The form collected at the visit, as ``role`` may open it (a form kept from a masked role: refused first, so
    that the refusal says nothing of the visit)."""
    kept_from(protocol, role, form_id)
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
    """A form record's stored values (a new dict each call, of the shared frozen values read from the same text)."""
    text = row.form_values
    values = _LOADED.get(text)
    if values is None:
        values = {k: StoredValue.from_json(v) for k, v in json.loads(text).items()}
        _bounded(_LOADED)[text] = values
    return dict(values)


def _dump(values: Mapping[str, StoredValue]) -> str:
    """``dump_values``, remembered for the very same value objects: a save writes, compares and checks the visit's
    forms as JSON text several times, and an import saves each visit's forms in turn, most of them unchanged. A
    ``StoredValue`` is frozen and the memo holds the objects it was made from (so their ids are not reused while it
    does): the same objects always give the same text."""
    key = tuple((k, id(v)) for k, v in values.items())
    made = _DUMPED.get(key)
    if made is None:
        made = (dump_values(values), tuple(values.values()))
        _bounded(_DUMPED)[key] = made
    return made[0]


#: Stored text -> the values read from it; value objects' ids -> the text they dump to (see ``_dump``).
_LOADED: dict[str, dict[str, StoredValue]] = {}
_DUMPED: dict[tuple[tuple[str, int], ...], tuple[str, tuple[StoredValue, ...]]] = {}


def _bounded(memo: dict[Any, Any], size: int = 4096) -> dict[Any, Any]:
    """The memo, emptied first once it holds ``size`` entries (an import's visits come one after the other)."""
    if len(memo) >= size:
        memo.clear()
    return memo


def _visit_forms(session: Session, visit_row: Any) -> dict[str, Any]:
    """The visit's form records by form id, in the order they were made (their ids), as a bulk import holds them
    (each write keeps the row it wrote: ``_keep_form``). The save audits each form's derived values in this order;
    without ORDER BY PostgreSQL returns them as its index or heap holds them, which a freed slot, an update or a
    restore reorders (``tests/spec/store/test_recycled_schemas.py``)."""
    return dict(
        held(
            session,
            forms_key(visit_row.id),
            lambda: {
                r.form_id: r
                for r in session.execute(
                    select(form_records)
                    .where(form_records.c.visit_record_id == visit_row.id)
                    .order_by(form_records.c.id)
                ).all()
            },
        )
    )


def lock_visit(session: Session, visit_record_id: int) -> None:
    """Hold the visit's row until this transaction ends, before its forms are read for a change: two saves of
    one visit (on PostgreSQL, READ COMMITTED) then run one after the other, the second reading what the first
    wrote, so neither overwrites the other's values with what it read before (a lost update). One statement
    per visit and transaction; SQLite needs none (each write transaction begins IMMEDIATE: writers queue).
    ``tests/spec/forms/test_concurrent_saves.py``"""
    if session.get_bind().dialect.name == "sqlite":
        return
    locked: set[int] = session.info.setdefault(_LOCKED_VISITS, set())
    if visit_record_id not in locked:
        session.execute(select(visit_records.c.id).where(visit_records.c.id == visit_record_id).with_for_update())
        locked.add(visit_record_id)


def visits_locked(session: Session, visit_record_ids: Sequence[int]) -> None:
    """These visits' rows were read ``FOR UPDATE`` (or inserted) by this transaction: no second lock needed."""
    session.info.setdefault(_LOCKED_VISITS, set()).update(visit_record_ids)


_LOCKED_VISITS = "trialwright.locked_visits"


def forms_key(visit_record_id: int) -> tuple[str, int]:
    """The key a visit's form records are ``held`` by in a bulk block."""
    return ("visit_forms", visit_record_id)


def _keep_form(session: Session, row: Any) -> Any:
    """A form record as a write has just left it (the statement's RETURNING every column), kept for its visit's
    held forms if they are held; the row."""
    key = forms_key(row.visit_record_id)
    forms = peek(session, key)
    if forms is not None:
        keep(session, key, {**forms, row.form_id: row})
    return row


#: Form records this transaction inserted, and the form records it raised a query on (``record_query``): a record
#: it inserted and raised none on has no open query, without a count.
_CREATED = "trialwright.forms_created"
_QUERIED = "trialwright.forms_queried"


def form_created(session: Session, record_id: int) -> None:
    """This transaction inserted the form record ``record_id``."""
    session.info.setdefault(_CREATED, set()).add(record_id)


def form_queried(session: Session, record_id: int) -> None:
    """This transaction raised a query on the form record ``record_id`` (even in a savepoint later rolled back)."""
    session.info.setdefault(_QUERIED, set()).add(record_id)


def no_query_on(session: Session, record_id: int) -> bool:
    """Whether the form record ``record_id`` can have no query at all: this transaction inserted it and raised
    none on it since (so a look-up of its queries would find none)."""
    return record_id in session.info.get(_CREATED, ()) and record_id not in session.info.get(_QUERIED, ())


def _open_queries(session: Session, record_id: int) -> int:
    if no_query_on(session, record_id):
        return 0  # inserted by this transaction, and no query raised on it since: none can be open
    return int(
        session.execute(
            select(func.count())
            .select_from(queries)
            .where(queries.c.form_record_id == record_id, queries.c.status != "closed")
        ).scalar_one()
    )


def _view(session: Session, protocol: Protocol, row: Any, visit_id: str) -> FormView:
    values = _load(row)
    open_count = _open_queries(session, row.id)
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
