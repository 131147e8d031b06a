"""Tabular exports and the codebook, on a small simulated trial (SQLite).

The trial: 16 patients screened through the real services (seed 7), then one laboratory form given a TNF-alpha
below the LLOQ (1.5 pg/mL), an IL-6 above the ULOQ (5000 ng/L) and a CRP not done, and one vital-signs form a
temperature typed in °F. Every format is read back with its own library and must hold the stored values:

| stored status           | wide table value | <field>_flag | <field>_status / _reason  | values_long            |
|-------------------------|------------------|--------------|---------------------------|------------------------|
| value, derived          | the value        | empty        | empty                     | value, status          |
| below_lloq / above_uloq | the limit        | <LLOQ / >ULOQ| empty                     | empty value, limit     |
| not_done                | empty            | empty        | not_done / the reason     | empty value, reason    |

Numbers are compared exactly; yes/no is 1/0; dates and UTC date-times compare as such. A blinded export names
no arm anywhere (every file's bytes, and Parquet's decoded rows, scanned for each arm's code, name and
intervention as words); an export made with arms by the unblinded statistician names them in the
participants table only.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat
import pytest

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.base import ExportSource
from trialwright.exports.codebook import CODEBOOK_COLUMNS, CodebookExporter, codebook_rows
from trialwright.exports.readstat import short_names
from trialwright.exports.sas import SasExporter
from trialwright.exports.spss import SpssExporter
from trialwright.exports.stata import StataExporter
from trialwright.exports.tabular import CsvExporter, ParquetExporter, TabularExporter
from trialwright.protocol import load_protocol
from trialwright.protocol.forms import RECORD_COLUMNS, FieldType, FormDef
from trialwright.services.exports import export_source
from trialwright.services.forms import save_form
from trialwright.services.simulation import simulate
from trialwright.store.engine import make_engine

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
FORMATS: tuple[type[TabularExporter], ...] = (CsvExporter, ParquetExporter, StataExporter, SpssExporter, SasExporter)
#: The values entered after the simulation, by form.
CENSORED_LABS = {
    "tnf_alpha": {"below_lloq": 1.5},
    "il6": {"above_uloq": 5000, "unit": "ng/L"},
    "crp": {"not_done": "Sample clotted"},
}
FAHRENHEIT = {"temperature": {"value": 100.4, "unit": "°F"}}
KIND = {
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


def simulated_trial(factory: pytest.TempPathFactory) -> Trial:
    """The simulated trial of this chapter, built once per test session and shared by its modules."""
    folder = factory.getbasetemp() / "exports-trial"
    url = f"sqlite:///{folder / 'trial.db'}"
    if not (folder / "trial.db").exists():
        folder.mkdir(exist_ok=True)
        building = make_trial(f"sqlite:///{folder / 'building.db'}")
        simulate(building.engine, FIRST_PROTOCOL, 16, seed=7)
        source = export_source(building.engine, who(building, Role.DATA_MANAGER))
        coordinator = who(building, Role.STUDY_COORDINATOR)
        labs = next(r for r in source.forms("labs") if r.site == "RAZ")
        save_form(building.engine, coordinator, labs.participant_id, labs.visit_id, "labs", CENSORED_LABS,
                  reason="Assay report: censored results, CRP sample clotted")  # fmt: skip
        vitals = next(r for r in source.forms("vitals") if r.site == "RAZ")
        save_form(building.engine, coordinator, vitals.participant_id, vitals.visit_id, "vitals", FAHRENHEIT,
                  reason="Thermometer read in Fahrenheit")  # fmt: skip
        building.engine.dispose()
        # The trial's audit key and anchors go with it: without its key a keyed trial's arms are never read.
        for suffix in (".key", ".anchors"):
            if (folder / f"building.db{suffix}").exists():
                (folder / f"building.db{suffix}").rename(folder / f"trial.db{suffix}")
        (folder / "building.db").rename(folder / "trial.db")
    return Trial(url=url, engine=make_engine(url))


def blinded_source(trial: Trial) -> ExportSource:
    return export_source(trial.engine, who(trial, Role.DATA_MANAGER))


def unblinded_source(trial: Trial) -> ExportSource:
    return export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True)


def arm_terms(with_interventions: bool) -> list[str]:
    terms = [t for a in PROTOCOL.arms for t in (a.code, a.name)]
    return terms + ([a.intervention.name for a in PROTOCOL.arms] if with_interventions else [])


READERS = {".dta": pyreadstat.read_dta, ".sav": pyreadstat.read_sav, ".xpt": pyreadstat.read_xport}


def file_texts(path: Path) -> bytes:
    """What a file says: its bytes; for Parquet (compressed pages) its decoded rows and schema; for Stata, SPSS
    and SAS files (fixed-width cells, so a code may abut another with no word boundary) also every cell, name,
    label and value label, decoded and separated."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return json.dumps(table.to_pylist(), default=str).encode() + str(table.schema).encode()
    data = path.read_bytes()
    if path.suffix in READERS:
        frame, meta = READERS[path.suffix](path)
        labels = [*(meta.column_labels or []), meta.file_label or "", meta.table_name or ""]
        decoded = [*frame.columns, *(x or "" for x in labels), json.dumps(meta.variable_value_labels, default=str)]
        data += "\n".join([*decoded, frame.astype(str).to_csv(index=False)]).encode()
    return data


