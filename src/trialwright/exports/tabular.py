"""Tabular exports: the trial as flat tables in CSV, Parquet, Stata (.dta), SPSS (.sav) and SAS transport (.xpt).

Every tabular format writes the same tables, described in its README.txt:

- ``participants``: one row per participant (the ``arm`` column only in an export made with arms);
- ``forms/<form_id>``: one row per participant and visit, one column per field holding the analysis value;
  ``<field>_flag`` (``<LLOQ`` or ``>ULOQ``, the value then being the limit) for fields with limits of
  quantification; ``<field>_status`` and ``<field>_reason`` only for fields the form has recorded as not done
  or not applicable (their value is then empty);
- ``values_long``: one row per stored value, with its unit, status, reason, limit and the value as entered;
- ``consents``, ``randomization`` (the ``arm`` column only in an export made with arms), ``adverse_events``
  (with its MedDRA coding) and ``deaths`` (the earliest death each participant's records give, and the record it
  comes from), so that every primary outcome can be computed from one export;
- ``logs/<log_id>``: one row per entry of a log form (concomitant medications, medical history), with its
  ``sequence``, ``entry_state`` (active or removed) and ``removed_reason``, one column per field, and the entry's
  coding (a medical history log's MedDRA LLT, PT and SOC; any other log's ATC code and name); empty while not coded.

A table is declared once as ``Column`` s; a format is a ``TabularExporter`` that opens a ``Sink`` per table
(two or three methods). Form records are streamed one form at a time, twice (the first pass finds which
fields need status columns), so CSV and Parquet are written in constant memory; Stata, SPSS and SAS
(``trialwright.exports.statistical``) spool each table to Parquet and write it whole from its Arrow columns.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from operator import is_
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trialwright.domain.deaths import Death, earliest_death
from trialwright.domain.log_undeclared import undeclared
from trialwright.exports.base import (
    EventRecord,
    Exporter,
    ExportSource,
    FormRecord,
    FormRow,
    LogRecord,
    ParticipantRecord,
    Progress,
    StoredJson,
)
from trialwright.exports.columnar import (
    BATCH_ROWS,
    CSV_BATCH_ROWS,
    CsvSink,
    ParquetSink,
    floats_text,
    no_cycle_scans,
)
from trialwright.exports.stored_columns import StoredColumns, read_stored, stored_schema
from trialwright.protocol.forms import FieldType, FormDef, FormField
from trialwright.protocol.logs import LogDef, coding_columns

__all__ = [
    "Column",
    "CsvExporter",
    "CsvSink",
    "ParquetExporter",
    "ParquetSink",
    "Sink",
    "Table",
    "TabularExporter",
    "analysis_value",
    "value_text",
]

ColumnKind = Literal["text", "number", "date", "datetime", "yesno", "code"]

#: How a censored value is flagged, and what the flag means.
FLAGS = {"below_lloq": "<LLOQ", "above_uloq": ">ULOQ"}
_FLAG_CHOICES = (("<LLOQ", "Below the lower limit of quantification"), (">ULOQ", "Above the upper limit"))
_STATUS_CHOICES = (("not_done", "Not done"), ("not_applicable", "Not applicable"))
_MISSING = frozenset({"not_done", "not_applicable"})
MULTI_SEPARATOR = "|"
#: Form records read and written together (as columns) by the tabular tables.
_CHUNK_RECORDS = 1024


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table: its name, kind, label (with unit) and, for codes, the code list."""

    name: str
    kind: ColumnKind
    label: str
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Table:
    """A table as every format writes it; ``name`` is its path without extension (``forms/labs``)."""

    name: str
    label: str
    columns: tuple[Column, ...]


class Sink(Protocol):
    """Where one table's rows go."""

    rows: int

    def add(self, row: Mapping[str, Any]) -> None: ...

    def close(self) -> list[Path]: ...


# --- the tables -------------------------------------------------------------------------------------------

_KINDS: dict[FieldType, ColumnKind] = {
    FieldType.INTEGER: "number",
    FieldType.DECIMAL: "number",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime",
    FieldType.TIME: "text",
    FieldType.CHOICE: "code",
    FieldType.MULTI_CHOICE: "text",
    FieldType.BOOLEAN: "yesno",
    FieldType.TEXT: "text",
}


def _field_label(f: FormField) -> str:
    if f.type is FieldType.DATETIME:
        return f"{f.label} (UTC)"
    return f"{f.label} ({f.unit})" if f.unit and f.unit not in f.label else f.label


def _record_columns(source: ExportSource) -> tuple[Column, ...]:
    p = source.protocol
    return (
        Column("participant_id", "text", "Participant id"),
        Column("site", "code", "Site", tuple((s.code, s.name) for s in p.sites)),
        Column("visit_id", "code", "Visit", tuple((v.id, v.name) for v in p.visits)),
        Column("visit_date", "date", "Visit date"),
    )


def participants_table(source: ExportSource) -> Table:
    """The participants table; the arm column only in a source made with arms."""
    columns = [
        Column("participant_id", "text", "Participant id"),
        Column("site", "code", "Site", tuple((s.code, s.name) for s in source.protocol.sites)),
        Column("screening_number", "text", "Screening number"),
        Column("screened_on", "date", "Date of screening"),
        Column("enrolled_at", "datetime", "Enrolled at (UTC)"),
        Column("consent_given_by", "code", "Consent given by", (("participant", "Participant"),
                                                                 ("representative", "Representative"))),
        Column("consented_at", "datetime", "Consent obtained at (UTC)"),
        Column("randomization_number", "number", "Randomization number"),
        Column("randomized_at", "datetime", "Randomized at (UTC)"),
        Column("stratum", "text", "Randomization stratum"),
        Column("withdrawn_on", "date", "Date of the first withdrawal"),
        Column("withdrawals", "text", "Withdrawals (scope on date, cause: reason)"),
    ]  # fmt: skip
    if source.with_arms:
        columns.append(Column("arm", "code", "Allocated arm", tuple((a.code, a.name) for a in source.protocol.arms)))
    return Table("participants", "Participants", tuple(columns))


