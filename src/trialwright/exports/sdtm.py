"""SDTM-style tabulation: DM, DS, EX, AE, LB and VS as SAS transport v5 files and CSV, with their metadata.

Each domain is declared once (``trialwright.exports.sdtm_domains``: its variables with label, type, controlled
terms and origin); the findings domains LB and VS hold exactly the fields whose protocol ``codes`` declare an
``sdtm`` test (``trialwright.protocol.codes``: domain, --TESTCD, --TEST, the terminology it was checked in, the
unit words); nothing is guessed from a field's name or unit, and a numeric field without a test is named in
README.txt. Form records are streamed one form at a time; what DM and DS need about a participant (dates, age,
sex, death, exposure) is gathered on the way, so memory grows with participants, not records. Rows are
gathered into Arrow record batches and spooled to Parquet; each domain is then read back as Arrow columns,
sorted by USUBJID, numbered (--SEQ) and written on its own: whole as XPT (pyreadstat takes a whole table, so
the peak is the largest domain's columns, never a Python object per cell) and a batch at a time as CSV.

Masking: a blinded extract leaves ARMCD, ARM, ACTARMCD and ACTARM empty for randomized participants (SDTM has
no "masked" arm term; ARMNRS stays empty because the arm is assigned, only withheld, as README.txt says) and
names the treatment in EX as "BLINDED STUDY TREATMENT". With arms (the unblinded statistician only), DM holds
the allocated arm and EX the arm's intervention; no other domain names an arm.

Test codes say where they were checked in the protocol (``checked``), written to testcodes.csv.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trialwright.domain.text import spreadsheet_row
from trialwright.exports.base import Exporter, ExportSource, FormRecord, ParticipantRecord, Progress, StoredJson
from trialwright.exports.columnar import BATCH_ROWS, csv_cells, csv_lines
from trialwright.exports.readstat import ascii_text, cut_text, frame, string_column
from trialwright.exports.sdtm_domains import (
    ACTIONS,
    AGEU,
    BLINDED_TREATMENT,
    CRITERIA,
    DOMAINS,
    DS_CAUSE,
    OUTCOMES,
    SEVERITY,
    Domain,
    Var,
    dm_sources,
    findings_tests,
)
from trialwright.exports.tabular import Column, ParquetSink, Table, analysis_value, value_text
from trialwright.protocol import Protocol
from trialwright.protocol.codes import SdtmTest
from trialwright.protocol.forms import FieldType, FormDef, FormField

__all__ = ["BLINDED_TREATMENT", "DOMAINS", "Domain", "SdtmExporter", "Var", "findings_tests"]


def _dtc(value: Any) -> str | None:
    """ISO 8601 as SDTM writes it: a date, or a UTC date and time to the minute (no offset)."""
    if isinstance(value, dt.datetime):
        moment = value.astimezone(dt.UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def _yn(flag: bool | None) -> str | None:
    return None if flag is None else ("Y" if flag else "N")


@dataclass
class _Subject:
    """What DM and DS need about one participant, gathered while the forms stream by."""

    first_dose: dt.datetime | None = None
    last_dose: dt.datetime | None = None
    last_date: dt.date | None = None
    death: dt.date | None = None
    completed: dt.date | None = None
    found: dict[tuple[str, int], float | str] = field(default_factory=dict)  # (AGE|SEX, source index) -> value

    def first(self, target: str) -> float | str | None:
        """The value of the first declared source that has one."""
        known = sorted((i, v) for (t, i), v in self.found.items() if t == target)
        return known[0][1] if known else None

    def saw(self, day: dt.date | None) -> None:
        if day is not None and (self.last_date is None or day > self.last_date):
            self.last_date = day


def _latest(*days: dt.date | None) -> dt.date | None:
    known = [d for d in days if d is not None]
    return max(known) if known else None


class _DomainSink:
    """One domain's rows, spooled to Parquet in record batches; then read back as Arrow columns, sorted by
    USUBJID, numbered (--SEQ) and written whole as XPT (pyreadstat) and a batch at a time as CSV."""

    def __init__(self, folder: Path, domain: Domain, batch: int = BATCH_ROWS) -> None:
        self.domain, self.folder, self._batch = domain, folder, batch
        columns = tuple(Column(v.name, "number" if v.type == "Num" else "text", v.label) for v in domain.variables)
        self._spool = ParquetSink(folder / ".spool" / f"{domain.code}.parquet", Table(domain.code, domain.label,
                                                                                    columns), batch)  # fmt: skip
        self.lengths: dict[str, int] = {}
        self.rows = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self._spool.add(row)
        self.rows += 1

    def table(self) -> pa.Table:
        """The domain's rows as Arrow columns, in the order of its variables: sorted by USUBJID (a stable sort),
        numbered (--SEQ, float64) and DOMAIN filled; text as stored (missing is null, nothing cut)."""
        (spool,) = self._spool.close()
        data = pq.read_table(spool)
        spool.unlink()
        data = data.take(pc.sort_indices(data, sort_keys=[("USUBJID", "ascending")]))  # a stable sort
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for v in self.domain.variables:
            if v.name == self.domain.seq:
                columns[v.name] = pa.array(_sequence(data.column("USUBJID")), pa.float64())
            elif v.name == "DOMAIN":
                columns[v.name] = string_column(self.domain.code, data.num_rows)
            else:
                columns[v.name] = data.column(v.name)
        return pa.table(columns)

    def close(self, notes: list[str]) -> list[Path]:
        import pyreadstat

        data = self.table()
        columns: dict[str, pa.ChunkedArray | np.ndarray] = {}
        for v in self.domain.variables:
            if v.type == "Num":
                columns[v.name] = data.column(v.name).to_numpy()
            else:
                text, cut = cut_text(pc.fill_null(data.column(v.name), ""), 200)
                note = f"{self.domain.code}.{v.name}: text longer than 200 bytes was cut to fit SAS transport v5."
                if cut and note not in notes:
                    notes.append(note)
                columns[v.name] = text
            longest = pc.max(pc.binary_length(columns[v.name])).as_py() if v.type == "Char" else None
            self.lengths[v.name] = max(1, longest or 0) if v.type == "Char" else 8
        stem = self.domain.code.lower()
        xpt, text_path = self.folder / f"{stem}.xpt", self.folder / f"{stem}.csv"
        labels: dict[str, str | None] = {v.name: ascii_text(v.label)[:40] for v in self.domain.variables}
        pyreadstat.write_xport(frame(columns, self._batch), xpt, file_label=self.domain.label, column_labels=labels,
                               table_name=self.domain.code, file_format_version=5)  # fmt: skip
        self._csv(text_path, columns)
        return [xpt, text_path]

    def _csv(self, path: Path, columns: Mapping[str, pa.ChunkedArray | np.ndarray]) -> None:
        """The domain as CSV, a batch of rows at a time: numbers as the shortest exact text (1, not 1.0), text
        cells a spreadsheet would run as a formula with a leading apostrophe; the csv module's minimal quoting,
        lines ending in LF."""
        table = pa.table({name: pa.array(c) if isinstance(c, np.ndarray) else c for name, c in columns.items()})
        numeric = [v.type == "Num" for v in self.domain.variables]
        with path.open("w", newline="", encoding="utf-8") as f:
            f.write(",".join(table.column_names) + "\n")
            for batch in table.to_batches(max_chunksize=self._batch):
                cells = [
                    csv_cells(pc.if_else(pc.is_nan(c), None, c), line_end="\n", neutralise=False) if number
                    else csv_cells(c, line_end="\n")
                    for c, number in zip(batch.columns, numeric, strict=True)
                ]  # fmt: skip
                f.write(csv_lines(cells, "\n"))


def _sequence(subjects: pa.ChunkedArray) -> np.ndarray:
    """1, 2, 3, ... within each run of equal USUBJID (the rows sorted by USUBJID), as float64."""
    rows = len(subjects)
    if rows == 0:
        return np.zeros(0, dtype="float64")
    changed = pc.not_equal(subjects.slice(1), subjects.slice(0, rows - 1)).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.concatenate(([True], changed)))
    first = np.repeat(starts, np.diff(np.append(starts, rows)))
    return (np.arange(rows) - first + 1).astype("float64")


def _moment_field(form: FormDef) -> FormField | None:
    return next((f for f in form.fields if f.type is FieldType.DATETIME and f.derived is None), None)


def _finding(prefix: str, test: SdtmTest, f: FormField, stored: StoredJson) -> dict[str, Any]:
    """One stored value as an LB or VS row (without the record's identifiers, visit and date)."""
    status = stored.get("status", "value")
    row: dict[str, Any] = {f"{prefix}TESTCD": test.testcd, f"{prefix}TEST": test.test, f"{prefix}CAT": test.category}
    if prefix == "LB":
        row["LBSPEC"] = test.specimen
    unit = test.units.get(f.unit, f.unit) if f.unit else None
    entered_unit = stored.get("unit") or f.unit
    if status in {"not_done", "not_applicable"}:
        row[f"{prefix}STAT"], row[f"{prefix}REASND"] = "NOT DONE", stored.get("reason")
        return row
    if status in {"below_lloq", "above_uloq"}:
        sign, limit = ("<" if status == "below_lloq" else ">"), stored.get("limit")
        entered = stored.get("entered", limit)
        row[f"{prefix}ORRES"] = f"{sign}{value_text(entered)}"
        row[f"{prefix}STRESC"] = f"{sign}{value_text(limit)}"
        if prefix == "LB":
            row["LBLLOQ" if sign == "<" else "LBULOQ"] = limit
    else:
        value = stored.get("value")
        row[f"{prefix}ORRES"] = value_text(stored.get("entered", value))
        row[f"{prefix}STRESC"] = value_text(value)
        number = analysis_value(f, stored)
        row[f"{prefix}STRESN"] = number if isinstance(number, float) else None
    row[f"{prefix}ORRESU"] = test.units.get(entered_unit, entered_unit) if entered_unit else None
    row[f"{prefix}STRESU"] = unit
    return row


@dataclass
class _Build:
    """One SDTM export in progress."""

    source: ExportSource
    sinks: dict[str, _DomainSink]
    people: dict[str, ParticipantRecord]
    subjects: dict[str, _Subject]
    notes: list[str] = field(default_factory=list)
    done: int = 0
    visits: dict[str, tuple[float, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.visits = {v.id: (float(i + 1), v.name) for i, v in enumerate(self.source.protocol.visits)}

    @property
    def protocol(self) -> Protocol:
        return self.source.protocol

    def ids(self, participant_id: str) -> dict[str, Any]:
        return {"STUDYID": self.source.trial_id, "DOMAIN": "", "USUBJID": f"{self.source.trial_id}-{participant_id}"}


class SdtmExporter(Exporter):
    """SDTM-style domains as SAS transport v5 (FDA) and CSV, with define.csv and testcodes.csv."""

    name = "sdtm"
    description = "SDTM-style DM, DS, EX, AE, LB and VS (XPT v5 and CSV) with define.csv and testcodes.csv."

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        #: Rows per Arrow record batch: what a domain holds as rows while it streams, and per CSV write.
        self.batch_rows = batch_rows

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        out = folder / "sdtm"
        out.mkdir(parents=True, exist_ok=True)
        build = self._build(source, out, progress)
        written: list[Path] = []
        for sink in build.sinks.values():
            written += sink.close(build.notes)
        shutil.rmtree(out / ".spool", ignore_errors=True)
        written += [self._define(out, build), self._testcodes(out, source.protocol), self._readme(folder, build)]
        return written

    def domain_tables(
        self, source: ExportSource, out: Path, progress: Progress | None = None
    ) -> Iterator[tuple[Domain, pa.Table]]:
        """Each domain's rows as Arrow columns (``_DomainSink.table``: what the XPT and CSV files hold before text
        is cut to 200 bytes), one domain at a time, for another format of the same domains (Dataset-JSON). The rows
        are spooled under ``out`` (an existing folder) and the spool removed when the last domain is read."""
        build = self._build(source, out, progress)
        try:
            for code, sink in build.sinks.items():
                yield DOMAINS[code], sink.table()
        finally:
            shutil.rmtree(out / ".spool", ignore_errors=True)

    def testcodes(self, out: Path, p: Protocol) -> Path:
        """testcodes.csv in ``out``: the LB and VS test codes with their source fields, units and terminology."""
        return self._testcodes(out, p)

    def _build(self, source: ExportSource, out: Path, progress: Progress | None) -> _Build:
        """Every domain's rows, streamed from the source into its sink (spooled under ``out``)."""
        people = {p.participant_id: p for p in source.participants()}
        build = _Build(source, {c: _DomainSink(out, d, self.batch_rows) for c, d in DOMAINS.items()}, people,
                       {pid: _Subject() for pid in people})  # fmt: skip
        for form_id in self._forms(source.protocol):
            form = source.protocol.form(form_id)
            for r in source.forms(form_id):
                subject = build.subjects.setdefault(r.participant_id, _Subject())
                subject.saw(r.visit_date)
                for handler in (self._findings, self._subject_facts, self._exposure):
                    handler(build, form, r, subject)
                build.done += 1
                if progress is not None:
                    progress(build.done)
        for event in source.events():
            self._adverse_event(build, event.participant_id, event.assessment, event.related, event.ae_number)
        for pid, person in people.items():
            self._disposition(build, person, build.subjects[pid])
            self._demographics(build, person, build.subjects[pid])
        return build

    # -- which forms feed which domain ---------------------------------------------------------------

    @staticmethod
    def _forms(p: Protocol) -> list[str]:
        """The forms a domain reads (test tables, DM sources, the treatment and death records), in protocol order."""
        tests = findings_tests(p)
        wanted = {key.partition(".")[0] for key in (*tests, *(s for v in dm_sources(p).values() for s in v))}
        if p.analysis_plan is not None and p.analysis_plan.treatment is not None:
            wanted.add(p.analysis_plan.treatment.form)
        if p.safety.death_record is not None:
            wanted.add(p.safety.death_record.form)
        return [f.id for f in p.forms if f.id in wanted]

    # -- handlers --------------------------------------------------------------------------------------

    def _findings(self, build: _Build, form: FormDef, r: FormRecord, subject: _Subject) -> None:
        moment = _moment_field(form)
        stamp = analysis_value(moment, r.values[moment.id]) if moment and isinstance(r.values.get(moment.id),
                                                                                     Mapping) else None  # fmt: skip
        visitnum, visit = build.visits.get(r.visit_id, (None, r.visit_id))
        for prefix in ("LB", "VS"):
            for f in form.fields:
                test, stored = f.codes.sdtm if f.codes else None, r.values.get(f.id)
                if test is None or test.domain != prefix or not isinstance(stored, Mapping):
                    continue
                row = {**build.ids(r.participant_id), **_finding(prefix, test, f, stored)}
                row.update({"VISITNUM": visitnum, "VISIT": visit, f"{prefix}DTC": _dtc(stamp) or _dtc(r.visit_date)})
                build.sinks[prefix].add(row)

    def _subject_facts(self, build: _Build, form: FormDef, r: FormRecord, subject: _Subject) -> None:
        for target, sources in dm_sources(build.protocol).items():
            for i, source in enumerate(sources):
                form_id, _, field_id = source.partition(".")
                stored = r.values.get(field_id)
                if form_id != form.id or not isinstance(stored, Mapping):
                    continue
                value = analysis_value(form.field(field_id), stored)
                if isinstance(value, float | int | str) and not isinstance(value, bool):
                    subject.found.setdefault((target, i), value)
        record = build.protocol.safety.death_record
        if record is None or form.id != record.form or r.visit_id != record.visit:
            return
        status = r.values.get(record.status_field, {}).get("value")
        ended = r.values.get(record.date_field)
        day = analysis_value(form.field(record.date_field), ended) if isinstance(ended, Mapping) else None
        day = day if isinstance(day, dt.date) else r.visit_date
        if status == record.status_value:
            subject.death = subject.death or day
        elif status is not None:
            subject.completed = day

    def _exposure(self, build: _Build, form: FormDef, r: FormRecord, subject: _Subject) -> None:
        p = build.protocol
        treatment = p.analysis_plan.treatment if p.analysis_plan else None
        if treatment is None or (form.id, r.visit_id) != (treatment.form, treatment.visit):
            return
        given = r.values.get(treatment.given_field)
        if not isinstance(given, Mapping):
            return
        start = analysis_value(form.field(treatment.given_field), given)
        if start is None:
            return
        after = form.fields[[f.id for f in form.fields].index(treatment.given_field) + 1 :]
        end_field = next((f for f in after if f.type is FieldType.DATETIME and f.derived is None), None)
        end = analysis_value(end_field, r.values[end_field.id]) if end_field and isinstance(
            r.values.get(end_field.id), Mapping) else None  # fmt: skip
        volume_units = {a.intervention.volume.unit for a in p.arms if a.intervention.volume}
        dose_field = next(
            (f for f in form.fields if f.unit in volume_units and f.type in {FieldType.DECIMAL, FieldType.INTEGER}),
            None,
        )
        dose = analysis_value(dose_field, r.values[dose_field.id]) if dose_field and isinstance(
            r.values.get(dose_field.id), Mapping) else None  # fmt: skip
        person = build.people.get(r.participant_id)
        arm = p.arm_by_code(person.arm) if build.source.with_arms and person and person.arm else None
        routes = {a.intervention.route.upper() for a in p.arms}
        route = arm.intervention.route.upper() if arm else (routes.pop() if len(routes) == 1 else None)
        visitnum, visit = build.visits.get(r.visit_id, (None, r.visit_id))
        build.sinks["EX"].add({
            **build.ids(r.participant_id),
            "EXTRT": arm.intervention.name if arm else BLINDED_TREATMENT,
            "EXDOSE": dose if isinstance(dose, float) else None,
            "EXDOSU": dose_field.unit if dose_field else None,
            "EXROUTE": route,
            "VISITNUM": visitnum,
            "VISIT": visit,
            "EXSTDTC": _dtc(start),
            "EXENDTC": _dtc(end),
        })  # fmt: skip
        if isinstance(start, dt.datetime):
            subject.first_dose = min(start, subject.first_dose) if subject.first_dose else start
            last = end if isinstance(end, dt.datetime) else start
            subject.last_dose = max(last, subject.last_dose) if subject.last_dose else last

    # -- events and participants -----------------------------------------------------------------------

    def _adverse_event(self, build: _Build, pid: str, a: Mapping[str, Any], related: bool, number: str) -> None:
        grade = a.get("grade")
        criteria = set(a.get("seriousness_criteria") or [])
        serious = bool(a.get("serious"))
        row = {
            **build.ids(pid),
            "AESPID": number,
            "AETERM": a.get("term"),
            "AEDECOD": a.get("term"),
            "AESEV": SEVERITY.get(grade) if isinstance(grade, int) else None,
            "AETOXGR": str(grade) if grade is not None else None,
            "AESER": _yn(serious),
            "AEACN": ACTIONS.get(str(a.get("action_taken"))),
            "AEREL": "RELATED" if related else "NOT RELATED",
            "AEOUT": OUTCOMES.get(str(a.get("outcome"))),
            "AESTDTC": a.get("onset"),
            "AEENDTC": a.get("end"),
        }
        row.update({name: _yn(code in criteria) if serious else None for name, code in CRITERIA.items()})
        build.sinks["AE"].add(row)
        death = a.get("death_date")
        if death and pid in build.subjects:
            subject = build.subjects[pid]
            subject.death = subject.death or dt.date.fromisoformat(str(death))

    def _disposition(self, build: _Build, person: ParticipantRecord, subject: _Subject) -> None:
        def add(term: str, decod: str, cat: str, scat: str | None, when: Any) -> None:
            build.sinks["DS"].add({**build.ids(person.participant_id), "DSTERM": term, "DSDECOD": decod,
                                   "DSCAT": cat, "DSSCAT": scat, "DSSTDTC": _dtc(when)})  # fmt: skip

        if person.consented_at is not None:
            add("INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", None,
                person.consented_at)  # fmt: skip
        if person.randomized_at is not None:
            add("RANDOMIZED", "RANDOMIZED", "PROTOCOL MILESTONE", None, person.randomized_at)
        left_study = False
        for scope, day, reason, cause in person.withdrawals:
            decod = DS_CAUSE.get(cause or "") or (
                "WITHDRAWAL OF CONSENT" if scope == "data_use" else "WITHDRAWAL BY SUBJECT"
            )
            scat = "STUDY TREATMENT" if scope == "intervention" else "STUDY PARTICIPATION"
            left_study = left_study or scope != "intervention"
            add(reason, decod, "DISPOSITION EVENT", scat, day)
        if subject.death is not None:
            add("DEATH", "DEATH", "DISPOSITION EVENT", "STUDY PARTICIPATION", subject.death)
        elif subject.completed is not None and not left_study:
            add("COMPLETED", "COMPLETED", "DISPOSITION EVENT", "STUDY PARTICIPATION", subject.completed)

    def _demographics(self, build: _Build, person: ParticipantRecord, subject: _Subject) -> None:
        p = build.protocol
        screening = person.screening_values
        for target, sources in dm_sources(p).items():
            for i, source in enumerate(sources):
                where, _, name = source.partition(".")
                value = screening.get(name) if where == "screening" else None
                if isinstance(value, float | int | str) and not isinstance(value, bool):
                    subject.found.setdefault((target, i), value)
        found_age, found_sex = subject.first("AGE"), subject.first("SEX")
        age = float(found_age) if isinstance(found_age, int | float) else None
        d = p.demographics
        sex = d.sex.codes.get(str(found_sex)) if d and d.sex and found_sex is not None else None
        arm = p.arm_by_code(person.arm) if build.source.with_arms and person.arm else None
        randomized = person.randomization_number is not None or person.randomized_at is not None
        # Without a treatment record in the protocol (a procedure, usual care) nothing says who was not treated:
        # as in the analysis, everyone randomized received the allocated arm.
        recorded = p.analysis_plan is not None and p.analysis_plan.treatment is not None
        treated = subject.first_dose is not None or (randomized and not recorded)
        reason = None if randomized else "NOT ASSIGNED"
        if randomized and not treated:
            reason = "ASSIGNED, NOT TREATED"
        withdrawn = max((w[1] for w in person.withdrawals), default=None)
        start = subject.first_dose or person.randomized_at or person.enrolled_at
        build.sinks["DM"].add({
            **build.ids(person.participant_id),
            "SUBJID": person.participant_id,
            "RFSTDTC": _dtc(start),
            "RFENDTC": _dtc(_latest(subject.last_date, subject.death, subject.completed, withdrawn)),
            "RFXSTDTC": _dtc(subject.first_dose),
            "RFXENDTC": _dtc(subject.last_dose),
            "RFICDTC": _dtc(person.consented_at),
            "DTHDTC": _dtc(subject.death),
            "DTHFL": "Y" if subject.death else None,
            "SITEID": person.site,
            "AGE": age,
            "AGEU": AGEU[d.age.unit] if age is not None and d and d.age else None,
            "SEX": sex or "U",
            "ARMCD": arm.code if arm else None,
            "ARM": arm.name if arm else None,
            "ACTARMCD": arm.code if arm and treated else None,
            "ACTARM": arm.name if arm and treated else None,
            "ARMNRS": reason,
        })  # fmt: skip

    # -- metadata --------------------------------------------------------------------------------------

    def _define(self, out: Path, build: _Build) -> Path:
        path = out / "define.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["dataset", "dataset_label", "variable", "label", "type", "length", "controlled_terms",
                             "origin"])  # fmt: skip
            for code, domain in DOMAINS.items():
                lengths = build.sinks[code].lengths
                for v in domain.variables:
                    writer.writerow(spreadsheet_row([code, domain.label, v.name, v.label, v.type,
                                                     lengths.get(v.name, 8), v.terms, v.origin]))  # fmt: skip
        return path

    def _testcodes(self, out: Path, p: Protocol) -> Path:
        path = out / "testcodes.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["domain", "testcd", "test", "source", "protocol_unit", "standard_unit", "terminology"])
            for source, t in findings_tests(p).items():
                form_id, _, field_id = source.partition(".")
                unit = p.field(form_id, field_id).unit or ""
                writer.writerow(spreadsheet_row([t.domain, t.testcd, t.test, source, unit, t.units.get(unit, unit),
                                                 t.checked or ""]))  # fmt: skip
        return path

    def _readme(self, folder: Path, build: _Build) -> Path:
        s = build.source
        arms = (
            "yes: DM holds the allocated arm (ARMCD, ARM, ACTARMCD, ACTARM) and EX the arm's intervention"
            if s.with_arms
            else "no: blinded extract; DM leaves ARMCD, ARM, ACTARMCD and ACTARM empty for randomized "
            f"participants (ARMNRS empty: masked, not missing) and EX names the treatment '{BLINDED_TREATMENT}'"
        )
        numeric = {FieldType.DECIMAL, FieldType.INTEGER}
        unmapped = [f"{form.id}.{f.id}" for form in s.protocol.forms for f in form.fields
                    if f.type in numeric and not (f.codes and f.codes.sdtm)]  # fmt: skip
        lines = [
            f"trialwright sdtm export: {self.description}",
            "",
            f"Trial: {s.trial_id}",
            f"Protocol version: {s.protocol_version}",
            f"Exported at: {s.taken_at.astimezone(dt.UTC).isoformat(timespec='seconds')} (UTC)",
            f"Arms included: {arms}",
            "",
            "Files (sdtm/):",
            *(
                f"  {c.lower()}.xpt, {c.lower()}.csv  {d.label} ({build.sinks[c].rows} records); dataset name {c}"
                for c, d in DOMAINS.items()
            ),
            "  define.csv  every variable: label, type, length, controlled terms, origin",
            "  testcodes.csv  LB and VS test codes: source field, units, terminology (CDISC term or sponsor-defined)",
            "",
            "Conventions:",
            "  - SDTM-style, not a validated submission: SAS transport v5, 8-character names, 40-character labels.",
            "  - USUBJID is STUDYID-participant id. --DTC values are ISO 8601; times are UTC (no offset written).",
            "  - AEDECOD repeats the reported term (not coded to MedDRA); AEREL follows the protocol's causality "
            "mapping (RELATED / NOT RELATED).",
            "  - A result below or above the limit of quantification is written <limit / >limit in --ORRES and "
            "--STRESC, --STRESN empty, and the limit in LBLLOQ / LBULOQ. Not done: --STAT NOT DONE, --REASND.",
            "  - LB units are the protocol's (not mapped to the CDISC UNIT codelist); VS units are CDISC VSRESU.",
            "  - RFENDTC: the latest visit date seen in the exported forms, death, completion or withdrawal.",
            "  - ACTARM is the allocated arm once treated (the preparation code's arm is not in the export); a "
            "protocol that records no treatment takes everyone randomized as treated with the allocated arm.",
            "  - EX: one record per treatment form with its start recorded; EXENDTC is the form's next date-time "
            "field; EXDOSE the field in the arms' volume unit.",
            "  - DS: COMPLETED when the end-of-follow-up form records a status other than death (and no withdrawal "
            "from follow-up); DEATH from that form or a fatal adverse event.",
        ]
        if unmapped:
            lines.append(f"  - Not in LB/VS (no codes.sdtm test declared in the protocol): {', '.join(unmapped)}.")
        notes = [*build.notes, *s.notes]
        if notes:
            lines += ["", "Notes:", *(f"  - {n}" for n in notes)]
        path = folder / "README.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