def arms_named_in(folder: Path, terms: list[str]) -> dict[str, set[str]]:
    """Which files name which of ``terms`` as words (not inside longer words)."""
    found: dict[str, set[str]] = {}
    patterns = {t: re.compile(rb"(?<![A-Za-z0-9])" + re.escape(t.encode()) + rb"(?![A-Za-z0-9])") for t in terms}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = file_texts(path)
        hits = {t for t, pattern in patterns.items() if pattern.search(data)}
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:
    return simulated_trial(tmp_path_factory)


@pytest.fixture(scope="module")
def exports(trial: Trial, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tabular format and the codebook, blinded (by the data manager) and with arms (unblinded
    statistician); keys are format names, with '+arms' for the unblinded ones."""
    out: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("tabular")
    for with_arms, source in ((False, blinded_source(trial)), (True, unblinded_source(trial))):
        for exporter in (*FORMATS, CodebookExporter):
            key = exporter.name + ("+arms" if with_arms else "")
            folder = root / key
            folder.mkdir()
            exporter().write(source, folder)
            out[key] = folder
    return out


# --- what the source holds, as the specification above says ------------------------------------------------


def spec_value(kind: str, stored: dict[str, Any] | None) -> Any:
    """The analysis value of a stored value: the limit when censored, nothing when not done."""
    if not stored:
        return None
    status = stored.get("status", "value")
    if status in {"below_lloq", "above_uloq"}:
        return float(stored["limit"])
    if status in {"not_done", "not_applicable"} or stored.get("value") is None:
        return None
    value = stored["value"]
    if kind == "number":
        return float(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "datetime":
        return dt.datetime.fromisoformat(value).astimezone(dt.UTC).replace(tzinfo=None)
    if kind == "yesno":
        return bool(value)
    return "|".join(value) if isinstance(value, list) else str(value)


def expected_rows(source: ExportSource, form: FormDef) -> dict[tuple[str, str], dict[str, Any]]:
    rows = {}
    for r in source.forms(form.id):
        row: dict[str, Any] = {"form_state": r.state, "visit_date": r.visit_date}
        for f in form.fields:
            stored = r.values.get(f.id)
            row[f.id] = spec_value(KIND[f.type], stored)
            status = (stored or {}).get("status")
            row[f"{f.id}_flag"] = {"below_lloq": "<LLOQ", "above_uloq": ">ULOQ"}.get(status or "")
            row[f"{f.id}_status"] = status if status in {"not_done", "not_applicable"} else None
            row[f"{f.id}_reason"] = (stored or {}).get("reason")
        rows[(r.participant_id, r.visit_id)] = row
    return rows


def normal(kind: str, value: Any) -> Any:
    """A value read back from any format, in the specification's terms."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if kind == "number":
        return float(value)
    if kind == "yesno":
        return value in {True, "1"}  # True == 1 == 1.0
    if kind == "date":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if kind == "datetime":
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, float) and value.is_integer():  # a whole-number code Stata holds as a number
        return str(int(value))
    return str(value)


