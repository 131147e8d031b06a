"""Statistical packages and event tables (issue 25, items 6 and 7), on the simulated trial of test_tabular.

- SAS transport (XPT v5) is ASCII only: every value and label is spelt in ASCII by the mapping the codebook
  lists (xpt_ascii.csv: ° as deg, µ as u, ...); no byte above 127 is in any .xpt file; a value with a character
  the mapping lacks is left empty and listed in not_ascii.csv, never guessed. Two independent readers
  (pyreadstat and pandas.read_sas) read the same values.
- SPSS: the measure level follows the field type (numbers, dates scale; choices, yes/no, text nominal); every
  choice field has value labels (code -> label).
- Stata: every choice field is a labelled number; text codes are numbered 1..n in protocol order and
  value_codes.csv gives each number's code and label; pyreadstat and pandas.read_stata agree.
- formats.sas: a value format for every choice and yes/no variable of every dataset, with every code, and a
  FORMAT statement applying it (no SAS here: checked in structure only).
- Every format has consents, randomization, adverse_events and deaths tables with the source's counts; a
  blinded export has no arm column.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from tests.spec.exports.test_tabular import (
    PROTOCOL,
    Trial,
    arm_terms,
    arms_named_in,
    blinded_source,
    simulated_trial,
    unblinded_source,
)
from tests.trialfixtures import FIRST_PROTOCOL, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.codebook import CodebookExporter
from trialwright.exports.sas import SasExporter
from trialwright.exports.spss import SpssExporter
from trialwright.exports.stata import StataExporter
from trialwright.exports.tabular import Column, CsvExporter, Table, _Run, event_row, events_table
from trialwright.protocol.forms import FieldType
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:
    return simulated_trial(tmp_path_factory)


@pytest.fixture(scope="module")
def out(trial: Trial, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("statpkg")
    folders = {}
    for with_arms, source in ((False, blinded_source(trial)), (True, unblinded_source(trial))):
        for exporter in (CsvExporter, StataExporter, SpssExporter, SasExporter, CodebookExporter):
            key = exporter.name + ("+arms" if with_arms else "")
            folders[key] = root / key
            folders[key].mkdir()
            exporter().write(source, folders[key])
    return folders


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_xpt_files_hold_only_ascii_spelt_by_the_codebook_and_two_readers_agree(out: dict[str, Path]) -> None:
    spelling = {r["character"]: r["ascii"] for r in _csv(out["codebook"] / "xpt_ascii.csv")}
    assert spelling["°"] == "deg" and spelling["µ"] == "u"
    for path in sorted(out["sas"].rglob("*.xpt")):
        assert "°".encode() not in path.read_bytes(), path  # the issue: °C written as UTF-8, read as Â°C
        ours, meta = pyreadstat.read_xport(path)
        cells = list(ours.select_dtypes(object).stack().map(str))
        texts = [*(x or "" for x in meta.column_labels), meta.file_label or "", *cells]
        assert all(t.isascii() for t in texts), path  # ASCII only, as XPT v5 requires
        if ours.empty:  # pandas' reader stops on a dataset without rows (deaths, when nobody died)
            continue
        theirs = pd.read_sas(path, format="xport", encoding="ascii")
        assert list(theirs.columns) == list(ours.columns) and len(theirs) == len(ours), path
        for column in ours.columns:
            if ours[column].dtype == object and all(isinstance(v, str) for v in ours[column].dropna()):
                a = ["" if pd.isna(v) else v for v in ours[column]]
                b = ["" if pd.isna(v) else str(v).rstrip() for v in theirs[column]]
                assert a == b, (path, column)
    _, vitals = pyreadstat.read_xport(out["sas"] / "forms/vitals.xpt", metadataonly=True)
    names = {r["column"]: r["variable"] for r in _csv(out["sas"] / "names.csv") if r["file"] == "forms/vitals.xpt"}
    assert vitals.column_names_to_labels[names["temperature"]] == "Temperature (degC)"
    long, _ = pyreadstat.read_xport(out["sas"] / "values_long.xpt")
    assert "degC" in set(long["UNIT"]) and "°C" not in set(long["UNIT"])


def test_a_value_without_an_ascii_spelling_is_listed_never_guessed(tmp_path: Path) -> None:
    table = Table("notes", "Notes", (Column("note", "text", "Note"),))
    writer = SasExporter()
    run = _Run()
    sink = writer.open(tmp_path, table, run)
    for note in ("30 µg", "تب بالا", "café", "38 °C"):
        sink.add({"note": note})
    (path,) = sink.close()
    frame, _ = pyreadstat.read_xport(path)
    assert list(frame["NOTE"]) == ["30 ug", "", "", "38 degC"]
    writer.finish(tmp_path, run)
    refused = _csv(tmp_path / "not_ascii.csv")
    assert [(r["file"], r["variable"], r["row"], r["text"]) for r in refused] == [
        ("notes.xpt", "NOTE", "2", "تب بالا"),
        ("notes.xpt", "NOTE", "3", "café"),
    ]


def test_spss_measure_levels_follow_the_field_types_and_every_choice_has_value_labels(out: dict[str, Path]) -> None:
    checked = 0
    for form in PROTOCOL.forms:
        _, meta = pyreadstat.read_sav(out["spss"] / f"forms/{form.id}.sav", metadataonly=True)
        assert set(meta.variable_measure.values()) <= {"nominal", "scale"}
        for f in form.fields:
            want = "scale" if f.type in {FieldType.INTEGER, FieldType.DECIMAL, FieldType.DATE,
                                         FieldType.DATETIME} else "nominal"  # fmt: skip
            assert meta.variable_measure[f.id] == want, (form.id, f.id)
            if f.type is FieldType.CHOICE:
                assert meta.variable_value_labels[f.id] == {c.code: c.label for c in f.choices}, (form.id, f.id)
            checked += 1
    assert checked > 60


def test_stata_choice_fields_are_labelled_numbers_and_value_codes_keep_every_code(out: dict[str, Path]) -> None:
    numbered = _csv(out["stata"] / "value_codes.csv")
    codes = {(r["file"], r["variable"], float(r["number"])): r["code"] for r in numbered}
    choices = 0
    for form in PROTOCOL.forms:
        file = f"forms/{form.id}.dta"
        ours, meta = pyreadstat.read_dta(out["stata"] / file)
        theirs = pd.read_stata(out["stata"] / file, convert_categoricals=False)
        stored = pd.read_csv(out["csv"] / f"forms/{form.id}.csv", dtype=str, keep_default_na=False)
        for f in (f for f in form.fields if f.type is FieldType.CHOICE):
            assert ours[f.id].dtype.kind == "f" and f.id in meta.variable_value_labels, (form.id, f.id)
            assert [x for x in ours[f.id] if x == x] == [x for x in theirs[f.id] if x == x]
            whole = all(re.fullmatch(r"-?\d+", c.code) for c in f.choices)
            read = ["" if v != v else (str(int(v)) if whole else codes[(file, f.id, v)]) for v in ours[f.id]]
            assert read == list(stored[f.id]), (form.id, f.id)
            labels = {c.label for c in f.choices}
            assert set(meta.variable_value_labels[f.id].values()) == labels
            choices += 1
    assert choices >= 5


def test_a_label_longer_than_the_format_holds_is_cut_and_listed_whole_never_silently(out: dict[str, Path]) -> None:
    """SAS transport keeps 40 bytes of a label: a longer one is cut (no trailing space left) and labels_cut.csv gives
    the whole label, the README says how many; a label that fits is never listed (a walk found the cut unlisted)."""
    names = {(r["file"], r["variable"]): r["label"] for r in _csv(out["sas"] / "names.csv")}
    cut = _csv(out["sas"] / "labels_cut.csv")
    whole = {(r["file"], r["variable"]): r["whole_label"] for r in cut}
    assert ("values_long.xpt", "VALUE") in whole
    assert whole["values_long.xpt", "VALUE"] == "Value (canonical unit; codes; yes/no as 1/0)"
    for r in cut:
        assert len(r["label"].encode()) <= 40 and r["label"] == r["label"].rstrip()
        assert r["whole_label"].startswith(r["label"]) and len(r["whole_label"].encode()) > 40
        if r["variable"] and (r["file"], r["variable"]) in names:
            assert names[r["file"], r["variable"]] == r["label"]
    listed = {k for k, label in names.items() if k in whole}
    assert all(len(label.encode()) <= 40 for label in names.values()) and listed
    assert f"{len(cut)} labels longer than 40 bytes were cut" in (out["sas"] / "README.txt").read_text(encoding="utf-8")


def test_formats_sas_defines_and_applies_a_format_for_every_choice(out: dict[str, Path]) -> None:
    """No SAS is available here: the program is checked in structure (every choice and yes/no variable of
    every dataset has a FORMAT with all its codes)."""
    program = (out["sas"] / "formats.sas").read_text(encoding="ascii")
    formats = dict(re.findall(r"value (\$?\w+)\n(.*?)\n  ;", program, re.S))
    names = {(r["file"], r["column"]): (r["dataset"], r["variable"]) for r in _csv(out["sas"] / "names.csv")}
    for form in PROTOCOL.forms:
        file = f"forms/{form.id}.xpt"
        for f in (f for f in form.fields if f.type in {FieldType.CHOICE, FieldType.BOOLEAN}):
            dataset, variable = names[(file, f.id)]
            step = re.search(rf"data work\.{dataset};\n  set x\d+\.{dataset};\n  format ([^;]*);", program)
            assert step, dataset
            applied = dict(a.rsplit(" ", 1) for a in re.findall(r"(\w+ \$?\w+)\.", step.group(1)))
            body = formats[applied[variable]]
            codes = ["0", "1"] if f.type is FieldType.BOOLEAN else [c.code for c in f.choices]
            for code in codes:
                assert re.search(rf"^\s+'?{re.escape(code)}'? = '", body, re.M), (f.id, code)


def test_adverse_events_name_the_expected_event_each_latest_report_names(out: dict[str, Path], trial: Trial) -> None:
    """An adverse event of special interest declared as an expected event is found again by its code: the
    ``expected_event`` column is the code the event's latest report names (empty when it names none)."""
    source = blinded_source(trial)
    named = {e.ae_number: e.assessment.get("expected_event") or "" for e in source.events()}
    rows = {r["ae_number"]: r["expected_event"] for r in _csv(out["csv"] / "adverse_events.csv")}
    assert rows == named and rows
    column = next(c for c in events_table(source).columns if c.name == "expected_event")
    assert column.choices == tuple((e.code, e.term) for e in PROTOCOL.safety.expected_events) and column.choices
    one = next(iter(source.events()))
    code = PROTOCOL.safety.expected_events[0].code
    assert event_row(dataclasses.replace(one, assessment={**one.assessment, "expected_event": code}))[
        "expected_event"] == code  # fmt: skip


