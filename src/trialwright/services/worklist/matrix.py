"""The status matrix: participants (a page at a time) by the protocol's visits and forms, each cell the form's
state, open queries flagged.

Rows are the enrolled participants within the user's sites, newest first, found and counted in SQL (search by
the start of the participant id; filters by site, by visit, which also narrows the columns to that visit's
forms, and by status: participants with at least one cell in that state among the columns shown, or with a
query not yet closed). A form of a visit whose day is on or after the participant's recorded death, not started, is
"died" (not due: ``worklist.lists.dead_before_visit``), not "not started", in the cells and the filter alike; one of
a visit an amendment added after the participant's window had closed is "not due", naming the version that added
it, as the schedule and the lock readiness say (``worklist.lists.added_after_window_for``). A page's cells are read
with five statements whatever its size: its visits and forms, its visits on or after a death, its visits not due, its
forms' open queries, and each participant's open queries. Nothing here reads an allocation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    String,
    and_,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from trialwright.domain.masking import kept_forms
from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.roles import Role
from trialwright.domain.visits import VisitAddition
from trialwright.protocol import Protocol
from trialwright.services.errors import FormError
from trialwright.services.forms.common import READERS, _role
from trialwright.services.paging import keyset_page
from trialwright.services.trial import current_protocol, visit_additions_in
from trialwright.services.users import UserView
from trialwright.services.worklist.lists import added_after_window_for, dead_before_visit, form_url, site_codes
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import read_scope
from trialwright.store.screening_tables import participants

__all__ = ["CELL_STATES", "CellState", "MatrixCell", "MatrixColumn", "MatrixRow", "StatusMatrix", "status_matrix"]


class CellState(StrEnum):
    """A form's state at a visit, as the matrix shows it."""

    NOT_STARTED = "not_started"
    DRAFT = "draft"
    COMPLETE = "complete"
    VERIFIED = "verified"
    SIGNED = "signed"
    LOCKED = "locked"
    MISSED = "missed"  # the visit was recorded as missed
    DIED = "died"  # not started, and not due: the participant died on or before the visit's day
    NOT_DUE = "not_due"  # not started, and not due: an amendment added the visit after the window had closed


#: The states of a form not started that say why it is not owed; the status filter does not offer them.
_NOT_OWED = (CellState.DIED, CellState.NOT_DUE)


#: What the status filter takes: a cell state, or ``queries`` (a query not yet closed).
CELL_STATES = (*(s.value for s in CellState if s not in _NOT_OWED), "queries")


@dataclass(frozen=True)
class MatrixColumn:
    """One form at one visit (names for people: the protocol's, translated by the page), and the amendment that
    added the visit (a cell ``not_due`` names its version)."""

    visit_id: str
    form_id: str
    added_by: VisitAddition | None = None


@dataclass(frozen=True)
class MatrixCell:
    """One participant's form at one visit: its state, its queries not yet closed, and its page."""

    state: CellState
    open_queries: int
    url: str


@dataclass(frozen=True)
class MatrixRow:
    """One participant's row; ``open_queries`` counts all their queries not yet closed (on forms or not)."""

    participant_id: str
    site: str
    cells: tuple[MatrixCell, ...]
    open_queries: int


@dataclass(frozen=True)
class StatusMatrix:
    """The matrix: its columns (in protocol order) and one page of rows."""

    columns: tuple[MatrixColumn, ...]
    page: Page[MatrixRow]

    @property
    def visits(self) -> tuple[tuple[str, int], ...]:
        """The visits the columns run through, in order, each with how many of its forms are columns."""
        spans: dict[str, int] = {}
        for c in self.columns:
            spans[c.visit_id] = spans.get(c.visit_id, 0) + 1
        return tuple(spans.items())


