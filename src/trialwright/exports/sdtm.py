"""SDTM tabulation after SDTMIG 3.4: DM, DS, EX, AE, CM and MH (from the protocol's log forms), SV, SE, LB, VS and
the trial design domains (TV, TI, TE, TA, TS; ``trialwright.exports.sdtm_design``) as SAS transport v5 files and CSV,
with metadata and SUPP-- for text past 200 bytes.

Each domain is declared once (``trialwright.exports.sdtm_domains``: its variables with label, type, controlled
terms and origin); the findings domains LB and VS hold exactly the fields whose protocol ``codes`` declare an
``sdtm`` test (``trialwright.protocol.codes``: domain, --TESTCD, --TEST, the terminology it was checked in, the
unit words); nothing is guessed from a field's name or unit, and a numeric field without a test is named in
README.txt. Form records are streamed one form at a time; what DM and DS need about a participant (dates, age,
sex, death, exposure) is gathered on the way, so memory grows with participants, not records. Rows are
gathered into Arrow record batches and spooled to Parquet; each domain is then read back as Arrow columns,
sorted by USUBJID, given what needs other records (--DY from each subject's RFSTDTC, in Arrow; --LOBXFL, which
reads LB's and VS's subject, test, result and time columns as Python lists), numbered (--SEQ) and written on its
own, a batch at a time as XPT (the project's transport writer, ``trialwright.exports.xport``) and as CSV; the sort
holds the domain's Arrow columns, so the peak is the largest domain's columns. Every form is read for the visit
dates (SV, EPOCH of events); only the domains' forms give rows.

Masking: a blinded extract writes BLINDED in ARMCD, ARM, ACTARMCD and ACTARM of every randomized (and treated)
participant: the arm is assigned, only withheld, so it is not null and ARMNRS keeps the SDTMIG's reasons (NOT
ASSIGNED; ASSIGNED, NOT TREATED), the same as in the extract with arms; EX names the treatment "BLINDED STUDY
TREATMENT". With arms (the unblinded statistician only), DM holds the allocated arm and EX the arm's
intervention, TA the planned arms and TE/SE the arms' elements; no other domain names an arm (TV's ARMCD is
empty: every arm has every visit). A blinded extract's TA, TE and SE write BLINDED as DM does.

Test codes say where they were checked in the protocol (``checked``), written to testcodes.csv. The domains'
metadata is also written as Define-XML 2.1, define.xml with define.html (``trialwright.exports.sdtm_define``).
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trialwright.domain.deaths import Death, death_fields, deaths_found, fatal_death, plain_values, undated_deaths
from trialwright.domain.forms import StoredValue
from trialwright.domain.log_undeclared import undeclared
from trialwright.domain.safety import names_death
from trialwright.domain.text import spreadsheet_row
from trialwright.domain.treatment import arm_received, treatment_given
from trialwright.exports.base import Exporter, ExportSource, FormRecord, ParticipantRecord, Progress
from trialwright.exports.columnar import BATCH_ROWS, csv_cells, csv_lines
from trialwright.exports.meddra import sdtm_coding_columns
from trialwright.exports.readstat import ascii_cells, ascii_text, cut_text, string_column
from trialwright.exports.sdtm_define import write_define
from trialwright.exports.sdtm_design import (
    SubjectElement,
    design_elements,
    planned_day,
    split_text,
    subject_elements,
    ta_rows,
    te_rows,
    ts_left_out,
    ts_rows,
    visit_element,
)
from trialwright.exports.sdtm_domains import (
    AGEU,
    BLINDED_ARM,
    BLINDED_TREATMENT,
    CRITERIA,
    DOMAINS,
    DS_CAUSE,
    OUTCOMES,
    SDTMIG_VERSION,
    SEVERITY,
    TSVAL_PIECES,
    Domain,
    Var,
    dm_sources,
    findings_tests,
    supp_domain,
)
from trialwright.exports.sdtm_findings import (
    AT_COLUMN,
    FINDINGS,
    SubjectReference,
    baseline_flags,
    finding_record,
    moment_field,
    sequence_numbers,
    study_days,
)
from trialwright.exports.statistical import write_csv
from trialwright.exports.tabular import Column, ParquetSink, Table, analysis_value
from trialwright.exports.xport import XportVariable, XportWriter, short_reading_note
from trialwright.protocol import Protocol
from trialwright.protocol.cdisc_ct import SDTM_CT_VERSION
from trialwright.protocol.demographics import RETIRED_SEX
from trialwright.protocol.elements import epochs
from trialwright.protocol.forms import FieldType, FormDef
from trialwright.protocol.logs import LOG_DOSES, dose_unit

__all__ = [
    "BLINDED_ARM",
    "BLINDED_TREATMENT",
    "DOMAINS",
    "SDTMIG_VERSION",
    "Domain",
    "SdtmExportError",
    "SdtmExporter",
    "Var",
    "findings_tests",
]

class SdtmExportError(ValueError):
    """An SDTM export that cannot be made as the IG requires; the message names what is missing and where."""


def _dtc(value: Any, zone: dt.tzinfo) -> str | None:
    """ISO 8601 as SDTM writes it: a date as a date, or a date and time to the minute as the site's local time
    with its UTC offset (2021-03-04T10:15+03:30). Stored moments are UTC (``exports.base``)."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(zone).isoformat(timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def _local_day(value: Any, zone: dt.tzinfo) -> dt.date | None:
    """The local calendar date of a moment (a date is its own day)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(zone).date()
    return value if isinstance(value, dt.date) else None


def _atc_columns(coding: Mapping[str, Any] | None, class_level: int | None) -> dict[str, Any]:
    """CMDECOD (the ATC level-5 name) and CMCLAS/CMCLASCD (the code and name at the declared level) of a coding."""
    if coding is None or coding.get("dictionary") != "ATC":
        return {"CMDECOD": None, "CMCLAS": None, "CMCLASCD": None}
    at = {int(p["level"]): p for p in coding["path"]}
    chosen = at.get(class_level) if class_level is not None else None
    return {"CMDECOD": coding["name"], "CMCLAS": chosen["name"] if chosen else None,
            "CMCLASCD": chosen["code"] if chosen else None}  # fmt: skip


def _meddra_columns(coding: Mapping[str, Any] | None) -> dict[str, Any]:
    """MHDECOD (the PT, level 4 of the stored path) and MHBODSYS (the primary SOC, level 1) of a MedDRA coding."""
    if coding is None or coding.get("dictionary") != "MedDRA":
        return {"MHDECOD": None, "MHBODSYS": None}
    at = {int(p["level"]): p for p in coding["path"]}
    return {"MHDECOD": at[4]["name"], "MHBODSYS": at[1]["name"]}


def _yn(flag: bool | None) -> str | None:
    return None if flag is None else ("Y" if flag else "N")


@dataclass
class _Subject:
    """What DM and DS need about one participant, gathered while the forms stream by."""

    exposed: bool = False  # the treatment form says the treatment was given (``treatment_given``)
    given_codes: list[str] = field(default_factory=list)  # the preparation codes its treatment forms say were given
    first_dose: dt.datetime | None = None
    dose_ends: list[dt.date | None] = field(default_factory=list)  # each exposure's recorded end (None: not recorded)
    first_dose_day: dt.date | None = None  # the first exposure known only by its date (a date or yes/no field)
    last_date: dt.date | None = None
    death: dt.date | None = None  # the earliest death its records give (``deaths_found``), once they are all read
    death_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # visit id -> the fields that say a death
    fatal: list[Death] = field(default_factory=list)  # the deaths its fatal adverse events report
    completed: dt.date | None = None
    found: dict[tuple[str, int], float | str] = field(default_factory=dict)  # (AGE|SEX, source index) -> value
    visits: dict[str, dt.date] = field(default_factory=dict)  # visit id -> the first date its forms record
    visit_ends: dict[str, dt.date] = field(default_factory=dict)  # visit id -> the last date its forms record
    ended: str | None = None  # RFPENDTC, once DM is written
    elements: list[SubjectElement] = field(default_factory=list)  # its SE records, once SE is written

    def first(self, target: str) -> float | str | None:
        """The value of the first declared source that has one."""
        known = sorted((i, v) for (t, i), v in self.found.items() if t == target)
        return known[0][1] if known else None

    def saw(self, visit_id: str, day: dt.date | None) -> None:
        if day is not None and (self.last_date is None or day > self.last_date):
            self.last_date = day
        if day is not None:
            self.visits[visit_id] = min(day, self.visits.get(visit_id, day))
            self.visit_ends[visit_id] = max(day, self.visit_ends.get(visit_id, day))


def _day(value: Any) -> dt.date | None:
    """A stored ISO date's calendar date (its first ten characters), None when it has none."""
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _latest(*days: dt.date | None) -> dt.date | None:
    known = [d for d in days if d is not None]
    return max(known) if known else None