@pytest.mark.parametrize("exporter", [CsvExporter, StataExporter, SpssExporter, SasExporter], ids=lambda e: e.name)
def test_every_format_has_consents_randomization_adverse_events_and_deaths(
    exporter: type, out: dict[str, Path], trial: Trial
) -> None:
    source = blinded_source(trial)
    participants = list(source.participants())
    ext = exporter.extension
    read = {"csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False),
            "dta": lambda p: pyreadstat.read_dta(p)[0], "sav": lambda p: pyreadstat.read_sav(p)[0],
            "xpt": lambda p: pyreadstat.read_xport(p)[0]}[ext]  # fmt: skip
    folder = out[exporter.name]
    assert len(read(folder / f"consents.{ext}")) == sum(p.consented_at is not None for p in participants)
    randomized = read(folder / f"randomization.{ext}")
    assert len(randomized) == sum(p.randomized_at is not None for p in participants) > 0
    assert not {"arm", "ARM"} & set(randomized.columns)
    assert len(read(folder / f"adverse_events.{ext}")) == sum(1 for _ in source.events())
    deaths = read(folder / f"deaths.{ext}")
    fatal = {e.participant_id for e in source.events() if e.assessment.get("outcome") == "fatal"}
    record = PROTOCOL.safety.death_record
    assert record is not None
    died = {r.participant_id for r in source.forms(record.form) if r.visit_id == record.visit
            and (r.values.get(record.status_field) or {}).get("value") == record.status_value}  # fmt: skip
    assert len(deaths) == len(fatal | died) if not PROTOCOL.safety.vital_status else len(deaths) >= len(fatal | died)


