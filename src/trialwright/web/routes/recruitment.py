"""The recruitment page: the dashboard (overall, per site, over time against the target, reasons, consents,
time to randomization), the forecast with its what-if form (GET parameters, so a scenario is a link), and the
registry-update text. Everything comes from ``trialwright.services.recruitment``; arms only as it returns them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from trialwright.domain.calendars import format_date, to_jalali
from trialwright.services import recruitment as svc
from trialwright.services.users import UserView
from trialwright.web.dates import read_dates
from trialwright.web.deps import EngineDep, ProtocolDep, require_roles
from trialwright.web.i18n import N_, translations
from trialwright.web.localized import arm_said, digits
from trialwright.web.recruitment_plots import cumulative_svg, forecast_svg, reasons_svg
from trialwright.web.templating import Page, render_page

router = APIRouter()
ReaderPage = Annotated[Page, Depends(require_roles(*svc.READERS))]

#: Non-enrolment reasons as shown (translated where shown).
REASONS = {
    "not_eligible": N_("not eligible"),
    "declined": N_("declined"),
    "consent_not_obtainable": N_("consent not obtainable"),
    "other_trial": N_("other trial"),
    "other": N_("other"),
    "not_recorded": N_("not recorded"),
}
_FIELDS = ("new_site_rate", "new_site_opens", "end_date", "as_of")
#: The what-if's dates as the page labels them: typed in the viewer's calendar.
_DATES = {"new_site_opens": N_("The new site opens on"), "end_date": N_("A later end of recruitment"),
          "as_of": N_("As of (a past date, to see the forecast as it was then)")}  # fmt: skip


#: Plots already drawn, by what they show (``_plot``): a few per process, the oldest dropped first.
_DRAWN: OrderedDict[str, str] = OrderedDict()
_DRAWN_LOCK = threading.Lock()
_DRAWN_KEPT = 32


def _plot(shows: tuple[object, ...], draw: Callable[[], str]) -> str:
    """The plot drawn from ``shows``, drawn only when no plot of exactly that was drawn before in this process.

    Drawing with matplotlib costs 90-140 ms of CPU a plot whatever the trial's size (docs/benchmarks.md, the
    recruitment page), more than the counting; a plot is a pure function of the numbers it shows and the words,
    dates and digits of the page, so ``shows`` holds all of them and the key is the digest of their ``repr`` (every
    field of the frozen results, recursively). Any new screening, consent or randomization, another as-of date, a
    what-if, language, calendar or protocol version changes the key; a blinded reader's status holds no arm, so its
    key never matches an unblinded reader's plot unless the two plots are the same. Nothing is shared between
    workers, and nothing needs to be: each draws what it has not drawn."""
    key = hashlib.sha256(repr(shows).encode()).hexdigest()
    with _DRAWN_LOCK:
        if key in _DRAWN:
            _DRAWN.move_to_end(key)
            return _DRAWN[key]
    svg = draw()
    with _DRAWN_LOCK:
        _DRAWN[key] = svg
        while len(_DRAWN) > _DRAWN_KEPT:
            _DRAWN.popitem(last=False)
    return svg


#: The forecast's notes (``analysis.forecast``, ``services.recruitment``, in English), as message ids the page says in
#: its language: a count in the page's digits, a date in the reader's calendar. A note not here is said as written.
NOTES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), msgid)
    for pattern, msgid in (
        (r"no participant has been randomized for (?P<days>\d+) days \(the last on (?P<day>\d{4}-\d{2}-\d{2})\): the "
         r"forecast assumes the sites still recruit at their rate so far",
         N_("no participant has been randomized for %(days)s days (the last on %(day)s): the forecast assumes the "
            "sites still recruit at their rate so far")),
        (r"the planned end of recruitment \((?P<day>\d{4}-\d{2}-\d{2})\) has passed",
         N_("the planned end of recruitment (%(day)s) has passed")),
        (r"(?P<remaining>\d+) recruits remain but only (?P<seen>\d+) have been seen: alpha and beta are treated as "
         r"known, so these plug-in intervals under-cover \(are too narrow\)",
         N_("%(remaining)s recruits remain but only %(seen)s have been seen: alpha and beta are treated as known, so "
            "these plug-in intervals under-cover (are too narrow)")),
        (r"the fit pools all sites into one rate and ignores that rate's uncertainty: intervals are too narrow",
         N_("the fit pools all sites into one rate and ignores that rate's uncertainty: intervals are too narrow")),
        (r"new sites enter with assumed rates: the forecast is only as good as those assumptions",
         N_("new sites enter with assumed rates: the forecast is only as good as those assumptions")),
    )
)  # fmt: skip


def notes_said(
    notes: tuple[str, ...], gettext: Callable[[str], str], lang: str, fdate: Callable[[str], str]
) -> list[str]:
    """The forecast's notes in the page's language: its counts in the page's digits, its dates by ``fdate``."""
    out = []
    for note in notes:
        for pattern, msgid in NOTES:
            if (match := pattern.fullmatch(note)) is not None:
                values = {k: fdate(v) if k == "day" else digits(v, lang) for k, v in match.groupdict().items()}
                out.append(gettext(msgid) % values if values else gettext(msgid))
                break
        else:
            out.append(note)
    return out


