"""A participant's visit schedule: when each protocol visit is due, and its status today. Pure code.

A scheduled visit is due from ``day - window.before`` to ``day + window.after`` days after its
reference event (e.g. the infusion). Before that it is *upcoming*, inside it *due*, after it
*overdue*; once held it is *done* (flagged *out of window* when held outside), or *missed* with a
reason. An event visit (e.g. discharge) happens when it happens: *open* until held. While the reference
event has not happened, the visit *awaits* it.

A visit a protocol amendment added (``visit_additions``: absent from the version before the one that added it) is
due for a participant only if its window had not closed when that version took effect (the date its amendment
records, ``amendments[].date``, else the version's own date): otherwise it is *not due*, added by the amendment
after the window closed (``added_after_window``), and says so wherever the schedule is listed. No participant owes
a visit that was not in the protocol while its window was open.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from trialwright.protocol import Protocol
from trialwright.protocol.forms import Visit

__all__ = [
    "HeldVisit",
    "ScheduledVisit",
    "VisitAddition",
    "VisitStatus",
    "added_after_window",
    "due_from_reference",
    "references",
    "schedule",
    "took_effect",
    "visit_additions",
    "window_of",
]


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
    DIED = "died"  # not done: the participant died on or before its day (the schedule ends with the death)
    NOT_DUE = "not_due"  # not done: an amendment added the visit after its window had closed (``added_by``)


@dataclass(frozen=True)
class HeldVisit:
    """What happened to a visit: held on a date, or missed with a reason."""

    visit_date: dt.date | None
    missed_reason: str | None = None


@dataclass(frozen=True)
class VisitAddition:
    """A visit a protocol version added, and the day that version took effect."""

    visit_id: str
    version: str
    effective: dt.date


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
    #: For a visit ``NOT_DUE``: the amendment that added it after its window had closed.
    added_by: VisitAddition | None = None


def took_effect(protocol: Protocol) -> dt.date:
    """The day a protocol version took effect: the date of the amendment that produced it (``amendments[].date``),
    else the version's own date (``version.date``)."""
    number = protocol.version.number
    return next((a.date for a in protocol.amendments if a.version == number), protocol.version.date)


def visit_additions(versions: Sequence[tuple[str, dt.date, Sequence[str]]]) -> dict[str, VisitAddition]:
    """Each visit a protocol version added, from the trial's versions oldest first (``(number, the day it took
    effect, its visit ids)``): a visit absent from the version before. The first version adds nothing (every visit
    is in the protocol from the start); a visit removed and added again counts from its last addition."""
    out: dict[str, VisitAddition] = {}
    before: set[str] | None = None
    for number, effective, visit_ids in versions:
        now = set(visit_ids)
        if before is not None:
            for visit_id in visit_ids:
                if visit_id not in before:
                    out[visit_id] = VisitAddition(visit_id, number, effective)
        for visit_id in set(out) - now:  # removed again: no longer this version's addition
            del out[visit_id]
        before = now
    return out


def added_after_window(addition: VisitAddition | None, latest: dt.date | None) -> bool:
    """Whether an added visit is not due for a participant: its window closed (``latest``, its last day) before
    the version that added it took effect. A window still open that day (its last day on or after it) is due."""
    return addition is not None and latest is not None and latest < addition.effective


def due_from_reference(visit: Visit, addition: VisitAddition | None) -> dt.date | None:
    """The earliest reference day whose window of ``visit`` had not closed when ``addition`` took effect (None:
    any): the same rule as ``added_after_window``, as a bound a query compares stored reference days with."""
    if addition is None:
        return None
    return addition.effective - dt.timedelta(days=visit.latest)


def references(
    visits: Sequence[Visit], base: Mapping[str, dt.date | None], held_on: Mapping[str, dt.date | None]
) -> dict[str, dt.date]:
    """The dates a participant's schedule counts from: ``base`` (screening, enrolment, randomization: the site's
    dates, None when not yet) and each other event on the day its day-0 event visit was held (``held_on``: visit id
    to its date), e.g. the infusion; an event not yet dated is absent."""
    refs = {k: v for k, v in base.items() if v is not None}
    for v in visits:
        if v.kind == "event" and v.day == 0 and v.reference not in refs and held_on.get(v.id):
            refs[v.reference] = held_on[v.id]  # type: ignore[assignment]
    return refs


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
    added: Mapping[str, VisitAddition] | None = None,
) -> list[ScheduledVisit]:
    """Every protocol visit with its status today, in protocol order. A scheduled visit not held whose day
    is on or after ``died_on`` is not done: died (one held that day stays done, as the analysis uses its values and
    the simulator holds none but the death record's; an event visit, such as the one that records the death, stays
    open). One an amendment added (``added``, from ``visit_additions``) after its window had closed is not done:
    not due, naming the amendment."""
    out: list[ScheduledVisit] = []
    for v in visits:
        record = held.get(v.id)
        addition = (added or {}).get(v.id)
        reference = references.get(v.reference)
        target = earliest = latest = None
        if reference is not None and v.kind == "scheduled":
            target, earliest, latest = window_of(v, reference)
        if record is not None and record.missed_reason:
            status = VisitStatus.MISSED
        elif record is not None and record.visit_date is not None:
            inside = earliest is None or latest is None or earliest <= record.visit_date <= latest
            status = VisitStatus.DONE if inside else VisitStatus.OUT_OF_WINDOW
        elif died_on is not None and target is not None and target >= died_on:
            status = VisitStatus.DIED
        elif added_after_window(addition, latest):
            status = VisitStatus.NOT_DUE
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
                addition if status is VisitStatus.NOT_DUE else None,
            )
        )
    return out
