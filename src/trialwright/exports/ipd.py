"""The de-identified individual participant data set (IPD) the sharing plan promises.

Made from an ``ExportSource`` by the protocol's ``deidentification`` rules:

* participants get a pseudonym (``IPD-001`` ...) in an order drawn at random for each package, so the
  pseudonyms carry nothing of the participant ids, sites or enrolment order;
* direct identifiers (``identifiers``) are removed, and so is every free-text field but those kept by
  ``keep_text`` (and free text of adverse events: the reported term, narratives, causes of death; an event's
  MedDRA coding, preferred term and system organ class, stands for its term, empty while not coded);
* every date becomes the study day (days from randomization, day 0; from enrolment if not randomized), or is
  moved by one secret per-participant shift (``shift``) that is not written anywhere;
* the age (``age_field``, one of demographics.age's sources) is shown in bands (``age_band_width`` in
  demographics.age's unit) with one open band above ``age_top``: a form field's in its form's file, a screening
  field's (the screening record's value) as ``age`` in participants.csv; the site is dropped unless ``keep_site``;
* a k-anonymity check runs over the ``quasi_identifiers`` (form fields; screening fields, read as demographics and
  Table 1 read them, ``protocol.sources``, and kept in participants.csv as ``screening_<field>``, nothing else of
  the screening record shared; ``age`` or the ``age_field`` as banded; ``site``; a date as the package's dates
  are, the study day or the date its drawn shift moved), over the values the package holds: the package is
  refused, with the smallest group named, when a combination is shared by fewer than k people, and when none is
  declared (a check over nothing assesses nothing; ``protocol check`` refuses such a file, and the
  export a version stored before that rule; this writer refuses it too, never issuing it as passed).

``kanonymity(source)`` gives the check alone (no data written), for the data manager before a request; it refuses
a date quasi-identifier with ``dates: shift``, whose shifted values exist only once a package draws its shifts.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from trialwright.domain.eligibility import values_at_screening
from trialwright.domain.text import spreadsheet_values
from trialwright.exports.base import Exporter, ExportSource, ParticipantRecord, Progress
from trialwright.protocol import Protocol
from trialwright.protocol.declared import Aggregate, MinPresent
from trialwright.protocol.deidentification import DateHandling, Deidentification
from trialwright.protocol.forms import FieldType, FormField
from trialwright.protocol.sources import SCREENING, Source
from trialwright.protocol.sources import source as field_source

__all__ = ["IpdError", "IpdExporter", "KAnonymity", "kanonymity"]


class IpdError(ValueError):
    """An IPD package that cannot be made; the message names the rule."""


@dataclass(frozen=True)
class KAnonymity:
    """The k-anonymity check over the quasi-identifiers."""

    quasi_identifiers: tuple[str, ...]
    k: int
    participants: int
    groups: int
    smallest: int
    smallest_group: Mapping[str, str]  # the quasi-identifier values of (one of) the smallest groups
    passes: bool

    def summary(self) -> str:
        """One line."""
        if not self.quasi_identifiers:
            return (
                f"k-anonymity not assessed: the protocol declares no quasi-identifiers "
                f"(deidentification.quasi_identifiers), so nothing was checked against k={self.k}"
            )
        combo = ", ".join(f"{k}={v}" for k, v in self.smallest_group.items()) or "none"
        verdict = "passes" if self.passes else "FAILS"
        return (
            f"k-anonymity over {', '.join(self.quasi_identifiers) or 'nothing'}: {self.groups} groups of "
            f"{self.participants} participants; smallest group {self.smallest} ({combo}); k={self.k} {verdict}"
        )


def _rules(protocol: Protocol) -> Deidentification:
    if protocol.deidentification is None:
        raise IpdError("deidentification: the protocol declares no de-identification rules; add them first")
    return protocol.deidentification


def age_unit(protocol: Protocol) -> str:
    """The unit of the age the package bands (``age_band_width`` and ``age_top`` are in it): demographics.age's,
    whose fields include ``deidentification.age_field`` (``protocol check`` refuses another; a version stored before
    that rule is refused here, never banded as if in years)."""
    d, age = protocol.deidentification, protocol.demographics.age if protocol.demographics else None
    if d is None or d.age_field is None:
        return "years"
    if age is None or d.age_field not in age.sources:
        raise IpdError(
            f"deidentification.age_field: {d.age_field} is not one of demographics.age's fields (from), which "
            "declare the age's unit: the bands cannot be in a unit nobody declared"
        )
    return age.unit


def _band(age: float, d: Deidentification) -> str:
    if age > d.age_top:
        return f"{d.age_top + 1}+"
    low = int(age // d.age_band_width) * d.age_band_width
    return f"{low}-{min(low + d.age_band_width - 1, d.age_top)}"


def _banded(age: Any, d: Deidentification) -> str | None:
    """The age's band; None for no number (a bool is not an age)."""
    return _band(float(age), d) if isinstance(age, int | float) and not isinstance(age, bool) else None