class _DomainSink:
    """One domain's rows, spooled to Parquet in record batches; then read back as Arrow columns, sorted by
    USUBJID, numbered (--SEQ) and written a batch at a time as XPT (``trialwright.exports.xport``) and CSV."""

    def __init__(self, folder: Path, domain: Domain, batch: int = BATCH_ROWS) -> None:
        self.domain, self.folder, self._batch = domain, folder, batch
        columns = tuple(Column(v.name, "number" if v.type == "Num" else "text", v.label) for v in domain.variables)
        if domain.code in FINDINGS:  # when the result was taken, in UTC (or a local date): for --LOBXFL
            columns += (Column(AT_COLUMN, "text", "moment taken (UTC) or local date"),)
        self._spool = ParquetSink(folder / ".spool" / f"{domain.code}.parquet", Table(domain.code, domain.label,
                                                                                    columns), batch)  # fmt: skip
        self.lengths: dict[str, int] = {}
        self.rows = 0
        self.supp: list[dict[str, Any]] = []  # SUPP-- records continuing text past 200 bytes (``_overflow``)
        self.not_ascii: list[tuple[str, str, int, str]] = []  # (file, variable, row, text) left empty (``_ascii``)

    def add(self, row: Mapping[str, Any]) -> None:
        self._spool.add(row)
        self.rows += 1

    def table(self, notes: list[str], reference: Mapping[str, SubjectReference]) -> pa.Table:
        """The domain's rows as Arrow columns, in the order of its variables: sorted by USUBJID (a stable sort; a
        trial design domain keeps the protocol's order), with what is derived from other records (study days,
        baseline flags), numbered (--SEQ, float64) and DOMAIN filled; text as stored (missing is null, nothing
        cut)."""
        (spool,) = self._spool.close()
        data = pq.read_table(spool)
        spool.unlink()
        if "USUBJID" in data.column_names:  # a trial design domain keeps the protocol's order
            data = data.take(pc.sort_indices(data, sort_keys=[("USUBJID", "ascending")]))  # a stable sort
        names = {v.name for v in self.domain.variables}
        for v in self.domain.variables:  # what is derived from other records: study days, baseline flags
            derived: pa.Array | None = None
            if v.type == "Num" and v.name.endswith("DY") and f"{v.name[:-2]}DTC" in names:
                derived = pa.array(study_days(data.column(f"{v.name[:-2]}DTC"), data.column("USUBJID"), reference),
                                   pa.float64(), from_pandas=True)  # fmt: skip
            elif v.name.endswith("LOBXFL") and self.domain.code in FINDINGS:
                derived = baseline_flags(data, self.domain.code, reference, notes)
            if derived is not None:
                data = data.set_column(data.column_names.index(v.name), v.name, derived)
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for v in self.domain.variables:
            if v.name == self.domain.seq:
                columns[v.name] = pa.array(sequence_numbers(data.column("USUBJID")), pa.float64())
            elif v.name == "DOMAIN":
                columns[v.name] = string_column(self.domain.code, data.num_rows)
            else:
                columns[v.name] = data.column(v.name)
        return pa.table(columns)

    def close(self, notes: list[str], reference: Mapping[str, SubjectReference]) -> list[Path]:
        data = self._ascii(self.table(notes, reference))
        if "USUBJID" in data.column_names and not self.domain.code.startswith("SUPP"):
            data = self._overflow(data)
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
        variables = [XportVariable(v.name, ascii_text(v.label)[:40], "num" if v.type == "Num" else "char",
                                   self.lengths[v.name]) for v in self.domain.variables]  # fmt: skip
        table = pa.table({name: pa.array(c) if isinstance(c, np.ndarray) else c for name, c in columns.items()})
        with XportWriter(xpt, self.domain.code, self.domain.label, variables) as writer:
            for batch in table.to_batches(max_chunksize=self._batch):
                writer.write(batch.columns)
        if writer.read_short is not None:
            notes.append(short_reading_note(f"{stem}.xpt", writer.read_short, writer.rows))
        self._csv(text_path, columns)
        return [xpt, text_path]

    def _ascii(self, data: pa.Table) -> pa.Table:
        """Every text value spelt in ASCII, as SAS transport v5 holds ASCII only: the characters of the one declared
        mapping (``readstat.ASCII_SPELLINGS``, listed in the codebook's xpt_ascii.csv) spelt by it, before the text
        is cut into SUPP-- pieces; a value with any other character (Persian text, say) is never guessed: left empty
        and listed in not_ascii.csv (file, variable, row, the text as stored), as the SAS export does. The domain's
        CSV holds what its XPT holds; Dataset-JSON keeps the text as stored."""
        for v in self.domain.variables:
            if v.type != "Char":
                continue
            spelt, refused = ascii_cells(data.column(v.name))
            data = data.set_column(data.column_names.index(v.name), v.name, spelt)
            self.not_ascii += [(f"{self.domain.code.lower()}.xpt", v.name, row + 1, text) for row, text in refused]
        return data

    def _overflow(self, data: pa.Table) -> pa.Table:
        """A subject record's text longer than the 200 bytes an XPT v5 variable holds: the first piece (cut before
        a space) stays, the rest continues in SUPP-- records (QNAM the variable's name and 1, 2, ...; SDTMIG 3.4
        4.5.3.2), so nothing is cut. Dataset-JSON, which has no such limit, keeps the whole text."""
        for v in self.domain.variables:
            if v.type != "Char" or not pc.any(pc.greater(pc.binary_length(data.column(v.name)), 200)).as_py():
                continue
            values = data.column(v.name).to_pylist()
            subjects = data.column("USUBJID").to_pylist()
            seq = data.column(self.domain.seq).to_pylist() if self.domain.seq else None
            for i, text in enumerate(values):
                if text is None or len(text.encode()) <= 200:
                    continue
                try:
                    values[i], *rest = split_text(text)
                except ValueError as exc:
                    raise SdtmExportError(f"{self.domain.code}.{v.name}: {exc}") from exc
                for n, piece in enumerate(rest, start=1):
                    self.supp.append({
                        "STUDYID": data.column("STUDYID")[i].as_py(), "RDOMAIN": self.domain.code,
                        "USUBJID": subjects[i], "IDVAR": self.domain.seq,
                        "IDVARVAL": str(int(seq[i])) if seq else None, "QNAM": f"{v.name[:7]}{n}",
                        "QLABEL": v.label, "QVAL": piece, "QORIG": v.origin.split(":")[0].split()[0],
                        "QEVAL": None,
                    })  # fmt: skip
            data = data.set_column(data.column_names.index(v.name), v.name, pa.array(values, pa.string()))
        return data

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
    epochs: dict[str, str] = field(default_factory=dict)  # visit id -> its declared epoch
    zones: dict[str, dt.tzinfo] = field(default_factory=dict)  # site code -> its time zone
    reference: dict[str, SubjectReference] = field(default_factory=dict)  # USUBJID -> reference dates
    missed: dict[str, dict[str, str]] = field(default_factory=dict)  # participant -> visit id -> why it was missed
    undecided: int = 0  # event records whose epoch the dates cannot tell
    empty: list[str] = field(default_factory=list)  # domains with no records: not written (``not_written``)
    sv_undecided: int = 0  # dated visits no single SE element can be said to hold (``visit_element``)
    prepared: Mapping[str, str] = field(default_factory=dict)  # preparation code -> arm code (with arms only)

    def __post_init__(self) -> None:
        p = self.source.protocol
        self.visits = {v.id: (float(i + 1), v.name) for i, v in enumerate(p.visits)}
        self.epochs = {v.id: v.epoch for v in p.visits if v.epoch is not None}
        self.zones = {s.code: zoneinfo.ZoneInfo(s.timezone) for s in p.sites}
        self.prepared = self.source.preparation_arms()

    def zone(self, site: str) -> dt.tzinfo:
        if site not in self.zones:
            raise SdtmExportError(f"site {site!r}: not a site of the protocol, so its time zone is unknown")
        return self.zones[site]

    def epoch_on(self, subject: _Subject, when: dt.date | None) -> str | None:
        """The epoch an event dated ``when`` (a local date) fell in: the epoch whose first visit (by the dates the
        subject's forms record) is the latest on or before it. On the day an epoch begins, the first one included,
        the event may belong to the period before (an epoch's start is a date, with no time to compare): then, as
        before the first visit, there is no answer (None), counted in ``undecided``."""
        if when is None or not self.epochs:
            return None
        starts: dict[str, dt.date] = {}
        for visit_id, day in subject.visits.items():
            if (epoch := self.epochs.get(visit_id)) is not None:
                starts[epoch] = min(day, starts.get(epoch, day))
        begun = sorted((day, epoch) for epoch, day in starts.items() if day <= when)
        if not begun or begun[-1][0] == when:
            self.undecided += 1
            return None
        return begun[-1][1]

    @property
    def protocol(self) -> Protocol:
        return self.source.protocol

    def ids(self, participant_id: str) -> dict[str, Any]:
        return {"STUDYID": self.source.trial_id, "DOMAIN": "", "USUBJID": f"{self.source.trial_id}-{participant_id}"}


