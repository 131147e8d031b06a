"""The safety rules as SQL: an event's current report, its classification by the current protocol, and whether
one of its reporting deadlines is overdue, so that lists, pages, counts and the safety tables are filtered and
counted by the database instead of by loading every event.

Each expression mirrors a rule of ``trialwright.domain.safety`` on the columns ``ae_reports`` keeps beside
each report's assessment (``serious``, ``grade``, ``causality``, ``expected_event``, ``criteria``, ``aware_at``):

- ``classify``: related is the causality code's mapping in the protocol; expected is a listed expected event up
  to its listed grade; a SUSAR is serious, related and not expected; fatal or life-threatening is serious with the
  death or life-threatening criterion;
- ``deadlines``: a clock starts at the awareness time of the first report that made the event serious (SAE), a
  SUSAR, or a fatal or life-threatening SUSAR; reports' awareness times never go back (a follow-up before its
  predecessor is refused), so the first such report's time is the least such time;
- ``deadline_state``: overdue when not submitted and past due. An SAE is due a number of hours after its start;
  a SUSAR's reports are due at the end of a local day, and ``overdue_before`` turns "past due at ``now``" into
  "started before one instant" per site and rule. The SUSAR's complete report counts from the earlier of the
  initial report's submission and its due time.

``tests/spec/safety/test_read_in_sql.py`` holds these against the Python rules on seeded trials.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select
from sqlalchemy.sql.elements import KeyedColumnElement

from trialwright.domain.safety import DeadlineKind, Seriousness, overdue_before
from trialwright.protocol import Protocol
from trialwright.protocol.outcomes import SafetySettings
from trialwright.store.safety_tables import adverse_events, ae_reports, ae_submissions, criteria_text

__all__ = ["current_reports", "ever_overdue", "has_criterion", "is_fatal", "is_related", "is_susar"]

Col = KeyedColumnElement[Any]


def current_reports() -> Select[Any]:
    """Each event's current report (its last by sequence), as rows of ``ae_reports``."""
    latest = (
        select(ae_reports.c.event_id, func.max(ae_reports.c.sequence).label("last"))
        .group_by(ae_reports.c.event_id)
        .subquery("latest")
    )
    return select(ae_reports).join(
        latest, and_(ae_reports.c.event_id == latest.c.event_id, ae_reports.c.sequence == latest.c.last)
    )


def has_criterion(criteria: Col, criterion: Seriousness) -> ColumnElement[bool]:
    """The report names this seriousness criterion (``criteria`` as ``criteria_text`` stores them)."""
    return criteria.contains(criteria_text([criterion.value]), autoescape=True)


def is_related(causality: Col, settings: SafetySettings) -> ColumnElement[bool]:
    """The causality code counts as related in the protocol."""
    codes = [c.code for c in settings.causality if c.related]
    return causality.in_(codes) if codes else false()


def _is_expected(expected_event: Col, grade: Col, settings: SafetySettings) -> ColumnElement[bool]:
    named = func.coalesce(expected_event, "")  # no expected event named: never expected (never NULL here)
    return or_(false(), *(and_(named == e.code, grade <= e.up_to_grade) for e in settings.expected_events))


def is_susar(report: Any, settings: SafetySettings) -> ColumnElement[bool]:
    """Serious, related and not expected (``report``: a selectable with the columns of ``ae_reports``)."""
    c = report.c
    return and_(c.serious, is_related(c.causality, settings), ~_is_expected(c.expected_event, c.grade, settings))


def is_fatal(report: Any, settings: SafetySettings) -> ColumnElement[bool]:
    """A SUSAR that is fatal or life-threatening."""
    c = report.c
    return and_(
        is_susar(report, settings),
        or_(has_criterion(c.criteria, Seriousness.DEATH), has_criterion(c.criteria, Seriousness.LIFE_THREATENING)),
    )


def ever_overdue(protocol: Protocol, now: dt.datetime) -> ColumnElement[bool]:
    """A condition on ``adverse_events``: at least one of the event's reporting deadlines is overdue at ``now``.

    Every clock starts at a serious report, so only serious reports are read (grouped per event), with the event's
    site and its submissions joined (at most one per kind)."""
    settings = protocol.safety
    rules = settings.deadlines
    r = ae_reports.alias("clock_reports")
    clocks = (
        select(
            r.c.event_id,
            func.min(r.c.aware_at).label("serious_at"),
            func.min(case((is_susar(r, settings), r.c.aware_at))).label("susar_at"),
            func.min(case((is_fatal(r, settings), r.c.aware_at))).label("fatal_at"),
        )
        .where(r.c.serious)
        .group_by(r.c.event_id)
        .subquery("clocks")
    )
    event = adverse_events.alias("clock_events")
    sent = {kind: ae_submissions.alias(f"sent_{kind.value}") for kind in DeadlineKind}
    joined = clocks.join(event, event.c.id == clocks.c.event_id)
    for kind, s in sent.items():
        joined = joined.outerjoin(s, and_(s.c.event_id == clocks.c.event_id, s.c.kind == kind.value))

    def unsent(kind: DeadlineKind) -> ColumnElement[bool]:
        return sent[kind].c.id.is_(None)

    serious_at, susar_at, fatal_at = clocks.c.serious_at, clocks.c.susar_at, clocks.c.fatal_at
    initial_at = sent[DeadlineKind.SUSAR_INITIAL].c.submitted_at
    sae = and_(serious_at < now - dt.timedelta(hours=rules.sae_to_sponsor_hours), unsent(DeadlineKind.SAE_TO_SPONSOR))
    by_site = []
    other, fatal, more = rules.susar_other_days, rules.susar_fatal_days, rules.susar_fatal_complete_days
    for site in protocol.sites:
        tz = ZoneInfo(site.timezone)
        initial = and_(
            or_(susar_at < overdue_before(now, other, tz), fatal_at < overdue_before(now, fatal, tz)),
            unsent(DeadlineKind.SUSAR_INITIAL),
        )
        complete = and_(
            fatal_at.is_not(None),
            or_(
                susar_at < overdue_before(now, other + more, tz),
                fatal_at < overdue_before(now, fatal + more, tz),
                initial_at < overdue_before(now, more, tz),
            ),
            unsent(DeadlineKind.SUSAR_COMPLETE),
        )
        by_site.append(and_(event.c.site == site.code, or_(initial, complete)))
    return adverse_events.c.id.in_(select(clocks.c.event_id).select_from(joined).where(or_(sae, *by_site)))
