"""A participant's death, from whichever record says it first (pure: no database).

A death is recorded by a fatal adverse event (its death date), by the protocol's death record (e.g. a
hospital course ending in death, at its visit) or by any vital-status field the protocol declares, at any
visit. The earliest date any of them gives is the death; each source is named, so a page, a refusal or a
report can say where it comes from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from trialwright.protocol import Protocol

__all__ = ["Death", "death_fields", "death_forms", "deaths_found", "earliest_death", "fatal_death", "plain_values",
           "undated_deaths"]


@dataclass(frozen=True)
class Death:
    """The date of death and the record it was read from."""

    on: dt.date
    source: str


def fatal_death(ae_number: str, assessment: Mapping[str, Any]) -> Death | None:
    """The death an adverse event's current report gives: a fatal outcome, on its death date (else its onset)."""
    if assessment.get("outcome") != "fatal":
        return None
    return Death(dt.date.fromisoformat(str(assessment.get("death_date") or assessment["onset"])[:10]),
                 f"adverse event {ae_number}")  # fmt: skip


def death_forms(protocol: Protocol) -> frozenset[str]:
    """The forms whose values can say a participant died: the death record and the vital-status fields' forms."""
    return frozenset(key.partition(".")[0] for key in death_fields(protocol))


def death_fields(protocol: Protocol) -> frozenset[str]:
    """The ``form.field`` keys that can say a participant died and when (what ``deaths_found`` reads)."""
    keys = {f for v in protocol.safety.vital_status for f in (v.field, v.date_field)}
    record = protocol.safety.death_record
    if record is not None:
        keys |= {f"{record.form}.{record.status_field}", f"{record.form}.{record.date_field}"}
    return frozenset(keys)


def plain_values(form_id: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """A form record's stored values that hold a value (as a value or derived; not "not done", "unknown", ...),
    keyed ``form.field``: the shape ``deaths_found`` reads for one visit."""
    return {
        f"{form_id}.{name}": value.get("value")
        for name, value in stored.items()
        if isinstance(value, Mapping) and value.get("status", "value") in {"value", "derived"}
    }


def deaths_found(
    protocol: Protocol, by_visit: Mapping[str, Mapping[str, Any]], fatal: Iterable[Death] = ()
) -> list[Death]:
    """Every death the records give, earliest first: ``by_visit`` maps a visit id to its plain values by
    ``form.field`` (ISO text for dates; ``plain_values``), ``fatal`` are the deaths fatal adverse events report
    (``fatal_death``). Two sources may disagree on the day; the caller that writes one day says so."""
    found = list(fatal)
    for field, visit, on in _said_died(protocol, by_visit):
        if isinstance(on, str):
            with contextlib.suppress(ValueError):  # not a date: form validation refuses it; no day is guessed
                found.append(Death(dt.date.fromisoformat(on[:10]), f"{field} at {visit}"))
    return sorted(set(found), key=lambda d: (d.on, d.source))  # a field both vital status and death record: once


def undated_deaths(protocol: Protocol, by_visit: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The sources (``field at visit``) that say the participant died but give no date: no death is counted from
    them (no day is guessed), so a writer lists them."""
    return list(dict.fromkeys(f"{field} at {visit}" for field, visit, on in _said_died(protocol, by_visit)
                              if not isinstance(on, str)))  # fmt: skip


def _said_died(protocol: Protocol, by_visit: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """(status field, visit, the date field's value) for each status saying died: the vital-status fields at any
    visit, the death record at its visit."""
    record = protocol.safety.death_record
    sources: list[tuple[str, list[str], str, str | None]] = [(v.field, v.died_values, v.date_field, None)
                                                               for v in protocol.safety.vital_status]  # fmt: skip
    if record is not None:
        sources.append((f"{record.form}.{record.status_field}", [record.status_value],
                        f"{record.form}.{record.date_field}", record.visit))  # fmt: skip
    for field, died, date_field, only_at in sources:
        for visit, values in by_visit.items():
            if (only_at is None or visit == only_at) and str(values.get(field)) in died:
                yield field, visit, values.get(date_field)


def earliest_death(
    protocol: Protocol, by_visit: Mapping[str, Mapping[str, Any]], fatal: Iterable[Death] = ()
) -> Death | None:
    """The earliest death the records give (``deaths_found``), or None."""
    found = deaths_found(protocol, by_visit, fatal)
    return found[0] if found else None