def _check_countries(source: ExportSource) -> None:
    if missing := [s.code for s in source.protocol.sites if s.country is None]:
        raise SdtmExportError(
            f"sites {', '.join(missing)}: no country (sites[].country, ISO 3166-1 alpha-3, e.g. IRN); SDTM "
            "DM.COUNTRY is required (SDTMIG 3.4 DM) and is never guessed"
        )
    d = source.protocol.demographics
    if d is not None and d.sex is not None and (retired := sorted(set(d.sex.codes.values()) & RETIRED_SEX)):
        raise SdtmExportError(
            f"demographics.sex.codes: {', '.join(retired)} is not a term of CDISC CT SEX in SDTM CT {SDTM_CT_VERSION} "
            "(a protocol version stored before trialwright shipped the CT package); SEX is not extensible, so DM.SEX "
            "cannot be written: amend the protocol (a new version) to a SEX term"
        )


def _design_lines(p: Protocol, with_arms: bool) -> list[str]:
    """README lines on TE, TA, SE and TS."""
    if p.elements:
        masked = ("" if with_arms else " In this blinded extract TA has one path, ARMCD and ARM BLINDED (as DM), "
                  "and an epoch whose element differs by arm has the element BLINDED in TE, TA and SE (the rules the "
                  "arms' elements share), so no record tells a subject's arm.")  # fmt: skip
        design = [
            "  - TE: the protocol's elements (elements[]: code, name, start_rule, end_rule, duration). TA: each arm's "
            "elements in epoch order (TAETORD; TABRANCH the randomization on the element before the arms part). SE: "
            "each subject's elements along the allocated arm, started by the record each element's starts_at names "
            "(consent, enrolment, randomization, first dose, first date at a visit of its epoch), ended where the "
            "next begins, the last at RFPENDTC; a subject never randomized has the elements before the arms part."
            + masked
        ]
    else:
        design = ["  - TE, TA and SE: not written; the protocol declares no elements (elements[]); they are never "
                  "guessed."]
    left = "; ".join(ts_left_out(p, with_arms))
    return [
        *design,
        "  - TS: one record per value of each parameter the protocol declares (TSVAL1, TSVAL2 continue a value past "
        "200 bytes); ACTSUB counts the subjects in DM, SSTDTC is the earliest informed consent date. Left out (not "
        f"declared, no term, or withheld): {left}.",
    ]


