"""Recruitment monitoring and forecasting, the use cases: the dashboard (``recruitment_status``), the
forecast of when the target is reached with what-if scenarios (``recruitment_forecast``, the Poisson-gamma
model of ``trialwright.analysis.forecast``) and the registry-update text. The funnel's definitions and the result
types are in ``trialwright.domain.recruitment``.

One read. ``load`` reads recruitment once, in one read transaction, as counts the database makes
(``services.recruitment_tally``: by site and day, never a row per patient); ``status_of`` and ``forecast_of`` work
the dashboard and any number of forecasts out of that one load (the page's dashboard, its forecast and its what-if),
and each use case above is one load and one of them.

"Today" is ``clock.now()`` on the trial's clock (its first site's time zone); ``as_of`` asks as of a past day
(the end of that day), counting only what had happened by then.

Masking. The arm column is read, and per-arm numbers returned, only for the readers the masking policy
unblinds (``BY_ARM``: the unblinded statistician and the DSMB); for every other reader ``arms`` is None. The
forecast never names an arm. Counts are trial-wide aggregates for every reader, site-scoped roles included:
they hold no participant, and the forecast needs every site.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, case, func, select
from sqlalchemy.orm import Session

from trialwright.analysis.forecast import (
    NewSite,
    SiteHistory,
    expected_curve,
    fit_poisson_gamma,
    forecast_completion,
    simulated_curve,
)
from trialwright.domain.calendars import format_date, trial_calendars
from trialwright.domain.masking import UNBLINDED_ROLES, sees_arms
from trialwright.domain.recruitment import (
    DAYS_PER_MONTH,
    EARLIEST,
    MAX_DAYS,
    MAX_RATE_PER_MONTH,
    DateInterval,
    NewSitePlan,
    PredictedPoint,
    RecruitmentError,
    RecruitmentForecast,
    RecruitmentStatus,
    Scenario,
    SiteRate,
    Tally,
    day_text,
    parse_scenario,
    recruitment_start,
    registry_text,
    series_ends,
    summarise,
)
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.services import clock
from trialwright.services.allocation_checkpoints import VerifiedList, remember, verified_list
from trialwright.services.audit_keys import checked_allocations
from trialwright.services.errors import denied
from trialwright.services.recruitment_tally import tally
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import participants, screenings

__all__ = [
    "BY_ARM",
    "READERS",
    "Loaded",
    "NewSitePlan",
    "RecruitmentError",
    "RecruitmentForecast",
    "RecruitmentStatus",
    "Scenario",
    "forecast_of",
    "load",
    "parse_scenario",
    "recruitment_forecast",
    "recruitment_status",
    "registry_text",
    "registry_update_text",
    "status_of",
]

#: Who reads recruitment: the trial team.
READERS = (
    Role.ADMINISTRATOR,
    Role.INVESTIGATOR,
    Role.STUDY_COORDINATOR,
    Role.MONITOR,
    Role.DATA_MANAGER,
    Role.BLINDED_STATISTICIAN,
    Role.UNBLINDED_STATISTICIAN,
    Role.DSMB_MEMBER,
)
#: Who sees recruitment by arm in a double- or triple-blind trial (the trial's masking decides: ``sees_arms``).
BY_ARM = tuple(r for r in READERS if r in UNBLINDED_ROLES)

#: The predicted curve is drawn at most this far ahead.
MAX_CURVE_DAYS = 5 * 365
#: A last randomization older than this makes the forecast say the sites may have stopped.
STALE_DAYS = 90
#: Monte-Carlo draws and seed for what-if forecasts (fixed: the same question gets the same answer).
DRAWS, SEED = 20_000, 0


# --- the clock and the data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clock:
    """The moment counts are made at, the as-of date on the trial's clock, and the trial's zone."""

    moment: dt.datetime
    as_of: dt.date
    tz: ZoneInfo

    def start_of(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=self.tz)

    def end_of(self, day: dt.date) -> dt.datetime:
        return self.start_of(day + dt.timedelta(days=1))

    def days_until(self, day: dt.date) -> float:
        return (self.end_of(day) - self.moment).total_seconds() / 86400.0

    def date_after(self, days: float | None) -> dt.date | None:
        """The day ``days`` after the moment (an instant at midnight belongs to the day it ends)."""
        if days is None or not math.isfinite(days) or days > MAX_DAYS:
            return None
        instant = self.moment + dt.timedelta(days=days) - dt.timedelta(microseconds=1)
        return instant.astimezone(self.tz).date()


def _clock(protocol: Protocol, as_of: dt.date | None) -> _Clock:
    tz = ZoneInfo(protocol.sites[0].timezone)
    now = clock.now()
    today = now.astimezone(tz).date()
    if as_of is None:
        return _Clock(now, today, tz)
    if as_of > today:
        raise RecruitmentError([("as_of", f"is after today ({today.isoformat()})")])
    if as_of < EARLIEST:
        raise RecruitmentError([("as_of", "must be on or after 1970-01-01")])
    end_of_day = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return _Clock(min(end_of_day, now), as_of, tz)


@dataclass(frozen=True)
class Loaded:
    """Recruitment as one reader may see it, read once (one read transaction): the trial's protocol, the moment and
    as-of date, the funnel counted by the database and, for a reader the masking unblinds, the randomized per arm
    (``per_arm``, else None). The dashboard (``status_of``) and the forecasts (``forecast_of``, any number of what-ifs)
    are worked out from it without reading again."""

    protocol: Protocol
    at: _Clock
    tally: Tally
    per_arm: dict[str, tuple[int, list[int]]] | None


def load(engine: Engine, actor: UserView, *, as_of: dt.date | None = None) -> Loaded:
    """Read recruitment as of a date (today by default) for ``actor``, in one read transaction: the page's one read
    for its dashboard and forecasts; per arm only for the readers the masking unblinds."""
    _role(actor)
    protocol = current_protocol(engine).protocol
    at = _clock(protocol, as_of)
    by_arm = sees_arms(protocol, actor.role)
    checked: VerifiedList | None = None
    with read_scope(engine) as session:
        counted = tally(session, protocol, at.as_of, at.moment, at.tz.key)
        per_arm = None
        if by_arm:  # arms are counted only for a reader who may see them, and only once the entries match their digest
            checked = verified_list(session)  # the entries added or changed since the last load (none: not keyed)
            if checked is None:
                checked_allocations(session)
            per_arm = _per_arm(session, protocol, at, series_ends(protocol, counted, at.as_of)[1])
    if by_arm:
        remember(engine, checked)
    return Loaded(protocol, at, counted, per_arm)


def _role(actor: UserView) -> None:
    if actor.role not in READERS:
        team = ", ".join(r.value for r in READERS)
        raise denied(RecruitmentError)([("role", f"only the trial team reads recruitment ({team})")])


# --- the use cases -----------------------------------------------------------------------------------


def status_of(loaded: Loaded) -> RecruitmentStatus:
    """The recruitment dashboard from a load: overall and per site, over time against the target, reasons, consents
    and time to randomization; per arm only if the load was a reader's the masking unblinds."""
    return summarise(loaded.protocol, loaded.tally, loaded.at.as_of, loaded.per_arm is not None, loaded.per_arm)