def read_form(fmt: str, folder: Path, form: FormDef) -> Iterator[dict[str, Any]]:
    """The form's table as dicts keyed by the original column names."""
    if fmt == "csv":
        yield from pd.read_csv(folder / f"forms/{form.id}.csv", dtype=str, keep_default_na=False).to_dict("records")
        return
    if fmt == "parquet":
        yield from pq.read_table(folder / f"forms/{form.id}.parquet").to_pylist()
        return
    reader = {"stata": pyreadstat.read_dta, "spss": pyreadstat.read_sav, "sas": pyreadstat.read_xport}[fmt]
    extension = {"stata": "dta", "spss": "sav", "sas": "xpt"}[fmt]
    file = f"forms/{form.id}.{extension}"
    frame, _ = reader(folder / file)
    with (folder / "names.csv").open(encoding="utf-8") as f:
        names = {r["variable"]: r["column"] for r in csv.DictReader(f) if r["file"] == file}
    for variable, codes in numbered_codes(folder, file).items():  # Stata: text codes numbered 1..n
        frame[variable] = frame[variable].astype(object).map(lambda n, codes=codes: codes.get(n, n))
    frame.columns = [names[c] for c in frame.columns]
    yield from frame.astype(object).to_dict("records")


def numbered_codes(folder: Path, file: str) -> dict[str, dict[float, str]]:
    """value_codes.csv of a Stata export: each numbered variable's number -> code, for one file."""
    found: dict[str, dict[float, str]] = {}
    if (folder / "value_codes.csv").exists():
        with (folder / "value_codes.csv").open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                if r["file"] == file:
                    found.setdefault(r["variable"], {})[float(r["number"])] = r["code"]
    return found


def xpt_spelling(codebook: Path) -> dict[str, str]:
    """The codebook's xpt_ascii.csv: how SAS transport spells each non-ASCII character it accepts."""
    with (codebook / "xpt_ascii.csv").open(encoding="utf-8") as f:
        return {r["character"]: r["ascii"] for r in csv.DictReader(f)}


# --- the specification ----------------------------------------------------------------------------------


def test_every_format_writes_participants_one_table_per_form_the_long_table_and_a_readme(
    exports: dict[str, Path], trial: Trial
) -> None:
    """participants, forms/<form> for every form, logs/<log> for every log, values_long, consents, randomization,
    adverse_events, deaths and README.txt (trial, protocol version, export time, whether arms are included); the
    statistical formats add names.csv, Stata value_codes.csv (text codes numbered) and SAS formats.sas and
    labels_cut.csv (the first trial has labels longer than SAS transport's 40 bytes, listed whole there), and SPSS
    and Stata datetimes_rounded.csv when a date-time cannot be held to the microsecond."""
    source = blinded_source(trial)
    for exporter in FORMATS:
        folder, ext = exports[exporter.name], exporter.extension
        expected = {f"{t}.{ext}" for t in ("participants", "values_long", "consents", "randomization",
                                           "adverse_events", "deaths")} | {"README.txt"}  # fmt: skip
        expected |= {f"forms/{form.id}.{ext}" for form in PROTOCOL.forms}
        expected |= {f"logs/{log.id}.{ext}" for log in PROTOCOL.logs}
        if exporter in {StataExporter, SpssExporter, SasExporter}:
            expected.add("names.csv")
        extra = {StataExporter: {"value_codes.csv"}, SasExporter: {"formats.sas", "labels_cut.csv"}}
        expected |= extra.get(exporter, set())
        written = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
        if exporter in {SpssExporter, StataExporter}:  # the date-times they cannot hold, if any (test_*_datetimes.py)
            expected |= written & {"datetimes_rounded.csv"}
        assert written == expected
        readme = (folder / "README.txt").read_text(encoding="utf-8")
        assert source.trial_id in readme and f"Protocol version: {source.protocol_version}" in readme
        assert "Exported at: " in readme and "Arms included: no" in readme
        assert "Arms included: yes" in (exports[exporter.name + "+arms"] / "README.txt").read_text(encoding="utf-8")