def participant_row(p: ParticipantRecord, with_arms: bool) -> dict[str, Any]:
    """One participant as a row of the participants table."""
    row: dict[str, Any] = {
        "participant_id": p.participant_id,
        "site": p.site,
        "screening_number": p.screening_number,
        "screened_on": p.screened_on,
        "enrolled_at": p.enrolled_at,
        "consent_given_by": p.consent_given_by,
        "consented_at": p.consented_at,
        "randomization_number": p.randomization_number,
        "randomized_at": p.randomized_at,
        "stratum": p.stratum,
        "withdrawn_on": min((w[1] for w in p.withdrawals), default=None),
        "withdrawals": "; ".join(
            f"{s} on {d.isoformat()}, {c or 'cause not recorded'}: {r}" for s, d, r, c in p.withdrawals
        )
        or None,
    }
    if with_arms:
        row["arm"] = p.arm
    return row


def long_table(source: ExportSource) -> Table:
    """One row per stored value."""
    base = _record_columns(source)
    return Table(
        "values_long",
        "Stored values, one row each",
        (
            *base,
            Column("form_id", "code", "Form", tuple((f.id, f.name) for f in source.protocol.forms)),
            Column("field_id", "text", "Field"),
            Column("value", "text", "Value (canonical unit; codes; yes/no as 1/0)"),
            Column("value_num", "number", "Value as a number (numeric fields)"),
            Column("unit", "text", "Canonical unit"),
            Column("status", "code", "Status", tuple((s, s.replace("_", " ")) for s in _STATUSES)),
            Column("reason", "text", "Reason (not done, not applicable; a derived value's note)"),
            Column("limit", "number", "Limit of quantification (canonical unit), for censored values"),
            Column("entered", "text", "Value as entered"),
            Column("entered_unit", "text", "Unit as entered"),
        ),
    )


#: What the README says the consents table holds (and does not).
_CONSENTS_ARE = ("one row per participant with a recorded consent: the consent they were enrolled on, with its "
                 "assent; a later re-consent's assent is not here (the ODM and FHIR exports carry every consent "
                 "record)")  # fmt: skip

_STATUSES = ("value", "derived", "not_done", "not_applicable", "below_lloq", "above_uloq")


def _site(source: ExportSource) -> Column:
    return Column("site", "code", "Site", tuple((s.code, s.name) for s in source.protocol.sites))


#: The child's assent recorded with a representative's consent (protocol ``eligibility.assent``), as the consents
#: table codes it.
_ASSENT_CODES = (("given", "Given"), ("dissent", "Dissent"), ("not_sought", "Not sought"))


def consents_table(source: ExportSource) -> Table:
    """One row per participant with a recorded consent: who gave it and when, and the child's assent recorded with
    it (``eligibility.assent``; blank where none was sought). Every trial's table has the assent columns, so that an
    assent recorded under an earlier protocol version is never left out."""
    return Table("consents", "Consents", (
        Column("participant_id", "text", "Participant id"),
        _site(source),
        Column("consent_given_by", "code", "Consent given by", (("participant", "Participant"),
                                                                 ("representative", "Representative"))),
        Column("consented_at", "datetime", "Consent obtained at (UTC)"),
        Column("assent", "code", "Child's assent", _ASSENT_CODES),
        Column("assent_obtained_at", "datetime", "Assent sought at (UTC)"),
        Column("assent_form_version", "text", "Assent form version"),
        Column("assent_not_sought_reason", "text", "Why assent was not sought"),
    ))  # fmt: skip


def consent_row(p: ParticipantRecord, row: Mapping[str, Any], table: Table) -> dict[str, Any]:
    """A participant's row of the consents table (``row``: its participants row): the consent it was enrolled on,
    with the assent recorded with it."""
    c = p.consent
    assent = {
        "assent": c.assent if c else None,
        "assent_obtained_at": c.assent_obtained_at if c else None,
        "assent_form_version": c.assent_form_version if c else None,
        "assent_not_sought_reason": c.assent_not_sought_reason if c else None,
    }
    return {col.name: assent[col.name] if col.name in assent else row[col.name] for col in table.columns}


def randomization_table(source: ExportSource) -> Table:
    """One row per randomized participant; the arm only in a source made with arms."""
    columns = [
        Column("participant_id", "text", "Participant id"),
        _site(source),
        Column("randomization_number", "number", "Randomization number"),
        Column("randomized_at", "datetime", "Randomized at (UTC)"),
        Column("stratum", "text", "Randomization stratum"),
    ]
    if source.with_arms:
        columns.append(Column("arm", "code", "Allocated arm", tuple((a.code, a.name) for a in source.protocol.arms)))
    return Table("randomization", "Randomization", tuple(columns))


_AE_OUTCOMES = (("recovered", "Recovered"), ("recovering", "Recovering"), ("not_recovered", "Not recovered"),
                ("recovered_with_sequelae", "Recovered with sequelae"), ("fatal", "Fatal"), ("unknown", "Unknown"))


def events_table(source: ExportSource) -> Table:
    """One row per adverse event, as its latest report assesses it."""
    return Table("adverse_events", "Adverse events", (
        Column("ae_number", "text", "Adverse event number"),
        Column("participant_id", "text", "Participant id"),
        _site(source),
        Column("term", "text", "Adverse event term"),
        Column("onset", "date", "Onset date"),
        Column("end", "date", "End date"),
        Column("grade", "number", "Grade (CTCAE)"),
        Column("serious", "yesno", "Serious"),
        Column("criteria", "text", "Seriousness criteria"),
        Column("related", "yesno", "Related to the investigational product"),
        Column("expected", "yesno", "Expected"),
        Column("expected_event", "code", "Expected event named (reference safety information)",
               tuple((e.code, e.term) for e in source.protocol.safety.expected_events)),
        Column("susar", "yesno", "SUSAR"),
        Column("outcome", "code", "Outcome", _AE_OUTCOMES),
        Column("death_date", "date", "Date of death (fatal events)"),
        Column("action_taken", "text", "Action taken with the investigational product"),
        Column("reports", "number", "Reports (initial and follow-up)"),
        Column("first_reported_at", "datetime", "First reported at (UTC)"),
        *_CODING_COLUMNS,
    ))  # fmt: skip


#: The event's MedDRA coding (the primary path of the LLT the coder chose); empty while the event is not coded, or
#: was coded for a term reported differently since. Codes are identifiers, kept as text.
_CODING_COLUMNS = (
    Column("meddra_version", "text", "MedDRA version of the coding"),
    *(
        Column(f"{level}_{what}", "text", f"MedDRA {label} {'code' if what == 'code' else 'name'}")
        for level, label in (("llt", "lowest level term"), ("pt", "preferred term"), ("hlt", "high level term"),
                             ("hlgt", "high level group term"), ("soc", "primary system organ class"))
        for what in ("code", "name")
    ),
)  # fmt: skip


