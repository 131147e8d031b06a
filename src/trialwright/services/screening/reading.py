"""Reading the screening log: one screening, the whole log, a page of it, who must re-consent, and how many
are enrolled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, and_, func, select

from trialwright.domain.calendars import local_date
from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.services.paging import keyset_page
from trialwright.services.screening.common import (
    READERS,
    ScreeningView,
    WithdrawalScope,
    _row,
    _view,
    _views,
    require_role,
)
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals

__all__ = ["ReconsentDue", "count_enrolled", "get_screening", "list_screenings", "page_screenings", "reconsent_needed"]


def get_screening(engine: Engine, actor: UserView, screening_id: int) -> ScreeningView:
    """One screening (within the actor's sites)."""
    require_role(actor, READERS, "read the screening log")
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
    require_role(actor, READERS, "read the screening log")
    query = _screenings_query(actor, site, decision).order_by(screenings.c.screened_on.desc(), screenings.c.id.desc())
    with read_scope(engine) as session:
        return _views(session, session.execute(query).all())


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
    require_role(actor, READERS, "read the screening log")
    query = _screenings_query(actor, site, decision, participant)
    with read_scope(engine) as session:
        return keyset_page(
            session,
            query,
            (screenings.c.screened_on, screenings.c.id),
            _views,
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
    require_role(actor, READERS, "read the screening log")
    protocol = current_protocol(engine).protocol
    required = [v for v in protocol.consent_versions if v.reconsent_required]
    if not required:
        return []
    newest = max(required, key=lambda v: v.effective_from)
    left = select(withdrawals.c.participant_id).where(withdrawals.c.scope == WithdrawalScope.FOLLOW_UP.value)
    followed: ColumnElement[bool] = participants.c.participant_id.not_in(left)
    if actor.role.site_scoped:
        followed = and_(followed, participants.c.site.in_(actor.sites))
    query = select(participants).where(followed).order_by(participants.c.participant_id)
    due: list[ReconsentDue] = []
    with read_scope(engine) as session:
        rows = session.execute(query).all()
        latest: dict[int, Any] = {}  # each screening's latest consent (ties: the first recorded, as one query took)
        for c in session.execute(
            select(consents)
            .where(
                consents.c.screening_id.in_(select(participants.c.screening_id).where(followed)),
                consents.c.decision.in_(["consent", "continue"]),
            )
            .order_by(consents.c.screening_id, consents.c.obtained_at.desc(), consents.c.id)
        ):
            latest.setdefault(c.screening_id, c)
    for p in rows:
        found = latest.get(p.screening_id)
        if found is None:
            continue
        obtained_on = local_date(found.obtained_at, protocol.site(p.site).timezone, "obtained_at")
        if obtained_on < newest.effective_from and found.form_version != newest.version:
            due.append(ReconsentDue(p.participant_id, p.site, found.form_version, newest.version))
    return due


def count_enrolled(engine: Engine) -> int:
    """How many participants are enrolled (trial-wide)."""
    with read_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(participants)).scalar_one())
