"""Work lists: what a user's role has to do now, each list counted and paged in SQL.

A list is a kind of work (``WorkKind``): visits overdue or due today (by the protocol's windows, counted from each
participant's reference event on their site's clock), forms to enter (a visit held, a form of it not started),
forms to complete (drafts), to verify (the monitor: complete forms), to sign (the investigator: complete or
verified forms), to lock (the data manager: signed forms), queries to answer (site staff: open queries) and
queries to close (the monitor and data manager: answered queries they raised, or automatic ones) and the queries
a monitor raised that are not closed yet (open or answered). Each role has
its lists (``LISTS``); site-scoped roles see their sites' participants only. Nothing here reads an allocation:
no list, row or count differs by arm.

Visits are found without reading any participant into Python: for a visit counted ``day`` days from an event, it
is due today when the event fell between ``today - latest`` and ``today - earliest`` days, so each site's bounds
are computed once (today on its clock) and the database compares the stored event dates (or, for enrolment and
randomization, the stored instants against the site's local midnights) with them. A visit held or missed is not
listed, nor a participant withdrawn from follow-up, nor a visit not held whose day is on or after the participant's
recorded death (``services.deaths.death_days``: a fatal adverse event, the death record or a vital-status field; the
participant's schedule says such a visit "died"), compared in SQL with the reference event's day on the site's
clock, nor a visit an amendment added after the participant's window had closed (the schedule and the lock readiness
say "not due" and name the amendment): ``domain.visits.due_from_reference`` gives the earliest reference day whose
window was still open when the amendment took effect, compared in SQL the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    String,
    and_,
    cast,
    exists,
    false,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.masking import kept_forms
from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.roles import SYSTEM_ACTORS, Role
from trialwright.domain.visits import VisitAddition, VisitStatus, due_from_reference, window_of
from trialwright.protocol import Protocol
from trialwright.services import clock
from trialwright.services.deaths import death_days
from trialwright.services.forms.common import not_on_kept_forms
from trialwright.services.paging import keyset_page
from trialwright.services.screening import NotFound
from trialwright.services.trial import visit_additions_in
from trialwright.services.users import UserView
from trialwright.store.coltypes import UTCDateTime
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import participants, screenings, withdrawals
from trialwright.store.sql_functions import days_before, local_day

__all__ = [
    "LISTS",
    "WorkItem",
    "WorkKind",
    "added_after_window_for",
    "dead_before_visit",
    "form_url",
    "lists_of",
    "page_of_work",
    "site_codes",
]


class WorkKind(StrEnum):
    """A kind of work a role does, one list each."""

    VISITS_OVERDUE = "visits_overdue"
    VISITS_DUE = "visits_due"
    FORMS_TO_ENTER = "forms_to_enter"
    FORMS_TO_COMPLETE = "forms_to_complete"
    FORMS_TO_VERIFY = "forms_to_verify"
    FORMS_TO_SIGN = "forms_to_sign"
    FORMS_TO_LOCK = "forms_to_lock"
    QUERIES_TO_ANSWER = "queries_to_answer"
    QUERIES_TO_CLOSE = "queries_to_close"
    QUERIES_RAISED = "queries_raised"

    @property
    def label(self) -> str:
        """The list's name for people (an English message id; pages translate it)."""
        return _LABELS[self]


_LABELS = {
    WorkKind.VISITS_OVERDUE: "Visits overdue",
    WorkKind.VISITS_DUE: "Visits due today",
    WorkKind.FORMS_TO_ENTER: "Forms to enter",
    WorkKind.FORMS_TO_COMPLETE: "Forms to complete",
    WorkKind.FORMS_TO_VERIFY: "Forms to verify",
    WorkKind.FORMS_TO_SIGN: "Forms to sign",
    WorkKind.FORMS_TO_LOCK: "Forms to lock",
    WorkKind.QUERIES_TO_ANSWER: "Queries to answer",
    WorkKind.QUERIES_TO_CLOSE: "Queries to close",
    WorkKind.QUERIES_RAISED: "Queries I raised",
}

_SITE_WORK = (
    WorkKind.VISITS_OVERDUE,
    WorkKind.VISITS_DUE,
    WorkKind.FORMS_TO_ENTER,
    WorkKind.FORMS_TO_COMPLETE,
)