def _columns(
    protocol: Protocol, visit: str | None, role: Role, added: Mapping[str, VisitAddition]
) -> tuple[MatrixColumn, ...]:
    """The matrix's (visit, form) columns, less the forms kept from ``role`` (``domain.masking.kept_forms``): not
    even whether they were filled."""
    kept = kept_forms(protocol, role)
    return tuple(
        MatrixColumn(v.id, f, added.get(v.id))
        for v in protocol.visits
        if visit in (None, v.id)
        for f in v.forms
        if f not in kept
    )


def _not_owed(protocol: Protocol, visit_id: str, addition: VisitAddition | None, sites: Sequence[str]) -> list[Any]:
    """The conditions on a participant under which a visit's forms not started are not owed: dead before its day,
    or the visit added by an amendment after their window had closed."""
    found = (dead_before_visit(protocol, visit_id, sites), added_after_window_for(protocol, visit_id, addition, sites))
    return [c for c in found if c is not None]


def _pairs(columns: Sequence[MatrixColumn]) -> Any:
    rows = [
        select(literal(c.visit_id, String).label("visit_id"), literal(c.form_id, String).label("form_id"),
               literal(n, Integer).label("position"))
        for n, c in enumerate(columns)
    ]  # fmt: skip
    return (union_all(*rows) if len(rows) > 1 else rows[0]).subquery("columns")


def _has(
    protocol: Protocol, sites: Sequence[str], status: str, columns: Sequence[MatrixColumn], visit: str | None
) -> ColumnElement[bool]:
    """Participants with at least one cell of ``status`` among ``columns`` (or a query not yet closed)."""
    me = participants.c.participant_id
    if status == "queries":
        return exists().where(queries.c.participant_id == me, queries.c.status != "closed")
    if status == CellState.MISSED:
        where = [visit_records.c.participant_id == me, visit_records.c.missed_reason.is_not(None)]
        if visit is not None:
            where.append(visit_records.c.visit_id == visit)
        return exists().where(*where)
    if status == CellState.NOT_STARTED:
        if not columns:
            return false()
        pairs = _pairs(columns)
        recorded = exists().where(
            form_records.c.participant_id == me,
            form_records.c.form_id == pairs.c.form_id,
            form_records.c.visit_record_id == visit_records.c.id,
            visit_records.c.visit_id == pairs.c.visit_id,
        )
        missed = exists().where(
            visit_records.c.participant_id == me,
            visit_records.c.visit_id == pairs.c.visit_id,
            visit_records.c.missed_reason.is_not(None),
        )
        owed_not = [and_(pairs.c.visit_id == c.visit_id, d) for c in {c.visit_id: c for c in columns}.values()
                    for d in _not_owed(protocol, c.visit_id, c.added_by, sites)]  # fmt: skip
        return exists(select(pairs.c.position).where(~recorded, ~missed, ~or_(false(), *owed_not)))
    join = form_records.join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
    where = [form_records.c.participant_id == me, form_records.c.state == status]
    if visit is not None:
        where.append(visit_records.c.visit_id == visit)
    return exists(select(form_records.c.id).select_from(join).where(*where))


