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
from trialwright.web.i18n import translations
from trialwright.web.templating import Page

__all__ = ["read_date", "read_dates"]


def read_date(page: Page, text: str, label: str, *, time: bool = False) -> str:
    """One typed date (``time``: date and time) as ISO text; ``DateEntryError`` names the translated label."""
    return entered_date(text, page.calendar, translations(page.lang).gettext(label), time=time)


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
