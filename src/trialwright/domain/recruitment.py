"""Recruitment: the funnel from screening to randomization, its reasons, and the results the recruitment
service returns (the dashboard, the forecast, a what-if question), all pure: no I/O, no clock.

Definitions. *Screened*: every screening log entry. *Eligible*: met every criterion apart from consent (a
patient who then declined, or still awaits consent, counts). *Consented*: a consent (initial or re-consent)
was recorded. *Enrolled*: given a participant id. *Randomized*: an allocation was issued. Counts "as of" a
date take the events of that date and before, each on its site's calendar.

Masking: results carry arms (``RecruitmentStatus.arms``) only when the caller asked for them, which the
service does only for the readers the masking policy unblinds; the forecast and the registry text never
name an arm.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trialwright.domain.calendars import format_date, from_jalali
from trialwright.protocol import Protocol

__all__ = [
    "DAYS_PER_MONTH",
    "EARLIEST",
    "MAX_DAYS",
    "MAX_RATE_PER_MONTH",
    "ArmRecruitment",
    "Counts",
    "DateInterval",
    "NewSitePlan",
    "PredictedPoint",
    "Reason",
    "RecruitmentError",
    "RecruitmentForecast",
    "RecruitmentStatus",
    "Scenario",
    "SeriesPoint",
    "SiteRate",
    "SiteRecruitment",
    "Tally",
    "TimeToRandomization",
    "day_text",
    "eligible_apart_from_consent",
    "parse_scenario",
    "recruitment_start",
    "registry_text",
    "series_ends",
    "summarise",
]

DAYS_PER_MONTH = 365.25 / 12
#: Dates further ahead than this are reported as None ("more than 100 years ahead").
MAX_DAYS = 36_525
MAX_RATE_PER_MONTH = 1000.0
EARLIEST = dt.date(1970, 1, 1)


class RecruitmentError(ValueError):
    """A recruitment request with bad input; each problem is ``(field, rule)``."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.problems))


# --- results -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """Patients at each step of the recruitment funnel."""

    screened: int
    eligible: int
    consented: int
    enrolled: int
    randomized: int


@dataclass(frozen=True)
class SiteRecruitment:
    """One site: its first screening and its counts."""

    site: str
    name: str
    first_screened: dt.date | None
    counts: Counts


@dataclass(frozen=True)
class SeriesPoint:
    """Cumulative counts by the end of ``on`` (a week's or a month's last day, or the as-of date)."""

    on: dt.date
    screened: int
    eligible: int
    consented: int
    randomized: int


@dataclass(frozen=True)
class ArmRecruitment:
    """Randomized to one arm (unblinded readers only); ``series`` aligns with the status's ``series``."""

    code: str
    name: str
    target: int | None
    randomized: int
    series: tuple[int, ...]


@dataclass(frozen=True)
class Reason:
    """A reason and how many patients it applies to: a failed criterion (id, wording) or a non-enrolment code."""

    code: str
    label: str
    count: int


@dataclass(frozen=True)
class TimeToRandomization:
    """Days from screening to randomization over the randomized participants: median and quartiles."""

    n: int
    median: float | None
    q1: float | None
    q3: float | None


@dataclass(frozen=True)
class RecruitmentStatus:
    """The recruitment dashboard as one reader may see it (``arms`` None unless they may see arms)."""

    as_of: dt.date
    target: int
    totals: Counts
    sites: tuple[SiteRecruitment, ...]
    period: str  # week | month
    series: tuple[SeriesPoint, ...]
    arms: tuple[ArmRecruitment, ...] | None
    screen_failures: tuple[Reason, ...]
    non_enrolment: tuple[Reason, ...]
    consent_by_participant: int
    consent_by_representative: int
    days_to_randomization: TimeToRandomization
    planned_start: dt.date
    planned_end: dt.date
    reached_on: dt.date | None
    last_randomized: dt.date | None

    @property
    def by_arm(self) -> bool:
        return self.arms is not None

    @property
    def percent_of_target(self) -> float:
        return 100.0 * self.totals.randomized / self.target

    def as_dict(self) -> dict[str, Any]:
        extra = {"by_arm": self.by_arm, "percent_of_target": round(self.percent_of_target, 1)}
        return dict(_plain(asdict(self))) | extra