#: Each role's lists, in the order its home page shows them (roles not named have none).
LISTS: dict[Role, tuple[WorkKind, ...]] = {
    Role.INVESTIGATOR: (*_SITE_WORK, WorkKind.FORMS_TO_SIGN, WorkKind.QUERIES_TO_ANSWER),
    Role.STUDY_COORDINATOR: (*_SITE_WORK, WorkKind.QUERIES_TO_ANSWER),
    Role.OUTCOME_ASSESSOR: (*_SITE_WORK, WorkKind.QUERIES_TO_ANSWER),
    Role.MONITOR: (WorkKind.FORMS_TO_VERIFY, WorkKind.QUERIES_TO_CLOSE, WorkKind.QUERIES_RAISED),
    Role.DATA_MANAGER: (WorkKind.FORMS_TO_LOCK, WorkKind.QUERIES_TO_CLOSE),
}

#: The form states each form list holds.
_FORM_STATES = {
    WorkKind.FORMS_TO_COMPLETE: ("draft",),
    WorkKind.FORMS_TO_VERIFY: ("complete", "signed"),  # a signed form not yet verified (``_forms_query``)
    WorkKind.FORMS_TO_SIGN: ("complete", "verified"),
    WorkKind.FORMS_TO_LOCK: ("signed",),
}


@dataclass(frozen=True)
class WorkItem:
    """One thing to do, with the page where it is done (``url``). ``state`` is the visit's status (overdue, due),
    the form's state or the query's status; ``earliest``/``latest`` a visit's window; ``since`` when the form was
    last changed or the query raised (or answered); ``text`` a query's text. Never an arm."""

    kind: WorkKind
    participant_id: str
    site: str
    url: str
    state: str
    visit_id: str | None = None
    form_id: str | None = None
    earliest: dt.date | None = None
    latest: dt.date | None = None
    since: dt.datetime | None = None
    text: str | None = None
    query_id: int | None = None


def lists_of(role: Role) -> tuple[WorkKind, ...]:
    """The lists a role works from (none for a role whose work is elsewhere)."""
    return LISTS.get(role, ())


def site_codes(protocol: Protocol, actor: UserView) -> tuple[str, ...]:
    """The sites whose participants the actor sees."""
    codes = tuple(s.code for s in protocol.sites)
    return tuple(c for c in codes if c in actor.sites) if actor.role.site_scoped else codes


def form_url(participant_id: str, visit_id: str, form_id: str) -> str:
    """The form's page."""
    return f"/participants/{participant_id}/visits/{visit_id}/forms/{form_id}"


def _scoped(actor: UserView, protocol: Protocol) -> ColumnElement[bool]:
    return participants.c.site.in_(site_codes(protocol, actor))


def _following() -> ColumnElement[bool]:
    """Not withdrawn from follow-up (no further data can be recorded for them)."""
    return participants.c.participant_id.not_in(
        select(withdrawals.c.participant_id).where(withdrawals.c.scope == "follow_up")
    )


# --- visits ----------------------------------------------------------------------------------------------------


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The instant the site's ``day`` begins, in UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def _reference(protocol: Protocol, name: str) -> tuple[Any, Any, Any] | None:
    """How a reference event is dated: (a FROM to join, its date column or None, its instant column or None);
    None for an event nothing records (its visits await it forever)."""
    if name == "enrolment":
        return None, None, participants.c.enrolled_at
    if name == "screening":
        return screenings, screenings.c.screened_on, None
    if name == "randomization":
        return allocation_entries, None, allocation_entries.c.randomized_at
    for v in protocol.visits:
        if v.kind == "event" and v.day == 0 and v.reference == name:
            event = visit_records.alias(f"event_{name}")
            return event, event.c.visit_date, None
    return None


def reference_of(protocol: Protocol, visit_id: str) -> tuple[Any, list[ColumnElement[bool]], Any, Any] | None:
    """What a visit counts from, for a row of ``participants``: (a table to join or None, the conditions that tie it
    to the participant, the event's date column or None, its instant column or None); None for an event nothing
    records (its visits await it forever)."""
    visit = protocol.visit(visit_id)
    found = _reference(protocol, visit.reference)
    if found is None:
        return None
    joined, day_col, instant_col = found
    if joined is screenings:
        return screenings, [screenings.c.id == participants.c.screening_id], day_col, instant_col
    if joined is allocation_entries:
        ties = [allocation_entries.c.participant_id == participants.c.participant_id]
        return allocation_entries, ties, day_col, instant_col
    if joined is not None:
        ties = [
            joined.c.participant_id == participants.c.participant_id,
            joined.c.visit_id == _event_visit(protocol, visit.reference),
            joined.c.visit_date.is_not(None),
        ]
        return joined, ties, day_col, instant_col
    return None, [], day_col, instant_col