def test_a_blinded_export_names_no_arm_in_the_new_tables(out: dict[str, Path]) -> None:
    for key in ("csv", "stata", "spss", "sas"):
        assert arms_named_in(out[key], arm_terms(with_interventions=True)) == {}, key
    with_arms = pd.read_csv(out["csv+arms"] / "randomization.csv", dtype=str)
    assert set(with_arms["arm"].dropna()) <= set(PROTOCOL.arm_codes) and len(with_arms["arm"].dropna()) > 0


def test_on_both_databases_the_outcome_tables_match_the_source_and_stay_blinded(
    database_url: str, tmp_path: Path
) -> None:
    """A small simulated trial on SQLite and on PostgreSQL: Stata and SAS exports read back hold one row per
    randomized participant and per adverse event, and the blinded export names no arm."""
    built = make_trial(database_url)
    simulate(built.engine, FIRST_PROTOCOL, 6, seed=3)
    source = export_source(built.engine, who(built, Role.DATA_MANAGER))
    randomized = sum(p.randomized_at is not None for p in source.participants())
    events = sum(1 for _ in source.events())
    for exporter, reader in ((StataExporter, pyreadstat.read_dta), (SasExporter, pyreadstat.read_xport)):
        folder = tmp_path / exporter.name
        folder.mkdir()
        exporter().write(source, folder)
        ext = exporter.extension
        assert len(reader(folder / f"randomization.{ext}")[0]) == randomized > 0
        assert len(reader(folder / f"adverse_events.{ext}")[0]) == events
        assert arms_named_in(folder, arm_terms(with_interventions=True)) == {}
    built.engine.dispose()
