"""Reading adverse events: one event, the whole list, a page of it, and the overdue reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, Select, select

from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.protocol import Protocol
from trialwright.services import clock
from trialwright.services.paging import keyset_page
from trialwright.services.safety.common import (
    READERS,
    RESPONSIBLE,
    AdverseEventView,
    OverdueItem,
    _event_row,
    _role,
    _views,
)
from trialwright.services.safety.sql import current_reports, ever_overdue
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope
from trialwright.store.safety_tables import adverse_events

__all__ = ["get_event", "list_events", "overdue_for", "page_events"]


def get_event(engine: Engine, actor: UserView, ae_number: str) -> AdverseEventView:
    """One adverse event with its history and deadlines."""
    _role(actor, READERS, "read adverse events")
    protocol = current_protocol(engine).protocol
    with read_scope(engine) as session:
        row = _event_row(session, actor, ae_number)
        return _views(session, protocol, actor, [row], clock.now())[0]


def _events_query(
    actor: UserView,
    protocol: Protocol,
    now: dt.datetime,
    *,
    participant_id: str | None = None,
    participant: str | None = None,
    site: str | None = None,
    serious_only: bool = False,
    overdue_only: bool = False,
) -> Select[Any]:
    """The events the actor may read, filtered in SQL: seriousness by the current report, overdue by the
    deadlines' rules (``sql.ever_overdue``)."""
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
    if serious_only:
        current = current_reports().subquery("current")
        query = query.where(adverse_events.c.id.in_(select(current.c.event_id).where(current.c.serious)))
    if overdue_only:
        query = query.where(ever_overdue(protocol, now))
    return query


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
    protocol = current_protocol(engine).protocol
    moment = now or clock.now()
    query = _events_query(actor, protocol, moment, participant_id=participant_id, site=site,
                          serious_only=serious_only, overdue_only=overdue_only)  # fmt: skip
    with read_scope(engine) as session:
        rows = session.execute(query.order_by(adverse_events.c.id.desc())).all()
        return _views(session, protocol, actor, rows, moment)


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
    """A page of the adverse events within the actor's sites, newest first (by id), filtered, counted and paged
    in SQL; only the page's events are read into views."""
    protocol = current_protocol(engine).protocol
    moment = now or clock.now()
    query = _events_query(actor, protocol, moment, participant_id=participant_id, participant=participant,
                          site=site, serious_only=serious_only, overdue_only=overdue_only)  # fmt: skip
    with read_scope(engine) as session:
        return keyset_page(
            session,
            query,
            (adverse_events.c.id,),
            lambda s, rows: _views(s, protocol, actor, rows, moment),
            limit=limit,
            cursor=cursor,
        )


def overdue_for(engine: Engine, actor: UserView, *, now: dt.datetime | None = None) -> list[OverdueItem]:
    """Overdue reports within the actor's sites, for the responsible roles' home page (empty for others)."""
    if actor.role not in RESPONSIBLE:
        return []
    return [
        OverdueItem(v.ae_number, v.participant_id, d.kind, d.due_at, v.timezone)
        for v in list_events(engine, actor, overdue_only=True, now=now)
        for d in v.overdue
    ]
