"""CDISC Dataset-JSON v1.1: every raw table and every SDTM-style domain, one dataset per file, valid against CDISC's
schema (``tests/data/dataset-json-1.1``), holding exactly what the CSV and XPT exports hold.

The trial: 12 patients simulated (seed 7), then a laboratory form given a TNF-alpha below the LLOQ, an IL-6
above the ULOQ and a CRP not done, and a temperature typed in °F. Every spec runs on SQLite and PostgreSQL.

| dataType (columns[]) | JSON value in rows          | targetDataType | read back against                             |
|----------------------|-----------------------------|----------------|-----------------------------------------------|
| string               | string                      |                | CSV text (a formula-like cell without its ')  |
| integer              | integer                     |                | CSV text; XPT number                          |
| decimal              | string, plain decimal "."   | decimal        | float(text) == the CSV / XPT number, exactly  |
| boolean              | true / false                |                | CSV 1 / 0                                     |
| date, datetime, time | ISO 8601 string             |                | CSV text (UTC date-times with +00:00)         |
| (missing)            | null                        |                | empty CSV cell, empty XPT text, XPT NaN       |

Top level: datasetJSONVersion 1.1.0, studyOID and metaDataVersionOID those of the ODM export's Study and
MetaDataVersion, itemGroupOID IG.<DOMAIN> / IG.<form> with items IT.<DOMAIN>.<VAR> / IT.<form>.<field>;
metaDataRef names define.xml only when a define.xml is written. A blinded export names no arm.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.spec.exports.test_tabular import CENSORED_LABS, FAHRENHEIT, arm_terms, arms_named_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.base import ExportSource
from trialwright.exports.dataset_json import DatasetJsonExporter, DatasetJsonWriter, Variable, decimal_text
from trialwright.exports.dataset_json_cells import column_json
from trialwright.exports.odm import ODM_NS, OdmExporter
from trialwright.exports.readstat import ASCII_SPELLINGS
from trialwright.exports.sdtm import DOMAINS, SdtmExporter
from trialwright.exports.tabular import CsvExporter, ParquetExporter
from trialwright.protocol import load_protocol
from trialwright.services.exports import export_source
from trialwright.services.forms import save_form
from trialwright.services.simulation import simulate

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
#: CDISC's Dataset-JSON 1.1 schema and licence, copied byte for byte (see the README there).
CDISC = Path(__file__).resolve().parents[2] / "data" / "dataset-json-1.1"
CDISC_SHA256 = {
    "dataset.schema.json": "dd7190ff3782edf31f7de42a3d68c2328e6194e62f9dfbdc2e776edfea2eb09c",
    "LICENSE": "5098baf900774d3f6ec6e20f0916a8e2e72f7cf987fb7e72337b783c65f1d4f6",
}
#: The top-level attributes in the specification's order ("Top-level Metadata Attributes", 1-17).
TOP_LEVEL = ["datasetJSONCreationDateTime", "datasetJSONVersion", "fileOID", "dbLastModifiedDateTime", "originator",
             "sourceSystem", "studyOID", "metaDataVersionOID", "metaDataRef", "itemGroupOID", "records", "name",
             "label", "columns", "rows"]  # fmt: skip
COLUMN = ["itemOID", "name", "label", "dataType", "targetDataType", "length", "displayFormat", "keySequence"]
ISO = {
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "datetime": re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?"),
    "time": re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?"),
}
PLAIN_DECIMAL = re.compile(r"-?\d+(\.\d+)?")


def cell_has_its_type(data_type: str, value: Any) -> bool:
    """The specification's "Supported Column Data Type Combinations" table, for a value that is not null."""
    if data_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if data_type == "decimal":
        return isinstance(value, str) and PLAIN_DECIMAL.fullmatch(value) is not None
    if data_type in {"float", "double"}:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if data_type == "boolean":
        return isinstance(value, bool)
    if data_type in ISO:
        return isinstance(value, str) and ISO[data_type].fullmatch(value) is not None
    return data_type in {"string", "URI"} and isinstance(value, str)


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Trial:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 12, seed=7)
    source = export_source(t.engine, who(t, Role.DATA_MANAGER))
    coordinator = who(t, Role.STUDY_COORDINATOR)
    labs = next(r for r in source.forms("labs") if r.site == "RAZ")
    save_form(t.engine, coordinator, labs.participant_id, labs.visit_id, "labs", CENSORED_LABS,
              reason="Assay report: censored results, CRP sample clotted")  # fmt: skip
    vitals = next(r for r in source.forms("vitals") if r.site == "RAZ")
    save_form(t.engine, coordinator, vitals.participant_id, vitals.visit_id, "vitals", FAHRENHEIT,
              reason="Thermometer read in Fahrenheit")  # fmt: skip
    return t