class SdtmExporter(Exporter):
    """SDTM-style domains as SAS transport v5 (FDA) and CSV, with define.xml (Define-XML 2.1), define.html,
    define.csv and testcodes.csv."""

    name = "sdtm"
    description = ("SDTMIG 3.4 DM, DS, EX, AE, CM, MH, SV, SE, TV, TI, TE, TA, TS, LB and VS (XPT v5 and CSV) with "
                   "define.xml (Define-XML 2.1), define.html, define.csv and testcodes.csv.")

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        #: Rows per Arrow record batch: what a domain holds as rows while it streams, and per CSV write.
        self.batch_rows = batch_rows

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        _check_countries(source)  # before anything is written
        out = folder / "sdtm"
        out.mkdir(parents=True, exist_ok=True)
        build = self._build(source, out, progress)
        written: list[Path] = []
        for code, sink in list(build.sinks.items()):
            if sink.rows:
                written += sink.close(build.notes, build.reference)
            else:  # SDTM submits no empty dataset: not written, not in define.xml, listed in README.txt
                sink.table(build.notes, build.reference)
                del build.sinks[code]
                build.empty.append(code)
        for code, sink in list(build.sinks.items()):  # SUPP--, only for a domain whose text ran past 200 bytes
            if sink.supp:
                supp = build.sinks[f"SUPP{code}"] = _DomainSink(out, supp_domain(DOMAINS[code]), self.batch_rows)
                for row in sink.supp:
                    supp.add(row)
                written += supp.close(build.notes, build.reference)
        shutil.rmtree(out / ".spool", ignore_errors=True)
        if refused := [row for sink in build.sinks.values() for row in sink.not_ascii]:
            written.append(write_csv(out / "not_ascii.csv", ["file", "variable", "row", "text"], refused))
            build.notes.append(f"not_ascii.csv: {len(refused)} text value(s) left empty in the XPT and CSV files: "
                               "characters SAS transport v5 (ASCII) cannot hold and no declared spelling covers "
                               "(the codebook's xpt_ascii.csv); Dataset-JSON keeps them as stored.")  # fmt: skip
        written += [self._define(out, build), self._testcodes(out, source.protocol)]
        written += write_define(source, {code: sink.lengths for code, sink in build.sinks.items()}, out)
        written.append(self._readme(folder, build))
        return written

    def domain_tables(
        self, source: ExportSource, out: Path, progress: Progress | None = None, notes: list[str] | None = None
    ) -> Iterator[tuple[Domain, pa.Table]]:
        """Each domain's rows as Arrow columns (``_DomainSink.table``: what the XPT and CSV files hold before text
        is cut to 200 bytes), one domain at a time, for another format of the same domains (Dataset-JSON). The rows
        are spooled under ``out`` (an existing folder) and the spool removed when the last domain is read. What
        the SDTM README would note (uncoded AEs, EPOCH or baseline flags left empty, terms naming death) is added
        to ``notes`` once every domain was read, so the other format says it too."""
        build = self._build(source, out, progress)
        try:
            for code, sink in build.sinks.items():
                data = sink.table(build.notes, build.reference)
                if data.num_rows:
                    yield DOMAINS[code], data
                else:  # SDTM submits no empty dataset
                    build.empty.append(code)
            if notes is not None:
                notes += [*build.notes, *([not_written(build.empty)] if build.empty else [])]
        finally:
            shutil.rmtree(out / ".spool", ignore_errors=True)

    def testcodes(self, out: Path, p: Protocol) -> Path:
        """testcodes.csv in ``out``: the LB and VS test codes with their source fields, units and terminology."""
        return self._testcodes(out, p)

    def _build(self, source: ExportSource, out: Path, progress: Progress | None) -> _Build:
        """Every domain's rows, streamed from the source into its sink (spooled under ``out``)."""
        _check_countries(source)
        people = {p.participant_id: p for p in source.participants()}
        build = _Build(source, {c: _DomainSink(out, d, self.batch_rows) for c, d in DOMAINS.items()}, people,
                       {pid: _Subject() for pid in people})  # fmt: skip
        read = set(self._forms(source.protocol))
        dying = death_fields(source.protocol)
        for form in source.protocol.forms:  # every form dates its visit (SV); the domains' forms give their rows
            for r in source.forms(form.id):
                subject = build.subjects.setdefault(r.participant_id, _Subject())
                subject.saw(r.visit_id, r.visit_date)
                if said := {k: v for k, v in plain_values(form.id, r.values).items() if k in dying}:
                    subject.death_values.setdefault(r.visit_id, {}).update(said)
                if form.id in read:
                    for handler in (self._findings, self._subject_facts, self._exposure):
                        handler(build, form, r, subject)
                build.done += 1
                if progress is not None:
                    progress(build.done)
        uncoded, versions = [], set()
        for event in source.events():
            self._adverse_event(build, event.participant_id, event.site, event.assessment, event.related,
                                event.ae_number, event.coding)  # fmt: skip
            uncoded += [] if event.coding else [event.ae_number]
            versions |= {event.coding["version"]} if event.coding else set()
        build.notes += [f"AE coded with MedDRA {', '.join(sorted(versions))}"] if versions else []
        build.notes += [f"AE not coded to MedDRA (AEDECOD empty): {', '.join(uncoded)}"] if uncoded else []
        self._logs(build)
        for pid, visit_id, reason in source.missed_visits():
            build.missed.setdefault(pid, {})[visit_id] = reason
        for pid, person in people.items():
            self._death(build, pid, build.subjects[pid])
            self._disposition(build, person, build.subjects[pid])
            self._demographics(build, person, build.subjects[pid])
            self._subject_elements(build, person, build.subjects[pid])
            self._subject_visits(build, person, build.subjects[pid])
        self._trial_design(build)
        if build.sv_undecided:
            build.notes.append(f"SV: EPOCH and TAETORD empty on {build.sv_undecided} dated visit(s) in no SE element, "
                               "or on a day two elements share when neither is the visit's planned epoch's.")
        if build.undecided:
            build.notes.append(f"EPOCH: empty on {build.undecided} AE/DS record(s) dated before the subject's first "
                               "visit or on the day an epoch begins (a date without a time cannot tell which epoch).")
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
        moment = moment_field(form)
        stamp = analysis_value(moment, r.values[moment.id]) if moment and isinstance(r.values.get(moment.id),
                                                                                     Mapping) else None  # fmt: skip
        visitnum, visit = build.visits.get(r.visit_id, (None, r.visit_id))
        zone = build.zone(r.site)
        taken = _dtc(stamp, zone) or _dtc(r.visit_date, zone)
        at = stamp.astimezone(dt.UTC).isoformat() if isinstance(stamp, dt.datetime) else _dtc(r.visit_date, zone)
        for prefix in ("LB", "VS"):
            for f in form.fields:
                test, stored = f.codes.sdtm if f.codes else None, r.values.get(f.id)
                if test is None or test.domain != prefix or not isinstance(stored, Mapping):
                    continue
                row = {**build.ids(r.participant_id), **finding_record(prefix, test, f, stored)}
                row.update({"VISITNUM": visitnum, "VISIT": visit, "EPOCH": build.epochs.get(r.visit_id),
                            f"{prefix}DTC": taken, AT_COLUMN: at})  # fmt: skip
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
        if status is not None and status != record.status_value:  # a death is read by ``_death``
            subject.completed = day

    def _exposure(self, build: _Build, form: FormDef, r: FormRecord, subject: _Subject) -> None:
        p = build.protocol
        treatment = p.analysis_plan.treatment if p.analysis_plan else None
        if treatment is None or (form.id, r.visit_id) != (treatment.form, treatment.visit):
            return
        given = r.values.get(treatment.given_field)
        if not isinstance(given, Mapping) or not treatment_given(StoredValue.from_json(given)):
            return  # not given (no, missing, not done): no exposure, as in the analysis
        subject.exposed = True
        code = r.values.get(treatment.code_field) if treatment.code_field else None
        if isinstance(code, Mapping) and code.get("status", "value") == "value" and code.get("value") is not None:
            subject.given_codes.append(str(code["value"]))
        given_field = form.field(treatment.given_field)
        # The start: the given field's own date-time or date; a yes/no field holds no moment, and the protocol
        # declares no other, so the start is the treatment visit's date. The end and the dose only from the fields
        # the protocol declares for them (``end_field``, ``dose_field``), never inferred from the form's others.
        start = analysis_value(given_field, given) if given_field.type is not FieldType.BOOLEAN else r.visit_date
        end_field = form.field(treatment.end_field) if treatment.end_field else None
        end = analysis_value(end_field, r.values[end_field.id]) if end_field and isinstance(
            r.values.get(end_field.id), Mapping) else None  # fmt: skip
        dose_field = form.field(treatment.dose_field) if treatment.dose_field else None
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
            "EPOCH": build.epochs.get(r.visit_id),
            "EXSTDTC": _dtc(start, build.zone(r.site)),
            "EXENDTC": _dtc(end, build.zone(r.site)),
        })  # fmt: skip
        if isinstance(start, dt.datetime):
            subject.first_dose = min(start, subject.first_dose) if subject.first_dose else start
        elif isinstance(start, dt.date):
            subject.first_dose_day = min(start, subject.first_dose_day) if subject.first_dose_day else start
        # The end of this exposure as the data record it: its EXENDTC, or (a single administration declared by
        # the protocol) its start; else not known, and RFXENDTC stays empty (never the first dose by default).
        known = end if isinstance(end, dt.datetime) else start if treatment.single_administration else None
        subject.dose_ends.append(known if isinstance(known, dt.date) else None)

    # -- events and participants -----------------------------------------------------------------------

    def _adverse_event(
        self, build: _Build, pid: str, site: str, a: Mapping[str, Any], related: bool, number: str,
        coding: Mapping[str, Any] | None = None,
    ) -> None:
        grade = a.get("grade")
        term = a.get("term")
        if isinstance(term, str) and names_death(term):
            build.notes.append(f"AE {number}: the reported term {term!r} names death, not the event that caused it "
                               "(SDTMIG 3.4 AE: death is an outcome, AEOUT FATAL / AESDTH Y); written as reported, "
                               "to be corrected in the adverse event report.")  # fmt: skip
        subject = build.subjects.get(pid)
        onset = a.get("onset")
        criteria = set(a.get("seriousness_criteria") or [])
        serious = bool(a.get("serious"))
        row = {
            **build.ids(pid),
            "AESPID": number,
            "AETERM": a.get("term"),
            **sdtm_coding_columns(coding),
            "AESEV": SEVERITY.get(grade) if isinstance(grade, int) else None,
            "AETOXGR": str(grade) if grade is not None else None,
            "AESER": _yn(serious),
            "AEACN": _aeacn(build.protocol).get(str(a.get("action_taken"))) if a.get("action_taken") else None,
            "AEREL": "RELATED" if related else "NOT RELATED",
            "AEOUT": OUTCOMES.get(str(a.get("outcome"))),
            "EPOCH": build.epoch_on(subject, _day(onset)) if subject else None,
            "AESTDTC": a.get("onset"),
            "AEENDTC": a.get("end"),
        }
        row.update({name: _yn(code in criteria) if serious else None for name, code in CRITERIA.items()})
        if a.get("action_taken") and row["AEACN"] is None:  # a code the protocol does not declare: never guessed
            build.notes.append(f"AE {number}: AEACN empty: the action taken {a.get('action_taken')!r} is not one of "
                               "the protocol's safety actions")  # fmt: skip
        build.sinks["AE"].add(row)
        died = fatal_death(number, a)
        if died is not None and pid in build.subjects:
            build.subjects[pid].fatal.append(died)

    def _death(self, build: _Build, pid: str, subject: _Subject) -> None:
        """DTHDTC/DTHFL and DS DEATH from the earliest death the participant's records give, by the rule the visits
        after a death follow (``trialwright.domain.deaths``): fatal adverse events, the death record, the
        vital-status fields. Sources that disagree on the day are listed in the README, and so is a status saying
        died without a date (no day is guessed)."""
        found = deaths_found(build.protocol, subject.death_values, subject.fatal)
        usubjid = f"{build.source.trial_id}-{pid}"
        if found:
            subject.death = found[0].on
            if len({d.on for d in found}) > 1:
                said = "; ".join(f"{d.on.isoformat()} ({d.source})" for d in found)
                build.notes.append(f"DM {usubjid}: the records disagree on the date of death: {said}; "
                                   f"DTHDTC is the earliest, {found[0].on.isoformat()}")  # fmt: skip
        for source in undated_deaths(build.protocol, subject.death_values):
            build.notes.append(f"DM {usubjid}: {source} says died but gives no date; no death is counted from it "
                               "(no date guessed)")  # fmt: skip

    def _logs(self, build: _Build) -> None:
        """CM and MH from the log entries, each variable from the field the protocol maps to it (removed entries
        left out, counted in README.txt); a domain no log is written to stays empty, and README.txt says so."""
        written: set[str] = set()
        held = ((e.log_id, e.values) for e in build.source.logs())
        build.notes += [f"{u.describe()}; not in CM or MH" for u in undeclared(build.protocol, held)]
        for log in build.protocol.logs:
            if log.sdtm is None:
                build.notes.append(f"logs/{log.id}: the protocol writes it to no SDTM domain (no sdtm:); it is in "
                                   "the tabular exports only.")  # fmt: skip
                continue
            sdtm, code = log.sdtm, log.sdtm.domain
            written.add(code)
            fields = {f.id: f for f in log.fields}
            removed, uncoded, versions = 0, 0, set()
            for entry in build.source.logs(log.id):
                if entry.state != "active":
                    removed += 1
                    continue
                zone = build.zone(entry.site)
                row: dict[str, Any] = {**build.ids(entry.participant_id), f"{code}SPID": str(entry.sequence)}
                for variable, field_id in sdtm.variables.items():
                    stored = entry.values.get(field_id)
                    value = stored.get("value") if isinstance(stored, Mapping) else None
                    if value is None:
                        row[variable] = None
                    elif variable in LOG_DOSES:
                        row[variable] = float(value)
                        if unit := dose_unit(log, variable):  # no CMDOSU field: the dose field's own unit
                            row["CMDOSU"] = unit
                    elif fields[field_id].type is FieldType.DATETIME:  # stored as ISO text in UTC
                        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
                        row[variable] = _dtc(moment, zone)
                    else:
                        row[variable] = str(value)
                ongoing = entry.values.get(sdtm.ongoing) if sdtm.ongoing else None
                if isinstance(ongoing, Mapping) and ongoing.get("value") is True:
                    row[f"{code}ENRTPT"], row[f"{code}ENTPT"] = "ONGOING", sdtm.ongoing_until
                uncoded += entry.coding is None
                versions |= {entry.coding["version"]} if entry.coding else set()
                if code == "MH":
                    row.update(_meddra_columns(entry.coding))
                if code == "CM":
                    row.update(_atc_columns(entry.coding, sdtm.atc_class_level))
                    subject = build.subjects.get(entry.participant_id)
                    row["EPOCH"] = build.epoch_on(subject, _day(row.get("CMSTDTC"))) if subject else None
                build.sinks[code].add(row)
            if removed:
                build.notes.append(f"{code}: {removed} removed entr{'y' if removed == 1 else 'ies'} of logs/{log.id} "
                                   "left out (kept, with the reason, in the tabular exports).")  # fmt: skip
            if code == "CM" and versions:
                build.notes.append(f"CM coded with WHO ATC {', '.join(sorted(versions))}")
            if code == "CM" and uncoded:
                build.notes.append(f"CM: {uncoded} medication(s) not coded to ATC (CMDECOD, CMCLAS empty).")
            if code == "MH" and uncoded:
                build.notes.append(f"MH: {uncoded} term(s) not coded to MedDRA (MHDECOD, MHBODSYS empty).")
            if code == "MH" and versions:
                build.notes.append(f"MH coded with MedDRA {', '.join(sorted(versions))}")
        for code in ("CM", "MH"):
            if code not in written:
                build.notes.append(f"{code}: no records: the protocol declares no log written to {code}, so none "
                                   "was collected (not: none taken).")  # fmt: skip

    def _disposition(self, build: _Build, person: ParticipantRecord, subject: _Subject) -> None:
        zone = build.zone(person.site)

        def add(term: str, decod: str, cat: str, scat: str | None, when: Any) -> None:
            epoch = build.epoch_on(subject, _local_day(when, zone))
            build.sinks["DS"].add({**build.ids(person.participant_id), "DSTERM": term, "DSDECOD": decod,
                                   "DSCAT": cat, "DSSCAT": scat, "EPOCH": epoch,
                                   "DSSTDTC": _dtc(when, zone)})  # fmt: skip

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

    def _trial_design(self, build: _Build) -> None:
        """TV (the planned visits) and TI (the eligibility criteria), as the protocol declares them."""
        p, study = build.protocol, {"STUDYID": build.source.trial_id, "DOMAIN": ""}
        for visit in p.visits:
            visitnum, name = build.visits[visit.id]
            if visit.kind == "event":
                start = f"When {visit.reference} happens" if visit.id == visit.reference else (
                    f"When it happens ({visit.reference} day {visit.day})")  # fmt: skip
            else:
                window = f"-{visit.window.before}/+{visit.window.after}"
                start = f"Day {visit.day} from {visit.reference}, window {window} days"
            build.sinks["TV"].add({**study, "VISITNUM": visitnum, "VISIT": name, "VISITDY": planned_day(p, visit.id),
                                   "ARMCD": None, "TVSTRL": start})  # fmt: skip
        for category, criteria in (("INCLUSION", p.eligibility.inclusion), ("EXCLUSION", p.eligibility.exclusion)):
            for c in criteria:
                build.sinks["TI"].add({**study, "IETESTCD": c.id, "IETEST": c.text, "IECAT": category,
                                       "TIVERS": build.source.protocol_version})  # fmt: skip
        with_arms = build.source.with_arms
        for code, rows in (("TE", te_rows(p, with_arms)), ("TA", ta_rows(p, with_arms))):
            for row in rows:
                build.sinks[code].add({**study, **row})
                if code == "TE" and row["TESTRL"] is None:  # an open-label trial's arm elements, exported blinded
                    build.notes.append(f"TE {row['ETCD']}: TESTRL (and TEENRL, TEDUR where they differ too) left "
                                       "empty: the arms' elements of its epoch differ, and would tell the arms "
                                       "apart.")  # fmt: skip
        for element in design_elements(p, with_arms):
            if element.starts_at is None:  # a stand-in whose arms' elements start at different records
                build.notes.append(f"SE {element.code}: no subject has this element: the arms' elements of epoch "
                                   f"{element.epoch} start at different records, which would tell the arms apart.")
        consents = [_local_day(person.consented_at, build.zone(person.site)) for person in build.people.values()
                    if person.consented_at is not None]  # fmt: skip
        first = min((d for d in consents if d is not None), default=None)
        for row in ts_rows(p, with_arms, len(build.people), first.isoformat() if first else None, build.notes,
                           TSVAL_PIECES):  # fmt: skip
            build.sinks["TS"].add({**study, **row})

    def _subject_elements(self, build: _Build, person: ParticipantRecord, subject: _Subject) -> None:
        """SE: the subject's elements from the dates their records hold (``sdtm_design.subject_elements``)."""
        p = build.protocol
        if not p.elements:
            return
        zone = build.zone(person.site)
        visits_of = {epoch: [v.id for v in p.visits if v.epoch == epoch] for epoch in epochs(p)}
        epoch_days = {epoch: min((subject.visits[v] for v in ids if v in subject.visits), default=None)
                      for epoch, ids in visits_of.items()}  # fmt: skip
        dose = subject.first_dose or subject.first_dose_day  # as DM's RFXSTDTC: a moment, or a date only
        starts = {"consent": _dtc(person.consented_at, zone), "enrolment": _dtc(person.enrolled_at, zone),
                  "randomization": _dtc(person.randomized_at, zone), "first_dose": _dtc(dose, zone)}
        randomized = person.randomization_number is not None or person.randomized_at is not None
        arm = person.arm if build.source.with_arms and person.arm else None
        dated = {epoch: _dtc(day, zone) for epoch, day in epoch_days.items()}
        subject.elements = subject_elements(p, arm, randomized, starts, dated, subject.ended)
        for e in subject.elements:
            build.sinks["SE"].add({**build.ids(person.participant_id), "ETCD": e.code, "ELEMENT": e.name,
                                   "TAETORD": e.order, "EPOCH": e.epoch, "SESTDTC": e.start,
                                   "SEENDTC": e.end})  # fmt: skip

    def _subject_visits(self, build: _Build, person: ParticipantRecord, subject: _Subject) -> None:
        """SV: one record per protocol visit the subject's forms date (SVOCCUR Y) or recorded as missed (SVOCCUR N,
        SVREASOC the reason; no dates), in schedule order. EPOCH and TAETORD of a dated visit are those of the SE
        element it starts in (``visit_element``); a missed visit has its planned epoch."""
        missed = build.missed.get(person.participant_id, {})
        for visit in build.protocol.visits:
            start = subject.visits.get(visit.id)
            if start is None and visit.id not in missed:
                continue
            visitnum, name = build.visits[visit.id]
            epoch = build.epochs.get(visit.id)
            order = float(epochs(build.protocol).index(epoch) + 1) if epoch and build.protocol.elements else None
            if start is not None and build.protocol.elements:
                element = visit_element(subject.elements, start, epoch)
                epoch, order = (element.epoch, element.order) if element else (None, None)
                build.sv_undecided += element is None
            row = {**build.ids(person.participant_id), "VISITNUM": visitnum, "VISIT": name, "SVPRESP": "Y",
                   "VISITDY": planned_day(build.protocol, visit.id), "TAETORD": order, "EPOCH": epoch}  # fmt: skip
            if start is None:
                build.sinks["SV"].add({**row, "SVOCCUR": "N", "SVREASOC": missed[visit.id]})
                continue
            build.sinks["SV"].add({**row, "SVOCCUR": "Y", "SVSTDTC": start.isoformat(),
                                   "SVENDTC": subject.visit_ends[visit.id].isoformat()})  # fmt: skip

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
        treated = subject.exposed or (randomized and not recorded)
        reason = None if randomized else "NOT ASSIGNED"
        if randomized and not treated:
            reason = "ASSIGNED, NOT TREATED"
        withdrawn = max((w[1] for w in person.withdrawals), default=None)
        exposure = subject.first_dose or subject.first_dose_day
        start = exposure or person.randomized_at or person.enrolled_at
        zone = build.zone(person.site)
        ended = _dtc(_latest(subject.last_date, subject.death, subject.completed, withdrawn), zone)
        subject.ended = ended
        # Assigned but withheld (a blinded extract): the same word for every randomized participant, never null
        # (null arms are for ARMNRS's reasons only, SDTMIG 3.4 DM assumptions 4-5).
        planned = (arm.code, arm.name) if arm else (BLINDED_ARM, BLINDED_ARM) if randomized else (None, None)
        actual, unplanned = self._received(build, subject, planned) if treated else ((None, None), None)
        reason = "UNPLANNED TREATMENT" if unplanned else reason
        build.sinks["DM"].add({
            **build.ids(person.participant_id),
            "SUBJID": person.participant_id,
            "RFSTDTC": _dtc(start, zone),
            "RFENDTC": ended,
            "RFXSTDTC": _dtc(exposure, zone),
            "RFXENDTC": _dtc(self._last_exposure_end(build, person.participant_id, subject, zone), zone),
            "RFICDTC": _dtc(person.consented_at, zone),
            "RFPENDTC": ended,
            "DTHDTC": _dtc(subject.death, zone),
            "DTHFL": "Y" if subject.death else None,
            "SITEID": person.site,
            "COUNTRY": p.site(person.site).country,
            "AGE": age,
            "AGEU": AGEU[d.age.unit] if age is not None and d and d.age else None,
            "SEX": sex or "U",
            "ARMCD": planned[0],
            "ARM": planned[1],
            "ACTARMCD": actual[0],
            "ACTARM": actual[1],
            "ARMNRS": reason,
            "ACTARMUD": unplanned,
        })  # fmt: skip
        build.reference[build.ids(person.participant_id)["USUBJID"]] = SubjectReference(
            _local_day(start, zone), subject.first_dose, _local_day(subject.first_dose, zone))

    @staticmethod
    def _last_exposure_end(build: _Build, pid: str, subject: _Subject, zone: dt.tzinfo) -> dt.date | None:
        """RFXENDTC: the end of the last exposure as the data record it, the latest of the exposures' ends (each
        its EXENDTC, or its start when the protocol declares a single administration). When an exposure's end is
        not recorded, the last exposure's end is not known: empty, and README.txt names the subject."""
        if not subject.dose_ends:
            return None
        if any(end is None for end in subject.dose_ends):
            usubjid = build.ids(pid)["USUBJID"]
            build.notes.append(
                f"DM {usubjid}: RFXENDTC empty: the end of the exposure is not recorded (EXENDTC empty) and the "
                "protocol declares no single administration (analysis_plan.treatment.single_administration); "
                "never the first dose assumed"
            )
            return None
        ends = [end for end in subject.dose_ends if end is not None]
        # A moment and a date compare by the site's calendar day first; on one day the moment is the later.
        def order(end: dt.date) -> tuple[dt.date | None, float]:
            if not isinstance(end, dt.datetime):
                return _local_day(end, zone), float("-inf")
            return _local_day(end, zone), (end if end.tzinfo else end.replace(tzinfo=dt.UTC)).timestamp()

        return max(ends, key=order)

    @staticmethod
    def _received(
        build: _Build, subject: _Subject, planned: tuple[str | None, str | None]
    ) -> tuple[tuple[str | None, str | None], str | None]:
        """The arm actually received by a treated subject (ACTARMCD, ACTARM) and, for a treatment outside the
        planned arms, its description (ACTARMUD; then ACTARMCD/ACTARM are null, SDTMIG 3.4 DM assumption 4).

        The preparation codes the treatment form records (``analysis_plan.treatment.code_field``) name the arm
        received, as in the analysis's as-treated set: every code of one arm, that arm (the allocated one or
        another); a code no allocation list holds, or codes of more than one arm, an unplanned treatment. Without
        a code (no code field declared, none recorded), the allocated arm. A blinded extract reads no arm of any
        code: BLINDED, as ARM."""
        if not build.source.with_arms or not subject.given_codes or planned[0] is None:
            return planned, None
        received = arm_received(subject.given_codes, build.prepared, planned[0])
        if received.arm is None:
            said = (f"preparation code {', '.join(received.unknown)}: in no allocation list" if received.unknown
                    else f"preparations of arms {', '.join(received.arms)}")  # fmt: skip
            return (None, None), f"Unplanned treatment: {said}"
        arm = build.protocol.arm_by_code(received.arm)
        return (arm.code, arm.name), None

    # -- metadata --------------------------------------------------------------------------------------

    def _define(self, out: Path, build: _Build) -> Path:
        path = out / "define.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["dataset", "dataset_label", "variable", "label", "type", "length", "controlled_terms",
                             "origin"])  # fmt: skip
            for code, sink in build.sinks.items():
                domain, lengths = sink.domain, sink.lengths
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
            else f"no: blinded extract; DM writes ARMCD, ARM, ACTARMCD and ACTARM '{BLINDED_ARM}' for every "
            "randomized (and treated) participant: the arm is assigned but withheld, so ARMNRS stays for the "
            f"SDTMIG's reasons only; EX names the treatment '{BLINDED_TREATMENT}'"
        )
        numeric = {FieldType.DECIMAL, FieldType.INTEGER}
        unmapped = [f"{form.id}.{f.id}" for form in s.protocol.forms for f in form.fields
                    if f.type in numeric and not (f.codes and f.codes.sdtm)]  # fmt: skip
        lines = [
            f"trialwright sdtm export: {self.description}",
            "",
            f"Trial: {s.trial_id}",
            f"Implementation guide: SDTMIG {SDTMIG_VERSION}",
            f"Controlled terminology: CDISC SDTM CT {SDTM_CT_VERSION}, as shipped with trialwright (NCI EVS's file, "
            "its package date identified as its NOTICE.md says); terms outside a code list are sponsor extensions, "
            "marked in define.xml",
            f"Protocol version: {s.protocol_version}",
            f"Exported at: {s.taken_at.astimezone(dt.UTC).isoformat(timespec='seconds')} (UTC)",
            f"Arms included: {arms}",
            "",
            "Files (sdtm/):",
            *(
                f"  {c.lower()}.xpt, {c.lower()}.csv  {s.domain.label} ({s.rows} records); dataset name {c}"
                for c, s in build.sinks.items()
            ),
            "  define.xml  Define-XML 2.1: datasets, variables, value-level metadata (LB/VS --ORRES by --TESTCD), "
            "code lists, methods, comments; define.html the same for reviewers",
            "  define.csv  every variable: label, type, length, controlled terms, origin",
            "  testcodes.csv  LB and VS test codes: source field, units, terminology (CDISC term or sponsor-defined)",
            "",
            "Conventions:",
            "  - SDTM-style, not a validated submission: SAS transport v5, 8-character names, 40-character labels.",
            "  - USUBJID is STUDYID-participant id. --DTC values are ISO 8601: a date stays a date; a date and "
            "time is the site's local time as collected, with its UTC offset (2021-03-04T10:15+03:30).",
            "  - --DY: days from RFSTDTC's date (the first exposure, else randomization, else enrolment), "
            "day 1 = that day, no day 0; empty when either date is incomplete.",
            "  - EPOCH: the visit's epoch as the protocol declares it (visits[].epoch); an AE or DS record takes "
            "the epoch whose first visit is the latest on or before its date, and none on the day an epoch "
            "begins (the first epoch's too: a visit date has no time) or before the first "
            "visit." if s.protocol.visits[0].epoch else
            "  - EPOCH: empty; the protocol declares no epochs (visits[].epoch) and EPOCH is never guessed.",
            "  - --LOBXFL: Y on the last non-missing result of each test taken before RFXSTDTC (the first "
            "exposure); none for a subject never treated.",
            "  - LB reference ranges: LBSTNRLO/LBSTNRHI as the field's normal_range declares them, LBORNRLO/LBORNRHI "
            "in the unit the result was entered in, LBNRIND LOW/NORMAL/HIGH (a censored result only when its limit "
            "tells); empty for a field without a declared range (never assumed).",
            "  - SV: one record per protocol visit a subject's forms date (SVSTDTC the first, SVENDTC the last date "
            "its forms record; SVPRESP Y, SVOCCUR Y), and one per visit recorded as missed (SVOCCUR N, SVREASOC the "
            "reason recorded, no dates; EPOCH and TAETORD the visit's planned epoch). A visit neither dated nor "
            "recorded as missed has no record. VISITDY (SV and TV): the visit's planned study day when it is "
            "counted from the event RFSTDTC is taken from (the treatment record's visit, else randomization), day 1 "
            "= that day; empty for other visits. EPOCH and TAETORD of a dated visit (with elements declared): those "
            "of the SE element it starts in, the one whose dates span SVSTDTC (on a day two elements share, the "
            "one of the visit's planned epoch; neither: empty, counted under notes).",
            "  - TV: the protocol's visits (ARMCD empty: every arm has them; TVSTRL the visit's day and window from "
            "its reference event). TI: the eligibility criteria as the protocol words them (IETESTCD the criterion "
            "id; TIVERS the protocol version).",
            *_design_lines(s.protocol, s.with_arms),
            "  - SUPP--: a subject record's text longer than 200 bytes keeps its first piece (cut inside a word, so no "
            "piece begins or ends with a space and the pieces joined are the text) and "
            "continues in supp<domain>.xpt/.csv (QNAM the variable's name and 1, 2, ...; IDVAR/IDVARVAL the record's "
            "--SEQ), written only when there is such text.",
            "  - ARMNRS: NOT ASSIGNED (enrolled, never randomized), ASSIGNED, NOT TREATED; screen failures are not "
            "in DM (they were never enrolled); UNPLANNED TREATMENT (ACTARMCD, ACTARM empty, ACTARMUD says what was "
            "given) when a preparation code the treatment form records is in no allocation list, or the codes "
            "given are of more than one arm.",
            "  - RFENDTC = RFPENDTC: the latest visit date seen in the exported forms, death, completion or "
            "withdrawal.",
            "  - AEDECOD is the MedDRA PT of the LLT the coder chose, AELLT..AESOCCD its primary path (the release "
            "in the notes); an event not coded has them empty and is listed in the notes. AEREL follows the "
            "protocol's causality mapping (RELATED / NOT RELATED).",
            "  - A result below or above the limit of quantification is written <limit / >limit in --ORRES and "
            "--STRESC, --STRESN empty, and the limit in LBLLOQ / LBULOQ. Not done: --STAT NOT DONE, --REASND.",
            "  - LB units are the protocol's (not mapped to the CDISC UNIT codelist); VS units are CDISC VSRESU.",
            "  - ACTARMCD/ACTARM: the arm actually received once treated (SDTMIG 3.4 DM): the arm of the "
            "preparation codes the treatment form records (analysis_plan.treatment.code_field; another arm's "
            "preparation gives that arm), the allocated arm when no code is declared or recorded; a protocol that "
            "records no treatment takes everyone randomized as treated with the allocated arm. A blinded extract "
            "reads no code's arm: BLINDED.",
            "  - EX: one record per treatment form whose given field says the treatment was given (the analysis's "
            "rule: yes, or a date or date-time recorded; no, missing or not done: no record, ACTARM empty, ARMNRS "
            "ASSIGNED, NOT TREATED). EXSTDTC (and RFXSTDTC) is the given field's date-time or date; a yes/no given "
            "field holds no moment and the protocol declares none, so EXSTDTC is the treatment visit's date and "
            "--LOBXFL is not set. EXENDTC is the protocol's declared end field (analysis_plan.treatment.end_field) "
            "and EXDOSE/EXDOSU its declared dose field and that field's unit (dose_field); either is empty when "
            "the protocol declares none, never inferred from the form's other fields. RFXENDTC is the end of "
            "the last exposure the data record: the latest EXENDTC, or the latest EXSTDTC when the protocol "
            "declares a single administration (analysis_plan.treatment.single_administration); when an "
            "exposure's end is not recorded it is empty (never the first dose assumed) and the notes name the "
            "subject.",
            "  - DS: COMPLETED when the end-of-follow-up form records a status other than death (and no withdrawal "
            "from follow-up); DEATH, and DM DTHDTC/DTHFL, from the earliest death the records give: a fatal "
            "adverse event (its death date, else its onset), the death record at its visit, a vital-status field "
            "at any visit (the rule the visits after a death follow); disagreeing dates are listed under notes.",
        ]
        if unmapped:
            lines.append(f"  - Not in LB/VS (no codes.sdtm test declared in the protocol): {', '.join(unmapped)}.")
        notes = [*build.notes, *s.notes, *([not_written(build.empty)] if build.empty else [])]
        if notes:
            lines += ["", "Notes:", *(f"  - {n}" for n in notes)]
        path = folder / "README.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def not_written(empty: Sequence[str]) -> str:
    """The README note naming the domains an export does not write because they have no records."""
    return (f"Not written, no records (SDTM submits no empty dataset; define.xml does not list them): "
            f"{', '.join(empty)}.")


def _aeacn(protocol: Protocol) -> dict[str, str]:
    """Each declared action taken's SDTM term (AEACN): the protocol names it beside the trial's own words."""
    return {a.code: a.sdtm.value for a in protocol.safety.action_choices}