def recruitment_status(engine: Engine, actor: UserView, *, as_of: dt.date | None = None) -> RecruitmentStatus:
    """The recruitment dashboard (``status_of`` of one ``load``)."""
    return status_of(load(engine, actor, as_of=as_of))


@functools.lru_cache(maxsize=16)
def _series_point(zones: tuple[tuple[str, str], ...], fallback: str, ends: tuple[dt.date, ...]) -> Any:
    """The series point of an allocation entry joined to its screening (``len(ends)``: after the last), as SQL:
    built once per day's points (an expression of sites x points conditions), not once per load."""
    e, s = allocation_entries, screenings
    whens: list[Any] = []
    for site, zone in [*zones, (None, fallback)]:
        tz = ZoneInfo(zone)
        here = s.c.site == site if site is not None else s.c.site.not_in([code for code, _ in zones])
        for i, day in enumerate(ends):
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
            whens.append((and_(here, e.c.randomized_at < end), i))
    return case(*whens, else_=len(ends)).label("point")


def _per_arm(
    session: Session, protocol: Protocol, at: _Clock, ends: Sequence[dt.date]
) -> dict[str, tuple[int, list[int]]]:
    """Each arm code's randomized participants as the dashboard counts them (screened by the as-of date, enrolled and
    randomized by its moment) and how many of them were randomized by the end of each day of ``ends`` on their
    site's calendar, counted by the database: one ``GROUP BY`` arm and series point, whatever the number randomized
    (the point is the first day whose end on the site's clock comes after the randomization)."""
    e, p, s = allocation_entries, participants, screenings
    zones = tuple((site.code, site.timezone) for site in protocol.sites)
    point = _series_point(zones, at.tz.key, tuple(ends))
    rows = session.execute(
        select(e.c.arm, point, func.count().label("n"))
        .select_from(e.join(p, p.c.participant_id == e.c.participant_id).join(s, s.c.id == p.c.screening_id))
        .where(
            e.c.participant_id.is_not(None),
            e.c.randomized_at <= at.moment,
            p.c.enrolled_at <= at.moment,
            s.c.screened_on <= at.as_of,
        )
        .group_by(e.c.arm, point)
    ).all()
    out: dict[str, tuple[int, list[int]]] = {}
    for arm in {str(r.arm) for r in rows}:
        at_point = [0] * (len(ends) + 1)
        for r in rows:
            if r.arm == arm:
                at_point[int(r.point)] += int(r.n)
        series = list(itertools.accumulate(at_point[:-1]))
        out[arm] = (sum(at_point), series)
    return out