def blinded(trial: Trial) -> ExportSource:
    return export_source(trial.engine, who(trial, Role.DATA_MANAGER))


@pytest.fixture(scope="module")
def exports(trial: Trial, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Dataset-JSON blinded and with arms; CSV, Parquet, SDTM (XPT, CSV) and ODM of the same blinded source."""
    source = blinded(trial)
    unblinded = export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True)
    out: dict[str, Path] = {}
    for key, exporter, made in (("json", DatasetJsonExporter(), source), ("json+arms", DatasetJsonExporter(),
                                unblinded), ("csv", CsvExporter(), source), ("parquet", ParquetExporter(), source),
                                ("sdtm", SdtmExporter(), source), ("odm", OdmExporter(), source)):  # fmt: skip
        out[key] = tmp_path_factory.mktemp(key.replace("+", "-"))
        exporter.write(made, out[key])
    return out


def datasets(folder: Path) -> dict[str, dict[str, Any]]:
    """Every .json dataset of an export, by path relative to the folder (without .json)."""
    return {str(p.relative_to(folder).with_suffix("")): json.loads(p.read_text("utf-8"))
            for p in sorted(folder.rglob("*.json"))}  # fmt: skip


def sdtm_written(exports: dict[str, Path]) -> list[str]:
    """The SDTM domains the XPT export of the same source wrote: every one but those README.txt says have no
    records (SDTM submits no empty dataset)."""
    readme = (exports["sdtm"] / "README.txt").read_text("utf-8")
    empty = re.search(r"Not written, no records \(.*\): (.*)\.", readme)
    left = set(empty.group(1).split(", ")) if empty else set()
    assert left < DOMAINS.keys() and {p.stem.upper() for p in (exports["sdtm"] / "sdtm").glob("*.xpt")} == (
        DOMAINS.keys() - left)  # fmt: skip
    return [c for c in DOMAINS if c not in left]


def validator() -> Any:
    return jsonschema_rs.validator_for(json.loads((CDISC / "dataset.schema.json").read_text("utf-8")))


# --- the schema and the file's shape ------------------------------------------------------------------------


def test_the_shipped_schema_is_cdiscs_byte_for_byte() -> None:
    for name, digest in CDISC_SHA256.items():
        assert hashlib.sha256((CDISC / name).read_bytes()).hexdigest() == digest, name


def test_every_dataset_is_valid_dataset_json_1_1_and_its_ndjson_holds_the_same(exports: dict[str, Path]) -> None:
    """Each .json validates against CDISC's schema; each .ndjson is the same metadata on line 1 and the same rows,
    one per line; attributes come in the specification's order. The schema does refuse what 1.1 forbids."""
    schema = validator()
    expected = {"participants", "consents", "randomization", "adverse_events", "deaths", "values_long",
                *(f"forms/{f.id}" for f in PROTOCOL.forms), *(f"logs/{g.id}" for g in PROTOCOL.logs),
                *(f"sdtm/{c.lower()}" for c in sdtm_written(exports))}  # fmt: skip
    for key in ("json", "json+arms"):
        found = datasets(exports[key])
        assert set(found) == expected, key
        for name, data in found.items():
            errors = [e.message for e in schema.iter_errors(data)]
            assert errors == [], (key, name, errors[:3])
            assert [k for k in TOP_LEVEL if k in data] == list(data), name
            for column in data["columns"]:
                assert [k for k in COLUMN if k in column] == list(column), (name, column)
            lines = (exports[key] / f"{name}.ndjson").read_text("utf-8").splitlines()
            head, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
            assert head == {k: v for k, v in data.items() if k != "rows"} and rows == data["rows"], name
            assert schema.is_valid({**head, "rows": rows}), name
    broken = datasets(exports["json"])["sdtm/dm"]
    for change in ({"datasetJSONVersion": "1.0.0"}, {"records": -1},
                   {"columns": [{**broken["columns"][0], "dataType": "number"}]},
                   {"datasetJSONCreationDateTime": "2021-05-21 10:00"}):  # fmt: skip
        assert not schema.is_valid({**broken, **change}), change


def test_every_cell_has_the_json_type_of_its_columns_data_type(exports: dict[str, Path]) -> None:
    """records = rows; every row has one value per column; null or the JSON type the data type requires;
    targetDataType decimal exactly on the decimal columns; a decimal column's length fits its values."""
    for name, data in datasets(exports["json"]).items():
        columns = data["columns"]
        assert data["records"] == len(data["rows"]), name
        for column in columns:
            assert ("targetDataType" in column) == (column["dataType"] == "decimal"), (name, column)
            assert column.get("targetDataType", "decimal") == "decimal"
        for row in data["rows"]:
            assert len(row) == len(columns), name
            for column, value in zip(columns, row, strict=True):
                assert value is None or cell_has_its_type(column["dataType"], value), (name, column["name"], value)
                if isinstance(value, str) and "length" in column:
                    assert len(value) <= column["length"], (name, column["name"])
    sdtm = datasets(exports["json"])
    types = {c["name"]: c["dataType"] for c in sdtm["sdtm/lb"]["columns"]}
    assert (types["LBSEQ"], types["VISITNUM"], types["LBSTRESN"], types["LBDTC"]) == (
        "integer", "integer", "decimal", "datetime")  # fmt: skip
    assert {c["name"]: c["dataType"] for c in sdtm["sdtm/dm"]["columns"]}["AGE"] == "integer"


def test_the_header_names_the_trial_as_the_odm_export_does(exports: dict[str, Path], trial: Trial) -> None:
    """studyOID and metaDataVersionOID are the ODM export's Study/@OID and MetaDataVersion/@OID; a form's items
    are the ODM export's ItemDefs; the database was last modified no later than the file was made."""
    (odm_file,) = exports["odm"].glob("*.odm.xml")
    root = ET.parse(odm_file).getroot()  # noqa: S314 - our own file
    study = root.find(f"{{{ODM_NS}}}Study")
    assert study is not None
    mdv = study.find(f"{{{ODM_NS}}}MetaDataVersion")
    assert mdv is not None
    items = {e.get("OID") for e in mdv.iter(f"{{{ODM_NS}}}ItemDef")}
    groups = {e.get("OID") for e in mdv.iter(f"{{{ODM_NS}}}ItemGroupDef")}
    for name, data in datasets(exports["json"]).items():
        assert (data["studyOID"], data["metaDataVersionOID"]) == (study.get("OID"), mdv.get("OID")), name
        assert data["datasetJSONVersion"] == "1.1.0" and data["sourceSystem"]["name"] == "trialwright"
        assert "metaDataRef" not in data, name
        made = dt.datetime.fromisoformat(data["datasetJSONCreationDateTime"])
        assert dt.datetime.fromisoformat(data["dbLastModifiedDateTime"]) <= made
        if name.startswith("sdtm/"):
            code = name.removeprefix("sdtm/").upper()
            assert (data["itemGroupOID"], data["name"]) == (f"IG.{code}", code)
            assert [c["itemOID"] for c in data["columns"]] == [f"IT.{code}.{v.name}" for v in DOMAINS[code].variables]
        elif name.startswith("forms/"):
            form = name.removeprefix("forms/")
            assert data["itemGroupOID"] == f"IG.{form}" and data["itemGroupOID"] in groups
            fields = {f"IT.{form}.{f.id}" for f in PROTOCOL.form(form).fields}
            assert fields <= {c["itemOID"] for c in data["columns"]} and fields <= items, name
    file_oids = [d["fileOID"] for d in datasets(exports["json"]).values()]
    assert len(set(file_oids)) == len(file_oids)


def test_the_database_was_last_modified_at_the_newest_audit_entry_the_exporter_reads(trial: Trial) -> None:
    """dbLastModifiedDateTime: the database's maximum (``audit_latest``) is the newest time of the entries the source
    reads one by one (``audit_columns``) and their newest by the source's default reading, blinded and with arms."""
    sources = [blinded(trial), export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True)]
    for source in sources:
        read = [at for (at,) in source.audit_columns(("at",), (), ("",))]
        assert len(read) > 100 and source.audit_latest() == max(read) == ExportSource.audit_latest(source)
        assert source.audit_latest().utcoffset() == dt.timedelta(0)  # type: ignore[union-attr]