@dataclass(frozen=True)
class NewSitePlan:
    """A what-if site: opens on ``opens_on`` and randomizes ``rate_per_month`` participants a month on average."""

    rate_per_month: float
    opens_on: dt.date
    name: str = "new site"


@dataclass(frozen=True)
class Scenario:
    """A what-if question, parsed: new sites, a later end date, and the date the forecast is made as of."""

    new_sites: tuple[NewSitePlan, ...] = ()
    end_date: dt.date | None = None
    as_of: dt.date | None = None


@dataclass(frozen=True)
class SiteRate:
    """A site's history and its rate a month: the fitted posterior mean when forecasting, else as observed."""

    site: str
    randomized: int
    days_open: float
    rate_per_month: float


@dataclass(frozen=True)
class DateInterval:
    """A central interval for the date the target is reached (None: more than 100 years ahead)."""

    level: float
    lower: dt.date | None
    upper: dt.date | None


@dataclass(frozen=True)
class PredictedPoint:
    """Predicted cumulative randomized by ``on``: the mean, and central 80% and 95% limits."""

    on: dt.date
    mean: float
    lo80: int
    hi80: int
    lo95: int
    hi95: int


@dataclass(frozen=True)
class RecruitmentForecast:
    """When the target will be reached. ``state``: ``forecast``, ``reached`` (the target was reached on
    ``reached_on``) or ``no_recruits`` (nobody randomized yet: no rate to fit). Probabilities are P(target
    reached by the end of that day); None when there is no forecast."""

    as_of: dt.date
    state: str
    message: str
    target: int
    randomized: int
    remaining: int
    reached_on: dt.date | None
    planned_end: dt.date
    probability_by_planned_end: float | None
    end_date: dt.date | None
    probability_by_end_date: float | None
    median_date: dt.date | None
    median_days: float | None
    intervals: tuple[DateInterval, ...]
    method: str | None
    model: str | None
    mean_rate_per_month: float | None
    rate_cv: float | None
    sites: tuple[SiteRate, ...]
    new_sites: tuple[NewSitePlan, ...]
    actual: tuple[tuple[dt.date, int], ...]
    predicted: tuple[PredictedPoint, ...]
    warnings: tuple[str, ...]

    def interval(self, level: float) -> DateInterval | None:
        return next((i for i in self.intervals if math.isclose(i.level, level)), None)

    def as_dict(self) -> dict[str, Any]:
        return dict(_plain(asdict(self)))