def _date_label(calendar: str, lang: str) -> Any:
    """A plot's day in the viewer's calendar and the page's digits."""

    def label(day: dt.date) -> str:
        if calendar == "gregorian":
            return digits(day.isoformat(), lang)
        if calendar == "jalali":
            return digits(to_jalali(day), lang)
        return digits(f"{day.isoformat()}\n{to_jalali(day)}", lang)

    return label


def _results(engine: Engine, user: UserView, scenario: svc.Scenario) -> tuple[Any, Any, Any, list[tuple[str, str]]]:
    """Status, forecast (with the what-if), the plain forecast (for the registry text) and any problems, all from one
    read (``svc.load``); a refused as-of date is read as today, a refused what-if leaves the plain forecast standing."""
    problems: list[tuple[str, str]] = []
    try:
        loaded = svc.load(engine, user, as_of=scenario.as_of)
    except svc.RecruitmentError as exc:
        problems.extend(exc.problems)
        loaded = svc.load(engine, user)
    status = svc.status_of(loaded)
    plain = svc.forecast_of(loaded)
    forecast = plain
    if scenario.new_sites or scenario.end_date is not None:
        try:
            forecast = svc.forecast_of(loaded, new_sites=scenario.new_sites, end_date=scenario.end_date)
        except svc.RecruitmentError as exc:
            problems.extend(exc.problems)
    return status, forecast, plain, problems


@router.get("/recruitment", response_class=HTMLResponse)
def recruitment(
    request: Request,
    page: ReaderPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    new_site_rate: str = "",
    new_site_opens: str = "",
    end_date: str = "",
    as_of: str = "",
) -> Response:
    assert page.user is not None
    typed = dict(zip(_FIELDS, (new_site_rate, new_site_opens, end_date, as_of), strict=True))
    read, refused = read_dates(page, typed, _DATES)
    read = {k: "" if k in refused else v for k, v in read.items()}  # the other fields are still checked
    problems: list[tuple[str, str]] = []
    try:
        scenario = svc.parse_scenario(**read)
        if refused:  # a date not read leaves the what-if out (the as-of date kept if it was read)
            scenario = svc.Scenario(as_of=scenario.as_of)
    except svc.RecruitmentError as exc:
        problems.extend(exc.problems)
        try:  # keep the as-of date if it alone is fine
            scenario = svc.parse_scenario(as_of=read["as_of"])
        except svc.RecruitmentError:
            scenario = svc.Scenario()
    status, forecast, plain, more = _results(engine, page.user, scenario)
    problems += more
    _ = translations(page.lang).gettext
    label = _date_label(page.calendar, page.lang)
    criteria = {c.id: c for c in (*protocol.eligibility.inclusion, *protocol.eligibility.exclusion)}
    failure_labels = [
        f"{r.code} {criteria[r.code].translations.get(page.lang, r.label) if r.code in criteria else r.label}"
        for r in status.screen_failures
    ]
    reason_labels = [_(REASONS.get(r.code, r.label)) for r in status.non_enrolment]
    errors: dict[str, list[str]] = {field: [message] for field, message in refused.items()}
    for field, rule in problems:
        errors.setdefault(field, []).append(f"{field}: {rule}")
    number = partial(digits, lang=page.lang)  # a count in the page's digits, on the plots too
    page_words = (page.lang, page.calendar, protocol.version)  # what else a plot's words, dates and digits depend on

    def fdate(text: str) -> str:
        return digits(format_date(dt.date.fromisoformat(text), page.calendar), page.lang)

    context = {
        "notes": notes_said(forecast.warnings, _, page.lang, fdate),
        "status": status,
        "t": status.totals,
        "forecast": forecast,
        "typed": typed,
        "errors": errors,
        "sites": {s.code: s.translations.get(page.lang) or s.name for s in protocol.sites},
        "reason_labels": reason_labels,
        "failure_labels": failure_labels,
        "registry": svc.registry_text(status, plain),
        "cumulative_svg": _plot(
            ("cumulative", status, *page_words, [arm_said(protocol, a.code, page.lang) for a in protocol.arms]),
            lambda: cumulative_svg(status, _, label, lambda arm: arm_said(protocol, arm, page.lang), number)),
        "forecast_svg": _plot(("forecast", forecast, *page_words), lambda: forecast_svg(forecast, _, label, number))
        if forecast.actual else "",
        "reasons_svg": _plot(("reasons", status.non_enrolment, reason_labels, *page_words),
                             lambda: reasons_svg(status.non_enrolment, reason_labels, "reasons",
                                                 _(N_("Why screened patients were not enrolled")), number))
        if status.non_enrolment else "",
        "failures_svg": _plot(("failures", status.screen_failures, failure_labels, *page_words),
                              lambda: reasons_svg(status.screen_failures, failure_labels, "failures",
                                                  _(N_("Eligibility criteria not met")), number))
        if status.screen_failures else "",
    }  # fmt: skip
    return render_page(request, page, "recruitment/index.html", context, status_code=422 if errors else 200)