def test_every_form_table_begins_with_the_record_columns_no_field_may_take(exports: dict[str, Path]) -> None:
    """The columns before a form's fields are exactly ``RECORD_COLUMNS``, the ids ``protocol check`` refuses for a
    field (one named ``visit_date`` would repeat the column: a Parquet file no reader opens)."""
    for form in PROTOCOL.forms:
        with (exports["csv"] / "forms" / f"{form.id}.csv").open(encoding="utf-8") as f:
            header = next(csv.reader(f))
        assert tuple(header[: len(RECORD_COLUMNS)]) == RECORD_COLUMNS
        assert header[len(RECORD_COLUMNS)] == form.fields[0].id
        assert len(header) == len(set(header))


@pytest.mark.parametrize("fmt", [e.name for e in FORMATS])
def test_each_format_read_back_by_its_own_library_holds_the_stored_values(
    fmt: str, exports: dict[str, Path], trial: Trial
) -> None:
    """Every field of every form record, the censored flags and the not-done status and reason."""
    source = blinded_source(trial)
    spelling = str.maketrans(xpt_spelling(exports["codebook"]))
    compared = censored = not_done = 0
    for form in PROTOCOL.forms:
        expected = expected_rows(source, form)
        actual = {(r["participant_id"], r["visit_id"]): r for r in read_form(fmt, exports[fmt], form)}
        assert set(actual) == set(expected), form.id
        for key, want in expected.items():
            got = actual[key]
            assert normal("code", got["form_state"]) == want["form_state"]
            assert normal("date", got["visit_date"]) == want["visit_date"]
            for f in form.fields:
                expected = want[f.id]
                if fmt == "sas" and isinstance(expected, str):  # XPT v5: ASCII as the codebook spells it
                    expected = expected.translate(spelling)
                assert normal(KIND[f.type], got[f.id]) == expected, (form.id, key, f.id)
                compared += 1
                if f.quantification_limits:
                    assert normal("code", got[f"{f.id}_flag"]) == want[f"{f.id}_flag"]
                    censored += want[f"{f.id}_flag"] is not None
                if f"{f.id}_status" in got:
                    assert normal("code", got[f"{f.id}_status"]) == want[f"{f.id}_status"]
                    assert normal("text", got[f"{f.id}_reason"]) == want[f"{f.id}_reason"]
                    not_done += want[f"{f.id}_status"] is not None
    assert compared > 1000 and censored == 2 and not_done == 1


def test_status_and_reason_columns_exist_only_where_a_form_has_such_values(exports: dict[str, Path]) -> None:
    """The laboratory form has crp_status and crp_reason (one CRP not done); no other field has them."""
    for form in PROTOCOL.forms:
        header = next(csv.reader((exports["csv"] / f"forms/{form.id}.csv").open(encoding="utf-8")))
        status_columns = [c for c in header if c.endswith("_status") or c.endswith("_reason")]
        assert status_columns == (["crp_status", "crp_reason"] if form.id == "labs" else []), form.id


def test_parquet_columns_are_typed(exports: dict[str, Path]) -> None:
    """Dates date32, date-times UTC timestamps, numbers float64, codes strings, yes/no booleans."""
    labs = pq.read_table(exports["parquet"] / "forms/labs.parquet").schema
    assert labs.field("visit_date").type == pa.date32()
    assert labs.field("sampled_at").type == pa.timestamp("us", tz="UTC")
    assert labs.field("crp").type == pa.float64() and labs.field("tnf_alpha_flag").type == pa.string()
    assert pq.read_table(exports["parquet"] / "forms/vitals.parquet").schema.field("on_oxygen").type == pa.bool_()
    assert pq.read_table(exports["parquet"] / "forms/performance.parquet").schema.field("status").type == pa.string()
    assert labs.field("crp").metadata[b"label"] == b"C-reactive protein (mg/L)"