def _plain(value: Any) -> Any:
    """Dates to ISO text, tuples to lists, floats rounded a little: JSON as the API and --json print it."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


# --- input -------------------------------------------------------------------------------------------


def _date(field: str, value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        day = from_jalali(text) if "/" in text else dt.date.fromisoformat(text)
    except ValueError:
        raise RecruitmentError([(field, f"{text!r} is not a date (YYYY-MM-DD, or Solar Hijri YYYY/MM/DD)")]) from None
    if not EARLIEST <= day <= dt.date(2200, 12, 31):
        raise RecruitmentError([(field, "must lie between 1970-01-01 and 2200-12-31")])
    return day


def parse_scenario(
    *,
    new_site_rate: str | float | None = None,
    new_site_opens: str | dt.date | None = None,
    end_date: str | dt.date | None = None,
    as_of: str | dt.date | None = None,
) -> Scenario:
    """A what-if question as people type it (text, or values already typed); every problem named at once.
    The checks that need the trial's today (dates not in the past) are the forecast's."""
    problems: list[tuple[str, str]] = []
    dates: dict[str, dt.date | None] = {}
    for field, value in (("new_site_opens", new_site_opens), ("end_date", end_date), ("as_of", as_of)):
        try:
            dates[field] = _date(field, value)
        except RecruitmentError as exc:
            problems.extend(exc.problems)
            dates[field] = None
    rate: float | None = None
    rate_given = new_site_rate is not None and not (isinstance(new_site_rate, str) and not new_site_rate.strip())
    opens_given = new_site_opens is not None and not (isinstance(new_site_opens, str) and not new_site_opens.strip())
    if rate_given:
        raw = new_site_rate.strip() if isinstance(new_site_rate, str) else new_site_rate
        assert raw is not None
        try:
            rate = float(raw)
        except ValueError:
            problems.append(("new_site_rate", f"{str(new_site_rate).strip()!r} is not a number"))
        if rate is not None and not (math.isfinite(rate) and 0 < rate <= MAX_RATE_PER_MONTH):
            problems.append(("new_site_rate", f"must be a number > 0 and at most {MAX_RATE_PER_MONTH:g} a month"))
            rate = None
    if rate_given and not opens_given:
        problems.append(("new_site_opens", "is required with new_site_rate (the date the new site opens)"))
    if opens_given and not rate_given:
        problems.append(("new_site_rate", "is required with new_site_opens (participants randomized a month)"))
    opens = dates["new_site_opens"]
    if problems:
        raise RecruitmentError(problems)
    sites = (NewSitePlan(rate, opens),) if rate is not None and opens is not None else ()
    return Scenario(sites, dates["end_date"], dates["as_of"])


# --- the funnel --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """The screened patients as of a date, counted (every day on the patient's site's calendar): the screening
    service counts them in the database, so its size grows with days x sites, not with patients. Each count is a
    pair ``(key, n)``; a patient's consent is their first, their randomization their allocation's.

    ``screened``: (site, screened on, eligible apart from consent) -> patients. ``consented``: (site, day of the
    first consent, given by) -> patients. ``enrolled``: site -> patients given a participant id. ``randomized``:
    (site, screened on, randomized on) -> participants. ``failed``: (criterion id, wording) -> not-eligible patients
    who failed it (consent aside). ``not_enrolled``: non-enrolment reason (None: not recorded) -> patients not
    enrolled."""

    screened: tuple[tuple[tuple[str, dt.date, bool], int], ...]
    consented: tuple[tuple[tuple[str, dt.date, str], int], ...]
    enrolled: tuple[tuple[str, int], ...]
    randomized: tuple[tuple[tuple[str, dt.date, dt.date], int], ...]
    failed: tuple[tuple[tuple[str, str], int], ...]
    not_enrolled: tuple[tuple[str | None, int], ...]

    @functools.cached_property
    def _by_site(self) -> dict[str, list[int]]:
        """Each site's funnel (screened, eligible, consented, enrolled, randomized), summed once."""
        out: dict[str, list[int]] = {}
        for (site, _, eligible), n in self.screened:
            counts = out.setdefault(site, [0] * 5)
            counts[0] += n
            counts[1] += n if eligible else 0
        for (site, _, _), n in self.consented:
            out.setdefault(site, [0] * 5)[2] += n
        for site, n in self.enrolled:
            out.setdefault(site, [0] * 5)[3] += n
        for (site, _, _), n in self.randomized:
            out.setdefault(site, [0] * 5)[4] += n
        return out

    def site_counts(self, site: str) -> Counts:
        """The funnel at one site."""
        return Counts(*self._by_site.get(site, [0] * 5))

    def totals(self) -> Counts:
        return Counts(*(sum(counts[i] for counts in self._by_site.values()) for i in range(5)))

    def first_screened(self, site: str | None = None) -> dt.date | None:
        """The first screening day (at one site, or anywhere)."""
        return min((d for (s, d, _), n in self.screened if n and (site is None or s == site)), default=None)

    def randomized_by_day(self) -> list[tuple[dt.date, int]]:
        """The randomized on each day (on their site's calendar), in order of day."""
        days: Counter[dt.date] = Counter()
        for (_, _, day), n in self.randomized:
            days[day] += n
        return sorted((d, n) for d, n in days.items() if n)

    def actual(self) -> list[tuple[dt.date, int]]:
        """Cumulative randomized by the end of each day someone was randomized."""
        by_day = self.randomized_by_day()
        return list(zip([d for d, _ in by_day], itertools.accumulate(n for _, n in by_day), strict=True))

    def nth_randomized_on(self, n: int) -> dt.date | None:
        """The day the ``n``-th participant was randomized (1: the first), None before there were ``n``."""
        return next((d for d, total in self.actual() if total >= n), None)