def _first_values(source: ExportSource, refs: set[str]) -> dict[str, dict[str, Any]]:
    """Per participant, the first recorded value of each form.field in ``refs`` (in schedule order)."""
    out: dict[str, dict[str, Any]] = {}
    forms = {r.partition(".")[0] for r in refs}
    for form_id in sorted(forms):
        for rec in source.forms(form_id):
            mine = out.setdefault(rec.participant_id, {})
            for ref in refs:
                f, _, name = ref.partition(".")
                stored = rec.values.get(name) if f == form_id else None
                if ref not in mine and stored is not None and stored.get("value") is not None:
                    mine[ref] = stored["value"]
    return out


def _at_screening(source: ExportSource, names: set[str]) -> dict[str, dict[str, Any]]:
    """Per participant, the screening record's values of ``names`` as a ``screening.<field>`` source reads them
    (``domain.eligibility.values_at_screening``, as Table 1 reads them); nothing read when none is named."""
    if not names:
        return {}
    return values_at_screening(source.protocol, ((p.participant_id, p.screening_values) for p in source.participants()),
                               names)  # fmt: skip


def _screening_kept(protocol: Protocol, d: Deidentification) -> list[Source]:
    """The screening fields the package keeps in participants.csv: its screening quasi-identifiers but the age
    (``age_field``, shared banded as ``age``); nothing else of the screening record is shared."""
    found = [field_source(protocol, q) for q in d.quasi_identifiers if q not in {"site", "age"}]
    return [s for s in found if s.screening and s.ref != d.age_field]


def _ages(source: ExportSource, d: Deidentification) -> dict[str, Any]:
    """Per participant, the age ``age_field`` holds: a screening field's from the screening record, a form field's
    first recorded value (in schedule order)."""
    if d.age_field is None:
        return {}
    where, _, name = d.age_field.partition(".")
    if where == SCREENING:
        return {pid: values[name] for pid, values in _at_screening(source, {name}).items()}
    return {pid: values[d.age_field] for pid, values in _first_values(source, {d.age_field}).items() if values}


def _shared(source: ExportSource) -> list[ParticipantRecord]:
    """The participants the package shares: the randomized, but those who withdrew consent to the use of their
    data."""
    return [
        p
        for p in source.participants()
        if p.randomization_number is not None and not any(w[0] == "data_use" for w in p.withdrawals)
    ]


def _dated(asked: Any) -> bool:
    """Whether a field holds a date or a time, which the package holds as its dates are (``when``)."""
    return asked.type in (FieldType.DATE, FieldType.DATETIME)


#: A participant's date as the package holds it: (participant id, stored value) -> study day, shifted date or None.
When = Callable[[str, Any], Any]


def _dating(protocol: Protocol, d: Deidentification, people: list[ParticipantRecord], shift: Mapping[str, int]) -> When:
    """How the package holds a date of each of ``people``: the study day (days from randomization, day 0, at the
    participant's site), or the date moved by their ``shift``."""
    zone = {p.participant_id: ZoneInfo(protocol.site(p.site).timezone) for p in people}
    day0 = {p.participant_id: _day0(p, zone[p.participant_id]) for p in people}

    def when(pid: str, value: Any) -> Any:
        day = _as_date(value, zone[pid])
        if day is None:
            return None
        if d.dates is DateHandling.SHIFT:
            return (day + dt.timedelta(days=shift[pid])).isoformat()
        return (day - day0[pid]).days

    return when


