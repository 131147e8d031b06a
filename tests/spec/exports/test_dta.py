"""The project's Stata .dta writer, format 118 (issue 23, item 3: exports that stream), as the specification.

A file written a batch at a time (the row count filled in when it is closed) is read back equal by two
independent readers, pyreadstat (ReadStat, C) and pandas.read_stata (its own Python reader): format 118, the
variables in order, names, variable labels, the data label, display formats (%td dates, %tc date-times), value
labels (by pandas, the labelled values as their labels), every value, NaN and null as missing, missing text as
empty, UTF-8 text. The row count in the header is the rows written.

| value written                                        | read back                        |
|------------------------------------------------------|----------------------------------|
| any double below 2**1023 (negative ones down to -max) | the same double                  |
| NaN, null                                            | missing (Stata's ``.``)          |
| inf, -inf, 2**1023 and above (Stata's missing values) | refused, naming the variable     |

Refused, never cut: a name over 32 characters (of a variable or of a value label table), a label over 80, a str
variable wider than 2045 bytes, a value longer than its variable, text with a NUL byte (readers end the text
there: refused naming the variable and the row), a value label on a value that is not a whole number or outside
Stata's labelled values, -2,147,483,647 (its smallest long) to 2,147,483,620.

Memory: the Stata export of a table of N rows and of 10N rows, batches of 256 rows: the Python heap's peak
(``tracemalloc``) grows by less than 1.5x, where pyreadstat's ``write_sav`` of the same tables from one whole
DataFrame (the SPSS export before its own writer: ``whole_frame.py``) grows past that bound.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyreadstat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.spec.exports.test_xport import BATCH, WIDE, _row
from tests.spec.exports.whole_frame import WholeFrameSpss
from trialwright.exports.dta import DtaError, DtaVariable, DtaWriter, whole_label_values
from trialwright.exports.stata import StataExporter
from trialwright.exports.statistical import StatisticalExporter
from trialwright.exports.tabular import _Run

VARIABLES = (
    DtaVariable("value", "Analysis value", "double"),
    DtaVariable("taken_on", "Taken on", "double", format="%td"),
    DtaVariable("taken_at", "", "double", format="%tc"),
    DtaVariable("note", "Note (°C)", "str", 7),
    DtaVariable("empty", "Never filled", "str", 1),
    DtaVariable("grade", "Grade", "double", value_labels="grade"),
)
LABELS = {"grade": {1: "Mild", 2: "Moderate"}}
BATCHES = [
    [np.array([1.5, np.nan]), pa.array([0.0, None], pa.float64()), np.array([1925114400000.0, np.nan]),
     pa.array(["ab", None]), pa.array([None, None], pa.string()), pa.array([1.0, 2.0])],
    [np.array([-2.0]), pa.array([-1.0]), np.array([-500.0]), pa.array(["38 °C"]), pa.array([None], pa.string()),
     pa.array([None], pa.float64())],
]  # fmt: skip


def _write(path: Path, batches: list[list[Any]], variables: tuple[DtaVariable, ...] = VARIABLES,
           labels: dict[str, dict[int, str]] | None = None) -> Path:  # fmt: skip
    with DtaWriter(path, "Measures", variables, LABELS if labels is None else labels) as writer:
        for batch in batches:
            writer.write(batch)
    return path


def test_two_readers_read_back_the_variables_labels_formats_value_labels_and_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.dta", BATCHES)
    ours, meta = pyreadstat.read_dta(path)
    theirs = pd.read_stata(path)
    with pd.io.stata.StataReader(path) as reader:
        assert reader.data_label == "Measures"
        assert reader.variable_labels() == {v.name: v.label for v in VARIABLES}
        assert reader.value_labels() == LABELS
    data = path.read_bytes()
    assert data.startswith(b"<stata_dta><header><release>118</release>")
    at = data.index(b"<N>") + 3
    assert struct.unpack("<Q", data[at : at + 8]) == (3,)  # N, written when the file was closed
    assert meta.number_rows == len(theirs) == 3 and meta.file_label == "Measures"
    assert list(ours.columns) == list(theirs.columns) == [v.name for v in VARIABLES]
    assert meta.column_labels == ["Analysis value", "Taken on", None, "Note (°C)", "Never filled", "Grade"]
    assert meta.original_variable_types == {"value": "%10.0g", "taken_on": "%td", "taken_at": "%tc", "note": "%-7s",
                                            "empty": "%-1s", "grade": "%10.0g"}  # fmt: skip
    assert meta.variable_value_labels == {"grade": {1: "Mild", 2: "Moderate"}}
    for frame in (ours, theirs):
        assert list(frame["note"]) == ["ab", "", "38 °C"] and list(frame["empty"]) == ["", "", ""]
        assert frame["value"].iloc[0] == 1.5 and math.isnan(frame["value"].iloc[1]) and frame["value"].iloc[2] == -2.0
        assert pd.Timestamp(frame["taken_on"].iloc[0]) == pd.Timestamp("1960-01-01") and pd.isna(frame["taken_on"][1])
        assert pd.Timestamp(frame["taken_on"].iloc[2]) == pd.Timestamp("1959-12-31")
        assert pd.Timestamp(frame["taken_at"].iloc[0]) == pd.Timestamp("2021-01-01 10:00")  # naive UTC
        assert pd.Timestamp(frame["taken_at"].iloc[2]) == pd.Timestamp("1959-12-31 23:59:59.5")
    assert list(ours["grade"].fillna(-1)) == [1.0, 2.0, -1]
    assert [None if pd.isna(g) else g for g in theirs["grade"]] == ["Mild", "Moderate", None]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_infinity=False, max_value=2.0**1023, exclude_max=True), st.just(math.nan)),
                min_size=1, max_size=20))  # fmt: skip
def test_generated_doubles_round_trip_through_both_readers(tmp_path_factory: pytest.TempPathFactory,
                                                           values: list[float]) -> None:  # fmt: skip
    path = _write(tmp_path_factory.mktemp("dta") / "x.dta", [[np.array(values)]], (DtaVariable("x", "", "double"),),
                  {})  # fmt: skip
    for read in (list(pyreadstat.read_dta(path)[0]["x"]), list(pd.read_stata(path)["x"])):
        assert all((math.isnan(w) and math.isnan(r)) or r == w for r, w in zip(read, values, strict=True))


@pytest.mark.parametrize("value", [math.inf, -math.inf, 2.0**1023, 1.7e308])
def test_a_number_stata_keeps_for_missing_values_is_refused(value: float, tmp_path: Path) -> None:
    with pytest.raises(DtaError, match=r"^x: .* cannot be held by a Stata double"):
        _write(tmp_path / "x.dta", [[np.array([1.0, value])]], (DtaVariable("x", "", "double"),), {})


@pytest.mark.parametrize(
    ("variable", "rule"),
    [
        (DtaVariable("v" * 33, "", "double"), "1 to 32 characters"),
        (DtaVariable("x", "x" * 81, "double"), "label is at most 80 characters"),
        (DtaVariable("x", "", "str", 2046), "1 to 2045 bytes wide"),
        (DtaVariable("x", "", "double", value_labels="missing"), "value labels 'missing' are not given"),
        (DtaVariable("x", "x", "double", value_labels="v" * 200), r"^x: a Stata value label table's name is at most"),
        (DtaVariable("x", "x", "double", value_labels="v" * 33), r"^x: a Stata value label table's name is at most 32"),
    ],
)
def test_names_labels_widths_and_value_labels_beyond_the_format_are_refused(variable: DtaVariable, rule: str,
                                                                            tmp_path: Path) -> None:  # fmt: skip
    with pytest.raises(DtaError, match=rule):
        DtaWriter(tmp_path / "x.dta", "", [variable], {})


def test_a_value_longer_than_its_variable_and_a_fractional_labelled_value_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DtaError, match=r"^t: a value of 4 bytes does not fit the variable's 3$"):
        _write(tmp_path / "t.dta", [[pa.array(["abc", "abcd"])]], (DtaVariable("t", "", "str", 3),), {})
    with pytest.raises(DtaError, match=r"^g: a Stata value label's value is a whole number, not 1\.5$"):
        whole_label_values({1.0: "one", 1.5: "one and a half"}, "g")


def _peak(exporter: type[StatisticalExporter], rows: int, folder: Path) -> int:
    import tracemalloc

    folder.mkdir()
    sink = exporter(BATCH).open(folder, WIDE, _Run())
    tracemalloc.start()
    try:
        for i in range(rows):
            sink.add(_row(i))
        sink.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_stata_export_peak_memory_is_flat_as_the_table_grows_tenfold(tmp_path: Path) -> None:
    rows = 2_000
    _peak(StataExporter, BATCH, tmp_path / "warm")  # imports, caches
    # the control's too: its first write imports what it writes with, which in a fresh worker outweighs the table
    # (a CI run measured it at 1.95 MB for 2,000 rows and 1.81 MB for 20,000 without this)
    _peak(WholeFrameSpss, BATCH, tmp_path / "warm-spss")
    peaks = {(e.name, n): _peak(e, n, tmp_path / f"{e.name}-{n}") for e in (StataExporter, WholeFrameSpss)
             for n in (rows, 10 * rows)}  # fmt: skip
    written, meta = pyreadstat.read_dta(tmp_path / f"stata-{10 * rows}" / "measures.dta")
    assert len(written) == 10 * rows and written["note"].iloc[-1] == f"note {10 * rows - 1} °C"
    assert meta.variable_value_labels["grade"] == {1: "Mild", 2: "Moderate"}
    stata = peaks["stata", 10 * rows] / peaks["stata", rows]
    spss = peaks[WholeFrameSpss.name, 10 * rows] / peaks[WholeFrameSpss.name, rows]
    assert stata < 1.5, (stata, peaks)
    assert spss > 1.5, (spss, peaks)  # the measure sees a table held whole
    assert dt.date(2021, 1, 1) + dt.timedelta(days=(10 * rows - 1) % 400) == written["taken_on"].iloc[-1]


def test_a_value_label_table_name_over_32_characters_is_refused_even_when_no_variable_uses_it(tmp_path: Path) -> None:
    with pytest.raises(DtaError, match=r"^value labels 'vvvvv.*': a Stata value label table's name is 1 to 32"):
        DtaWriter(tmp_path / "x.dta", "", [DtaVariable("x", "", "double")], {"v" * 33: {1: "one"}})
    assert not (tmp_path / "x.dta").exists()


def test_text_with_a_nul_byte_is_refused_naming_the_variable_and_the_row(tmp_path: Path) -> None:
    """Readers end a Stata text at its first NUL byte: ``a\0b`` would read back as ``a``. The row is counted over
    the whole file (the second batch's second row is row 4)."""
    variables = (DtaVariable("t", "", "str", 5),)
    with pytest.raises(DtaError, match=r"^t: row 4: text with a NUL byte"):
        _write(tmp_path / "t.dta", [[pa.array(["ab", None])], [pa.array(["c", "a\0b"])]], variables, {})
    with pytest.raises(DtaError, match=r"^g: a Stata value label's text has no NUL byte"):
        _write(tmp_path / "g.dta", [[np.array([1.0])]], (DtaVariable("x", "", "double", value_labels="g"),),
               {"g": {1: "on\0e"}})  # fmt: skip


def test_labelled_values_are_stata_longs_from_its_smallest_to_its_largest_labelled_value(tmp_path: Path) -> None:
    """-2,147,483,647 and 2,147,483,620 are labelled and read back so; -2**31 (not a Stata long: its smallest is
    -2,147,483,647) and 2,147,483,621 are refused, naming the table."""
    edges = {-2_147_483_647: "lowest", 2_147_483_620: "highest"}
    path = _write(tmp_path / "e.dta", [[np.array([-2_147_483_647.0, 2_147_483_620.0])]],
                  (DtaVariable("x", "", "double", value_labels="e"),), {"e": edges})  # fmt: skip
    assert pyreadstat.read_dta(path)[1].variable_value_labels == {"x": edges}
    with pd.io.stata.StataReader(path) as reader:
        assert reader.value_labels() == {"e": edges}
    for value in (-(2**31), 2_147_483_621):
        with pytest.raises(DtaError, match=r"^e: a Stata value label's value is a whole number from -2,147,483,647"):
            _write(tmp_path / "x.dta", [[np.array([1.0])]], (DtaVariable("x", "", "double", value_labels="e"),),
                   {"e": {value: "edge"}})  # fmt: skip