def dead_before_visit(protocol: Protocol, visit_id: str, sites: Sequence[str]) -> ColumnElement[bool] | None:
    """A condition on a row of ``participants`` (at one of ``sites``): dead on or before the visit's day
    (``died_before`` on the site's clock); None when nothing dates the visit."""
    found = reference_of(protocol, visit_id)
    if found is None:
        return None
    table, ties, day_col, instant_col = found
    by_site = or_(false(), *(and_(participants.c.site == s, died_before(protocol, visit_id, s, day_col, instant_col))
                             for s in sites))  # fmt: skip
    if table is None:
        return by_site
    return exists(select(literal(1)).select_from(table).where(*ties, by_site).correlate_except(table))


def added_after_window_for(
    protocol: Protocol, visit_id: str, addition: VisitAddition | None, sites: Sequence[str]
) -> ColumnElement[bool] | None:
    """A condition on a row of ``participants`` (at one of ``sites``): the visit is not due for them, an amendment
    (``addition``) having added it after their window had closed (``domain.visits.added_after_window``: the reference
    event's day on the site's clock before ``due_from_reference``); None when the visit was not added or nothing
    dates it."""
    due_from = due_from_reference(protocol.visit(visit_id), addition)
    found = reference_of(protocol, visit_id)
    if due_from is None or found is None:
        return None
    table, ties, day_col, instant_col = found
    by_site = or_(false(), *(
        and_(participants.c.site == s, day_col < due_from if day_col is not None
             else instant_col < _midnight(due_from, ZoneInfo(protocol.site(s).timezone)))
        for s in sites
    ))  # fmt: skip
    if table is None:
        return by_site
    return exists(select(literal(1)).select_from(table).where(*ties, by_site).correlate_except(table))


def died_before(protocol: Protocol, visit_id: str, site: str, day_col: Any, instant_col: Any) -> ColumnElement[bool]:
    """The participant (a row of ``participants`` at ``site``) died on or before the visit's day: the reference
    event's day on the site's clock plus the visit's ``day`` is on or after the recorded death (``death_days``), as
    ``domain.visits.schedule`` says "died"."""
    deaths = death_days(protocol)
    reference_day = day_col if day_col is not None else local_day(instant_col, protocol.site(site).timezone)
    return (
        exists()
        .where(
            deaths.c.participant_id == participants.c.participant_id,
            reference_day >= days_before(deaths.c.died_on, protocol.visit(visit_id).day),
        )
        .correlate_except(deaths)  # the participant (and reference) of whichever query holds them
    )


def _visit_select(
    protocol: Protocol,
    actor: UserView,
    position: int,
    visit_id: str,
    overdue: bool,
    now: dt.datetime,
    addition: VisitAddition | None = None,
) -> Select[Any] | None:
    visit = protocol.visit(visit_id)
    # Added by an amendment: due only where the window had not closed when it took effect (None: any reference day).
    due_from = due_from_reference(visit, addition)
    found = reference_of(protocol, visit_id)
    if found is None:
        return None
    table, ties, day_col, instant_col = found
    source: Any = participants if table is None else participants.join(table, and_(*ties))
    per_site = []
    for site in site_codes(protocol, actor):
        zone = ZoneInfo(protocol.site(site).timezone)
        today = local_date(now, zone)
        first = today - dt.timedelta(days=visit.latest)  # an event on this day: today is the window's last day
        last = today - dt.timedelta(days=visit.earliest)  # ... its first day
        if day_col is not None:
            when = day_col < first if overdue else day_col.between(first, last)
        else:
            start = _midnight(first, zone)
            when = (
                instant_col < start
                if overdue
                else and_(instant_col >= start, instant_col < _midnight(last + dt.timedelta(days=1), zone))
            )
        if due_from is not None:
            when = and_(when, day_col >= due_from if day_col is not None else instant_col >= _midnight(due_from, zone))
        # Dead on or before the visit's day: no longer due.
        per_site.append(and_(participants.c.site == site, when, ~died_before(protocol, visit_id, site, day_col,
                                                                              instant_col)))  # fmt: skip
    held = exists().where(
        visit_records.c.participant_id == participants.c.participant_id, visit_records.c.visit_id == visit_id
    )
    return (
        select(
            participants.c.participant_id.label("participant_id"),
            participants.c.site.label("site"),
            literal(visit_id, String).label("visit_id"),
            literal(position, Integer).label("position"),
            (day_col if day_col is not None else cast(null(), Date)).label("reference_day"),
            (instant_col if instant_col is not None else cast(null(), UTCDateTime())).label("reference_at"),
        )
        .select_from(source)
        .where(or_(false(), *per_site), ~held, _following())
    )