def _coding_values(coding: Mapping[str, Any] | None) -> dict[str, Any]:
    if coding is None:
        return dict.fromkeys(c.name for c in _CODING_COLUMNS)
    values = {c.name: coding[c.name] for c in _CODING_COLUMNS[1:]}
    return {"meddra_version": coding["version"], **{k: None if v is None else str(v) for k, v in values.items()}}


def _day(text: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


def event_row(e: EventRecord) -> dict[str, Any]:
    """One adverse event as a row of the adverse events table."""
    a = e.assessment
    grade = a.get("grade")
    return {
        "ae_number": e.ae_number, "participant_id": e.participant_id, "site": e.site, "term": a.get("term"),
        "onset": _day(a.get("onset")), "end": _day(a.get("end")), "grade": _number(grade),
        "serious": e.serious, "criteria": ",".join(a.get("seriousness_criteria") or []) or None,
        "related": e.related, "expected": e.expected,
        "expected_event": a.get("expected_event"), "susar": e.susar, "outcome": a.get("outcome"),
        "death_date": _day(a.get("death_date")), "action_taken": a.get("action_taken"), "reports": float(e.reports),
        "first_reported_at": e.first_reported_at, **_coding_values(e.coding),
    }  # fmt: skip


def deaths_table(source: ExportSource) -> Table:
    """One row per participant whose records give a death."""
    return Table("deaths", "Deaths", (
        Column("participant_id", "text", "Participant id"),
        _site(source),
        Column("death_date", "date", "Date of death (the earliest any record gives)"),
        Column("source", "text", "Record the date comes from"),
    ))  # fmt: skip


def death_rows(
    source: ExportSource, fatal: Mapping[str, list[Death]], sites: Mapping[str, str] | None = None
) -> Iterable[dict[str, Any]]:
    """The earliest death of each participant (``domain.deaths.earliest_death``): from fatal adverse events
    (``fatal``, by participant), the protocol's death record and its vital-status fields; ``sites``: each
    participant's site (read from the source when not given)."""
    p = source.protocol
    fields = {v.field for v in p.safety.vital_status} | {v.date_field for v in p.safety.vital_status}
    if p.safety.death_record is not None:
        r = p.safety.death_record
        fields |= {f"{r.form}.{r.status_field}", f"{r.form}.{r.date_field}"}
    values: dict[str, dict[str, dict[str, Any]]] = {}
    for form_id in sorted({f.partition(".")[0] for f in fields}):
        for record in source.forms(form_id):
            for key in fields:
                stored = record.values.get(key.partition(".")[2]) if key.startswith(f"{form_id}.") else None
                if isinstance(stored, Mapping) and stored.get("value") is not None:
                    by_visit = values.setdefault(record.participant_id, {}).setdefault(record.visit_id, {})
                    value = stored["value"]
                    by_visit[key] = str(value) if isinstance(value, bool) else value
    if sites is None:
        sites = {participant.participant_id: participant.site for participant in source.participants()}
    for pid in sorted(set(values) | set(fatal)):
        death = earliest_death(p, values.get(pid, {}), fatal.get(pid, ()))
        if death is not None:
            yield {"participant_id": pid, "site": sites.get(pid), "death_date": death.on, "source": death.source}


def _companion(form: FormDef, field_id: str, suffix: str) -> str:
    name = f"{field_id}_{suffix}"
    ids = {f.id for f in form.fields}
    while name in ids:  # a real field already has that name: keep both
        name = f"{field_id}_{name[len(field_id) :]}"
    return name


def form_table(source: ExportSource, form: FormDef, missing: set[str]) -> Table:
    """The wide table of one form; ``missing``: fields recorded as not done or not applicable somewhere."""
    columns = [*_record_columns(source)]
    columns.append(Column("form_state", "code", "Form state", tuple((s, s) for s in _FORM_STATES)))
    for f in form.fields:
        columns.append(Column(f.id, _KINDS[f.type], _field_label(f), tuple((c.code, c.label) for c in f.choices)))
        if f.quantification_limits:
            columns.append(Column(_companion(form, f.id, "flag"), "code", f"{f.label}: censored", _FLAG_CHOICES))
        if f.id in missing:
            columns.append(Column(_companion(form, f.id, "status"), "code", f"{f.label}: status", _STATUS_CHOICES))
            columns.append(Column(_companion(form, f.id, "reason"), "text", f"{f.label}: reason"))
    return Table(f"forms/{form.id}", form.name, tuple(columns))


_FORM_STATES = ("draft", "complete", "verified", "signed", "locked")

#: An entry's ATC coding in its log's table (empty while not coded).
_ATC_COLUMNS = (
    Column("atc_version", "text", "WHO ATC index version of the coding"),
    Column("atc_code", "text", "ATC code (level 5)"),
    Column("atc_name", "text", "ATC name (level 5)"),
)


#: A medical history entry's MedDRA coding in its log's table (the LLT, its PT and primary SOC; codes as text).
_MEDDRA_LOG_COLUMNS = (
    Column("meddra_version", "text", "MedDRA version of the coding"),
    Column("llt_code", "text", "MedDRA lowest level term code"),
    Column("llt_name", "text", "MedDRA lowest level term name"),
    Column("pt_code", "text", "MedDRA preferred term code"),
    Column("pt_name", "text", "MedDRA preferred term name"),
    Column("soc_code", "text", "MedDRA primary system organ class code"),
    Column("soc_name", "text", "MedDRA primary system organ class name"),
)


def log_table(source: ExportSource, log: LogDef) -> Table:
    """The table of one log: one row per entry; every field with its status and reason (a log has few entries)."""
    columns = [
        Column("participant_id", "text", "Participant id"),
        _site(source),
        Column("sequence", "number", "Entry sequence in the log"),
        Column("entry_state", "code", "Entry state", (("active", "Active"), ("removed", "Removed"))),
        Column("removed_reason", "text", "Why the entry was removed"),
    ]
    for f in log.fields:
        columns.append(Column(f.id, _KINDS[f.type], _field_label(f), tuple((c.code, c.label) for c in f.choices)))
        if f.not_done_allowed or f.not_applicable_allowed:
            columns.append(Column(_companion(log, f.id, "status"), "code", f"{f.label}: status", _STATUS_CHOICES))
            columns.append(Column(_companion(log, f.id, "reason"), "text", f"{f.label}: reason"))
    # ``protocol check`` refuses a field named like a coding column (LOG_CODING_COLUMNS), so none is hidden here.
    columns += _MEDDRA_LOG_COLUMNS if coding_columns(log)[0] == "MedDRA" else _ATC_COLUMNS
    return Table(f"logs/{log.id}", log.name, tuple(columns))


def log_row(log: LogDef, table: Table, r: LogRecord) -> dict[str, Any]:
    """One log entry as a row of its log's table."""
    row: dict[str, Any] = {"participant_id": r.participant_id, "site": r.site, "sequence": float(r.sequence),
                           "entry_state": r.state, "removed_reason": r.removed_reason}  # fmt: skip
    names = {c.name for c in table.columns}
    for f in log.fields:
        stored = r.values.get(f.id)
        if not isinstance(stored, Mapping):
            continue
        row[f.id] = analysis_value(f, stored)
        status = stored.get("status", "value")
        if status in _MISSING and _companion(log, f.id, "status") in names:
            row[_companion(log, f.id, "status")] = status
            row[_companion(log, f.id, "reason")] = stored.get("reason")
    coding = r.coding
    if coding is not None and coding.get("dictionary") == "ATC":
        row.update(atc_version=coding["version"], atc_code=coding["code"], atc_name=coding["name"])
    if coding is not None and coding.get("dictionary") == "MedDRA":
        at = {int(p["level"]): p for p in coding["path"]}
        row.update(meddra_version=coding["version"], llt_code=coding["code"], llt_name=coding["name"],
                   pt_code=at[4]["code"], pt_name=at[4]["name"], soc_code=at[1]["code"], soc_name=at[1]["name"])
    return row


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def analysis_value(f: FormField, stored: StoredJson) -> Any:
    """The value an analysis uses: typed by the field, the limit for a censored value, None when missing."""
    return _analysis_value(_KINDS[f.type], stored)


def _analysis_value(kind: ColumnKind, stored: StoredJson) -> Any:
    status = stored.get("status", "value")
    if status in FLAGS:
        return _number(stored.get("limit"))
    value = stored.get("value")
    if value is None or status in _MISSING:
        return None
    try:
        if kind == "number":
            return _number(value)
        if kind == "date":
            return dt.date.fromisoformat(str(value)[:10])
        if kind == "datetime":
            moment = dt.datetime.fromisoformat(str(value))
            return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        if kind == "yesno":
            return bool(value)
    except ValueError:
        return None
    if isinstance(value, list):
        return MULTI_SEPARATOR.join(map(str, value))
    return str(value)


def value_text(value: Any) -> str | None:
    """A stored value as text: numbers in full precision, yes/no as 1/0, choices joined by ``|``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, list):
        return MULTI_SEPARATOR.join(map(str, value))
    return str(value)


def _is_stored(stored: Any) -> bool:
    return type(stored) is dict or isinstance(stored, Mapping)


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    """What a form's tables need of one field, worked out once per table rather than once per value."""

    id: str
    kind: ColumnKind
    unit: str | None
    flag: str  # the names of its companion columns
    status: str
    reason: str
    has_status: bool  # the wide table has its status and reason columns


@dataclass(frozen=True, slots=True)
class _FormPlan:
    table: Table
    fields: tuple[_FieldPlan, ...]
    units: Mapping[str, str | None]  # field id -> unit, for the long table (a field no longer declared: absent)


def _form_plan(form: FormDef, table: Table) -> _FormPlan:
    names = {c.name for c in table.columns}
    fields = tuple(
        _FieldPlan(f.id, _KINDS[f.type], f.unit, _companion(form, f.id, "flag"), _companion(form, f.id, "status"),
                   _companion(form, f.id, "reason"), _companion(form, f.id, "status") in names)
        for f in form.fields
    )  # fmt: skip
    return _FormPlan(table, fields, {f.id: f.unit for f in form.fields})


def _row_of(r: FormRecord) -> FormRow:
    return r.participant_id, r.site, r.visit_id, r.visit_date, r.form_id, r.state, r.values


def _rows_of(columns: Mapping[str, list[Any] | pa.Array], count: int) -> list[dict[str, Any]]:
    """Columns (``_wide_columns``, ``_long_columns``; lists or Arrow arrays) as rows (a column not given is not in the
    rows)."""
    lists = {k: c.to_pylist() if isinstance(c, pa.Array) else c for k, c in columns.items()}
    return [{k: c[i] for k, c in lists.items()} for i in range(count)]


def _extend(sink: Sink, columns: Mapping[str, list[Any]], count: int) -> None:
    """Rows given as columns into a sink: as columns into one that takes them (``extend``: CSV and Parquet), else a
    row at a time."""
    extend = getattr(sink, "extend", None)
    if extend is not None:
        extend(columns, count)
        return
    for row in _rows_of(columns, count):
        sink.add(row)


def wide_row(form: FormDef, table: Table, r: FormRecord) -> dict[str, Any]:
    """One form record as a row of its form's table."""
    return _rows_of(_wide_columns(_form_plan(form, table), [_row_of(r)]), 1)[0]


def long_rows(form: FormDef, r: FormRecord) -> Iterable[dict[str, Any]]:
    """One form record's stored values, one row each (fields no longer in the protocol included)."""
    columns, count = _long_columns({f.id: f.unit for f in form.fields}, [_row_of(r)])
    return _rows_of(columns, count)


_NO_VALUE: StoredJson = {}  # what a record without a field holds for it: no value, status "value"
_GET: Any = dict.get
_VALUES: Any = dict.values


def _all_dicts(items: Iterable[Any]) -> bool:
    return set(map(type, items)) <= _DICTS  # the types looked up in C, not a Python test per item


_DICTS = frozenset({dict})


def _gather(items: list[Any], key: Any, default: Any = None) -> list[Any]:
    """``item.get(key, default)`` of each item (mappings): mapped in C when every item is a dict (as the database
    source's parsed JSON always is)."""
    if _all_dicts(items):
        return list(map(_GET, items, repeat(key), repeat(default)))
    return [i.get(key, default) for i in items]


def _stored_of(values: list[Mapping[str, StoredJson]], field_id: str) -> list[StoredJson]:
    """Each record's stored value of one field; ``_NO_VALUE`` where a record has none (or holds something that is
    not a stored value)."""
    stored = _gather(values, field_id, _NO_VALUE)
    if _all_dicts(stored):
        return stored
    return [s if _is_stored(s) else _NO_VALUE for s in stored]


#: Statuses whose value is not the stored value (censored: the limit; missing: none).
_PLAIN = frozenset(FLAGS) | _MISSING


def _plain_values(kind: ColumnKind, stored: list[StoredJson]) -> list[Any] | None:
    """``_analysis_value`` of each stored value of one field, when none is censored or missing, for the kinds read
    without parsing (numbers, yes/no, text, codes); None for the others (dates and date-times: value by value)."""
    if kind == "date" or kind == "datetime":
        return None
    value = _gather(stored, "value")
    if kind == "number":
        return [None if v is None else float(v) if type(v) is float or type(v) is int else _number(v) for v in value]
    if kind == "yesno":
        return [None if v is None else bool(v) for v in value]
    return [
        v if v is None or type(v) is str else MULTI_SEPARATOR.join(map(str, v)) if isinstance(v, list) else str(v)
        for v in value
    ]


def _wide_columns(plan: _FormPlan, rows: list[FormRow]) -> dict[str, list[Any]]:
    """Form records as the columns of their form's table: one list per column, no row object (a column not
    returned is empty in every row)."""
    participant_id, site, visit_id, visit_date, _, state, values = (list(c) for c in zip(*rows, strict=True))
    columns = {"participant_id": participant_id, "site": site, "visit_id": visit_id, "visit_date": visit_date,
               "form_state": state}  # fmt: skip
    for f in plan.fields:
        stored = _stored_of(values, f.id)
        status = _gather(stored, "status", "value")
        seen = set(status)
        plain = _plain_values(f.kind, stored) if _PLAIN.isdisjoint(seen) else None
        columns[f.id] = [_analysis_value(f.kind, s) for s in stored] if plain is None else plain
        if not seen.isdisjoint(FLAGS):
            columns[f.flag] = [FLAGS.get(s) for s in status]
        if not seen.isdisjoint(_MISSING):
            if not f.has_status:  # never dropped: the data changed mid-export
                at = next(i for i, s in enumerate(status) if s in _MISSING)
                raise ValueError(
                    f"{plan.table.name}: {participant_id[at]} {visit_id[at]} {f.id} is {status[at]}, which the "
                    "first pass did not see (the data changed during the export); export again"
                )
            columns[f.status] = [s if s in _MISSING else None for s in status]
            columns[f.reason] = [
                s.get("reason") if t in _MISSING else None for s, t in zip(stored, status, strict=True)
            ]
    return columns


def _text_and_number(value: Any) -> tuple[str | None, float | None]:
    """``value_text`` and ``_number`` of one value (the common types first)."""
    kind = type(value)
    if kind is float:
        text = repr(value)
        return (text[:-2] if text.endswith(".0") else text), value
    if kind is str:
        return value, None
    if kind is int:
        return str(value), float(value)
    if value is None:
        return None, None
    return value_text(value), _number(value)


def _long_columns(units: Mapping[str, str | None], rows: list[FormRow]) -> tuple[dict[str, Any], int]:
    """Form records' stored values as the columns of the long table (one row per stored value, fields no longer in
    the protocol included) and their number of rows: Arrow arrays (``_long_arrays``) or, for what they do not take,
    one list per column; no row object either way."""
    try:
        fast = _long_arrays(units, rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # a value Arrow does not take as Python has it
        fast = None
    return _long_lists(units, rows) if fast is None else fast


_NONE: Any = type(None)


def _texts(values: list[Any], kinds: list[type], numbers: bool) -> tuple[pa.Array, pa.Array | None]:
    """``_text_and_number`` of each value as two Arrow arrays (the numbers only when ``numbers``), built a type at a
    time: the values of one type picked out in C (``compress``), converted by Arrow (text ``str``; floats as
    ``repr`` without ``.0``, by ``floats_text``; whole numbers ``str``; yes/no 1/0); any other value (a list, a
    mapping) by ``value_text`` itself."""
    count = len(values)
    text = pa.nulls(count, pa.string())
    number = pa.nulls(count, pa.float64()) if numbers else None
    for kind in set(kinds) - {_NONE}:
        mask = list(map(is_, kinds, repeat(kind)))
        picked = list(compress(values, mask))
        where = pa.array(mask, pa.bool_())
        if kind is str:
            text = pc.replace_with_mask(text, where, pa.array(picked, pa.string()))
        elif kind is float:
            floats = pa.array(picked, pa.float64())
            text = pc.replace_with_mask(text, where, floats_text(floats))
            number = None if number is None else pc.replace_with_mask(number, where, floats)
        elif kind is int:  # beyond int64: OverflowError, and the chunk is built by ``_long_lists``
            ints = pa.array(picked, pa.int64())
            text = pc.replace_with_mask(text, where, pc.cast(ints, pa.string()))
            # float(int), rounded to nearest even as the C conversion rounds
            whole = pc.cast(ints, pa.float64(), safe=False)
            number = None if number is None else pc.replace_with_mask(number, where, whole)
        elif kind is bool:
            text = pc.replace_with_mask(text, where, pc.if_else(pa.array(picked, pa.bool_()), "1", "0"))
        else:
            pairs = [_text_and_number(v) for v in picked]
            text = pc.replace_with_mask(text, where, pa.array([t for t, _ in pairs], pa.string()))
            if number is not None:
                number = pc.replace_with_mask(number, where, pa.array([n for _, n in pairs], pa.float64()))
    return text, number


def _long_arrays(units: Mapping[str, str | None], rows: list[FormRow]) -> tuple[dict[str, Any], int] | None:
    """``_long_lists`` as Arrow arrays, with no Python call per stored value: each record's columns taken once per
    stored value (``take``), the stored values' parts gathered with ``dict.get`` mapped in C and converted by Arrow,
    the value's text and number made a type at a time (``_texts``). None when the chunk holds something that is not
    a stored value (``_long_lists`` leaves it out)."""
    if not rows:
        return None
    participant_id, site, visit_id, visit_date, form_id, _, values = zip(*rows, strict=True)
    if not _all_dicts(values):
        return None
    stored: list[Any] = list(chain.from_iterable(map(_VALUES, values)))
    if not _all_dicts(stored):
        return None
    count = len(stored)

    def gather(key: str, default: Any = None) -> list[Any]:  # every item a dict (checked above): mapped in C
        return list(map(_GET, stored, repeat(key), repeat(default)))

    at = pa.array(np.repeat(np.arange(len(values), dtype=np.int64), np.fromiter(map(len, values), np.int64)))
    field_id: list[Any] = list(chain.from_iterable(values))
    status = gather("status", "value")
    value = gather("value")
    if not FLAGS.keys().isdisjoint(status):  # a censored value's value is its limit's column, not this one
        value = [None if s in FLAGS else v for v, s in zip(value, status, strict=True)]
    text, number = _texts(value, list(map(type, value)), numbers=True)
    limit = gather("limit")
    limit_kinds = set(map(type, limit))
    if not limit_kinds <= {float, int, _NONE}:  # _number: anything else (yes/no, text) is no limit
        limit = [None if x is None else _number(x) for x in limit]
    elif int in limit_kinds:
        limit = [None if x is None else float(x) for x in limit]
    entered = gather("entered")
    entered_text, _ = _texts(entered, list(map(type, entered)), numbers=False)
    columns = {
        "participant_id": pa.array(participant_id, pa.string()).take(at),
        "site": pa.array(site, pa.string()).take(at),
        "visit_id": pa.array(visit_id, pa.string()).take(at),
        "visit_date": pa.array(visit_date, pa.date32()).take(at),
        "form_id": pa.array(form_id, pa.string()).take(at),
        "field_id": pa.array(field_id, pa.string()),
        "value": text,
        "value_num": number,
        "unit": pa.array(list(map(units.get, field_id)), pa.string()),
        "status": pa.array(status, pa.string()),
        "reason": pa.array(gather("reason"), pa.string()),
        "limit": pa.array(limit, pa.float64()),
        "entered": entered_text,
        "entered_unit": pa.array(gather("unit"), pa.string()),
    }
    return columns, count


def _long_lists(units: Mapping[str, str | None], rows: list[FormRow]) -> tuple[dict[str, Any], int]:
    """Form records' stored values as the columns of the long table: one list per column, no row object."""
    participant_id, site, visit_id, visit_date, form_id, _, values = zip(*rows, strict=True) if rows else ((),) * 7
    stored: list[Any] = list(chain.from_iterable(map(_VALUES, values))) if _all_dicts(values) else [None]
    if _all_dicts(stored):  # the parsed JSON of the database: keys, values and counts taken in C
        field_id: list[Any] = list(chain.from_iterable(values))
        counts = list(map(len, values))
    else:  # something that is not a stored value: left out
        kept = [[(k, s) for k, s in v.items() if _is_stored(s)] for v in values]
        field_id = [k for pairs in kept for k, _ in pairs]
        stored = [s for pairs in kept for _, s in pairs]
        counts = list(map(len, kept))

    def spread(column: tuple[Any, ...]) -> list[Any]:
        return list(chain.from_iterable(map(repeat, column, counts)))

    count = len(stored)
    status = _gather(stored, "status", "value")
    value = _gather(stored, "value")
    if not FLAGS.keys().isdisjoint(status):  # a censored value's value is its limit's column, not this one
        value = [None if s in FLAGS else v for v, s in zip(value, status, strict=True)]
    text, number = ([*c] for c in zip(*map(_text_and_number, value), strict=True)) if count else ([], [])
    limit = _gather(stored, "limit")
    entered = _gather(stored, "entered")
    columns = {
        "participant_id": spread(participant_id),
        "site": spread(site),
        "visit_id": spread(visit_id),
        "visit_date": spread(visit_date),
        "form_id": spread(form_id),
        "field_id": field_id,
        "value": text,
        "value_num": number,
        "unit": list(map(units.get, field_id)),
        "status": status,
        "reason": _gather(stored, "reason"),
        "limit": limit if limit.count(None) == count else [None if x is None else _number(x) for x in limit],
        "entered": [e if e is None or type(e) is str else value_text(e) for e in entered],
        "entered_unit": _gather(stored, "unit"),
    }
    return columns, count


def _texts_of(source: ExportSource, form_id: str) -> Iterator[Any] | None:
    """The source's records of a form with their stored texts (``form_texts``), when it gives them and its
    ``form_rows`` is the one of the same class (a source that changes the values it reads is read as it reads them)."""
    kind = type(source)
    texts_from = next((c for c in kind.__mro__ if "form_texts" in c.__dict__), None)
    rows_from = next((c for c in kind.__mro__ if "form_rows" in c.__dict__), None)
    if texts_from is None or texts_from is not rows_from:
        return None
    return source.form_texts(form_id)


#: How ``stored_columns`` types each field's stored value.
_STORED_KINDS: dict[FieldType, str] = {
    FieldType.INTEGER: "number",
    FieldType.DECIMAL: "number",
    FieldType.BOOLEAN: "yesno",
    FieldType.MULTI_CHOICE: "list",
}


def _cells_of(values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """``_text_and_number`` of a column of stored values read by Arrow: its text and, for numbers, the number."""
    kind = values.type
    if pa.types.is_floating(kind):
        return floats_text(values), values
    if pa.types.is_boolean(kind):
        return pc.if_else(values, "1", "0"), None
    if pa.types.is_list(kind):
        return pc.binary_join(values, MULTI_SEPARATOR), None
    return values, None


def _arrow_columns(
    plan: _FormPlan, rows: list[Any], stored: StoredColumns
) -> tuple[dict[str, Any], tuple[dict[str, Any], int]] | None:
    """``_wide_columns`` and ``_long_columns`` of a chunk of records whose stored values Arrow read
    (``stored_columns.read_stored``), built by Arrow compute; None for what only the Python path builds as it does
    (a censored value of a field that is not a number, a missing value without its status column)."""
    participant_id, site, visit_id, visit_date, _, state, _ = (list(c) for c in zip(*rows, strict=True))
    count = len(rows)
    wide: dict[str, Any] = {"participant_id": participant_id, "site": site, "visit_id": visit_id,
                            "visit_date": visit_date, "form_state": state}  # fmt: skip
    null_text = pa.scalar(None, pa.string())
    for f in plan.fields:
        value, status, reason, limit = stored.fields[f.id].flatten()[:4]  # null where the record has no value
        status = pc.fill_null(status, "value")
        seen = set(pc.unique(status).to_pylist())
        censored = pc.is_in(status, pa.array(list(FLAGS))) if not seen.isdisjoint(FLAGS) else None
        missing = pc.is_in(status, pa.array(sorted(_MISSING))) if not seen.isdisjoint(_MISSING) else None
        if f.kind == "date" or f.kind == "datetime":
            column: Any = [None if v is None else _analysis_value(f.kind, {"value": v}) for v in value.to_pylist()]
            if censored is not None:
                return None
            if missing is not None:
                column = [None if m else v for v, m in zip(column, missing.to_pylist(), strict=True)]
        else:
            column = pc.binary_join(value, MULTI_SEPARATOR) if pa.types.is_list(value.type) else value
            if censored is not None:
                if f.kind != "number":
                    return None
                column = pc.if_else(censored, limit, column)
            if missing is not None:
                column = pc.if_else(missing, pa.scalar(None, column.type), column)
        wide[f.id] = column
        if censored is not None:
            wide[f.flag] = pc.if_else(pc.equal(status, "below_lloq"), FLAGS["below_lloq"],
                                      pc.if_else(pc.equal(status, "above_uloq"), FLAGS["above_uloq"], null_text))
        if missing is not None:
            if not f.has_status:  # the Python path says so
                return None
            wide[f.status] = pc.if_else(missing, status, null_text)
            wide[f.reason] = pc.if_else(missing, reason, null_text)
    # The long table: one row per stored value, record by record in each record's key order (``stored.record``,
    # ``stored.field``); each field's cells made once, then taken.
    parts: dict[str, list[pa.Array]] = {k: [] for k in ("value", "value_num", "unit", "status", "reason", "limit",
                                                           "entered", "entered_unit")}  # fmt: skip
    for field_id in stored.ids:
        value, status, reason, limit, entered, unit = stored.fields[field_id].flatten()[:6]
        status = pc.fill_null(status, "value")
        text, number = _cells_of(value)
        entered_text, _ = _cells_of(entered)
        censored = pc.is_in(status, pa.array(list(FLAGS)))
        parts["value"].append(pc.if_else(censored, null_text, text))
        parts["value_num"].append(pa.nulls(count, pa.float64()) if number is None else
                                  pc.if_else(censored, pa.scalar(None, pa.float64()), number))  # fmt: skip
        parts["unit"].append(pa.array([plan.units.get(field_id)] * count, pa.string()))
        parts["status"].append(status)
        parts["reason"].append(reason)
        parts["limit"].append(limit)
        parts["entered"].append(entered_text)
        parts["entered_unit"].append(unit)
    at = pa.array(stored.field * count + stored.record)
    records = pa.array(stored.record)
    long_columns: dict[str, Any] = {
        "participant_id": pa.array(participant_id, pa.string()).take(records),
        "site": pa.array(site, pa.string()).take(records),
        "visit_id": pa.array(visit_id, pa.string()).take(records),
        "visit_date": pa.array(visit_date, pa.date32()).take(records),
        "form_id": pa.array([r[4] for r in rows], pa.string()).take(records),
        "field_id": pa.array(stored.ids, pa.string()).take(pa.array(stored.field)),
        **{k: pa.concat_arrays(v).take(at) for k, v in parts.items()},
    }
    return wide, (long_columns, len(stored.record))


# --- the formats ----------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one export has written so far (for the README)."""

    tables: list[tuple[str, str, int]] = field(default_factory=list)  # file, what it holds, rows
    notes: list[str] = field(default_factory=list)
    done: int = 0


class TabularExporter(Exporter, abc.ABC):
    """The tables every tabular format writes; a format supplies ``extension`` and ``open``."""

    extension: ClassVar[str]
    format_notes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        #: Rows per Arrow record batch: what a table holds in memory at a time (and a Parquet row group).
        self.batch_rows = batch_rows

    @abc.abstractmethod
    def open(self, folder: Path, table: Table, run: _Run) -> Sink:
        """A sink writing ``table`` under ``folder``."""

    def finish(self, folder: Path, run: _Run) -> list[Path]:
        """Files written after the tables (e.g. a name mapping)."""
        return []

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        run = _Run()
        written: list[Path] = []
        # The participants read once: their table, the consents and randomization tables (closed after the forms',
        # in the README's order of tables) and each one's site for the deaths table.
        table, consents, randomization = participants_table(source), consents_table(source), randomization_table(source)
        sink = self.open(folder, table, run)
        consent_sink, randomization_sink = self.open(folder, consents, run), self.open(folder, randomization, run)
        sites: dict[str, str] = {}
        for p in source.participants():
            row = participant_row(p, source.with_arms)
            sink.add(row)
            sites[p.participant_id] = p.site
            if p.consented_at is not None or p.consent_given_by is not None:
                consent_sink.add(consent_row(p, row, consents))
            if p.randomized_at is not None or p.randomization_number is not None:
                randomization_sink.add({c.name: row[c.name] for c in randomization.columns})
        written += self._close(sink, table, "one row per participant", run)
        long_def = long_table(source)
        long_sink = self.open(folder, long_def, run)
        for form in source.protocol.forms:
            written += self._form(source, form, folder, long_sink, run, progress)
        written += self._close(long_sink, long_def, "one row per stored value", run)
        written += self._close(consent_sink, consents, _CONSENTS_ARE, run)
        written += self._close(randomization_sink, randomization, "one row per randomized participant", run)
        written += self._events(source, folder, run, sites)
        for log in source.protocol.logs:
            table = log_table(source, log)
            sink = self.open(folder, table, run)
            for entry in source.logs(log.id):
                sink.add(log_row(log, table, entry))
            written += self._close(sink, table, "one row per entry (removed ones included)", run)
        # Entries of a log or field a later protocol version dropped: not in the tables above, so listed.
        run.notes += [u.describe() for u in undeclared(source.protocol, ((e.log_id, e.values) for e in source.logs()))]
        written += self.finish(folder, run)
        written.append(self.readme(folder, source, run))
        return written

    def readme(self, folder: Path, source: ExportSource, run: _Run) -> Path:
        """README.txt: the files written, with their rows, and the format's conventions."""
        return write_readme(folder, source, self, run)

    def _events(self, source: ExportSource, folder: Path, run: _Run, sites: Mapping[str, str]) -> list[Path]:
        """Adverse events and deaths, each its own table (``sites``: each participant's site)."""
        written: list[Path] = []
        events = events_table(source)
        sink = self.open(folder, events, run)
        fatal: dict[str, list[Death]] = {}
        for e in source.events():
            row = event_row(e)
            sink.add(row)
            if row["outcome"] == "fatal":
                on = row["death_date"] or row["onset"]
                if on is not None:
                    fatal.setdefault(e.participant_id, []).append(Death(on, f"adverse event {e.ae_number}"))
        written += self._close(sink, events, "one row per adverse event (its latest report)", run)
        deaths = deaths_table(source)
        sink = self.open(folder, deaths, run)
        for death in death_rows(source, fatal, sites):
            sink.add(death)
        written += self._close(sink, deaths, "one row per participant who died (the earliest record)", run)
        return written

    def _close(self, sink: Sink, table: Table, what: str, run: _Run) -> list[Path]:
        paths = sink.close()
        run.tables.append((f"{table.name}.{self.extension}", f"{table.label}: {what}", sink.rows))
        return paths

    def _form(
        self, source: ExportSource, form: FormDef, folder: Path, long_sink: Sink, run: _Run, progress: Progress | None
    ) -> list[Path]:
        missing: set[str] = set()
        unknown: set[str] = set()
        known = {f.id for f in form.fields}
        # First pass: which fields need status and reason columns (only the records that may hold such a value).
        for r in source.records_with_status(form.id, _MISSING):
            for field_id, stored in r.values.items():
                if field_id in known and isinstance(stored, Mapping) and stored.get("status") in _MISSING:
                    missing.add(field_id)
        table = form_table(source, form, missing)
        plan = _form_plan(form, table)
        sink = self.open(folder, table, run)
        texts = _texts_of(source, form.id)
        records: Iterator[Any] = source.form_rows(form.id) if texts is None else texts
        schema = stored_schema({f.id: _STORED_KINDS.get(f.type, "text") for f in form.fields})
        # A chunk of records at a time, written as columns: no row object per record, none per stored value (a
        # quarter of a batch of records at most, so that memory still holds about a batch of rows). Where the source
        # gives the stored texts, Arrow reads a chunk's texts in one call (``stored_columns``); a chunk it may read
        # otherwise than ``json.loads`` is parsed and built from Python's values, as before.
        size = max(1, min(_CHUNK_RECORDS, self.batch_rows // 4))
        while True:
            with no_cycle_scans():
                chunk = list(islice(records, size))
                if not chunk:
                    break
                built = None
                if texts is not None:
                    columns = read_stored([r[6] for r in chunk], schema)
                    built = None if columns is None else _arrow_columns(plan, chunk, columns)
                    if built is None:
                        parsed = source.parse_stored([r[6] for r in chunk])
                        chunk = [(*r[:6], v) for r, v in zip(chunk, parsed, strict=True)]
                if built is None:
                    for row in chunk:
                        if not known.issuperset(row[6]):
                            unknown.update(k for k in row[6] if k not in known)
                    built = _wide_columns(plan, chunk), _long_columns(plan.units, chunk)
                wide, (long_columns, long_count) = built
                _extend(sink, wide, len(chunk))
                _extend(long_sink, long_columns, long_count)
            if progress is None:
                run.done += len(chunk)
            else:
                for _ in chunk:
                    run.done += 1
                    progress(run.done)
        if unknown:
            run.notes.append(f"forms/{form.id}: fields no longer in the protocol ({', '.join(sorted(unknown))}) "
                             "are in values_long only.")  # fmt: skip
        return self._close(sink, table, "one row per participant and visit", run)


class CsvExporter(TabularExporter):
    """Comma-separated UTF-8 text."""

    name = "csv"
    description = "CSV tables: participants, one wide file per form, and every stored value in long form."
    extension = "csv"
    format_notes = (
        "Read codes as text (e.g. pandas.read_csv(..., dtype=str)): codes such as 0-4 are not numbers.",
        "A text cell that starts with =, +, -, @, a TAB or a carriage return is written with a leading apostrophe "
        "(') so that a spreadsheet never runs it as a formula (OWASP, CSV injection); remove it to get the stored "
        "text. Numbers, and text that is wholly a number such as -3.5, are written as they are.",
    )

    def open(self, folder: Path, table: Table, run: _Run) -> Sink:
        return CsvSink(folder / f"{table.name}.csv", table, min(self.batch_rows, CSV_BATCH_ROWS))


class ParquetExporter(TabularExporter):
    """Apache Parquet with typed columns."""

    name = "parquet"
    description = "Parquet tables (typed: dates, UTC timestamps, float64 numbers, codes as strings)."
    extension = "parquet"
    format_notes = (
        "Column types: dates date32, date-times timestamp[us, UTC], numbers float64, codes and text strings, "
        "yes/no booleans. Each field's label is in its Arrow field metadata (key 'label').",
    )

    def open(self, folder: Path, table: Table, run: _Run) -> Sink:
        return ParquetSink(folder / f"{table.name}.parquet", table, self.batch_rows)


# --- README ---------------------------------------------------------------------------------------------

_CONVENTIONS = (
    "Dates are YYYY-MM-DD; date-times are UTC. Numbers are in each field's canonical unit (named in the "
    "codebook, and in the variable labels of the Stata, SPSS and SAS files; a CSV or Parquet header has none).",
    "Yes/no fields are 1 (yes) and 0 (no); multiple choices are their codes joined by '|'.",
    "A value below the lower or above the upper limit of quantification is never zero: the field holds the "
    "limit and <field>_flag says <LLOQ or >ULOQ (values_long: status below_lloq/above_uloq, limit).",
    "A value not done or not applicable is empty; <field>_status and <field>_reason say why (these columns "
    "exist only for fields that have such values).",
    "Derived fields (scores, ratios) hold the value trialwright computed (values_long: status derived).",
    "Not in this export: the screening values (the eligibility answers and the stratification variables as "
    "entered; the participants table has each participant's stratum). They are in the ODM export and the "
    "screening log (GET /api/v1/screenings).",
)


def write_readme(folder: Path, source: ExportSource, exporter: TabularExporter, run: _Run) -> Path:
    """The README.txt of a tabular export."""
    arms = (
        "yes: the participants table has the allocated arm in column 'arm' (no other file names an arm)"
        if source.with_arms
        else "no: this is a blinded export; no file names an arm"
    )
    lines = [
        f"trialwright {exporter.name} export: {exporter.description}",
        "",
        f"Trial: {source.trial_id}",
        f"Protocol version: {source.protocol_version}",
        f"Exported at: {source.taken_at.astimezone(dt.UTC).isoformat(timespec='seconds')} (UTC)",
        f"Arms included: {arms}",
        "",
        "Files:",
        *(f"  {name}  {what} ({rows} rows)" for name, what, rows in run.tables),
        "",
        "Conventions:",
        *(f"  - {c}" for c in _CONVENTIONS),
        *(f"  - {n}" for n in exporter.format_notes),
    ]
    notes = [*run.notes, *source.notes]
    if notes:
        lines += ["", "Notes:", *(f"  - {n}" for n in notes)]
    path = folder / "README.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
