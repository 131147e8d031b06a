"""The project's SAS transport v5 writer (issue 23, item 3: exports that stream), as the specification.

A file written a batch at a time is read back equal by two independent readers, pyreadstat (ReadStat, C) and
pandas.read_sas (its own Python/Cython XPORT reader): the same variables in order, names, labels, display formats,
text widths, dataset name and label, every value, missing numbers (NaN or null written) as missing and missing
text as empty. Its bytes are pyreadstat's own ``write_xport`` output for the same table except the four header
timestamps (when each file was made).

Numbers are IBM System/370 floats, which hold every double from 2**-260 to just below 2**252 exactly:

| value written                                  | read back by both readers          |
|------------------------------------------------|------------------------------------|
| 0, -0.0                                        | 0 (pandas: 2**-260, see below)     |
| any double of magnitude in [2**-260, 2**252)   | the same double, bit for bit       |
| NaN, null                                      | missing                            |
| inf, -inf, magnitude >= 2**252 or < 2**-260    | refused, naming the variable       |

Generated doubles of that range (Hypothesis) round-trip exactly through both readers. Zero is written as SAS and
pyreadstat write it (eight zero bytes); pandas reads it as 2**-260 (5.397605e-79), a known bug of its reader
(pandas-dev/pandas#50670, open), so pandas' zero is compared as that value.

Refused, never cut: a name over 8 bytes, a label over 40, a text variable wider than 200 bytes, a value longer
than its variable, and a dataset with no numeric variable, in observations shorter than an 80-byte record, whose last
observation is entirely blank (readers take trailing blank observations for the last record's padding: a known
ambiguity of version 5), named with the rule; a blank observation before the last reads back, and a blank last one
beside a numeric variable (a missing number is ``.``, not blank) or of 80 bytes or more (padding is always
shorter) is read back by ReadStat.

Memory: the SAS export of a table of N rows and of 10N rows, batches of 256 rows: the Python heap's peak
(``tracemalloc``) grows by less than 1.5x, where pyreadstat's ``write_sav`` of the same tables from one whole
DataFrame (the SPSS export before its own writer: ``whole_frame.py``) grows past that bound, so the measure sees a
table held whole.
"""

from __future__ import annotations

import datetime as dt
import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyreadstat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.spec.exports.whole_frame import WholeFrameSpss
from trialwright.exports.sas import SasExporter
from trialwright.exports.statistical import StatisticalExporter
from trialwright.exports.tabular import Column, Table, _Run
from trialwright.exports.xport import XportError, XportVariable, XportWriter, short_reading_note

SMALLEST, LIMIT = 2.0**-260, 2.0**252
VARIABLES = (
    XportVariable("AVAL", "Analysis value", "num"),
    XportVariable("ADT", "Analysis date", "num", format="DATE"),
    XportVariable("ADTM", "", "num", format="DATETIME"),
    XportVariable("NOTE", "A label of exactly forty characters long!"[:40], "char", 5),
    XportVariable("EMPTY", "Never filled", "char", 1),
)


def _both(path: Path) -> tuple[pd.DataFrame, Any, pd.DataFrame]:
    ours, meta = pyreadstat.read_xport(path)
    theirs = pd.read_sas(path, format="xport", encoding="ascii")
    return ours, meta, theirs


def _write(path: Path, batches: list[list[Any]], variables: tuple[XportVariable, ...] = VARIABLES) -> Path:
    with XportWriter(path, "ADSL", "Subject level", variables) as writer:
        for batch in batches:
            writer.write(batch)
    return path


BATCHES = [
    [np.array([1.5, np.nan]), pa.array([0.0, None], pa.float64()), np.array([1925114400.0, np.nan]),
     pa.array(["ab", None]), pa.array([None, None], pa.string())],
    [np.array([-2.0]), pa.array([-1.0]), np.array([-0.5]), pa.array(["xyz12"]), pa.array([None], pa.string())],
]  # fmt: skip


