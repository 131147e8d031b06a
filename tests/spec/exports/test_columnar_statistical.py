"""Stata, SPSS, SAS and SDTM written from Arrow columns (issue 23, the read path at scale), as the specification.

Values: each statistical file, read back by pyreadstat, holds exactly what the CSV export of the same trial
says, cell by cell (the simulated trial of this chapter, see test_tabular, blinded and with arms); each SDTM
domain's XPT holds exactly what its CSV says. The CSV side is read as text with the csv module; a cell read
back compares by what pyreadstat gives:

| read back                         | CSV cell                                                             |
|-----------------------------------|----------------------------------------------------------------------|
| missing (NaN, None, empty text)   | empty                                                                |
| number (also yes/no, whole codes) | the same number (``1``/``0`` for yes/no, the code for a whole code)  |
| date                              | ``YYYY-MM-DD``                                                       |
| date-time                         | the same UTC instant to the millisecond (Stata holds milliseconds)   |
| text                              | the text cut to the format's limit, with a formula's apostrophe      |

Memory: the table is Arrow columns, not Python objects. The trial grows
from 10 screened patients to 40 (form records x3.5) on SQLite and PostgreSQL; the Python heap's peak
(``tracemalloc``) of a Stata and an SDTM export, with batches of 16 rows, may not double; with batches larger
than the trial (every row held as a Python mapping before its table is written) it grows by more, so the
measure can see growth. This holds that no Python object is kept per row; that Stata's (and SAS's and SPSS's)
memory is bounded by the batch is held by test_dta.py, test_xport.py and test_sav.py (a table grown tenfold), while
an SDTM domain is still sorted whole before its XPT is streamed, so its peak grows with the largest domain
(docs/exports.md).

| export, batches of 16 rows | peak at 40 patients / peak at 10   |
|----------------------------|------------------------------------|
| stata, sdtm                | < 2, and less than with one batch  |

SDTM CSV text: each domain's CSV is written a batch at a time with Arrow compute and must give exactly the text
the old writer gave (pandas ``to_csv``: the csv module's minimal quoting with LF line ends, text cells
neutralised, numbers as their shortest text, empty when missing or NaN), on awkward and generated values.

Edge cases of the conversion, on a table made here: a date column without a date is a text column of missing
values (as pyreadstat made of a column of ``None``); a code column whose codes are all whole numbers is numbers
with value labels in Stata (a stored code outside the choices too), text in SPSS and SAS; text over the
format's limit is cut to it (never inside a character) and README.txt says so.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyreadstat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.spec.exports.test_columnar import TEXT
from tests.spec.exports.test_tabular import (
    blinded_source,
    numbered_codes,
    simulated_trial,
    unblinded_source,
    xpt_spelling,
)
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.domain.text import spreadsheet_cell
from trialwright.exports.base import ExportSource
from trialwright.exports.codebook import CodebookExporter
from trialwright.exports.columnar import csv_cells, csv_lines
from trialwright.exports.readstat import fit_bytes
from trialwright.exports.sas import SasExporter
from trialwright.exports.sdtm import DOMAINS, SdtmExporter
from trialwright.exports.spss import SpssExporter
from trialwright.exports.stata import StataExporter
from trialwright.exports.statistical import StatisticalExporter
from trialwright.exports.tabular import Column, CsvExporter, Table, _Run, value_text
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate

STATISTICAL: tuple[type[StatisticalExporter], ...] = (StataExporter, SpssExporter, SasExporter)
READERS = {"dta": pyreadstat.read_dta, "sav": pyreadstat.read_sav, "xpt": pyreadstat.read_xport}
SMALL = 16


@pytest.fixture(scope="module")
def chapter_trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:
    return simulated_trial(tmp_path_factory)


def _export(exporter: Any, source: ExportSource, folder: Path) -> Path:
    folder.mkdir(parents=True)
    exporter.write(source, folder)
    return folder


def csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def matches(read: Any, cell: str, limit: int) -> bool:
    """Whether a value read back by pyreadstat is the CSV cell (the table above)."""
    if pd.isna(read) or read == "":
        return cell == ""
    if isinstance(read, dt.datetime):
        moment = dt.datetime.fromisoformat(cell).astimezone(dt.UTC).replace(tzinfo=None)
        return abs(moment - read) < dt.timedelta(milliseconds=1)
    if isinstance(read, dt.date):
        return dt.date.fromisoformat(cell) == read
    if isinstance(read, float | int):
        return cell != "" and float(cell) == read
    text = str(read)
    return spreadsheet_cell(text) == cell or (len(cell.encode()) > limit and text == fit_bytes(cell, limit))


def compare(read_back: Path, reader: Any, csv_path: Path, names: dict[str, str], limit: int,
            numbered: dict[str, dict[float, str]] | None = None,
            spelling: dict[int, str] | None = None) -> int:  # fmt: skip
    """Every cell of a file read back equals the CSV's (Stata's numbered codes read through value_codes.csv,
    SAS transport's text spelt by the codebook's xpt_ascii.csv); returns how many cells were compared."""
    frame, _ = reader(read_back)
    for variable, codes in (numbered or {}).items():
        frame[variable] = frame[variable].astype(object).map(lambda n, codes=codes: codes.get(n, n))
    header, rows = csv_rows(csv_path)
    if spelling is not None:
        rows = [[c.translate(spelling) for c in row] for row in rows]
    assert [names.get(v, v) for v in frame.columns] == header, read_back
    assert len(frame) == len(rows), read_back
    compared = 0
    for i, values in enumerate(frame.itertuples(index=False, name=None)):
        for column, read, cell in zip(header, values, rows[i], strict=True):
            assert matches(read, cell, limit), (read_back.name, i, column, read, cell)
            compared += 1
    return compared


@pytest.mark.parametrize("exporter", STATISTICAL, ids=lambda e: e.name)
@pytest.mark.parametrize("with_arms", [False, True], ids=["blinded", "with-arms"])
def test_each_statistical_file_read_back_holds_the_csv_exports_values(
    exporter: type[StatisticalExporter], with_arms: bool, chapter_trial: Trial, tmp_path: Path
) -> None:
    source = unblinded_source(chapter_trial) if with_arms else blinded_source(chapter_trial)
    written = _export(exporter(), source, tmp_path / exporter.name)
    text = _export(CsvExporter(), source, tmp_path / "csv")
    _, mapping = csv_rows(written / "names.csv")
    by_file: dict[str, dict[str, str]] = {}
    for file, _dataset, column, variable, _label in mapping:
        by_file.setdefault(file, {})[variable] = column
    compared = 0
    codebook = _export(CodebookExporter(), source, tmp_path / "codebook")
    spelling = str.maketrans(xpt_spelling(codebook)) if exporter is SasExporter else None
    for file, names in by_file.items():
        stem = file.rsplit(".", 1)[0]
        compared += compare(written / file, READERS[exporter.extension], text / f"{stem}.csv", names,
                            exporter.text_limit, numbered_codes(written, file), spelling)  # fmt: skip
    assert len(by_file) == len(list(text.rglob("*.csv"))) and compared > 20_000
    assert ("arm" in csv_rows(text / "participants.csv")[0]) is with_arms


@pytest.mark.parametrize("with_arms", [False, True], ids=["blinded", "with-arms"])
def test_each_sdtm_domain_read_back_holds_its_csv_values(with_arms: bool, chapter_trial: Trial, tmp_path: Path) -> None:
    source = unblinded_source(chapter_trial) if with_arms else blinded_source(chapter_trial)
    written = _export(SdtmExporter(), source, tmp_path / "sdtm") / "sdtm"
    compared = 0
    stems = {p.stem for p in written.glob("*.xpt")}  # a domain without records is not written (README.txt says)
    assert {"dm", "sv", "lb", "vs"} <= stems <= {c.lower() for c in DOMAINS}
    for code in DOMAINS:
        stem = code.lower()
        if stem not in stems:
            continue
        compared += compare(written / f"{stem}.xpt", pyreadstat.read_xport, written / f"{stem}.csv", {}, 200)
    assert compared > 5_000


# --- memory ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def growing_trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    yield t
    t.engine.dispose()


def _peak(trial: Trial, folder: Path, exporter: Any, batch: int) -> int:
    source = dataclasses.replace(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), batch=batch)
    folder.mkdir(parents=True)
    tracemalloc.start()
    try:
        exporter.write(source, folder)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_stata_and_sdtm_keep_no_python_object_per_row_as_the_trial_grows(growing_trial: Trial, tmp_path: Path) -> None:
    big = 1_000_000  # rows: larger than the trial, every row held as a mapping until its table is written
    formats = {"stata": StataExporter, "sdtm": SdtmExporter}
    simulate(growing_trial.engine, FIRST_PROTOCOL, 10, seed=3)
    for name, cls in formats.items():
        _peak(growing_trial, tmp_path / f"warm-{name}", cls(SMALL), SMALL)  # imports, compiled statements
    small = export_source(growing_trial.engine, who(growing_trial, Role.DATA_MANAGER)).count()
    peaks = {(name, size, batch): 0 for name in formats for size in (1, 4) for batch in (SMALL, big)}
    for size in (1, 4):
        if size == 4:
            simulate(growing_trial.engine, FIRST_PROTOCOL, 30, seed=4)
        for name, cls in formats.items():
            for batch in (SMALL, big):
                peaks[name, size, batch] = _peak(growing_trial, tmp_path / f"{name}-{size}-{batch}", cls(batch), batch)
    large = export_source(growing_trial.engine, who(growing_trial, Role.DATA_MANAGER)).count()
    assert large >= 3 * small > 3 * SMALL  # the trial grew, and every table spans several batches
    for name in formats:
        flat = peaks[name, 4, SMALL] / peaks[name, 1, SMALL]
        whole = peaks[name, 4, big] / peaks[name, 1, big]
        assert flat < 2, (name, flat)
        assert whole > flat, (name, whole, flat)  # the measure sees what rows held as objects cost


# --- edge cases of the conversion -----------------------------------------------------------------------

EDGE = Table(
    "edge",
    "Edge cases",
    (
        Column("no_dates", "date", "A date never recorded"),
        Column("grade", "code", "Grade", (("1", "Mild"), ("2", "Moderate"))),
        Column("note", "text", "Free text"),
    ),
)
LONG = "é" * 150  # 300 bytes
#: For SAS transport (ASCII only): ° is spelt "deg" (the codebook's mapping), 300 bytes cut to its 200.
LONG_SAS = "a" * 150 + "°" * 50


@pytest.mark.parametrize("exporter", STATISTICAL, ids=lambda e: e.name)
def test_the_conversion_of_awkward_columns(exporter: type[StatisticalExporter], tmp_path: Path) -> None:
    long = LONG_SAS if exporter is SasExporter else LONG
    rows = [{"no_dates": None, "grade": "2", "note": "=1+1"}, {"no_dates": None, "grade": "7", "note": long},
            {"no_dates": None, "grade": None, "note": None}]  # fmt: skip
    run, writer = _Run(), exporter(2)
    sink = writer.open(tmp_path, EDGE, run)
    for row in rows:
        sink.add(row)
    (path,) = sink.close()
    frame, meta = READERS[exporter.extension](path)
    names = list(frame.columns)
    assert meta.readstat_variable_types[names[0]] == "string" and list(frame[names[0]]) == ["", "", ""]
    grades = list(frame[names[1]])
    if exporter is StataExporter:
        assert grades[:2] == [2.0, 7.0] and math.isnan(grades[2])
        assert meta.variable_value_labels[names[1]] == {1: "Mild", 2: "Moderate"}
    else:
        assert grades == ["2", "7", ""]
    cut = exporter is SasExporter
    written = fit_bytes(long.replace("°", "deg"), 200) if cut else long
    assert list(frame[names[2]]) == ["=1+1", written, ""]
    assert any("edge.note: text longer than" in n for n in run.notes) is cut


# --- SDTM CSV text ----------------------------------------------------------------------------------------


def _sdtm_definition(text: list[str | None], numbers: list[float | None]) -> str:
    """A domain's CSV as the old writer made it: pandas ``to_csv`` of text cells neutralised and numbers as
    their shortest text (empty when missing)."""
    shown = pd.DataFrame({
        "TEXT": [spreadsheet_cell(t or "") for t in text],
        "NUM": ["" if n is None or n != n else value_text(float(n)) for n in numbers],
    })  # fmt: skip
    return str(shown.to_csv(index=False))


def _sdtm_text(text: list[str | None], numbers: list[float | None]) -> str:
    cells = [
        csv_cells(pc.fill_null(pa.array(text, pa.string()), ""), line_end="\n"),
        csv_cells(pc.if_else(pc.is_nan(numbers_array := pa.array(numbers, pa.float64())), None, numbers_array),
                  line_end="\n", neutralise=False),
    ]  # fmt: skip
    return "TEXT,NUM\n" + csv_lines(cells, "\n")


SDTM_TEXT = ['=HYPERLINK("x")', "a,b", 'say "hi"', "two\nlines", "cr\ronly", "", None, "-3.5", "-inf", " x"]
SDTM_NUMBERS = [1.0, -0.0, 1e16, 0.1, None, float("nan"), float("-inf"), 2.5e-300, 7.0, -350.5]


def test_the_sdtm_csv_text_equals_the_pandas_writer_on_awkward_values() -> None:
    """LF line ends, so a lone carriage return is not quoted (as the csv module with LF does); a number is
    never neutralised (-inf stays -inf), a text cell is."""
    assert _sdtm_text(SDTM_TEXT, SDTM_NUMBERS) == _sdtm_definition(SDTM_TEXT, SDTM_NUMBERS)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.text(TEXT)), st.one_of(st.none(), st.floats())), min_size=1,
                max_size=8))  # fmt: skip
def test_the_sdtm_csv_text_equals_the_pandas_writer_on_generated_values(rows: list[tuple[Any, Any]]) -> None:
    text, numbers = [t for t, _ in rows], [n for _, n in rows]
    assert _sdtm_text(text, numbers) == _sdtm_definition(text, numbers)
