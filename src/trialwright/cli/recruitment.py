"""``trialwright recruitment``: the recruitment dashboard, the forecast with what-if scenarios, and the
registry-update text; through the same service as the page and the API, acting as a named user (``--as``).
Dates print in the trial's calendars (the protocol's ``calendars``; both when absent); per-arm numbers only
for the unblinded readers."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from trialwright.cli.common import DatabaseOption, JsonOption, console, emit, fail_with
from trialwright.cli.screening import AsOption, _context

__all__ = ["recruitment_app"]

recruitment_app = typer.Typer(
    help="Recruitment: counts per site and over time against the target, reasons, and the forecast.",
    no_args_is_help=True,
)

AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Count as of this past date (YYYY-MM-DD or Solar Hijri YYYY/MM/DD); today if absent."),
]


def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    from trialwright.services.recruitment import RecruitmentError

    try:
        return function(*args, **kwargs)
    except RecruitmentError as exc:
        fail_with(exc)


def _calendar(engine: Any) -> str:
    """The trial's default calendar preference, from its protocol's ``calendars`` (both when it declares none)."""
    from trialwright.domain.calendars import trial_calendars
    from trialwright.services.trial import current_protocol

    return trial_calendars(current_protocol(engine).protocol.calendars)[0].value


def _day(value: Any, calendar: str) -> str:
    from trialwright.domain.calendars import format_date

    return format_date(value, calendar) if value is not None else "more than 100 years ahead"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


@recruitment_app.command("status")
def status(
    user: AsOption, as_of: AsOfOption = None, as_json: JsonOption = False, database: DatabaseOption = None
) -> None:
    """Screened, eligible, consented, enrolled and randomized, per site and over time against the target;
    why patients were not enrolled; consents by participant or representative; days to randomization."""
    from trialwright.services.recruitment import parse_scenario, recruitment_status

    engine, actor = _context(user, database)
    cal = _calendar(engine)
    scenario = _run(parse_scenario, as_of=as_of)
    s = _run(recruitment_status, engine, actor, as_of=scenario.as_of)
    if emit(s.as_dict(), as_json):
        return
    t = s.totals
    console.print(f"Recruitment as of {_day(s.as_of, cal)}: {t.randomized} of {s.target} randomized "
                  f"({s.percent_of_target:.0f}%)" + (f"; the target was reached on {_day(s.reached_on, cal)}"
                                                     if s.reached_on else ""), highlight=False)  # fmt: skip
    console.print(f"Planned recruitment: {_day(s.planned_start, cal)} to {_day(s.planned_end, cal)}", highlight=False)
    sites = Table(title="By site")
    for column in ("site", "first screening", "screened", "eligible", "consented", "enrolled", "randomized"):
        sites.add_column(column, justify="left" if column in {"site", "first screening"} else "right")
    for r in s.sites:
        c = r.counts
        first = _day(r.first_screened, cal) if r.first_screened else "-"
        sites.add_row(f"{r.site} {r.name}", first, *(str(v) for v in (c.screened, c.eligible, c.consented,
                                                                      c.enrolled, c.randomized)))  # fmt: skip
    sites.add_row("all sites", "", *(str(v) for v in (t.screened, t.eligible, t.consented, t.enrolled, t.randomized)))
    console.print(sites)
    if s.arms is not None:
        arms = Table(title="Randomized by arm")
        for column in ("arm", "randomized", "target"):
            arms.add_column(column)
        for a in s.arms:
            arms.add_row(f"{a.code} {a.name}", str(a.randomized), str(a.target) if a.target is not None else "-")
        console.print(arms)
    series = Table(title=f"Cumulative, {s.period} by {s.period} (rows where something changed)")
    for column in ("up to", "screened", "eligible", "consented", "randomized", *(a.code for a in s.arms or ())):
        series.add_column(column, justify="left" if column == "up to" else "right")
    previous = None
    for i, p in enumerate(s.series):
        row = (p.screened, p.eligible, p.consented, p.randomized, *(a.series[i] for a in s.arms or ()))
        if row != previous or i == len(s.series) - 1:
            series.add_row(_day(p.on, cal), *(str(v) for v in row))
        previous = row
    console.print(series)
    reasons = Table(title="Why screened patients were not enrolled")
    reasons.add_column("reason")
    reasons.add_column("patients", justify="right")
    for r in s.non_enrolment:
        reasons.add_row(r.label, str(r.count))
    console.print(reasons)
    if s.screen_failures:
        failures = Table(title="Eligibility criteria not met (a patient may fail several)")
        failures.add_column("criterion")
        failures.add_column("patients", justify="right")
        for r in s.screen_failures:
            failures.add_row(f"{r.code} {r.label}", str(r.count))
        console.print(failures)
    by_participant, by_representative = s.consent_by_participant, s.consent_by_representative
    console.print(
        f"Consent by the participant: {by_participant} ({_pct(by_participant, t.consented)}); by a legally "
        f"authorised representative: {by_representative} ({_pct(by_representative, t.consented)})",
        highlight=False,
    )
    w = s.days_to_randomization
    if w.n:
        console.print(f"Days from screening to randomization: median {w.median:g} (interquartile range "
                      f"{w.q1:g}-{w.q3:g}), {w.n} randomized", highlight=False)  # fmt: skip


@recruitment_app.command("forecast")
def forecast(
    user: AsOption,
    new_site_rate: Annotated[
        float | None, typer.Option("--new-site-rate", help="What-if: a new site randomizing R participants a month.")
    ] = None,
    new_site_opens: Annotated[
        str | None, typer.Option("--new-site-opens", help="What-if: the date the new site opens (YYYY-MM-DD).")
    ] = None,
    end_date: Annotated[
        str | None, typer.Option("--end-date", help="What-if: the probability of the target by this later date.")
    ] = None,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """When the target will be reached (the Poisson-gamma model fitted to every site's randomizations): the
    date with 80% and 95% intervals and the probability by the planned end of recruitment."""
    from trialwright.services.recruitment import parse_scenario, recruitment_forecast

    engine, actor = _context(user, database)
    cal = _calendar(engine)
    s = _run(parse_scenario, new_site_rate=new_site_rate, new_site_opens=new_site_opens, end_date=end_date,
             as_of=as_of)  # fmt: skip
    f = _run(recruitment_forecast, engine, actor, new_sites=s.new_sites, end_date=s.end_date, as_of=s.as_of)
    if emit(f.as_dict(), as_json):
        return
    if f.state != "forecast":
        console.print(f.message, highlight=False, markup=False)
        return
    model = "Poisson-gamma, maximum likelihood" if f.model == "mle" else "one pooled rate (no spread between sites)"
    lines = [
        f"Forecast as of {_day(f.as_of, cal)} ({model}; {f.method}; mean {f.mean_rate_per_month:.2f} per site a month)",
        f"  randomized: {f.randomized} of {f.target} ({f.remaining} to go)",
        f"  predicted date the target is reached: {_day(f.median_date, cal)}",
        *(f"  {iv.level:.0%} interval: {_day(iv.lower, cal)} to {_day(iv.upper, cal)}" for iv in f.intervals),
        f"  P(target by the planned end, {_day(f.planned_end, cal)}): {f.probability_by_planned_end:.0%}",
    ]
    if f.end_date is not None and f.probability_by_end_date is not None:
        lines.append(f"  P(target by {_day(f.end_date, cal)}): {f.probability_by_end_date:.0%}")
    lines += [f"  what-if: a new site, {p.rate_per_month:g} a month from {_day(p.opens_on, cal)}" for p in f.new_sites]
    for line in lines:
        console.print(line, highlight=False, markup=False)
    rates = Table(title="Sites")
    for column in ("site", "randomized", "days open", "rate a month"):
        rates.add_column(column, justify="left" if column == "site" else "right")
    for r in f.sites:
        rates.add_row(r.site, str(r.randomized), f"{r.days_open:.0f}", f"{r.rate_per_month:.2f}")
    console.print(rates)
    for warning in f.warnings:
        console.print(f"warning: {warning}", highlight=False, markup=False)


@recruitment_app.command("registry-update")
def registry_update(user: AsOption, as_of: AsOfOption = None, database: DatabaseOption = None) -> None:
    """Actual versus target with the reasons, as text for a registry record's "Reason for update"."""
    from trialwright.services.recruitment import parse_scenario, registry_update_text

    engine, actor = _context(user, database)
    scenario = _run(parse_scenario, as_of=as_of)
    typer.echo(_run(registry_update_text, engine, actor, as_of=scenario.as_of))