def test_two_readers_read_back_the_variables_labels_formats_and_values(tmp_path: Path) -> None:
    ours, meta, theirs = _both(_write(tmp_path / "adsl.xpt", BATCHES))
    assert meta.table_name == "ADSL" and meta.file_label == "Subject level"
    assert list(ours.columns) == list(theirs.columns) == [v.name for v in VARIABLES]
    assert meta.column_labels == ["Analysis value", "Analysis date", None, VARIABLES[3].label, "Never filled"]
    assert meta.original_variable_types == {"AVAL": None, "ADT": "DATE", "ADTM": "DATETIME", "NOTE": None,
                                            "EMPTY": None}  # fmt: skip
    assert meta.variable_storage_width == {"AVAL": 8, "ADT": 8, "ADTM": 8, "NOTE": 5, "EMPTY": 1}
    assert meta.number_rows == len(theirs) == 3
    for frame in (ours, theirs):
        assert list(frame["NOTE"]) == ["ab", "", "xyz12"] and list(frame["EMPTY"]) == ["", "", ""]
        assert frame["AVAL"].iloc[0] == 1.5 and math.isnan(frame["AVAL"].iloc[1]) and frame["AVAL"].iloc[2] == -2.0
    assert list(theirs["ADT"].fillna(-99)) == [SMALLEST, -99, -1.0]  # SAS day numbers (zero: pandas#50670)
    assert list(ours["ADT"].fillna(dt.date(1, 1, 1))) == [dt.date(1960, 1, 1), dt.date(1, 1, 1), dt.date(1959, 12, 31)]
    utc = [dt.datetime(2021, 1, 1, 10, tzinfo=dt.UTC), dt.datetime(1959, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC)]
    assert ours["ADTM"].iloc[0] == utc[0].replace(tzinfo=None) and pd.isna(ours["ADTM"].iloc[1])
    assert ours["ADTM"].iloc[2] == utc[1].replace(tzinfo=None)  # pyreadstat reads naive UTC
    assert list(theirs["ADTM"].fillna(-99)) == [1925114400.0, -99, -0.5]


def test_the_bytes_are_pyreadstats_but_for_the_header_timestamps(tmp_path: Path) -> None:
    ours = _write(tmp_path / "ours.xpt", BATCHES).read_bytes()
    frame = pd.DataFrame({
        "AVAL": [1.5, np.nan, -2.0], "ADT": [0.0, np.nan, -1.0],
        "ADTM": np.array(["2021-01-01T10:00", "NaT", "1959-12-31T23:59:59.5"], dtype="datetime64[us]"),
        "NOTE": ["ab", "", "xyz12"], "EMPTY": ["", "", ""],
    })  # fmt: skip
    pyreadstat.write_xport(frame, tmp_path / "theirs.xpt", file_label="Subject level", table_name="ADSL",
                           column_labels=[v.label or None for v in VARIABLES], file_format_version=5,
                           variable_format={"ADT": "DATE"})  # fmt: skip
    theirs = (tmp_path / "theirs.xpt").read_bytes()
    stamps = [range(0x90, 0xB0), range(0x1D0, 0x1F0)]  # created and modified, library and member headers
    masked = {i for r in stamps for i in r}
    assert len(ours) == len(theirs)
    assert [i for i in range(len(ours)) if ours[i] != theirs[i] and i not in masked] == []


EDGES = [0.0, -0.0, 1.0, -1.0, 0.1, -123456.789, 1e-78, -1e75, SMALLEST, -SMALLEST, math.nextafter(LIMIT, 0),
         2.0**53 + 2, 1 / 3, 1.75 * 2.0**-255, 7.2e75]  # fmt: skip


def _round_trip(tmp_path: Path, values: list[float]) -> tuple[list[float], list[float]]:
    path = _write(tmp_path / "n.xpt", [[np.array(values)]], (XportVariable("X", "", "num"),))
    ours, _, theirs = _both(path)
    return list(ours["X"]), list(theirs["X"])


def _same(read: list[float], written: list[float], *, pandas: bool = False) -> bool:
    """Each value read is the one written (NaN as missing); pandas reads IBM zero as 2**-260 (pandas#50670)."""
    written = [SMALLEST if pandas and w == 0 else w for w in written]
    return all((math.isnan(r) and math.isnan(w)) or r == w for r, w in zip(read, written, strict=True))


def test_ibm_floats_hold_zero_signs_extremes_and_missing_exactly(tmp_path: Path) -> None:
    values = [*EDGES, math.nan]
    ours, theirs = _round_trip(tmp_path, values)
    assert _same(ours, values) and _same(theirs, values, pandas=True)
    assert [math.copysign(1, v) for v in ours[:2]] == [1.0, 1.0]  # -0.0 is written as IBM zero


@pytest.mark.parametrize("value", [math.inf, -math.inf, LIMIT, -LIMIT, 1e300, math.nextafter(SMALLEST, 0), 1e-300,
                                   5e-324])  # fmt: skip
