"""A participant's visit schedule: when each protocol visit is due, and its status today. Pure code.

A scheduled visit is due from ``day - window.before`` to ``day + window.after`` days after its
reference event (e.g. the infusion). Before that it is *upcoming*, inside it *due*, after it
*overdue*; once held it is *done* (flagged *out of window* when held outside), or *missed* with a
reason. An event visit (e.g. discharge) happens when it happens: *open* until held. While the reference
event has not happened, the visit *awaits* it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from trialwright.protocol.forms import Visit

__all__ = ["HeldVisit", "ScheduledVisit", "VisitStatus", "schedule", "window_of"]


class VisitStatus(StrEnum):
    """A visit's status on a given day."""

    AWAITING = "awaiting"  # the reference event has not happened yet
    UPCOMING = "upcoming"
    DUE = "due"
    OVERDUE = "overdue"
    DONE = "done"
    OUT_OF_WINDOW = "out_of_window"  # done, but outside its window (flagged)
    MISSED = "missed"
    OPEN = "open"  # an event visit not yet held
    DIED = "died"  # not done: the participant died before its day (the schedule ends with the death)


@dataclass(frozen=True)
class HeldVisit:
    """What happened to a visit: held on a date, or missed with a reason."""

    visit_date: dt.date | None
    missed_reason: str | None = None


@dataclass(frozen=True)
class ScheduledVisit:
    """One protocol visit for one participant."""

    visit_id: str
    name: str
    status: VisitStatus
    target: dt.date | None
    earliest: dt.date | None
    latest: dt.date | None
    visit_date: dt.date | None
    missed_reason: str | None


def window_of(visit: Visit, reference: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """Target day, earliest and latest in-window day, for a reference event on ``reference``."""
    return (
        reference + dt.timedelta(days=visit.day),
        reference + dt.timedelta(days=visit.earliest),
        reference + dt.timedelta(days=visit.latest),
    )


def schedule(
    visits: list[Visit],
    references: Mapping[str, dt.date],
    held: Mapping[str, HeldVisit],
    today: dt.date,
    died_on: dt.date | None = None,
) -> list[ScheduledVisit]:
    """Every protocol visit with its status today, in protocol order. A scheduled visit not held whose day
    falls after ``died_on`` is not done: died (an event visit, such as the one that records the death, stays
    open)."""
    out: list[ScheduledVisit] = []
    for v in visits:
        record = held.get(v.id)
        reference = references.get(v.reference)
        target = earliest = latest = None
        if reference is not None and v.kind == "scheduled":
            target, earliest, latest = window_of(v, reference)
        if record is not None and record.missed_reason:
            status = VisitStatus.MISSED
        elif record is not None and record.visit_date is not None:
            inside = earliest is None or latest is None or earliest <= record.visit_date <= latest
            status = VisitStatus.DONE if inside else VisitStatus.OUT_OF_WINDOW
        elif died_on is not None and target is not None and target > died_on:
            status = VisitStatus.DIED
        elif v.kind == "event":
            status = VisitStatus.OPEN
        elif earliest is None or latest is None:
            status = VisitStatus.AWAITING
        elif today < earliest:
            status = VisitStatus.UPCOMING
        elif today <= latest:
            status = VisitStatus.DUE
        else:
            status = VisitStatus.OVERDUE
        out.append(
            ScheduledVisit(
                v.id,
                v.name,
                status,
                target,
                earliest,
                latest,
                record.visit_date if record else None,
                record.missed_reason if record else None,
            )
        )
    return out