def _quasi(
    source: ExportSource, d: Deidentification, people: list[ParticipantRecord], when: When
) -> dict[str, dict[str, str]]:
    """Per participant shared, the value of each quasi-identifier as the package holds it: the age (``age``, or
    ``age_field`` named by its reference) in its band, a form field's first recorded value, a screening field's the
    screening record's; a date (or time) as ``when`` writes it, never as stored."""
    others = {q: field_source(source.protocol, q) for q in d.quasi_identifiers if q not in {"site", "age", d.age_field}}
    first = _first_values(source, {s.ref for s in others.values() if not s.screening})
    screened = _at_screening(source, {s.name for s in others.values() if s.screening})
    ages = _ages(source, d) if {"age", d.age_field} & set(d.quasi_identifiers) else {}
    out: dict[str, dict[str, str]] = {}
    for p in people:
        pid = p.participant_id
        row = {}
        for q in d.quasi_identifiers:
            if q == "site":
                row[q] = p.site
                continue
            if q in {"age", d.age_field}:
                row[q] = _banded(ages.get(pid), d) or "missing"
                continue
            asked = others[q]
            value = screened.get(pid, {}).get(asked.name) if asked.screening else first.get(pid, {}).get(q)
            if value is not None and _dated(asked.field):
                value = when(pid, value)
            row[q] = "missing" if value is None else str(value)
        out[pid] = row
    return out


def kanonymity(source: ExportSource, when: When | None = None) -> KAnonymity:
    """The k-anonymity check of the shared participants over the declared quasi-identifiers, as the package holds
    them: a date as ``when`` (the package's) writes it, else as study days. With ``dates: shift`` a date's shifted
    value exists only once a package draws its shifts: without them the check is refused, never reported over
    dates no package holds."""
    d = _rules(source.protocol)
    age_unit(source.protocol)
    if when is None:
        dates = [q for q in d.quasi_identifiers if q not in {"site", "age", d.age_field}
                 and _dated(field_source(source.protocol, q).field)]  # fmt: skip
        if dates and d.dates is DateHandling.SHIFT:
            said = f"{', '.join(dates)} {'are dates' if len(dates) > 1 else 'is a date'}"
            raise IpdError(
                f"deidentification.quasi_identifiers: {said}, and with dates: shift each package moves them by shifts "
                "it draws, so their k-anonymity is known only over the dates a package holds: access issue checks it "
                "as it writes them (or share study days)"
            )
    people = _shared(source)
    when = when or _dating(source.protocol, d, people, {})
    rows = _quasi(source, d, people, when)
    counts = Counter(tuple(r.values()) for r in rows.values())
    if not d.quasi_identifiers:  # one group of everybody: a check over nothing, never reported as passed
        return KAnonymity((), d.k, len(rows), 1 if rows else 0, len(rows), {}, False)
    if not counts:
        return KAnonymity(tuple(d.quasi_identifiers), d.k, 0, 0, 0, {}, True)
    combo, smallest = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return KAnonymity(
        tuple(d.quasi_identifiers),
        d.k,
        len(rows),
        len(counts),
        smallest,
        dict(zip(d.quasi_identifiers, combo, strict=True)),
        smallest >= d.k,
    )