def test_a_number_beyond_ibm_floats_is_refused(value: float, tmp_path: Path) -> None:
    with pytest.raises(XportError, match=r"^X: .* cannot be held by a SAS transport number"):
        _round_trip(tmp_path, [1.0, value])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.floats(min_value=SMALLEST, max_value=LIMIT, exclude_max=True),
    st.floats(min_value=-LIMIT, max_value=-SMALLEST, exclude_min=True),
    st.sampled_from([0.0, math.nan]),
), min_size=1, max_size=20))  # fmt: skip
def test_generated_doubles_round_trip_through_both_readers(tmp_path_factory: pytest.TempPathFactory,
                                                           values: list[float]) -> None:  # fmt: skip
    ours, theirs = _round_trip(tmp_path_factory.mktemp("ibm"), values)
    assert _same(ours, values) and _same(theirs, values, pandas=True)


@pytest.mark.parametrize(
    ("variable", "rule"),
    [
        (XportVariable("TOOLONGNM", "", "num"), "1 to 8 ASCII bytes"),
        (XportVariable("X", "x" * 41, "num"), "label is at most 40 bytes"),
        (XportVariable("X", "", "char", 201), "1 to 200 bytes wide"),
    ],
)
def test_names_labels_and_widths_beyond_version_5_are_refused(variable: XportVariable, rule: str,
                                                              tmp_path: Path) -> None:  # fmt: skip
    with pytest.raises(XportError, match=rule):
        XportWriter(tmp_path / "x.xpt", "X", "", [variable])


def test_a_value_longer_than_its_variable_is_refused_not_cut(tmp_path: Path) -> None:
    with pytest.raises(XportError, match=r"^T: a value of 4 bytes does not fit the variable's 3$"):
        _write(tmp_path / "t.xpt", [[pa.array(["abc", "abcd"])]], (XportVariable("T", "", "char", 3),))


def test_a_last_observation_entirely_blank_in_a_dataset_of_text_only_is_refused(tmp_path: Path) -> None:
    """The blank observation would be read as padding and dropped (its bytes are those of the padding); refused at
    close, naming the dataset, the row and the rule, whether the last batch ends in a missing text or in blanks,
    or is empty after a blank row."""
    texts = (XportVariable("T", "", "char", 3), XportVariable("U", "", "char", 2))
    with pytest.raises(XportError, match=r"^ADSL: its last observation \(row 3\) is entirely blank, it has no numeric "
                                         r"variable and its observations \(5 bytes\) are shorter than a record \(80\): "
                                         r".* trailing blank observations for padding"):  # fmt: skip
        _write(tmp_path / "a.xpt", [[pa.array(["abc", "x"]), pa.array(["de", None])],
                                    [pa.array([None]), pa.array(["  "])]], texts)  # fmt: skip
    with pytest.raises(XportError, match=r"^ADSL: its last observation \(row 1\) is entirely blank"):
        _write(tmp_path / "b.xpt", [[pa.array([""]), pa.array([None], pa.string())], [pa.array([], pa.string()),
               pa.array([], pa.string())]], texts)  # fmt: skip
    kept = _write(tmp_path / "c.xpt", [[pa.array(["abc", None, "x"]), pa.array(["de", None, None])]], texts)
    ours, meta, theirs = _both(kept)
    assert meta.number_rows == len(theirs) == 3 and list(ours["T"]) == ["abc", "", "x"]
    with_number = (XportVariable("N", "", "num"), *texts)
    kept = _write(tmp_path / "d.xpt", [[np.array([1.0, np.nan]), pa.array(["abc", None]), pa.array(["de", None])]],
                  with_number)  # fmt: skip
    ours, meta = pyreadstat.read_xport(kept)  # pandas' reader, not: it takes any blank 8-byte word of the last
    assert meta.number_rows == 2 and list(ours["T"]) == ["abc", ""]  # record for padding (see the lead's report)
    wide = (XportVariable("T", "", "char", 80),)
    kept = _write(tmp_path / "w.xpt", [[pa.array(["abc", None])]], wide)
    assert pyreadstat.read_xport(kept)[1].number_rows == 2  # 80 bytes of blanks: not padding
    # Why: a third, blank observation would be written as the very bytes of the padding: the file of the rows
    # ("abc", "de"), ("x", "") and a blank third is byte for byte the two-row file, which ReadStat reads as two.
    two = _write(tmp_path / "e.xpt", [[pa.array(["abc", "x"]), pa.array(["de", None])]], texts).read_bytes()
    assert two.endswith(b"abcdex    " + b" " * 70) and pyreadstat.read_xport(tmp_path / "e.xpt")[1].number_rows == 2