# --- read back against the other exports --------------------------------------------------------------------


def test_sdtm_rows_equal_the_xpt_files_read_back_with_pyreadstat(exports: dict[str, Path]) -> None:
    """Same variables in the same order, same records in the same order, same values: numbers exactly (a decimal's
    text reads back as the XPT's binary64 number), missing as null (XPT: NaN, or empty text), text as the XPT
    spells it in ASCII (TNF- α: alpha)."""
    found = datasets(exports["json"])
    assert {n for n in found if n.startswith("sdtm/")} == {f"sdtm/{c.lower()}" for c in sdtm_written(exports)}
    for code in sdtm_written(exports):
        frame, meta = pyreadstat.read_xport(exports["sdtm"] / "sdtm" / f"{code.lower()}.xpt")
        data = found[f"sdtm/{code.lower()}"]
        assert [c["name"] for c in data["columns"]] == list(frame.columns), code
        assert data["records"] == len(frame), code
        for row, (_, xpt) in zip(data["rows"], frame.iterrows(), strict=True):
            for column, value in zip(data["columns"], row, strict=True):
                other = xpt[column["name"]]
                if column["dataType"] in {"integer", "decimal"}:
                    assert meta.readstat_variable_types[column["name"]] == "double"
                    if value is None:
                        assert math.isnan(other), (code, column["name"])
                    else:
                        assert float(value) == other, (code, column["name"], value, other)
                else:  # the XPT spells in ASCII what Dataset-JSON keeps as stored (xpt_ascii.csv's mapping)
                    spelt = value.translate(str.maketrans(ASCII_SPELLINGS)) if value is not None else ""
                    assert (spelt if spelt.isascii() else "") == other, (code, column["name"], value, other)