def test_stata_and_spss_carry_variable_labels_and_value_labels(exports: dict[str, Path]) -> None:
    """Labels come from the protocol's field labels with units, value labels from its choices."""
    for fmt, reader, ext in (("stata", pyreadstat.read_dta, "dta"), ("spss", pyreadstat.read_sav, "sav")):
        _, labs = reader(exports[fmt] / f"forms/labs.{ext}", metadataonly=True)
        assert labs.column_names_to_labels["tnf_alpha"] == "TNF-alpha (pg/mL)"
        _, vitals = reader(exports[fmt] / f"forms/vitals.{ext}", metadataonly=True)
        assert vitals.variable_value_labels["on_oxygen"] == {0: "No", 1: "Yes"}
    _, performance = pyreadstat.read_dta(exports["stata"] / "forms/performance.dta", metadataonly=True)
    assert performance.variable_value_labels["status"][3] == "Limited self-care"
    _, vitals = pyreadstat.read_sav(exports["spss"] / "forms/vitals.sav", metadataonly=True)
    assert vitals.variable_value_labels["consciousness"]["new_confusion"] == "New confusion"
    assert "no value labels" in (exports["sas"] / "README.txt").read_text(encoding="utf-8")


def test_the_long_table_has_one_row_per_stored_value(exports: dict[str, Path], trial: Trial) -> None:
    """Same count in every format; the censored and not-done values keep their status, limit, reason and
    the value and unit as entered."""
    source = blinded_source(trial)
    stored = sum(len(r.values) for r in source.forms())
    long = pd.read_csv(exports["csv"] / "values_long.csv", dtype=str, keep_default_na=False)
    assert len(long) == stored > 1000
    assert len(pq.read_table(exports["parquet"] / "values_long.parquet")) == stored
    for fmt, reader, ext in (("stata", pyreadstat.read_dta, "dta"), ("spss", pyreadstat.read_sav, "sav"),
                             ("sas", pyreadstat.read_xport, "xpt")):  # fmt: skip
        assert len(reader(exports[fmt] / f"values_long.{ext}")[0]) == stored, fmt
    rows = {r["field_id"]: r for r in long.to_dict("records") if r["status"] not in {"value", "derived"}}
    tnf = rows["tnf_alpha"]
    assert (tnf["status"], tnf["value"], tnf["limit"]) == ("below_lloq", "", "1.5")
    assert (rows["il6"]["entered"], rows["il6"]["entered_unit"], rows["il6"]["unit"]) == ("5000", "ng/L", "pg/mL")
    assert (rows["crp"]["status"], rows["crp"]["reason"]) == ("not_done", "Sample clotted")
    fahrenheit = long[(long.field_id == "temperature") & (long.entered_unit == "°F")].iloc[0]
    assert (fahrenheit["entered"], float(fahrenheit["value"]), fahrenheit["unit"]) == ("100.4", 38.0, "°C")


def test_progress_counts_every_form_record(trial: Trial, tmp_path: Path) -> None:
    """progress(n) after each record, up to the source's count."""
    source = blinded_source(trial)
    seen: list[int] = []
    CsvExporter().write(source, tmp_path, seen.append)
    assert seen == list(range(1, source.count() + 1))


def test_sas_names_are_at_most_eight_characters_unique_and_mapped(exports: dict[str, Path]) -> None:
    """Every XPT variable and dataset name: upper case, at most 8 characters, unique; names.csv maps each."""
    folder = exports["sas"]
    with (folder / "names.csv").open(encoding="utf-8") as f:
        mapping = list(csv.DictReader(f))
    datasets = set()
    for path in folder.rglob("*.xpt"):
        frame, meta = pyreadstat.read_xport(path)
        names = list(frame.columns)
        assert all(re.fullmatch(r"[A-Z_][A-Z0-9_]{0,7}", n) for n in names), path
        assert len(set(names)) == len(names)
        assert len(meta.table_name) <= 8 and meta.table_name not in datasets
        datasets.add(meta.table_name)
        listed = [m for m in mapping if m["file"] == str(path.relative_to(folder))]
        assert [m["variable"] for m in listed] == names and {m["dataset"] for m in listed} == {meta.table_name}
        assert all(len(label or "") <= 40 for label in meta.column_labels)
    assert len(datasets) == len(PROTOCOL.forms) + len(PROTOCOL.logs) + 6