# --- the forecast ------------------------------------------------------------------------------------


def _histories(protocol: Protocol, counted: Tally, at: _Clock) -> list[SiteHistory]:
    """Each site's randomized count and days open: from the start of its first screening day (or of the
    trial's recruitment start, for a site that has screened nobody) to the moment of the forecast."""
    out = []
    for s in protocol.sites:
        opened = counted.first_screened(s.code) or recruitment_start(protocol)
        start = dt.datetime.combine(opened, dt.time(), tzinfo=ZoneInfo(s.timezone))
        days = max((at.moment - start).total_seconds() / 86400.0, 0.0)
        recruited = counted.site_counts(s.code).randomized
        if recruited and days < 1.0:
            days = 1.0  # a site that randomized today has been open (at least) today
        out.append(SiteHistory(s.code, recruited, days))
    return out


def _check_scenario(at: _Clock, new_sites: Sequence[NewSitePlan], end_date: dt.date | None) -> None:
    problems = []
    for plan in new_sites:
        if not (math.isfinite(plan.rate_per_month) and 0 < plan.rate_per_month <= MAX_RATE_PER_MONTH):
            problems.append(("new_site_rate", f"must be a number > 0 and at most {MAX_RATE_PER_MONTH:g} a month"))
        if plan.opens_on < at.as_of:
            problems.append(("new_site_opens", f"is in the past (today is {at.as_of.isoformat()})"))
        elif (plan.opens_on - at.as_of).days > MAX_DAYS:
            problems.append(("new_site_opens", "is more than 100 years ahead"))
    if end_date is not None and end_date <= at.as_of:
        problems.append(("end_date", f"must be after today ({at.as_of.isoformat()})"))
    elif end_date is not None and (end_date - at.as_of).days > MAX_DAYS:
        problems.append(("end_date", "is more than 100 years ahead"))
    if problems:
        raise RecruitmentError(problems)


def _probability(fc: Any, at: _Clock, day: dt.date) -> float:
    days = at.days_until(day)
    return fc.probability_by(days) if days > 0 else 0.0