class IpdExporter(Exporter):
    """The de-identified IPD package (issued against an approved data access request)."""

    name = "ipd"
    description = "De-identified individual participant data, with its data dictionary and k-anonymity report"

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        protocol = source.protocol
        d = _rules(protocol)
        # A participant who withdrew consent to the use of their data is not shared. Their shifts are drawn first, so
        # that the check groups by the dates written.
        people = _shared(source)
        shift = {p.participant_id: secrets.randbelow(2 * d.shift_days + 1) - d.shift_days for p in people}
        when = _dating(protocol, d, people, shift)
        check = kanonymity(source, when)
        if not check.quasi_identifiers:
            raise IpdError(
                "deidentification.quasi_identifiers: none declared, so k-anonymity cannot be assessed and the package "
                "is issued only when it passes; declare the values that could single a person out (an amendment)"
            )
        if not check.passes:
            raise IpdError(
                f"k-anonymity: {check.summary()}; generalise the quasi-identifiers "
                "(wider age bands, fewer of them) before issuing"
            )
        order = list(range(len(people)))
        secrets.SystemRandom().shuffle(order)
        pseudonym = {p.participant_id: f"IPD-{order[i] + 1:03d}" for i, p in enumerate(people)}

        written: list[Path] = []
        dictionary: list[dict[str, str]] = []
        age_ref, unit = d.age_field, age_unit(protocol)
        # A screening field's age has no form file: it is shared banded, beside the participant, and nothing else of
        # the screening record is.
        screening_age = _ages(source, d) if age_ref and age_ref.startswith(f"{SCREENING}.") else None
        # The screening quasi-identifiers the check groups by are kept beside the participant, as recorded (a date
        # as the package's dates are), so the check is over what the package holds.
        at_screening = _screening_kept(protocol, d)
        screened = _at_screening(source, {s.name for s in at_screening})
        # participants
        rows = []
        for p in sorted(people, key=lambda p: pseudonym[p.participant_id]):
            pid = p.participant_id
            row: dict[str, Any] = {"ipd_id": pseudonym[pid]}
            if source.with_arms:
                row["arm"] = p.arm
            if d.keep_site:
                row["site"] = p.site
            row["consent_by"] = p.consent_given_by
            row["randomized_day"] = 0 if p.randomized_at is not None else None
            row["withdrawal"] = "; ".join(f"{w[0]} on day {when(pid, w[1])}" for w in p.withdrawals)
            if screening_age is not None:
                row["age"] = _banded(screening_age.get(pid), d)
            for kept_field in at_screening:
                value = screened.get(pid, {}).get(kept_field.name)
                row[_column(kept_field)] = when(pid, value) if _dated(kept_field.field) else value
            rows.append(row)
        written.append(_csv(folder / "participants.csv", rows))
        dictionary += [
            {"file": "participants.csv", "variable": "ipd_id", "label": "Pseudonym, drawn at random per package"},
            {"file": "participants.csv", "variable": "consent_by", "label": "Consent by participant or representative"},
            {"file": "participants.csv", "variable": "randomized_day", "label": "Study day of randomization (0)"},
            {"file": "participants.csv", "variable": "withdrawal", "label": "Withdrawals: scope and study day"},
        ]
        if source.with_arms:
            dictionary.append({"file": "participants.csv", "variable": "arm", "label": "Arm code (as randomized)"})
        if screening_age is not None:
            dictionary.append({"file": "participants.csv", "variable": "age", "label": (
                f"Age at screening ({age_ref}); banded by {d.age_band_width} {unit}, {d.age_top + 1}+ above {d.age_top}"
            )})  # fmt: skip
        for kept_field in at_screening:
            asked = kept_field.field
            label = f"{asked.label} at screening ({kept_field.ref})" + (f"; {asked.unit}" if asked.unit else "")
            if _dated(asked):
                label += "; study day" if d.dates is DateHandling.STUDY_DAYS else "; shifted date"
            codes = "; ".join(f"{c.code}={c.label}" for c in asked.choices)
            dictionary.append({"file": "participants.csv", "variable": _column(kept_field), "label": label,
                               "codes": codes})  # fmt: skip
        # forms
        done = 0
        # Log forms (medications, medical history) are not in the shared package: each is listed as removed.
        dropped: list[str] = [f"logs/{log.id} (every entry)" for log in protocol.logs]
        for form in protocol.forms:
            kept = []
            for f in form.fields:
                ref = f"{form.id}.{f.id}"
                if ref in d.identifiers or (f.type is FieldType.TEXT and ref not in d.keep_text):
                    dropped.append(ref)
                    continue
                kept.append(f)
            rows = []
            for rec in source.forms(form.id):
                done += 1
                if progress:
                    progress(done)
                pid = rec.participant_id
                if pid not in pseudonym:
                    continue
                row = {"ipd_id": pseudonym[pid], "visit": rec.visit_id, "visit_day": when(pid, rec.visit_date)}
                for f in kept:
                    row[f.id] = _ipd_value(f.type, rec.values.get(f.id), lambda v, pid=pid: when(pid, v))
                    if age_ref == f"{form.id}.{f.id}" and isinstance(row[f.id], int | float):
                        row[f.id] = _band(float(row[f.id]), d)
                rows.append(row)
            rows.sort(key=lambda r: (r["ipd_id"], r["visit_day"] if r["visit_day"] is not None else 10**6))
            written.append(
                _csv(folder / "forms" / f"{form.id}.csv", rows, ["ipd_id", "visit", "visit_day", *(f.id for f in kept)])
            )
            for f in kept:
                label = f.label + (f" ({f.unit})" if f.unit else "")
                if f.type in (FieldType.DATE, FieldType.DATETIME):
                    label += "; study day" if d.dates is DateHandling.STUDY_DAYS else "; shifted date"
                if age_ref == f"{form.id}.{f.id}":
                    label += f"; banded by {d.age_band_width} {unit}, {d.age_top + 1}+ above {d.age_top}"
                label += _declared(f)
                codes = "; ".join(f"{c.code}={c.label}" for c in f.choices)
                dictionary.append({"file": f"forms/{form.id}.csv", "variable": f.id, "label": label, "codes": codes})
        # adverse events
        rows = []
        not_coded = 0
        for e in source.events():
            if e.participant_id not in pseudonym:
                continue
            a = e.assessment
            pid = e.participant_id
            coded = e.coding or {}
            not_coded += not coded
            rows.append(
                {
                    "ipd_id": pseudonym[pid],
                    # The reported (verbatim) term is free text and stays out; the coder's MedDRA terms stand for it.
                    "meddra_version": coded.get("version"),
                    "pt_code": coded.get("pt_code"),
                    "pt_name": coded.get("pt_name"),
                    "soc_code": coded.get("soc_code"),
                    "soc_name": coded.get("soc_name"),
                    "grade": a.get("grade"),
                    "serious": e.serious,
                    "related": e.related,
                    "expected": e.expected,
                    "susar": e.susar,
                    "criteria": ",".join(a.get("seriousness_criteria") or []),
                    "onset_day": when(pid, a.get("onset")),
                    "end_day": when(pid, a.get("end")),
                    "outcome": a.get("outcome"),
                    "action_taken": a.get("action_taken"),
                }
            )
        rows.sort(key=lambda r: (r["ipd_id"], r["onset_day"] if r["onset_day"] is not None else 10**6))
        ae_columns = ["ipd_id", "meddra_version", "pt_code", "pt_name", "soc_code", "soc_name", "grade", "serious",
                      "related", "expected", "susar", "criteria", "onset_day", "end_day", "outcome", "action_taken"]
        written.append(_csv(folder / "adverse_events.csv", rows, ae_columns))
        dropped.append("adverse_events.term (the reported term, free text; its MedDRA coding is kept)")
        for variable, label in (
            ("meddra_version", "MedDRA version of the event's coding (empty: not coded)"),
            ("pt_code", "MedDRA preferred term code (empty: not coded)"),
            ("pt_name", "MedDRA preferred term (empty: not coded)"),
            ("soc_code", "MedDRA primary system organ class code (empty: not coded)"),
            ("soc_name", "MedDRA primary system organ class (empty: not coded)"),
        ):
            dictionary.append({"file": "adverse_events.csv", "variable": variable, "label": label})
        written.append(_csv(folder / "data_dictionary.csv", dictionary, ["file", "variable", "label", "codes"]))
        report = {
            "kanonymity": asdict(check),
            "removed": sorted(set(dropped)),
            "adverse_events_not_coded": not_coded,
            "dates": d.dates.value,
            "site_kept": d.keep_site,
            "arms_included": source.with_arms,
            "participants": len(people),
            "trial_id": source.trial_id,
            "protocol_version": source.protocol_version,
            "made_at": source.taken_at.isoformat(),
        }
        path = folder / "deidentification.json"
        path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        written.append(path)
        readme = folder / "README.txt"
        readme.write_text(_readme(source, d, check, sorted(set(dropped)), not_coded), encoding="utf-8")
        written.append(readme)
        return written