def eligible_apart_from_consent(decision: str, detail: dict[str, Any], consent_field: str | None) -> bool:
    """Met every criterion apart from consent (so a patient who declined, or awaits consent, counts)."""
    if decision == "eligible":
        return True
    consent_only = {consent_field} if consent_field else set()
    if decision == "not_eligible":
        return bool(consent_only) and all(set(f["values"]) <= consent_only for f in detail["failed"])
    return not detail["failed"] and set(detail["missing"]) <= consent_only


def _period_ends(start: dt.date, end: dt.date) -> tuple[str, list[dt.date]]:
    """Weekly points for up to 26 weeks, monthly after; the last point is ``end`` itself."""
    ends: list[dt.date] = []
    if (end - start).days <= 182:
        day = start + dt.timedelta(days=6)
        while day < end:
            ends.append(day)
            day += dt.timedelta(days=7)
        return "week", [*ends, end]
    day = start
    while True:
        following = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
        last = following - dt.timedelta(days=1)
        if last >= end:
            return "month", [*ends, end]
        ends.append(last)
        day = following


def _cumulative(dates: Sequence[dt.date | None], ends: Sequence[dt.date]) -> list[int]:
    """How many of the dates fall on or before each end (one sort, one vectorised search: the array is built once,
    not once per end)."""
    known = np.sort(np.array([d for d in dates if d is not None], dtype="datetime64[D]"))
    counts = np.searchsorted(known, np.array(list(ends), dtype="datetime64[D]"), side="right")
    return [int(c) for c in counts]


def _cumulative_counts(counts: Sequence[tuple[dt.date, int]], ends: Sequence[dt.date]) -> list[int]:
    """How many counted patients fall on or before each end: ``_cumulative`` of each day repeated its count."""
    if not counts:
        return [0] * len(ends)
    days = np.array([d for d, _ in counts], dtype="datetime64[D]")
    order = np.argsort(days, kind="stable")
    running = np.concatenate([[0], np.cumsum(np.array([n for _, n in counts], dtype=np.int64)[order])])
    at = np.searchsorted(days[order], np.array(list(ends), dtype="datetime64[D]"), side="right")
    return [int(running[i]) for i in at]