def forecast_of(
    loaded: Loaded, *, new_sites: Sequence[NewSitePlan] = (), end_date: dt.date | None = None
) -> RecruitmentForecast:
    """When the target will be reached, from a load: the Poisson-gamma model fitted to every site's randomizations
    so far, the date with 80% and 95% intervals, the probability by the planned end (and by ``end_date``), what-if
    new sites, and the actual and predicted cumulative curves. Names no arm, so it is the same for every reader."""
    protocol, at = loaded.protocol, loaded.at
    cal = trial_calendars(protocol.calendars)[0]  # the trial's default calendar(s), both when it declares none
    _check_scenario(at, new_sites, end_date)
    target = protocol.sample_size.target
    planned_end = protocol.trial.dates.expected_recruitment_end
    actual = tuple(loaded.tally.actual())
    last = actual[-1][0] if actual else None
    randomized = actual[-1][1] if actual else 0
    remaining = max(target - randomized, 0)
    histories = _histories(protocol, loaded.tally, at)
    base: dict[str, Any] = {
        "as_of": at.as_of, "target": target, "randomized": randomized, "remaining": remaining,
        "planned_end": planned_end, "end_date": end_date, "new_sites": tuple(new_sites), "actual": actual,
    }  # fmt: skip
    empty: dict[str, Any] = {
        "reached_on": None, "probability_by_planned_end": None, "probability_by_end_date": None,
        "median_date": None, "median_days": None, "intervals": (), "method": None, "model": None,
        "mean_rate_per_month": None, "rate_cv": None, "predicted": (), "warnings": (),
        "sites": tuple(SiteRate(h.site, h.recruited, h.days_open,
                                h.recruited / h.days_open * DAYS_PER_MONTH if h.days_open else 0.0)
                       for h in histories),
    }  # fmt: skip
    if remaining == 0:
        reached = loaded.tally.nth_randomized_on(target)
        assert reached is not None
        message = (f"The target of {target} was reached on {format_date(reached, cal)}"
                   f" ({randomized} randomized as of {format_date(at.as_of, cal)}).")  # fmt: skip
        return RecruitmentForecast(state="reached", message=message, **base, **{**empty, "reached_on": reached})
    if randomized == 0:
        message = ("No participant has been randomized yet, so there is no recruitment rate to fit: the forecast "
                   "starts with the first randomization.")  # fmt: skip
        return RecruitmentForecast(state="no_recruits", message=message, **base, **empty)

    fit = fit_poisson_gamma(histories)
    # A new site's rate varies as the fitted between-site gamma does (shape alpha), around the assumed mean.
    news = [NewSite(f"{p.name} {i + 1}", max((at.start_of(p.opens_on) - at.moment).total_seconds() / 86400.0, 0.0),
                    p.rate_per_month / DAYS_PER_MONTH, fit.alpha) for i, p in enumerate(new_sites)]  # fmt: skip
    fc = forecast_completion(fit, histories, remaining, new_sites=news, n_simulations=DRAWS, seed=SEED)
    intervals = tuple(DateInterval(iv.level, at.date_after(iv.lower), at.date_after(iv.upper)) for iv in fc.intervals)
    horizon = max(fc.interval(0.95).upper, at.days_until(planned_end), at.days_until(end_date or planned_end), 1.0)
    horizon = min(horizon * 1.05, MAX_CURVE_DAYS)
    grid = [horizon * i / 60 for i in range(61)]
    curve = (simulated_curve(fit, histories, grid, new_sites=news, n_simulations=DRAWS, seed=SEED) if news
             else expected_curve(fit, histories, horizon, horizon / 60))  # fmt: skip
    predicted = tuple(
        PredictedPoint(d, randomized + c.mean, randomized + c.lo80, randomized + c.hi80, randomized + c.lo95,
                       randomized + c.hi95)
        for c in curve if (d := at.date_after(c.day)) is not None
    )  # fmt: skip
    warnings = list(fc.warnings)
    if last is not None and (at.as_of - last).days > STALE_DAYS:
        warnings.append(
            f"no participant has been randomized for {(at.as_of - last).days} days (the last on "
            f"{last.isoformat()}): the forecast assumes the sites still recruit at their rate so far"
        )
    if at.as_of > planned_end:
        warnings.append(f"the planned end of recruitment ({planned_end.isoformat()}) has passed")
    median = at.date_after(fc.median_days)
    p_end = _probability(fc, at, planned_end)
    i80, i95 = fc.interval(0.8), fc.interval(0.95)
    lo80, hi80 = (day_text(at.date_after(d), cal) for d in (i80.lower, i80.upper))
    lo95, hi95 = (day_text(at.date_after(d), cal) for d in (i95.lower, i95.upper))
    message = (
        f"{randomized} of {target} randomized as of {format_date(at.as_of, cal)}; at the rate so far the remaining "
        f"{remaining} would be randomized by about {day_text(median, cal)} (80% interval {lo80} to {hi80}; "
        f"95% interval {lo95} to {hi95}); the probability of reaching the target by the planned end of recruitment, "
        f"{format_date(planned_end, cal)}, is {p_end:.0%}."
    )
    return RecruitmentForecast(
        state="forecast",
        message=message,
        **base,
        reached_on=None,
        probability_by_planned_end=p_end,
        probability_by_end_date=_probability(fc, at, end_date) if end_date is not None else None,
        median_date=median,
        median_days=fc.median_days,
        intervals=intervals,
        method=fc.method,
        model=fit.method,
        mean_rate_per_month=fit.mean_rate * DAYS_PER_MONTH,
        rate_cv=fit.rate_cv,
        sites=tuple(
            SiteRate(p.site, p.recruited, p.days_open, p.mean_rate * DAYS_PER_MONTH) for p in fit.site_posteriors
        ),
        predicted=predicted,
        warnings=tuple(warnings),
    )


def recruitment_forecast(
    engine: Engine,
    actor: UserView,
    *,
    new_sites: Sequence[NewSitePlan] = (),
    end_date: dt.date | None = None,
    as_of: dt.date | None = None,
) -> RecruitmentForecast:
    """When the target will be reached (``forecast_of`` one ``load``)."""
    return forecast_of(load(engine, actor, as_of=as_of), new_sites=new_sites, end_date=end_date)


def registry_update_text(engine: Engine, actor: UserView, *, as_of: dt.date | None = None) -> str:
    """The registry-update summary as of a date (today by default), from one load."""
    loaded = load(engine, actor, as_of=as_of)
    return registry_text(status_of(loaded), forecast_of(loaded))