def _column(kept: Source) -> str:
    """participants.csv's column of a kept screening field: ``screening_<field>`` (a dot is no column name for
    many statistics packages)."""
    return f"{SCREENING}_{kept.name}"


def _day0(p: ParticipantRecord, zone: ZoneInfo) -> dt.date:
    moment = p.randomized_at or p.enrolled_at
    return moment.astimezone(zone).date()


def _as_date(value: Any, zone: ZoneInfo) -> dt.date | None:
    """The calendar day of a date or time at the participant's site (times are stored in UTC)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value)
    try:
        if "T" in text:
            moment = dt.datetime.fromisoformat(text)
            return moment.astimezone(zone).date() if moment.tzinfo else moment.date()
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _declared(f: FormField) -> str:
    """What the protocol declares of a field's values that its column does not show (walk 7 F8): a censored value
    written as text in a numeric column, and whether a derived total is pro-rated."""
    said = ""
    if f.quantification_limits:
        said += ("; a value below the lower limit of quantification is the text <limit (e.g. <2.0), one above the "
                 "upper >limit, the limit as recorded (quantification_limits)")  # fmt: skip
    rule = f.derived
    if isinstance(rule, Aggregate) and isinstance(rule.missing, MinPresent) and rule.missing.prorate is not None:
        n, least = len(rule.fields), rule.missing.min_present
        how = f"pro-rated x {n}/(inputs present)" if rule.missing.prorate else "not pro-rated"
        said += f"; derived: the {rule.kind} of {', '.join(rule.fields)}, with at least {least} of the {n} present, "
        said += how
    return said


def _ipd_value(kind: FieldType, stored: Mapping[str, Any] | None, when: Any) -> Any:
    if stored is None:
        return None
    status = stored.get("status", "value")
    if status == "below_lloq":
        return f"<{stored.get('limit')}"
    if status == "above_uloq":
        return f">{stored.get('limit')}"
    if status in {"not_done", "not_applicable"}:
        return status
    value = stored.get("value")
    if kind in (FieldType.DATE, FieldType.DATETIME):
        return when(value)
    if isinstance(value, list):
        return ",".join(map(str, value))
    return value


def _csv(path: Path, rows: list[dict[str, Any]], fields: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = fields or (list(rows[0]) if rows else ["ipd_id"])
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(spreadsheet_values(r) for r in rows)
    return path


def _ages_line(protocol: Protocol, d: Deidentification) -> list[str]:
    """What the README says of ages: where the banded age is and how; nothing when the package holds no age (no
    age_field: ``protocol check`` refuses a form's age field left in unbanded, and so does the export for a version
    stored before that rule; a screening value is never shared unbanded)."""
    if d.age_field is None:
        return []
    where = "participants.csv, age" if d.age_field.startswith("screening.") else d.age_field
    unit = age_unit(protocol)
    w, top = d.age_band_width, d.age_top
    # Bands count from 0; the one holding the top age ends at it when a whole band would pass it (walk 5: "bands of
    # 20 years" while the package held 80-89).
    cut = top + 1 - (top + 1) % w
    last = f"; the band from {cut} ends at {top}" if (top + 1) % w else ""
    return [f"Ages ({where}): in bands of {w} {unit} from 0 (0-{w - 1}, {w}-{2 * w - 1}, ...{last}); above {top} as "
            f"{top + 1}+"]


def _readme(
    source: ExportSource, d: Deidentification, check: KAnonymity, dropped: list[str], not_coded: int
) -> str:
    return "\n".join(
        [
            f"De-identified individual participant data of trial {source.trial_id}",
            f"protocol version {source.protocol_version}, made {source.taken_at:%Y-%m-%d %H:%M} UTC",
            "",
            "participants.csv      one row per randomized participant (pseudonym drawn at random for this package)",
            "forms/<form>.csv      one row per participant and visit, one column per kept field",
            "adverse_events.csv    one row per adverse event by its MedDRA coding (no reported term, narrative or",
            "                      cause of death text: free text); "
            + (f"{not_coded} not coded yet, their terms empty" if not_coded else "every event coded"),
            "data_dictionary.csv   every variable of this package",
            "deidentification.json the rules applied and the k-anonymity check",
            "",
            "Dates: "
            + (
                "study days from randomization (day 0)"
                if d.dates is DateHandling.STUDY_DAYS
                else f"shifted by a secret per-participant offset of up to {d.shift_days} days"
            ),
            *_ages_line(source.protocol, d),
            f"Site: {'kept' if d.keep_site else 'removed'}; arms: {'included' if source.with_arms else 'not included'}",
            "Removed: " + (", ".join(dropped) or "nothing"),
            check.summary(),
            "",
        ]
    )