def _pairs_where(session: Session, ids: Sequence[str], conditions: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The page's (participant, visit) pairs for which the visit's condition (a row of ``participants``) holds."""
    parts = [
        select(participants.c.participant_id, literal(v, String).label("visit_id")).where(
            participants.c.participant_id.in_(ids), d
        )
        for v, d in conditions.items()
        if d is not None
    ]
    if not parts or not ids:
        return set()
    return {(p, v) for p, v in session.execute(union_all(*parts) if len(parts) > 1 else parts[0])}


def _rows(
    session: Session, protocol: Protocol, sites: Sequence[str], columns: Sequence[MatrixColumn], found: Sequence[Any]
) -> list[MatrixRow]:
    ids = [r.participant_id for r in found]
    visits = {c.visit_id: c.added_by for c in columns}
    dead = _pairs_where(session, ids, {v: dead_before_visit(protocol, v, sites) for v in visits})
    not_due = _pairs_where(session, ids, {v: added_after_window_for(protocol, v, a, sites) for v, a in visits.items()})
    held: dict[tuple[str, str], Any] = {}
    states: dict[tuple[str, str, str], str] = {}
    for pid, visit_id, missed, form_id, state in session.execute(
        select(
            visit_records.c.participant_id,
            visit_records.c.visit_id,
            visit_records.c.missed_reason,
            form_records.c.form_id,
            form_records.c.state,
        )
        .select_from(visit_records.outerjoin(form_records, form_records.c.visit_record_id == visit_records.c.id))
        .where(visit_records.c.participant_id.in_(ids), visit_records.c.unscheduled.is_(False))
    ):
        held[(pid, visit_id)] = missed
        if form_id is not None:
            states[(pid, visit_id, form_id)] = state
    flagged: dict[tuple[str, str, str], int] = {
        (pid, visit_id, form_id): n
        for pid, visit_id, form_id, n in session.execute(
            select(form_records.c.participant_id, visit_records.c.visit_id, form_records.c.form_id, func.count())
            .select_from(
                queries.join(form_records, form_records.c.id == queries.c.form_record_id).join(
                    visit_records, visit_records.c.id == form_records.c.visit_record_id
                )
            )
            .where(queries.c.participant_id.in_(ids), queries.c.status != "closed")
            .group_by(form_records.c.participant_id, visit_records.c.visit_id, form_records.c.form_id)
        )
    }
    per_participant: Mapping[str, int] = {
        pid: n
        for pid, n in session.execute(
            select(queries.c.participant_id, func.count())
            .where(queries.c.participant_id.in_(ids), queries.c.status != "closed")
            .group_by(queries.c.participant_id)
        )
    }
    out = []
    for r in found:
        cells = []
        for c in columns:
            key = (r.participant_id, c.visit_id, c.form_id)
            if key in states:
                state = CellState(states[key])
            elif held.get((r.participant_id, c.visit_id)):
                state = CellState.MISSED
            elif (r.participant_id, c.visit_id) in dead:
                state = CellState.DIED
            elif (r.participant_id, c.visit_id) in not_due:
                state = CellState.NOT_DUE
            else:
                state = CellState.NOT_STARTED
            cells.append(MatrixCell(state, flagged.get(key, 0), form_url(r.participant_id, c.visit_id, c.form_id)))
        out.append(MatrixRow(r.participant_id, r.site, tuple(cells), per_participant.get(r.participant_id, 0)))
    return out


def status_matrix(
    engine: Engine,
    actor: UserView,
    *,
    search: str | None = None,
    site: str | None = None,
    visit: str | None = None,
    status: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> StatusMatrix:
    """A page of the status matrix within the actor's sites (FormError: a visit or status that is not one)."""
    _role(actor, READERS, "read the status matrix")
    protocol = current_protocol(engine).protocol
    if visit is not None and visit not in {v.id for v in protocol.visits}:
        raise FormError(f"visit: {visit!r} is not a visit of the protocol")
    if status is not None and status not in CELL_STATES:
        raise FormError(f"status: {status!r} is not one of {', '.join(CELL_STATES)}")
    with read_scope(engine) as session:
        added = visit_additions_in(session)
    columns = _columns(protocol, visit, actor.role, added)
    query = select(participants.c.participant_id, participants.c.site).where(
        participants.c.site.in_(site_codes(protocol, actor))
    )
    if site:
        query = query.where(participants.c.site == site)
    if search:
        query = query.where(participants.c.participant_id.startswith(search.strip(), autoescape=True))
    if status and not columns:  # the visit's every form is kept from the actor: no cell has a status
        query = query.where(false())
    elif status:
        query = query.where(_has(protocol, site_codes(protocol, actor), status, columns, visit))
    keys = (participants.c.enrolled_at, participants.c.participant_id)
    with read_scope(engine) as session:
        sites = site_codes(protocol, actor)
        page = keyset_page(session, query, keys, lambda s, rows: _rows(s, protocol, sites, columns, rows),
                           limit=limit, cursor=cursor)  # fmt: skip
    return StatusMatrix(columns, page)