def _event_visit(protocol: Protocol, name: str) -> str:
    return next(v.id for v in protocol.visits if v.kind == "event" and v.day == 0 and v.reference == name)


def _visits_query(
    protocol: Protocol, actor: UserView, overdue: bool, now: dt.datetime, added: dict[str, VisitAddition]
) -> Any:
    parts = [
        s
        for n, v in enumerate(protocol.visits)
        if v.kind == "scheduled"
        and (s := _visit_select(protocol, actor, n, v.id, overdue, now, added.get(v.id))) is not None
    ]
    if not parts:  # nothing scheduled: an empty list of the same shape
        parts = [
            select(
                participants.c.participant_id.label("participant_id"),
                participants.c.site.label("site"),
                literal("", String).label("visit_id"),
                literal(0, Integer).label("position"),
                cast(null(), Date).label("reference_day"),
                cast(null(), UTCDateTime()).label("reference_at"),
            ).where(false())
        ]
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("visits_to_do")


def _visit_items(protocol: Protocol, kind: WorkKind, rows: Sequence[Any]) -> list[WorkItem]:
    out = []
    for r in rows:
        zone = ZoneInfo(protocol.site(r.site).timezone)
        reference = r.reference_day if r.reference_day is not None else local_date(r.reference_at, zone)
        _, earliest, latest = window_of(protocol.visit(r.visit_id), reference)
        state = VisitStatus.OVERDUE if kind is WorkKind.VISITS_OVERDUE else VisitStatus.DUE
        url = f"/participants/{r.participant_id}#visits"
        out.append(WorkItem(kind, r.participant_id, r.site, url, state.value, r.visit_id, None, earliest, latest))
    return out


# --- forms -----------------------------------------------------------------------------------------------------


def _pairs(protocol: Protocol, kept: frozenset[str]) -> Any:
    """Every (visit, form) the protocol collects but the ``kept`` forms, as a small table the database joins with."""
    rows = [
        select(
            literal(v.id, String).label("visit_id"),
            literal(f, String).label("form_id"),
            literal(n, Integer).label("position"),
        )
        for n, (v, f) in enumerate((v, f) for v in protocol.visits for f in v.forms if f not in kept)
    ]
    if not rows:
        rows = [select(literal("", String).label("visit_id"), literal("", String).label("form_id"),
                       literal(0, Integer).label("position")).where(false())]  # fmt: skip
    return (union_all(*rows) if len(rows) > 1 else rows[0]).subquery("visit_forms")


def _to_enter_query(protocol: Protocol, actor: UserView) -> tuple[Select[Any], tuple[Any, ...]]:
    pairs = _pairs(protocol, kept_forms(protocol, actor.role))  # a kept form is no work of a masked role
    query = (
        select(
            participants.c.participant_id,
            participants.c.site,
            visit_records.c.visit_id,
            pairs.c.form_id,
        )
        .select_from(
            visit_records.join(participants, participants.c.participant_id == visit_records.c.participant_id)
            .join(pairs, pairs.c.visit_id == visit_records.c.visit_id)
            .outerjoin(
                form_records,
                and_(
                    form_records.c.visit_record_id == visit_records.c.id,
                    form_records.c.form_id == pairs.c.form_id,
                ),
            )
        )
        .where(
            form_records.c.id.is_(None),
            visit_records.c.visit_date.is_not(None),
            visit_records.c.unscheduled.is_(False),
            _scoped(actor, protocol),
            _following(),
        )
    )
    return query, (visit_records.c.id, pairs.c.position)