# --- memory ---------------------------------------------------------------------------------------------

WIDE = Table(
    "measures",
    "Measures",
    (
        Column("value", "number", "Value"),
        Column("taken_on", "date", "Taken on"),
        Column("taken_at", "datetime", "Taken at"),
        Column("done", "yesno", "Done"),
        Column("grade", "code", "Grade", (("1", "Mild"), ("2", "Moderate"))),
        Column("note", "text", "Note"),
    ),
)
BATCH = 256


def _row(i: int) -> dict[str, Any]:
    return {"value": i / 7, "taken_on": dt.date(2021, 1, 1) + dt.timedelta(days=i % 400),
            "taken_at": dt.datetime(2021, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=37 * i), "done": i % 2 == 0,
            "grade": str(1 + i % 2), "note": f"note {i} °C"}  # fmt: skip


def _peak(exporter: type[StatisticalExporter], rows: int, folder: Path) -> int:
    folder.mkdir()
    writer = exporter(BATCH)
    sink = writer.open(folder, WIDE, _Run())
    tracemalloc.start()
    try:
        for i in range(rows):
            sink.add(_row(i))
        sink.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_sas_export_peak_memory_is_flat_as_the_table_grows_tenfold(tmp_path: Path) -> None:
    rows = 2_000
    _peak(SasExporter, BATCH, tmp_path / "warm")  # imports, caches
    # the control's too: its first write imports what it writes with, which in a fresh worker outweighs the table
    # (a CI run measured it at 1.95 MB for 2,000 rows and 1.81 MB for 20,000 without this)
    _peak(WholeFrameSpss, BATCH, tmp_path / "warm-spss")
    peaks = {(e.name, n): _peak(e, n, tmp_path / f"{e.name}-{n}") for e in (SasExporter, WholeFrameSpss)
             for n in (rows, 10 * rows)}  # fmt: skip
    written, _ = pyreadstat.read_xport(tmp_path / f"sas-{10 * rows}" / "measures.xpt")
    assert len(written) == 10 * rows and written["NOTE"].iloc[-1] == f"note {10 * rows - 1} degC"
    sas = peaks["sas", 10 * rows] / peaks["sas", rows]
    spss = peaks[WholeFrameSpss.name, 10 * rows] / peaks[WholeFrameSpss.name, rows]
    assert sas < 1.5, (sas, peaks)
    assert spss > 1.5, (spss, peaks)  # the measure sees a table held whole


def test_a_file_pandas_reads_short_is_whole_and_says_which_rows_pandas_would_read(tmp_path: Path) -> None:
    """pandas.read_sas takes every blank 8-byte block of a file's last 80 bytes for padding, also one inside the
    last observation's text, when observations are at most 80 bytes: it reads such a valid file a row short. The
    file is written whole (pyreadstat reads every row) and the writer says how many rows pandas would read, the
    note both SAS transport exports put in their README; a file pandas reads whole gets no note."""
    texts = (XportVariable("STUDYID", "", "char", 4), XportVariable("IETEST", "", "char", 20))
    blank_inside = "ab" + " " * 18  # the last row's IETEST ends in a blank 8-byte block of the last record
    path = tmp_path / "ti.xpt"
    with XportWriter(path, "TI", "Trial Inclusion", texts) as writer:
        writer.write([pa.array(["S1"] * 3), pa.array(["first", "second", blank_inside])])
    ours, meta = pyreadstat.read_xport(path)
    theirs = pd.read_sas(path, format="xport", encoding="ascii")
    assert meta.number_rows == 3 and list(ours["IETEST"]) == ["first", "second", "ab"]
    assert len(theirs) < 3 and writer.read_short == len(theirs)
    assert short_reading_note("ti.xpt", len(theirs), 3).startswith(f"ti.xpt: pandas.read_sas reads {len(theirs)} of")
    whole = tmp_path / "whole.xpt"
    with XportWriter(whole, "TI", "Trial Inclusion", texts) as writer:
        writer.write([pa.array(["S001"] * 3), pa.array([c * 20 for c in "xyz"])])  # no blank block but the padding
    assert len(pd.read_sas(whole, format="xport", encoding="ascii")) == 3 and writer.read_short is None