def _csv_cell(data_type: str, value: Any) -> str:
    """What the CSV export writes for a Dataset-JSON value (before formula neutralising)."""
    if value is None:
        return ""
    if data_type == "boolean":
        return "1" if value else "0"
    return str(value)


def test_raw_rows_equal_the_csv_export_and_have_the_parquet_types(exports: dict[str, Path]) -> None:
    """Every raw table: the CSV's header and rows, cell for cell (decimals as numbers, exactly); each column's
    dataType is the Parquet export's Arrow type (string, float64 for integer and decimal, bool, date32,
    timestamp)."""
    arrow = {"string": pa.types.is_string, "time": pa.types.is_string, "integer": pa.types.is_float64,
             "decimal": pa.types.is_float64, "boolean": pa.types.is_boolean, "date": pa.types.is_date32,
             "datetime": pa.types.is_timestamp}  # fmt: skip
    raw = {k: v for k, v in datasets(exports["json"]).items() if not k.startswith("sdtm/")}
    for name, data in raw.items():
        text = pd.read_csv(exports["csv"] / f"{name}.csv", dtype=str, keep_default_na=False)
        schema = pq.read_schema(exports["parquet"] / f"{name}.parquet")
        assert [c["name"] for c in data["columns"]] == list(text.columns) == schema.names, name
        assert data["records"] == len(text), name
        for column in data["columns"]:
            assert arrow[column["dataType"]](schema.field(column["name"]).type), (name, column)
        for row, cells in zip(data["rows"], text.itertuples(index=False), strict=True):
            for column, value, cell in zip(data["columns"], row, cells, strict=True):
                where = (name, column["name"], value, cell)
                if column["dataType"] == "decimal" and value is not None:
                    assert float(value) == float(cell), where
                elif cell.startswith("'") and not _csv_cell(column["dataType"], value).startswith("'"):
                    assert cell[1:] == _csv_cell(column["dataType"], value), where  # a neutralised formula
                else:
                    assert cell == _csv_cell(column["dataType"], value), where
    labs = raw["forms/labs"]
    names = [c["name"] for c in labs["columns"]]
    censored = [r for r in labs["rows"] if r[names.index("tnf_alpha_flag")] == "<LLOQ"]
    assert [r[names.index("tnf_alpha")] for r in censored] == ["1.5"]