def _ranked(counter: Counter[tuple[str, str]]) -> tuple[Reason, ...]:
    return tuple(Reason(code, label, n) for (code, label), n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def recruitment_start(protocol: Protocol) -> dt.date:
    """When recruitment started: the actual start if recorded, else the expected one."""
    dates = protocol.trial.dates
    return dates.actual_recruitment_start or dates.expected_recruitment_start


def series_ends(protocol: Protocol, tally: Tally, as_of: dt.date) -> tuple[str, list[dt.date]]:
    """The series' period (week or month) and the last day of each of its points, the last ``as_of`` itself."""
    first = tally.first_screened()
    start = min(first, as_of) if first is not None else min(recruitment_start(protocol), as_of)
    return _period_ends(start, as_of)


def summarise(
    protocol: Protocol,
    tally: Tally,
    as_of: dt.date,
    by_arm: bool,
    per_arm: Mapping[str, tuple[int, Sequence[int]]] | None = None,
) -> RecruitmentStatus:
    """The dashboard from the screened patients as of a date, counted (``by_arm``: fill in the arms from
    ``per_arm``: each arm code's randomized count and its cumulative counts at ``series_ends``, counted by the
    database; an arm not in it randomized nobody)."""
    target = protocol.sample_size.target
    sites = tuple(
        SiteRecruitment(site=s.code, name=s.name, first_screened=tally.first_screened(s.code),
                        counts=tally.site_counts(s.code))
        for s in protocol.sites
    )  # fmt: skip
    period, ends = series_ends(protocol, tally, as_of)
    columns = {
        "screened": _cumulative_counts([(d, n) for (_, d, _), n in tally.screened], ends),
        "eligible": _cumulative_counts([(d, n) for (_, d, e), n in tally.screened if e], ends),
        "consented": _cumulative_counts([(d, n) for (_, d, _), n in tally.consented], ends),
        "randomized": _cumulative_counts([(d, n) for (_, _, d), n in tally.randomized], ends),
    }
    series = tuple(SeriesPoint(e, *(columns[k][i] for k in columns)) for i, e in enumerate(ends))
    arms = None
    if by_arm:
        counted = per_arm or {}
        arms = tuple(
            ArmRecruitment(code=a.code, name=a.name, target=protocol.sample_size.per_arm.get(a.code),
                           randomized=mine[0], series=tuple(mine[1]))
            for a in protocol.arms
            for mine in [counted.get(a.code, (0, [0] * len(ends)))]
        )  # fmt: skip
    failures: Counter[tuple[str, str]] = Counter()
    for (code, label), n in tally.failed:
        failures[(code, label)] += n
    not_enrolled: Counter[tuple[str, str]] = Counter()
    for reason, n in tally.not_enrolled:
        code = reason or "not_recorded"
        not_enrolled[(code, code.replace("_", " "))] += n
    waited = [((randomized - screened).days, n) for (_, screened, randomized), n in tally.randomized if n]
    if waited:  # the days of each participant, repeated as numbers in one array (the same percentiles as a list)
        waits = np.repeat(np.array([d for d, _ in waited], dtype=np.int64), [n for _, n in waited])
        q1, median, q3 = (float(v) for v in np.percentile(waits, [25, 50, 75]))
        wait = TimeToRandomization(len(waits), median, q1, q3)
    else:
        wait = TimeToRandomization(0, None, None, None)
    by_day = tally.randomized_by_day()
    return RecruitmentStatus(
        as_of=as_of,
        target=target,
        totals=tally.totals(),
        sites=sites,
        period=period,
        series=series,
        arms=arms,
        screen_failures=_ranked(failures),
        non_enrolment=_ranked(not_enrolled),
        consent_by_participant=sum(n for (_, _, by), n in tally.consented if by == "participant"),
        consent_by_representative=sum(n for (_, _, by), n in tally.consented if by == "representative"),
        days_to_randomization=wait,
        planned_start=protocol.trial.dates.expected_recruitment_start,
        planned_end=protocol.trial.dates.expected_recruitment_end,
        reached_on=tally.nth_randomized_on(target),
        last_randomized=by_day[-1][0] if by_day else None,
    )


def day_text(day: dt.date | None, calendar: str = "both") -> str:
    """A date in the trial's calendar(s) (both by default), or "more than 100 years ahead" for None."""
    return format_date(day, calendar) if day is not None else "more than 100 years ahead"


# --- the registry update -----------------------------------------------------------------------------


def registry_text(status: RecruitmentStatus, forecast: RecruitmentForecast) -> str:
    """Actual versus target with the reasons, ready to paste into a registry record's "Reason for update"
    (both calendars, as the registry writes dates). Names no arm."""
    t = status.totals
    per_site = ", ".join(f"{s.site} {s.counts.randomized}" for s in status.sites)
    parts = [
        f"Recruitment as of {format_date(status.as_of)}: {t.randomized} participants randomized against a target "
        f"of {status.target} ({status.percent_of_target:.0f}%), at {len(status.sites)} "
        f"site{'s' if len(status.sites) != 1 else ''} ({per_site}).",
        f"{t.screened} patients were screened, {t.eligible} met the eligibility criteria, {t.consented} consented"
        f" ({status.consent_by_representative} through a legally authorised representative) and {t.enrolled} "
        "were enrolled.",
    ]
    if status.non_enrolment:
        reasons = []
        failures = ", ".join(f"{r.label} {r.count}" for r in status.screen_failures[:5])
        for r in status.non_enrolment:
            extra = f" (criteria not met: {failures})" if r.code == "not_eligible" and failures else ""
            reasons.append(f"{r.label} {r.count}{extra}")
        parts.append(f"Reasons screened patients were not enrolled, most frequent first: {'; '.join(reasons)}.")
    if forecast.state == "reached":
        parts.append(f"The target was reached on {format_date(forecast.reached_on)}."
                     if forecast.reached_on else "The target was reached.")  # fmt: skip
    elif forecast.state == "forecast":
        i80 = forecast.interval(0.8)
        assert i80 is not None
        parts.append(
            f"At the rate so far the target would be reached about {day_text(forecast.median_date)} (80% interval "
            f"{day_text(i80.lower)} to {day_text(i80.upper)}); the probability of reaching it by the planned end of "
            f"recruitment, {format_date(forecast.planned_end)}, is {forecast.probability_by_planned_end or 0:.0%}."
        )
    return " ".join(parts)