def test_short_names_are_deterministic_and_collision_free() -> None:
    """Columns that share their first eight characters still get distinct names, the same on every run."""
    columns = ["tnf_alpha", "tnf_alpha_flag", "tnf_alpha_kit", "tnf_alpha_kit_2", "participant_id", "participants"]
    first = short_names(columns, 8, upper=True)
    assert first == short_names(columns, 8, upper=True)
    assert len(set(first.values())) == len(columns) and all(len(n) <= 8 for n in first.values())
    assert first["tnf_alpha"] == "TNFALPHA" and first["tnf_alpha_flag"] == "TNFALPFL"


def test_a_blinded_export_names_no_arm_in_any_file(exports: dict[str, Path]) -> None:
    """No arm code, arm name or intervention appears, as a word, in any file of any blinded export."""
    for key, folder in exports.items():
        if not key.endswith("+arms"):
            assert arms_named_in(folder, arm_terms(with_interventions=True)) == {}, key


def test_an_export_with_arms_names_them_in_the_participants_table_only(exports: dict[str, Path], trial: Trial) -> None:
    """The unblinded statistician's export: the allocated arm of each randomized participant in the participants
    and randomization tables (and the arm's code and name in Stata's value_codes.csv and SAS's formats.sas),
    nowhere else."""
    allocated = {p.participant_id: p.arm for p in unblinded_source(trial).participants()}
    for exporter in FORMATS:
        folder = exports[exporter.name + "+arms"]
        named = arms_named_in(folder, arm_terms(with_interventions=False))
        tables = {f"participants.{exporter.extension}", f"randomization.{exporter.extension}"}
        mappings = {StataExporter: {"value_codes.csv"}, SasExporter: {"formats.sas"}}.get(exporter, set())
        assert set(named) == tables | mappings, named
    participants = pd.read_csv(exports["csv+arms"] / "participants.csv", dtype=str, keep_default_na=False)
    assert dict(zip(participants.participant_id, participants.arm, strict=True)) == allocated
    assert set(allocated.values()) <= set(PROTOCOL.arm_codes)
    assert "arm" not in pd.read_csv(exports["csv"] / "participants.csv", dtype=str).columns


def test_the_codebook_lists_every_field_of_every_form(exports: dict[str, Path]) -> None:
    """codebook.csv: one row per form field with its type, unit, codes, limits and derivation; codebook.html:
    one section per form, naming the visits that collect it; codebook_rows() gives the same rows."""
    with (exports["codebook"] / "codebook.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CODEBOOK_COLUMNS
    assert [(r["form"], r["field"]) for r in rows] == [(form.id, f.id) for form in PROTOCOL.forms for f in form.fields]
    assert [r["field"] for r in rows] == [r.field for r in codebook_rows(PROTOCOL)]
    by_key = {(r["form"], r["field"]): r for r in rows}
    assert by_key[("demographics", "sex")]["choices"] == "female=Female; male=Male"
    assert by_key[("labs", "crp")]["alternative_units"] == "mg/dL (x 10)"
    assert (by_key[("labs", "crp")]["hard_limits"], by_key[("labs", "crp")]["soft_limits"]) == ("0 to 600", "0 to 400")
    assert by_key[("labs", "cd4_cd8_ratio")]["derived_from"] == "cd4_cd8_ratio(cd4=cd4_abs, cd8=cd8_abs)"
    assert by_key[("labs", "tnf_alpha")]["visits"] == "baseline; day3; day7"
    page = (exports["codebook"] / "codebook.html").read_text(encoding="utf-8")
    assert page.count("<section") == len(PROTOCOL.forms) and "Collected at: Baseline (before infusion)" in page
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page)  # self-contained
