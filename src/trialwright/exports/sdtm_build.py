"""What one SDTM export gathers while the records stream by (``trialwright.exports.sdtm``): the ``Build`` in
progress (each domain's sink, the participants, the visits' numbers and epochs, the sites' time zones, the subjects'
reference dates, the notes for README.txt), each participant's ``SubjectFacts`` (what DM, DS and SE need: exposure,
deaths, completion, age and sex, the dates its forms record), the export's error, and the small conversions the
domains share: ``dtc`` (ISO 8601 as SDTM writes it, in the site's local time with its offset), ``local_day``, ``yn``,
``day_of`` and ``latest``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trialwright.domain.deaths import Death
from trialwright.exports.base import ExportSource, ParticipantRecord
from trialwright.exports.sdtm_design import SubjectElement
from trialwright.exports.sdtm_findings import SubjectReference
from trialwright.protocol import Protocol

if TYPE_CHECKING:
    from trialwright.exports.sdtm_sink import DomainSink

__all__ = ["Build", "SdtmExportError", "SubjectFacts", "day_of", "dtc", "latest", "local_day", "yn"]


class SdtmExportError(ValueError):
    """An SDTM export that cannot be made as the IG requires; the message names what is missing and where."""


def dtc(value: Any, zone: dt.tzinfo) -> str | None:
    """ISO 8601 as SDTM writes it: a date as a date, or a date and time to the minute as the site's local time
    with its UTC offset (2021-03-04T10:15+03:30). Stored moments are UTC (``exports.base``)."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(zone).isoformat(timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def local_day(value: Any, zone: dt.tzinfo) -> dt.date | None:
    """The local calendar date of a moment (a date is its own day)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(zone).date()
    return value if isinstance(value, dt.date) else None


def yn(flag: bool | None) -> str | None:
    return None if flag is None else ("Y" if flag else "N")


@dataclass
class SubjectFacts:
    """What DM and DS need about one participant, gathered while the forms stream by."""

    exposed: bool = False  # the treatment form says the treatment was given (``treatment_given``)
    given_codes: list[str] = field(default_factory=list)  # the preparation codes its treatment forms say were given
    first_dose: dt.datetime | None = None
    dose_ends: list[dt.date | None] = field(default_factory=list)  # each exposure's recorded end (None: not recorded)
    first_dose_day: dt.date | None = None  # the first exposure known only by its date (a date or yes/no field)
    last_date: dt.date | None = None
    death: dt.date | None = None  # the earliest death its records give (``deaths_found``), once they are all read
    death_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # visit id -> the fields that say a death
    fatal: list[Death] = field(default_factory=list)  # the deaths its fatal adverse events report
    completed: dt.date | None = None  # alive at the death record; then DS COMPLETED's date or None (add_disposition)
    found: dict[tuple[str, int], float | str] = field(default_factory=dict)  # (AGE|SEX, source index) -> value
    visits: dict[str, dt.date] = field(default_factory=dict)  # visit id -> the first date its forms record
    visit_ends: dict[str, dt.date] = field(default_factory=dict)  # visit id -> the last date its forms record
    ended: str | None = None  # RFPENDTC, once DM is written
    elements: list[SubjectElement] = field(default_factory=list)  # its SE records, once SE is written

    def first(self, target: str) -> float | str | None:
        """The value of the first declared source that has one."""
        known = sorted((i, v) for (t, i), v in self.found.items() if t == target)
        return known[0][1] if known else None

    def saw(self, visit_id: str, day: dt.date | None) -> None:
        if day is not None and (self.last_date is None or day > self.last_date):
            self.last_date = day
        if day is not None:
            self.visits[visit_id] = min(day, self.visits.get(visit_id, day))
            self.visit_ends[visit_id] = max(day, self.visit_ends.get(visit_id, day))


def day_of(value: Any) -> dt.date | None:
    """A stored ISO date's calendar date (its first ten characters), None when it has none."""
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def latest(*days: dt.date | None) -> dt.date | None:
    known = [d for d in days if d is not None]
    return max(known) if known else None


@dataclass
class Build:
    """One SDTM export in progress."""

    source: ExportSource
    sinks: dict[str, DomainSink]
    people: dict[str, ParticipantRecord]
    subjects: dict[str, SubjectFacts]
    notes: list[str] = field(default_factory=list)
    done: int = 0
    visits: dict[str, tuple[float, str]] = field(default_factory=dict)
    epochs: dict[str, str] = field(default_factory=dict)  # visit id -> its declared epoch
    zones: dict[str, dt.tzinfo] = field(default_factory=dict)  # site code -> its time zone
    reference: dict[str, SubjectReference] = field(default_factory=dict)  # USUBJID -> reference dates
    missed: dict[str, dict[str, str]] = field(default_factory=dict)  # participant -> visit id -> why it was missed
    undecided: int = 0  # event records whose epoch the dates cannot tell
    empty: list[str] = field(default_factory=list)  # domains with no records: not written (``not_written``)
    sv_undecided: int = 0  # dated visits no single SE element can be said to hold (``visit_element``)
    prepared: Mapping[str, str] = field(default_factory=dict)  # preparation code -> arm code (with arms only)

    def __post_init__(self) -> None:
        p = self.source.protocol
        self.visits = {v.id: (float(i + 1), v.name) for i, v in enumerate(p.visits)}
        self.epochs = {v.id: v.epoch for v in p.visits if v.epoch is not None}
        self.zones = {s.code: zoneinfo.ZoneInfo(s.timezone) for s in p.sites}
        self.prepared = self.source.preparation_arms()

    def zone(self, site: str) -> dt.tzinfo:
        if site not in self.zones:
            raise SdtmExportError(f"site {site!r}: not a site of the protocol, so its time zone is unknown")
        return self.zones[site]

    def epoch_on(self, subject: SubjectFacts, when: dt.date | None) -> str | None:
        """The epoch an event dated ``when`` (a local date) fell in: the epoch whose first visit (by the dates the
        subject's forms record) is the latest on or before it. On the day an epoch begins, the first one included,
        the event may belong to the period before (an epoch's start is a date, with no time to compare): then, as
        before the first visit, there is no answer (None), counted in ``undecided``."""
        if when is None or not self.epochs:
            return None
        starts: dict[str, dt.date] = {}
        for visit_id, day in subject.visits.items():
            if (epoch := self.epochs.get(visit_id)) is not None:
                starts[epoch] = min(day, starts.get(epoch, day))
        begun = sorted((day, epoch) for epoch, day in starts.items() if day <= when)
        if not begun or begun[-1][0] == when:
            self.undecided += 1
            return None
        return begun[-1][1]

    @property
    def protocol(self) -> Protocol:
        return self.source.protocol

    def ids(self, participant_id: str) -> dict[str, Any]:
        return {"STUDYID": self.source.trial_id, "DOMAIN": "", "USUBJID": f"{self.source.trial_id}-{participant_id}"}
