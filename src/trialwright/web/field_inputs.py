"""Reading back the inputs of entered fields (``templates/data/_inputs.html``), for the form page and the log entries
on the participant page alike.

Each field posts ``v-<id>`` (its value; several for a multiple choice), ``u-<id>`` (the unit chosen among its
alternative units), ``s-<id>`` (how it is recorded: a value, not done, not applicable, a quantification limit) and
``r-<id>`` (why it is not recorded). Dates and date-times are read in the viewer's calendar as ISO text (a date-time
on the site's clock: the service is told so). A field left empty is no entry, unless it held a value: then it is
cleared (never kept in silence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trialwright.domain.calendars import DateEntryError
from trialwright.protocol.forms import FormField
from trialwright.web.dates import read_date
from trialwright.web.templating import Page

__all__ = ["entries_from"]


def entries_from(
    page: Page, fields: Iterable[FormField], data: Any, stored: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """What the page sent for ``fields``, as the services' entries (only fields typed or cleared), and the dates
    refused, by input name. ``stored``: the values held now (field id -> stored value), or None."""
    entries: dict[str, Any] = {}
    refused: dict[str, str] = {}
    for f in fields:
        if f.derived is not None:
            continue
        status = str(data.get(f"s-{f.id}", "value"))
        raw: Any = data.getlist(f"v-{f.id}") if f.type.value == "multi_choice" else str(data.get(f"v-{f.id}", ""))
        raw = [r for r in raw if r] if isinstance(raw, list) else raw.strip()
        if f.type.value in {"date", "datetime"} and raw and status == "value":
            try:
                raw = read_date(page, raw, f.translations.get(page.lang) or f.label, time=f.type.value == "datetime")
            except DateEntryError as exc:
                refused[f"v-{f.id}"] = str(exc)
                continue
        unit = str(data.get(f"u-{f.id}", "")).strip() or None
        reason = str(data.get(f"r-{f.id}", "")).strip()
        if status in {"not_done", "not_applicable"}:
            entries[f.id] = {status: reason}
        elif status in {"below_lloq", "above_uloq"}:
            entries[f.id] = {status: raw, **({"unit": unit} if unit else {})}
        elif raw:
            entries[f.id] = {"value": raw, "unit": unit} if unit else raw
        elif stored is not None and f.id in stored:
            entries[f.id] = None  # emptied: cleared
    return entries, refused