# --- decimals and refusals ----------------------------------------------------------------------------------


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_decimal_is_plain_text_that_reads_back_as_exactly_the_stored_number(value: float) -> None:
    text = decimal_text(value)
    assert PLAIN_DECIMAL.fullmatch(text) and float(text) == value


def test_decimals_are_written_as_typed_never_with_an_exponent() -> None:
    assert [decimal_text(x) for x in (0.1, 12.5, 100.0, 1e-7, 1e22, -0.25, 5000)] == [
        "0.1", "12.5", "100", "0.0000001", "10000000000000000000000", "-0.25", "5000"]  # fmt: skip


def test_a_whole_number_past_two_to_the_53_keeps_every_digit_in_a_decimal_column() -> None:
    big = 2**53 + 1  # a float would make it 9007199254740992
    assert decimal_text(big) == "9007199254740993" and int(decimal_text(big)) == big
    assert column_json("decimal", [big, None, 2.5]) == (['"9007199254740993"', "null", '"2.5"'], 16)


@pytest.mark.parametrize(
    ("data_type", "value", "message"),
    [
        ("integer", 2.5, "is not a whole number"),
        ("integer", True, "is not a value of type integer"),
        ("decimal", float("nan"), "is not a finite number"),
        ("date", "21/05/2021", "is not an ISO 8601 date"),
        ("datetime", "2021-05-21 10:00", "is not an ISO 8601 datetime"),
        ("boolean", 1, "is not a value of type boolean"),
        ("string", 7, "is not a value of type string"),
    ],
)
def test_a_value_not_of_its_columns_type_is_refused_by_name(
    tmp_path: Path, data_type: Any, value: Any, message: str
) -> None:
    header = {"itemGroupOID": "IG.X", "name": "X", "label": "X"}
    writer = DatasetJsonWriter(tmp_path / "x", header, [Variable("IT.X.V", "V", "V", data_type)])
    with pytest.raises(ValueError, match=message) as refused:
        writer.add([value])
    assert "X row 1 V" in str(refused.value)


def _writer_peak(folder: Path, rows: int) -> int:
    """The peak memory (tracemalloc) of writing ``rows`` rows of five typed columns through one writer."""
    columns = [Variable(f"IT.X.{n}", n, n, t) for n, t in (("id", "string"), ("n", "integer"), ("x", "decimal"),
                                                             ("on", "date"), ("ok", "boolean"))]  # fmt: skip
    writer = DatasetJsonWriter(folder / "x", {"itemGroupOID": "IG.X", "name": "X", "label": "X"}, columns)
    tracemalloc.start()
    try:
        for i in range(rows):
            writer.add([f"P-{i:06d}", i, i / 7, dt.date(2021, 1, 1) + dt.timedelta(days=i % 900), i % 2 == 0])
        writer.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_dataset_is_written_in_constant_memory_whatever_its_rows(tmp_path: Path) -> None:
    """Rows go to a spool as they come: ten times the rows, not ten times the memory (a list of the rows would
    be); the file holds every row."""
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small, large = _writer_peak(tmp_path / "small", 3_000), _writer_peak(tmp_path / "large", 30_000)
    assert large < 2 * small, (small, large)
    data = json.loads((tmp_path / "large" / "x.json").read_text("utf-8"))
    assert data["records"] == len(data["rows"]) == 30_000 and data["rows"][7] == [
        "P-000007",
        7,
        "1",
        "2021-01-08",
        False,
    ]


# --- define.xml and masking ---------------------------------------------------------------------------------


