"""A participant's death, from whichever record says it first (pure: no database).

A death is recorded by a fatal adverse event (its death date), by the protocol's death record (e.g. a
hospital course ending in death, at its visit) or by any vital-status field the protocol declares, at any
visit. The earliest date any of them gives is the death; each source is named, so a page, a refusal or a
report can say where it comes from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trialwright.protocol import Protocol

__all__ = ["Death", "earliest_death"]


@dataclass(frozen=True)
class Death:
    """The date of death and the record it was read from."""

    on: dt.date
    source: str


def earliest_death(
    protocol: Protocol, by_visit: Mapping[str, Mapping[str, Any]], fatal: Iterable[Death] = ()
) -> Death | None:
    """The earliest death the records give: ``by_visit`` maps a visit id to its plain values by
    ``form.field`` (ISO text for dates), ``fatal`` are the deaths fatal adverse events report."""
    found = list(fatal)
    record = protocol.safety.death_record
    sources: list[tuple[str, list[str], str, str | None]] = [(v.field, v.died_values, v.date_field, None)
                                                               for v in protocol.safety.vital_status]  # fmt: skip
    if record is not None:
        sources.append((f"{record.form}.{record.status_field}", [record.status_value],
                        f"{record.form}.{record.date_field}", record.visit))  # fmt: skip
    for field, died, date_field, only_at in sources:
        for visit, values in by_visit.items():
            if only_at is not None and visit != only_at:
                continue
            on = values.get(date_field)
            if str(values.get(field)) in died and isinstance(on, str):
                with contextlib.suppress(ValueError):  # not a date: form validation refuses it; no day is guessed
                    found.append(Death(dt.date.fromisoformat(on[:10]), f"{field} at {visit}"))
    return min(found, key=lambda d: (d.on, d.source)) if found else None
