"""Dates typed on pages, in the viewer's calendar: read into Gregorian ISO text before a service sees them.

A person whose calendar is Solar Hijri (or both) types dates into text inputs (``templates/_dates.html``);
a Gregorian one gets the browser's native date inputs. Either way the route reads each date field here,
with ``trialwright.domain.calendars.entered_date``: the service receives ISO text, and a date that is not
exactly one date is refused with the field's label and the rule, while the page keeps what was typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trialwright.domain.calendars import DateEntryError, entered_date
from trialwright.web.i18n import N_, text_direction, translations
from trialwright.web.localized import digits
from trialwright.web.templating import Page

__all__ = ["DATE_RULE_WORDS", "date_refusal", "read_date", "read_dates"]

#: ``domain.calendars.DATE_RULES`` as message ids, said in the page's language (the same English text).
DATE_RULE_WORDS: dict[str, str] = {
    "form": N_("is not a date written year first, e.g. %(examples)s"),
    "ambiguous": N_("is ambiguous: write the year first, as 4 digits, e.g. %(examples)s"),
    "jalali_day": N_(
        "is not a date in the Solar Hijri calendar (months 1-12; months 1-6 have 31 days, 7-11 have 30, and 12 has "
        "29, or 30 in a leap year)"
    ),
    "jalali_leap": N_(
        "is not a date in the Solar Hijri calendar (months 1-12; months 1-6 have 31 days, 7-11 have 30, and 12 has "
        "29, or 30 in a leap year; %(year)s is not a leap year)"
    ),
    "gregorian_day": N_("is not a date in the Gregorian calendar"),
    "jalali_year": N_(
        "is not a Solar Hijri date: the year must be %(first)s-%(last)s, e.g. %(examples)s (your calendar is Solar "
        "Hijri; change it on your profile)"
    ),
    "gregorian_year": N_("is not a Gregorian date: the year must be %(first)s or later, e.g. %(examples)s"),
    "gregorian_year_jalali": N_(
        "is not a Gregorian date: the year must be %(first)s or later, e.g. %(examples)s (your calendar is "
        "Gregorian; change it on your profile)"
    ),
    "neither": N_(
        "is in neither calendar: a Solar Hijri year is %(first)s-%(last)s, a Gregorian one %(gfirst)s or later"
    ),
    "date_with_time": N_("is a date and time where a date alone is asked for, e.g. %(examples)s"),
    "needs_time": N_("needs a time after the date, as HH:MM, e.g. %(examples)s"),
    "not_time": N_("is not a time of day (hours 0-23, minutes and seconds 0-59)"),
}

#: Unicode isolates: what was typed, an example or a number reads left to right inside a right-to-left sentence
#: (LRI ... PDI), and the field's label keeps its own direction (FSI ... PDI). ``fdates_in`` leaves an isolated
#: date as it is written: what was typed is quoted as typed, never converted.
LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"


def date_refusal(exc: DateEntryError, lang: str) -> str:
    """A refused date in the page's language: the label, what was typed exactly as typed, and the rule with its
    examples and numbers (in the page's digits), each isolated so that nothing scrambles right to left."""
    gettext = translations(lang).gettext

    def one(value: object) -> str:
        if isinstance(value, tuple):  # examples: isolated, so that fdates_in quotes them as written
            return f" {gettext('or')} ".join(f"{LRI}{digits(v, lang)}{PDI}" for v in value)
        return f"{LRI}{digits(value, lang)}{PDI}" if text_direction(lang) == "rtl" else str(value)

    rule = gettext(DATE_RULE_WORDS[exc.rule]) % {k: one(v) for k, v in exc.params.items()}
    label = f"{FSI}{exc.label}{PDI}" if text_direction(lang) == "rtl" else exc.label
    return f"{label}: {LRI}{exc.typed}{PDI} {rule}"  # what was typed: always isolated, so never converted


def read_date(page: Page, text: str, label: str, *, time: bool = False) -> str:
    """One typed date (``time``: date and time) as ISO text; ``DateEntryError`` says the refusal in the page's
    language (``date_refusal``), naming the translated label."""
    try:
        return entered_date(text, page.calendar, translations(page.lang).gettext(label), time=time)
    except DateEntryError as exc:
        said = DateEntryError(exc.label, exc.typed, exc.rule, exc.params, "")
        said.args = (date_refusal(exc, page.lang),)
        raise said from None


def read_dates(
    page: Page, typed: Mapping[str, Any], dates: Mapping[str, str], times: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """``typed`` with each of its fields named in ``dates`` (field -> label; ``times``: dates and times) read
    as ISO text, and the refusals by field. Fields not typed are left as they are (absent or empty)."""
    read = dict(typed)
    refused: dict[str, str] = {}
    for fields, time in ((dates, False), (times or {}, True)):
        for name, label in fields.items():
            value = typed.get(name)
            if not isinstance(value, str) or not value.strip():
                continue
            try:
                read[name] = read_date(page, value, label, time=time)
            except DateEntryError as exc:
                refused[name] = str(exc)
    return read, refused