def test_metadataref_names_define_xml_only_when_one_is_written(trial: Trial, tmp_path: Path) -> None:
    """With a Define-XML writer, every SDTM dataset references the define.xml written beside it (after
    metaDataVersionOID, as the specification orders it); raw tables never do."""

    given: list[Mapping[str, Mapping[str, int]]] = []

    def define(source: ExportSource, lengths: Mapping[str, Mapping[str, int]], out: Path) -> list[Path]:
        given.append(lengths)
        path = out / "define.xml"
        path.write_text(f'<ODM FileOID="{source.trial_id}"/>', "utf-8")
        return [path]

    written = DatasetJsonExporter(define_xml=define).write(blinded(trial), tmp_path)
    assert tmp_path / "sdtm" / "define.xml" in written
    (lengths,) = given
    readme = (tmp_path / "README.txt").read_text("utf-8")
    for code in DOMAINS.keys() - lengths:  # no records: not written, not described, named in README.txt
        assert re.search(rf"Not written, no records \(.*\): (\w+, )*{code}\b", readme), code
    for code, domain in {c: DOMAINS[c] for c in lengths}.items():  # each variable's length, as the columns state
        assert set(lengths[code]) == {v.name for v in domain.variables}, code
        columns = datasets(tmp_path)[f"sdtm/{code.lower()}"]["columns"]
        assert all(lengths[code][c["name"]] == c["length"] for c in columns if "length" in c), code
    for name, data in datasets(tmp_path).items():
        if name.startswith("sdtm/"):
            keys = list(data)
            assert data["metaDataRef"] == "define.xml", name
            assert keys.index("metaDataRef") == keys.index("metaDataVersionOID") + 1, name
            assert (tmp_path / "sdtm" / data["metaDataRef"]).is_file()
        else:
            assert "metaDataRef" not in data, name


def test_a_define_writer_that_writes_no_define_xml_is_refused(trial: Trial, tmp_path: Path) -> None:
    """The datasets would name a file that is not there: the export stops instead."""
    with pytest.raises(ValueError, match=r"did not write define\.xml"):
        DatasetJsonExporter(define_xml=lambda source, lengths, out: []).write(blinded(trial), tmp_path)


def test_a_blinded_export_names_no_arm(exports: dict[str, Path]) -> None:
    assert arms_named_in(exports["json"], arm_terms(with_interventions=True)) == {}


def test_an_export_with_arms_names_them_in_the_participant_tables_dm_and_the_trial_design_only(
    exports: dict[str, Path],
) -> None:
    """DM the allocated arm; TA the planned arms, TE and SE the arms' own elements (whose codes are arm codes)."""
    named = arms_named_in(exports["json+arms"], arm_terms(with_interventions=False))
    tables = ("participants", "randomization", "sdtm/dm", "sdtm/ta", "sdtm/te", "sdtm/se")
    allowed = {f"{t}.{x}" for t in tables for x in ("json", "ndjson")}
    assert {"participants.json", "sdtm/dm.json"} <= set(named) <= allowed


def test_the_readme_says_what_the_sdtm_export_notes(exports: dict[str, Path]) -> None:
    """What the SDTM export's README notes about its domains (events not coded to MedDRA, EPOCH or baseline flags
    left empty, ...) is said in the Dataset-JSON export's README too: the same domains, the same caveats."""
    sdtm_notes = (exports["sdtm"] / "README.txt").read_text("utf-8").split("\nNotes:\n", 1)[1].splitlines()
    said = (exports["json"] / "README.txt").read_text("utf-8")
    domain_notes = [n for n in sdtm_notes if n.strip() and "200 bytes" not in n]
    assert domain_notes  # the simulated trial has AEs not coded to MedDRA, at least
    for note in domain_notes:
        assert note.strip() in said, note


# --- the bytes ----------------------------------------------------------------------------------------------


def _plain(value: float) -> str:
    """The shortest text reading back as ``value`` (Python's repr) in plain notation, whole numbers without .0."""
    text = format(Decimal(repr(value)), "f")
    return text[:-2] if text.endswith(".0") else text


def test_every_file_is_its_content_as_json_dumps_lays_it_out_byte_for_byte(exports: dict[str, Path]) -> None:
    """Each .json is its parsed content written back by ``json.dumps`` (UTF-8, not ASCII-escaped): the metadata,
    then "rows" with one row per line; each .ndjson the metadata and each row on its own line; every decimal the
    shortest plain text of its number. However the rows are made, not a byte differs from this."""
    for key in ("json", "json+arms"):
        for path in sorted(exports[key].rglob("*.json")):
            data = json.loads(path.read_bytes())
            head = json.dumps({k: v for k, v in data.items() if k != "rows"}, ensure_ascii=False)
            rows = [json.dumps(r, ensure_ascii=False) for r in data["rows"]]
            body = "\n" + ",\n".join(rows) + "\n" if rows else ""
            assert path.read_bytes() == f'{head[:-1]}, "rows": [{body}]}}\n'.encode(), path
            ndjson = "".join(f"{line}\n" for line in (head, *rows))
            assert path.with_suffix(".ndjson").read_bytes() == ndjson.encode(), path
            decimals = [n for n, c in enumerate(data["columns"]) if c["dataType"] == "decimal"]
            for row in data["rows"]:
                assert all(row[n] is None or row[n] == _plain(float(row[n])) for n in decimals), (path, row)


