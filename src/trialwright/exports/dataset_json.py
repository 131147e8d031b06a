"""CDISC Dataset-JSON v1.1: every SDTM-style domain and every raw table, one dataset per file, as JSON and NDJSON.

Dataset-JSON (CDISC, 2024-12-05) is one JSON object per dataset: the top-level attributes in the order the
specification lists them (creation time, ``datasetJSONVersion`` 1.1.0, ``fileOID``, ``dbLastModifiedDateTime``,
``originator``, ``sourceSystem``, ``studyOID``, ``metaDataVersionOID``, ``metaDataRef``, ``itemGroupOID``,
``records``, ``name``, ``label``), ``columns`` (``itemOID``, ``name``, ``label``, ``dataType``, ``targetDataType``,
``length``, ``keySequence``) and ``rows``, each row an array of values in column order, ``null`` for a missing
value. The NDJSON representation holds the same content: the metadata object on the first line, one row per line.

Types, as the specification's "Supported Column Data Type Combinations" table says, never guessed from values:

- a number the protocol declares ``integer`` (and --SEQ, VISITNUM, randomization numbers, grades, report counts)
  is ``integer``, a JSON integer; a value that is not whole is refused, never rounded;
- every other number is ``decimal`` with ``targetDataType`` ``decimal``, exchanged as a string in plain decimal
  notation with ``.`` (the shortest text that reads back as exactly the stored binary64 number: no digit is
  lost or invented, no exponent);
- yes/no is ``boolean``; dates ``date`` (``YYYY-MM-DD``); UTC date-times ``datetime`` (ISO 8601 with
  ``+00:00``); a time field ``time``; SDTM's --DTC variables ``date`` or ``datetime`` (ISO 8601 as SDTM writes
  them, a date where only the date is known); everything else ``string``. A date or time value that is not
  ISO 8601 is refused.

OIDs agree with the ODM export (``trialwright.exports.odm``): ``studyOID`` is the trial id (ODM ``Study/@OID``),
``metaDataVersionOID`` ``MDV.<protocol version>``. SDTM datasets are ``IG.<DOMAIN>`` with items
``IT.<DOMAIN>.<VARIABLE>``; a form's raw table is ``IG.<form>`` with items ``IT.<form>.<column>`` (a field's item
is the ODM ItemDef of that field); the other raw tables ``IG.<table>``. ``metaDataRef`` names ``define.xml`` only
when a Define-XML writer is given and has written it beside the SDTM datasets; otherwise it is left out rather than
naming a file that is not there. ``length`` is the longest value written, in characters (strings and decimals).

Rows are streamed (``trialwright.exports.dataset_json_writer``): each batch of rows is written to a spool file (the
NDJSON rows) as it comes, a column at a time (each distinct value's JSON made once, by the rule above:
``trialwright.exports.dataset_json_cells``), then the metadata (which needs the record count and lengths) and the
rows are copied into the ``.json`` and ``.ndjson`` files, so a raw table of any size is written in constant memory;
an SDTM domain is held as Arrow columns while it is written, as for XPT (``SdtmExporter.domain_tables``).

Masking: the raw tables and the SDTM domains are those of the tabular and SDTM exports, so a blinded export holds
no arm (the participants and randomization tables have no arm column; DM's arm variables say BLINDED for every
randomized participant; EX names the treatment ``BLINDED STUDY TREATMENT``); with arms (the unblinded
statistician), as those exports say.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

import trialwright
from trialwright.exports.base import ExportSource, Progress
from trialwright.exports.columnar import BATCH_ROWS
from trialwright.exports.dataset_json_cells import DataType, decimal_text
from trialwright.exports.dataset_json_writer import DatasetJsonWriter, Variable
from trialwright.exports.odm.outline import mdv_oid
from trialwright.exports.sdtm import SdtmExporter
from trialwright.exports.sdtm_domains import Domain
from trialwright.exports.tabular import Sink, Table, TabularExporter, _Run
from trialwright.protocol import Protocol
from trialwright.protocol.forms import FieldType

__all__ = [
    "DATASET_JSON_VERSION",
    "DEFINE_XML",
    "DataType",
    "DatasetJsonExporter",
    "DatasetJsonWriter",
    "Variable",
    "decimal_text",
    "sdtm_variables",
]

DATASET_JSON_VERSION = "1.1.0"
#: The name of the Define-XML file the SDTM datasets reference (``metaDataRef``), when one is written.
DEFINE_XML = "define.xml"


# --- the SDTM domains ---------------------------------------------------------------------------------------

#: --DTC variables that only ever hold a date (the others hold a local date-time to the minute with its UTC offset,
#: or a date where only the date is known, as SDTM writes reduced precision).
_DATE_ONLY = frozenset({"RFENDTC", "RFPENDTC", "DTHDTC", "AESTDTC", "AEENDTC"})
#: The type of each numeric SDTM variable (by name, or by its suffix after the two-letter domain prefix).
_SDTM_NUMBERS: dict[str, DataType] = {
    "SEQ": "integer",
    "VISITNUM": "integer",
    "VISITDY": "integer",  # planned study day (whole days)
    "TAETORD": "integer",  # the planned order of an element
    "EXDOSE": "decimal",
    "CMDOSE": "decimal",
    "CMDOSTOT": "decimal",
    "STRESN": "decimal",
    "LLOQ": "decimal",
    "ULOQ": "decimal",
    "DY": "integer",  # study days (SDTMIG 3.4 4.4.4): whole days, no day 0
    "STDY": "integer",
    "ENDY": "integer",
    "STNRLO": "decimal",  # reference ranges as the protocol's normal_range declares them
    "STNRHI": "decimal",
    "LLTCD": "integer",  # MedDRA codes (8 digits)
    "PTCD": "integer",
    "HLTCD": "integer",
    "HLGTCD": "integer",
    "BDSYCD": "integer",
    "SOCCD": "integer",
}


def _age_type(p: Protocol) -> DataType:
    """AGE is an integer when every field the protocol takes it from is an integer field; else a decimal."""
    sources = p.demographics.age.sources if p.demographics and p.demographics.age else []
    screening = {f.id: f.type for f in p.eligibility.screening_fields}
    kinds = set()
    for ref in sources:
        where, _, name = ref.partition(".")
        kinds.add(str(screening[name] if where == "screening" else p.field(where, name).type))
    return "integer" if kinds == {FieldType.INTEGER.value} else "decimal"


def sdtm_variables(domain: Domain, p: Protocol) -> list[Variable]:
    """The columns of one SDTM domain: keys STUDYID, USUBJID and --SEQ (DM: STUDYID, USUBJID), which identify a
    record whatever else it holds; a numeric variable with no declared type is refused."""
    keys = ("STUDYID", "USUBJID", *((domain.seq,) if domain.seq else ()))
    found: list[Variable] = []
    for v in domain.variables:
        kind: DataType
        if v.type == "Num":
            declared = _SDTM_NUMBERS.get(v.name) or _SDTM_NUMBERS.get(v.name[2:])
            if v.name == "AGE":
                declared = _age_type(p)
            if declared is None:
                raise ValueError(f"{domain.code}.{v.name}: no Dataset-JSON type is declared for this number")
            kind = declared
        elif v.name.endswith("DTC"):
            kind = "date" if v.name in _DATE_ONLY else "datetime"
        else:
            kind = "string"
        key = keys.index(v.name) + 1 if v.name in keys else None
        found.append(Variable(f"IT.{domain.code}.{v.name}", v.name, v.label, kind, key))
    return found


# --- the raw tables -----------------------------------------------------------------------------------------

_KINDS: dict[str, DataType] = {"text": "string", "code": "string", "date": "date", "datetime": "datetime",
                               "yesno": "boolean"}  # fmt: skip
_FIELD_TYPES: dict[FieldType, DataType] = {FieldType.INTEGER: "integer", FieldType.DECIMAL: "decimal",
                                           FieldType.TIME: "time"}  # fmt: skip
#: The numbers of the raw tables that are not form fields.
_TABLE_NUMBERS: dict[str, DataType] = {
    "randomization_number": "integer",
    "grade": "integer",
    "reports": "integer",
    "sequence": "integer",  # a log entry's sequence
    "value_num": "decimal",
    "limit": "decimal",
}
#: Key columns of the raw tables with one row per participant or per event (the others declare none).
_TABLE_KEYS = {"participants": ("participant_id",), "consents": ("participant_id",),
               "randomization": ("participant_id",), "deaths": ("participant_id",),
               "adverse_events": ("ae_number",)}  # fmt: skip


def table_variables(table: Table, p: Protocol) -> tuple[str, list[Variable]]:
    """The item group OID and columns of one raw table (a form's as the ODM export names its items)."""
    folder, _, form_id = table.name.rpartition("/")
    fields = {f.id: f.type for f in p.form(form_id).fields} if folder == "forms" else {}
    if folder == "logs":
        fields = {f.id: f.type for f in p.log(form_id).fields}
    group = form_id if folder == "forms" else table.name
    keys = _TABLE_KEYS.get(table.name, ())
    found: list[Variable] = []
    for c in table.columns:
        declared: DataType | None
        field_type = fields.get(c.name)
        if field_type in _FIELD_TYPES and c.kind in {"number", "text"}:  # a field's own column, not a companion
            declared = _FIELD_TYPES[field_type]
        elif c.kind == "number":
            declared = _TABLE_NUMBERS.get(c.name)
        else:
            declared = _KINDS[c.kind]
        if declared is None:
            raise ValueError(f"{table.name}.{c.name}: no Dataset-JSON type is declared for this number")
        key = keys.index(c.name) + 1 if c.name in keys else None
        found.append(Variable(f"IT.{group}.{c.name}", c.name, c.label, declared, key))
    return f"IG.{group}", found


class _TableSink:
    """A raw table's rows into a ``DatasetJsonWriter``, as columns: the rows the exporter gives one at a time
    (``add``) are gathered into batches of ``batch_rows``, those it gives as columns (``extend``) go as they are."""

    def __init__(self, writer: DatasetJsonWriter, batch_rows: int) -> None:
        self._writer, self._batch_rows = writer, max(1, batch_rows)
        self._names = [v.name for v in writer.variables]
        self._waiting: list[Mapping[str, Any]] = []
        self.rows = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self._waiting.append(row)
        self.rows += 1
        if len(self._waiting) >= self._batch_rows:
            self._flush()

    def extend(self, columns: Mapping[str, Sequence[Any] | pa.Array], count: int) -> None:
        """Rows as columns by name (lists or Arrow arrays; a column not given is null in every row)."""
        self._flush()
        given = [columns.get(n) for n in self._names]
        self._writer.extend([[None] * count if c is None else c for c in given], count)
        self.rows += count

    def _flush(self) -> None:
        if self._waiting:
            rows, self._waiting = self._waiting, []
            self._writer.extend([[r.get(n) for r in rows] for n in self._names], len(rows))

    def close(self) -> list[Path]:
        self._flush()
        return self._writer.close()


# --- the format ---------------------------------------------------------------------------------------------

#: Writes define.xml (and any companion file) into the SDTM folder given (the last argument), from the export
#: source and each domain's variable lengths (``DatasetJsonWriter.lengths``, by domain); returns the paths written.
DefineWriter = Callable[[ExportSource, Mapping[str, Mapping[str, int]], Path], list[Path]]


class DatasetJsonExporter(TabularExporter):
    """CDISC Dataset-JSON v1.1 (JSON and NDJSON): the raw tables and the SDTM-style domains."""

    name: ClassVar[str] = "dataset-json"
    description: ClassVar[str] = (
        "CDISC Dataset-JSON v1.1 (.json and .ndjson): every raw table and the SDTM domains (SDTMIG 3.4)."
    )
    extension: ClassVar[str] = "json"

    def __init__(self, batch_rows: int = BATCH_ROWS, define_xml: DefineWriter | None = None) -> None:
        super().__init__(batch_rows)
        #: Writes define.xml beside the SDTM datasets (then ``metaDataRef`` names it); None: no define.xml.
        self.define_xml = define_xml
        self._header: dict[str, Any] = {}
        self._groups: set[str] = set()
        self._sdtm: list[tuple[str, str, int]] = []
        self._current: ExportSource | None = None

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        self._header, self._groups, self._sdtm = _header(source), set(), []
        self._current = source
        return super().write(source, folder, progress)  # the raw tables, then ``finish`` (SDTM), then README

    def open(self, folder: Path, table: Table, run: _Run) -> Sink:
        group, variables = table_variables(table, self._source.protocol)
        stamp = self._header["fileOID"]
        header = {**self._header, "fileOID": f"{stamp}.RAW.{table.name.replace('/', '.')}",
                  "itemGroupOID": self._group(group), "name": table.name, "label": table.label}  # fmt: skip
        return _TableSink(DatasetJsonWriter(folder / table.name, header, variables), self.batch_rows)

    def _group(self, oid: str) -> str:
        """An item group OID, refused if another dataset of this export already has it."""
        if oid in self._groups:
            raise ValueError(f"itemGroupOID {oid}: two datasets of this export would share it (a form id equal to "
                             "a table name?); rename the form")  # fmt: skip
        self._groups.add(oid)
        return oid

    def finish(self, folder: Path, run: _Run) -> list[Path]:
        """The SDTM-style domains, one Dataset-JSON dataset each, in ``sdtm/``, with testcodes.csv."""
        source = self._source
        out = folder / "sdtm"
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        # The datasets name define.xml as they are written; it is written after them (it needs their lengths), and
        # the export is only complete, and renamed into place, once it has been.
        reference = {"metaDataRef": DEFINE_XML} if self.define_xml is not None else {}
        lengths: dict[str, dict[str, int]] = {}
        sdtm = SdtmExporter(self.batch_rows)
        for domain, data in sdtm.domain_tables(source, out, notes=run.notes):
            header = {**self._header, "fileOID": f"{self._header['fileOID']}.SDTM.{domain.code}", **reference,
                      "itemGroupOID": self._group(f"IG.{domain.code}"), "name": domain.code,
                      "label": domain.label}  # fmt: skip
            writer = DatasetJsonWriter(out / domain.code.lower(), header, sdtm_variables(domain, source.protocol))
            for batch in data.to_batches(max_chunksize=self.batch_rows):
                writer.extend(batch.columns, batch.num_rows)
            written += writer.close()
            lengths[domain.code] = writer.lengths()
            self._sdtm.append((f"sdtm/{domain.code.lower()}.json", domain.label, writer.rows))
        written.append(sdtm.testcodes(out, source.protocol))
        if self.define_xml is not None:
            defined = self.define_xml(source, lengths, out)
            if out / DEFINE_XML not in defined or not (out / DEFINE_XML).is_file():
                raise ValueError(f"define_xml: the writer did not write {DEFINE_XML}, which every SDTM dataset names")
            written += defined
        return written

    @property
    def _source(self) -> ExportSource:
        source = self._current
        assert source is not None, "called by write"
        return source

    def readme(self, folder: Path, source: ExportSource, run: _Run) -> Path:
        return _readme(folder, source, self, run, self._sdtm)


def _moment(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _header(source: ExportSource) -> dict[str, Any]:
    """The attributes every dataset of one export shares, in the specification's order (``fileOID`` is the ODM
    export's FileOID, to which each dataset adds its own name)."""
    taken = _moment(source.taken_at)
    last = source.audit_latest()
    # The file is written after the export began and after the last change it may hold: the later of the two.
    created = max(taken, last) if last is not None else taken
    header: dict[str, Any] = {
        "datasetJSONCreationDateTime": created.isoformat(),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"{source.trial_id}.{taken:%Y%m%dT%H%M%S}Z",
    }
    if last is not None:
        header["dbLastModifiedDateTime"] = last.isoformat()
    header |= {
        "originator": "trialwright",
        "sourceSystem": {"name": "trialwright", "version": trialwright.__version__},
        "studyOID": source.trial_id,
        "metaDataVersionOID": mdv_oid(source.protocol_version),
    }
    return header


_CONVENTIONS = (
    "One dataset per file: <name>.json (Dataset-JSON) and <name>.ndjson (its NDJSON representation: the metadata "
    "on the first line, then one row per line), UTF-8.",
    "Types (columns[].dataType): integer numbers are JSON integers; every other number is dataType decimal with "
    "targetDataType decimal, a string in plain decimal notation that reads back as exactly the stored number; "
    "yes/no is boolean (true/false); dates are YYYY-MM-DD, date-times UTC ISO 8601 (+00:00); text is string.",
    "A missing value is null (never an empty string, never zero). Numbers are in each field's canonical unit.",
    "A value below or above the limit of quantification: the field holds the limit and <field>_flag says <LLOQ or "
    ">ULOQ (values_long: status below_lloq/above_uloq, limit). Not done or not applicable: <field>_status, "
    "<field>_reason.",
    "OIDs: studyOID is the trial id and metaDataVersionOID MDV.<protocol version>, as in the ODM export; a form's "
    "table is itemGroupOID IG.<form> with items IT.<form>.<column> (a field's item is the ODM export's ItemDef); "
    "an SDTM domain IG.<DOMAIN> with items IT.<DOMAIN>.<VARIABLE>.",
    "SDTM (sdtm/): SDTMIG 3.4 as the sdtm export writes it, not a validated submission; --DTC variables are "
    "ISO 8601, a date-time the site's local time with its UTC offset (a date where only the date is known);"
    " keys STUDYID, USUBJID, --SEQ; text is never "
    "cut (the XPT files of the sdtm export cut it at 200 bytes). testcodes.csv lists the LB and VS test codes.",
    "length: the longest value written, in characters (strings and decimals).",
)


def _readme(folder: Path, source: ExportSource, exporter: DatasetJsonExporter, run: _Run,
            sdtm: Iterable[tuple[str, str, int]]) -> Path:  # fmt: skip
    arms = (
        "yes: the participants and randomization tables have the allocated arm in column 'arm', DM its arm "
        "(ARMCD, ARM, ACTARMCD, ACTARM) and EX the arm's intervention; no other dataset names an arm"
        if source.with_arms
        else "no: a blinded export; no dataset names an arm (DM's arm variables say BLINDED for randomized "
        "participants: masked, not missing; EX names the treatment 'BLINDED STUDY TREATMENT')"
    )
    define = (
        f"sdtm/{DEFINE_XML} (each SDTM dataset's metaDataRef)"
        if exporter.define_xml is not None
        else "none written: the SDTM datasets carry no metaDataRef"
    )
    lines = [
        f"trialwright {exporter.name} export: {exporter.description}",
        "",
        f"Trial: {source.trial_id}",
        f"Protocol version: {source.protocol_version}",
        f"Exported at: {_moment(source.taken_at).isoformat(timespec='seconds')} (UTC)",
        f"Arms included: {arms}",
        f"Dataset-JSON version: {DATASET_JSON_VERSION} (CDISC Dataset-JSON v1.1); Define-XML: {define}",
        "",
        "Datasets (records):",
        *(f"  {name} (and .ndjson)  {what} ({rows} records)" for name, what, rows in run.tables),
        *(f"  {name} (and .ndjson)  {what} ({rows} records)" for name, what, rows in sdtm),
        "",
        "Conventions:",
        *(f"  - {c}" for c in _CONVENTIONS),
    ]
    notes = [*run.notes, *source.notes]
    if notes:
        lines += ["", "Notes:", *(f"  - {n}" for n in notes)]
    path = folder / "README.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