def _forms_query(
    protocol: Protocol, actor: UserView, kind: WorkKind, states: Sequence[str]
) -> tuple[Select[Any], tuple[Any, ...]]:
    query = (
        select(
            participants.c.participant_id,
            participants.c.site,
            visit_records.c.visit_id,
            form_records.c.form_id,
            form_records.c.state,
            form_records.c.updated_at,
        )
        .select_from(
            form_records.join(visit_records, visit_records.c.id == form_records.c.visit_record_id).join(
                participants, participants.c.participant_id == form_records.c.participant_id
            )
        )
        .where(form_records.c.state.in_(list(states)), _scoped(actor, protocol))
    )
    if kept := kept_forms(protocol, actor.role):
        query = query.where(form_records.c.form_id.not_in(sorted(kept)))
    if kind is WorkKind.FORMS_TO_VERIFY:  # verified after the signature: no longer to verify
        query = query.where(form_records.c.verified_at.is_(None))
    return query, (form_records.c.id,)


def _form_items(kind: WorkKind, rows: Sequence[Any]) -> list[WorkItem]:
    return [
        WorkItem(
            kind,
            r.participant_id,
            r.site,
            form_url(r.participant_id, r.visit_id, r.form_id),
            getattr(r, "state", "not_started"),
            r.visit_id,
            r.form_id,
            since=getattr(r, "updated_at", None),
        )
        for r in rows
    ]


# --- queries ---------------------------------------------------------------------------------------------------


def _queries_query(protocol: Protocol, actor: UserView, kind: WorkKind) -> tuple[Select[Any], tuple[Any, ...]]:
    query = select(
        queries.c.id,
        queries.c.participant_id,
        queries.c.site,
        queries.c.text,
        queries.c.status,
        queries.c.raised_at,
        queries.c.answered_at,
        visit_records.c.visit_id,
        form_records.c.form_id,
    ).select_from(
        queries.outerjoin(form_records, form_records.c.id == queries.c.form_record_id).outerjoin(
            visit_records, visit_records.c.id == form_records.c.visit_record_id
        )
    )
    query = query.where(
        queries.c.site.in_(site_codes(protocol, actor)),
        not_on_kept_forms(queries.c.form_record_id, kept_forms(protocol, actor.role)),
    )
    if kind is WorkKind.QUERIES_TO_ANSWER:
        query = query.where(queries.c.status == "open")
    elif kind is WorkKind.QUERIES_RAISED:  # the monitor's own, until closed: open (awaiting the site) or answered
        query = query.where(queries.c.raised_by == actor.username, queries.c.status.in_(("open", "answered")))
    else:
        query = query.where(
            queries.c.status == "answered",
            or_(queries.c.raised_by == actor.username, queries.c.raised_by.in_(sorted(SYSTEM_ACTORS))),
        )
    return query, (queries.c.id,)


def _query_items(kind: WorkKind, rows: Sequence[Any]) -> list[WorkItem]:
    out = []
    for r in rows:
        if r.form_id is not None:
            url = form_url(r.participant_id, r.visit_id, r.form_id)
        else:
            url = f"/queries?participant={r.participant_id}&status={r.status}"
        since = r.answered_at if r.status == "answered" else r.raised_at
        out.append(WorkItem(kind, r.participant_id, r.site, url, r.status, r.visit_id, r.form_id,
                            since=since, text=r.text, query_id=r.id))  # fmt: skip
    return out


# --- one page of one list --------------------------------------------------------------------------------------


def page_of_work(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    kind: WorkKind,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    now: dt.datetime | None = None,
) -> Page[WorkItem]:
    """One page of one of the actor's lists, in the caller's read transaction (NotFound: not a list of the role).
    Newest first: the latest participants' visits, the latest forms and queries."""
    if kind not in lists_of(actor.role):
        raise NotFound(f"no list {kind.value} for the role")
    if kind in (WorkKind.VISITS_OVERDUE, WorkKind.VISITS_DUE):
        overdue, added = kind is WorkKind.VISITS_OVERDUE, visit_additions_in(session)
        table = _visits_query(protocol, actor, overdue, now or clock.now(), added)
        keys = (table.c.participant_id, table.c.position)
        return keyset_page(session, select(table), keys, lambda s, rows: _visit_items(protocol, kind, rows),
                           limit=limit, cursor=cursor)  # fmt: skip
    if kind is WorkKind.FORMS_TO_ENTER:
        query, keys = _to_enter_query(protocol, actor)
    elif kind in _FORM_STATES:
        query, keys = _forms_query(protocol, actor, kind, _FORM_STATES[kind])
    else:
        query, keys = _queries_query(protocol, actor, kind)
        return keyset_page(session, query, keys, lambda s, rows: _query_items(kind, rows), limit=limit, cursor=cursor)
    return keyset_page(session, query, keys, lambda s, rows: _form_items(kind, rows), limit=limit, cursor=cursor)