_ARROW: dict[str, pa.DataType] = {"string": pa.string(), "time": pa.string(), "integer": pa.float64(),
                                  "decimal": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
                                  "datetime": pa.timestamp("us", tz="UTC")}  # fmt: skip
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=8),
    "time": st.sampled_from(["08:30", "23:59:59", "00:00:00.5"]),
    "integer": st.integers(-(2**53), 2**53).map(float) | st.sampled_from([0.0, -0.0, 7.0]),
    "decimal": st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, -0.0, 1e-7, 1e22, 12.5]),
    "boolean": st.booleans(),
    "date": st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
    "datetime": st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),  # noqa: DTZ001 - naive bounds, as hypothesis takes them
}


@given(st.data())
def test_rows_given_as_columns_are_the_rows_given_one_at_a_time(tmp_path_factory: Any, data: Any) -> None:
    """``extend`` (a batch of columns, as Python lists or Arrow arrays, whole or chunked: how the exporter writes)
    writes the bytes and the lengths ``add`` (a row at a time, the rule as written) does, for every data type, nulls,
    repeats, 0.0 and -0.0, exponents and text to escape."""
    kinds = data.draw(st.lists(st.sampled_from(sorted(_VALUES)), min_size=1, max_size=4))
    count = data.draw(st.integers(0, 12))
    columns = [data.draw(st.lists(st.none() | _VALUES[k], min_size=count, max_size=count)) for k in kinds]
    variables = [Variable(f"IT.X.V{n}", f"V{n}", f"V{n}", k) for n, k in enumerate(kinds)]  # type: ignore[arg-type]
    header = {"itemGroupOID": "IG.X", "name": "X", "label": "X"}
    folder = tmp_path_factory.mktemp("rows")
    by_row = DatasetJsonWriter(folder / "rows", header, variables)
    for row in zip(*columns, strict=True):
        by_row.add(row)
    as_lists = DatasetJsonWriter(folder / "lists", header, variables)
    as_lists.extend(columns, count)
    as_arrow = DatasetJsonWriter(folder / "arrow", header, variables)
    as_arrow.extend([pa.array(c, _ARROW[k]) for c, k in zip(columns, kinds, strict=True)], count)
    as_chunks = DatasetJsonWriter(folder / "chunks", header, variables)
    as_chunks.extend([pa.chunked_array([c[:1], c[1:]], _ARROW[k]) for c, k in zip(columns, kinds, strict=True)], count)
    for writer in (by_row, as_lists, as_arrow, as_chunks):
        writer.close()
    for suffix in (".json", ".ndjson"):
        written = (folder / f"rows{suffix}").read_bytes()
        assert all((folder / f"{way}{suffix}").read_bytes() == written for way in ("lists", "arrow", "chunks"))
    assert by_row.lengths() == as_lists.lengths() == as_arrow.lengths() == as_chunks.lengths()


@pytest.mark.parametrize(
    ("data_type", "column"),
    [
        ("integer", [1.0, 2.0, 2.5]),
        ("integer", [1, 1, True]),
        ("decimal", [0.5, None, float("nan")]),
        ("date", ["2021-05-21", "2021-05-22", "21/05/2021"]),
        ("boolean", [True, False, 1]),
        ("string", ["a", "b", 7]),
    ],
)
def test_a_column_with_a_wrong_value_is_refused_by_its_row_and_name(
    tmp_path: Path, data_type: Any, column: list[Any]
) -> None:
    """Given as columns, a value not of its column's type stops the dataset with its row and column, as one given
    a row at a time does (1 and True, 2 and 2.5 in one column included)."""
    header = {"itemGroupOID": "IG.X", "name": "X", "label": "X"}
    variables = [Variable("IT.X.ID", "ID", "ID", "string"), Variable("IT.X.V", "V", "V", data_type)]
    writer = DatasetJsonWriter(tmp_path / "x", header, variables)
    with pytest.raises(ValueError, match=r"X row 3 V: ") as refused:
        writer.extend([["a", "b", "c"], column], 3)
    assert "is not" in str(refused.value)
