"""The project's SPSS system file writer (issue 23 item 3, issue 25 item 7: exports that stream), as the specification.

A file written a batch at a time (the case count filled in when it is closed) is read back equal by two independent
readers, pyreadstat (ReadStat, C) and GNU PSPP (its own reader: ``pspp`` for the dictionary, ``pspp-convert`` for
the cases): the variables in order, their names (long names, up to 64 bytes), variable labels, the file label, print
formats (F8.2, DATE11, DATETIME20, A<width>), measure levels, display widths and alignment, value labels of numbers,
of short text and of text wider than 8 bytes, the case count, every value, NaN and null as missing, missing text as
empty, UTF-8 text, very long strings (over 255 bytes, written as segments, a character split between two of them).

| value written                                          | read back by both readers                          |
|--------------------------------------------------------|----------------------------------------------------|
| any finite double but SPSS's three                     | the same double                                    |
| NaN, null                                              | missing (system-missing)                           |
| inf, -inf                                              | refused, naming the variable                       |
| -DBL_MAX, DBL_MAX, the next double above -DBL_MAX      | refused (ReadStat reads each as missing)           |
| text up to its variable's width                        | the same text, trailing spaces dropped             |
| text with a NUL byte                                   | refused, naming the row (ReadStat drops the NUL,   |
|                                                        | PSPP ends the text there)                          |

Refused, never cut: a name that is not an SPSS name (or a reserved word, or twice ignoring case), a variable label
over 255 bytes, a file label over 64, a value label over 120, a text variable wider than 32,767 bytes, a value
longer than its variable, a value label on a code wider than its variable, a format that is not SPSS's for the
kind. The SPSS export (``trialwright.exports.spss``) of the chapter's simulated trial, converted by PSPP, holds
every cell of the CSV export.

Memory: the SPSS export of a table of N rows and of 10N rows, batches of 256 rows: the Python heap's peak
(``tracemalloc``) grows by less than 1.5x, where pyreadstat's ``write_sav`` of the same tables from one whole
DataFrame (the SPSS export before this writer, kept as the control in ``whole_frame.py``) grows past that bound.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyreadstat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import must_have
from tests.spec.exports.test_columnar_statistical import csv_rows
from tests.spec.exports.test_tabular import blinded_source, simulated_trial
from tests.spec.exports.test_xport import BATCH, WIDE, _row
from tests.spec.exports.whole_frame import WholeFrameSpss
from tests.trialfixtures import Trial
from trialwright.domain.text import spreadsheet_cell
from trialwright.exports.readstat import fit_bytes
from trialwright.exports.sav import SavError, SavVariable, SavWriter
from trialwright.exports.spss import SpssExporter
from trialwright.exports.statistical import StatisticalExporter
from trialwright.exports.tabular import CsvExporter, _Run

#: SPSS's day zero, 1582-10-14, in seconds before 1970-01-01: an SPSS date is seconds from it.
ZERO = 141_428 * 86_400.0
LARGEST = float(np.finfo(np.float64).max)
LONG = "é" * 150 + "abc" * 100  # 600 bytes: three segments, the first ending inside an é
VARIABLES = (
    SavVariable("value", "Analysis value", "number", measure="scale"),
    SavVariable("taken_on", "Taken on", "number", format="DATE11", measure="scale"),
    SavVariable("taken_at", "", "number", format="DATETIME20", measure="scale"),
    SavVariable("note", "Note (°C)", "text", 7),
    SavVariable("empty", "Never filled", "text", 1),
    SavVariable("done", "Done", "number", value_labels=((0.0, "No"), (1.0, "Yes"))),
    SavVariable("grade", "Grade", "text", 2, value_labels=(("1", "Mild"), ("2", "Moderate"))),
    SavVariable("consciousness", "Consciousness", "text", 13,
                value_labels=(("alert", "Alert"), ("new_confusion", "New confusion"))),
    SavVariable("a_long_text_whose_name_is_longer_than_eight_bytes", "Long text", "text", 600,
                value_labels=(("x", "Ex"),)),
)  # fmt: skip
BATCHES = [
    [np.array([1.5, np.nan]), pa.array([ZERO, None], pa.float64()), np.array([ZERO + 1925114400.5, np.nan]),
     pa.array(["ab", None]), pa.array([None, None], pa.string()), pa.array([1.0, 0.0]), pa.array(["1", "2"]),
     pa.array(["alert", "new_confusion"]), pa.array([LONG, "x"])],
    [np.array([-2.0]), pa.array([ZERO - 86400.0]), np.array([ZERO - 0.25]), pa.array(["38 °C"]),
     pa.array([None], pa.string()), pa.array([None], pa.float64()), pa.array([None], pa.string()),
     pa.array([None], pa.string()), pa.array(["y" * 600])],
]  # fmt: skip


def _write(path: Path, batches: list[list[Any]], variables: tuple[SavVariable, ...] = VARIABLES,
           label: str = "Measures") -> Path:  # fmt: skip
    with SavWriter(path, label, variables) as writer:
        for batch in batches:
            writer.write(batch)
    return path


# --- PSPP, the second reader ----------------------------------------------------------------------------


def _pspp() -> None:
    if shutil.which("pspp") is None or shutil.which("pspp-convert") is None:
        must_have("GNU PSPP (pspp, pspp-convert)", "apt-get install pspp: the second, independent .sav reader")


def pspp_tables(path: Path, syntax: str) -> dict[str, list[list[str]]]:
    """The tables PSPP prints for ``syntax`` run on ``path`` (GET FILE first), by title, as CSV rows."""
    script, out = path.with_suffix(".sps"), path.with_suffix(".pspp.csv")
    script.write_text(f"GET FILE='{path}'.\n{syntax}\n", encoding="utf-8")
    done = subprocess.run(["pspp", "-O", "format=csv", "-o", str(out), str(script)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    printed = out.read_text(encoding="utf-8")
    assert done.returncode == 0 and not re.search(r"(^|: )(warning|error): ", printed, re.MULTILINE), (done, printed)
    tables: dict[str, list[list[str]]] = {}
    for block in out.read_text(encoding="utf-8").split("\n\n"):
        title, _, body = block.strip().partition("\n")
        if title.startswith("Table: "):
            tables[title.removeprefix("Table: ")] = list(csv.reader(body.splitlines()))
    return tables


def pspp_cases(path: Path) -> tuple[list[str], list[list[str]]]:
    """The cases as ``pspp-convert`` writes them to CSV (numbers in full, dates MM/DD/YYYY, missing blank)."""
    out = path.with_suffix(".cases.csv")
    done = subprocess.run(["pspp-convert", str(path), str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stderr, done
    with out.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def pspp_moments(path: Path, names: list[str]) -> list[list[str]]:
    """Date-time variables printed by PSPP to the microsecond (DATETIME27.6)."""
    out = path.with_suffix(".moments.csv")
    pspp_tables(path, f"FORMATS {' '.join(names)} (DATETIME27.6).\nSAVE TRANSLATE /OUTFILE='{out}' /TYPE=CSV "
                      f"/REPLACE /KEEP={' '.join(names)} /TEXTOPTIONS FORMAT=VARIABLE.")  # fmt: skip
    with out.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_two_readers_read_back_the_dictionary_and_every_value(tmp_path: Path) -> None:
    _pspp()
    path = _write(tmp_path / "m.sav", BATCHES)
    assert struct.unpack("<i", path.read_bytes()[80:84]) == (3,)  # the case count, written when the file was closed
    ours, meta = pyreadstat.read_sav(path)
    names = [v.name for v in VARIABLES]
    assert meta.number_rows == 3 and meta.file_label == "Measures" and meta.file_encoding == "UTF-8"
    assert list(ours.columns) == names
    assert meta.column_labels == [v.label or None for v in VARIABLES]
    assert meta.original_variable_types == {"value": "F8.2", "taken_on": "DATE11", "taken_at": "DATETIME20",
                                            "note": "A7", "empty": "A1", "done": "F8.2", "grade": "A2",
                                            "consciousness": "A13", names[-1]: "A600"}  # fmt: skip
    assert meta.variable_measure == {n: "scale" if i < 3 else "nominal" for i, n in enumerate(names)}
    assert meta.variable_alignment == {v.name: "left" if v.kind == "text" else "right" for v in VARIABLES}
    assert set(meta.variable_display_width.values()) == {8}
    assert meta.variable_value_labels == {"done": {0: "No", 1: "Yes"}, "grade": {"1": "Mild", "2": "Moderate"},
                                          "consciousness": {"alert": "Alert", "new_confusion": "New confusion"},
                                          names[-1]: {"x": "Ex"}}  # fmt: skip
    assert list(ours["value"].fillna(99)) == [1.5, 99, -2.0] and list(ours["note"]) == ["ab", "", "38 °C"]
    assert list(ours["taken_on"].fillna(dt.date(1, 1, 1))) == [dt.date(1970, 1, 1), dt.date(1, 1, 1),
                                                               dt.date(1969, 12, 31)]  # fmt: skip
    utc = [dt.datetime(2031, 1, 2, 10, 0, 0, 500000, tzinfo=dt.UTC), dt.datetime(1969, 12, 31, 23, 59, 59, 750000,
                                                                                  tzinfo=dt.UTC)]  # fmt: skip
    assert ours["taken_at"][0] == utc[0].replace(tzinfo=None) and math.isnan(ours["done"][2])
    assert ours["taken_at"][2] == utc[1].replace(tzinfo=None)  # pyreadstat reads naive UTC
    assert list(ours["empty"]) == ["", "", ""] and list(ours["grade"]) == ["1", "2", ""]
    assert list(ours[names[-1]]) == [LONG, "x", "y" * 600]

    tables = pspp_tables(path, "SYSFILE INFO FILE='" + str(path) + "'.\nDISPLAY DICTIONARY.")
    info = {row[0]: row[1] for row in tables["File Information"]}
    assert (info["Label"], info["Cases"], info["Encoding"], info["Compression"]) == ("Measures", "3", "UTF-8", "None")
    header, *rows = tables["Variables"]
    assert header[:9] == ["Name", "Position", "Label", "Measurement Level", "Role", "Width", "Alignment",
                          "Print Format", "Write Format"]  # fmt: skip
    assert [(r[0], r[2], r[3], r[5], r[6], r[7]) for r in rows[: len(names)]] == [
        ("value", "Analysis value", "Scale", "8", "Right", "F8.2"),
        ("taken_on", "Taken on", "Scale", "8", "Right", "DATE11"),
        ("taken_at", "", "Scale", "8", "Right", "DATETIME20.0"),
        ("note", "Note (°C)", "Nominal", "8", "Left", "A7"),
        ("empty", "Never filled", "Nominal", "8", "Left", "A1"),
        ("done", "Done", "Nominal", "8", "Right", "F8.2"),
        ("grade", "Grade", "Nominal", "8", "Left", "A2"),
        ("consciousness", "Consciousness", "Nominal", "8", "Left", "A13"),
        (names[-1], "Long text", "Nominal", "8", "Left", "A600"),
    ]
    labels = tables["Value Labels"][1:]  # the variable (by its label) on its first value only
    assert labels == [["Done", ".00", "No"], ["", "1.00", "Yes"], ["Grade", "1", "Mild"], ["", "2", "Moderate"],
                      ["Consciousness", "alert", "Alert"], ["", "new_confusion", "New confusion"],
                      ["Long text", "x", "Ex"]]  # fmt: skip
    header, cases = pspp_cases(path)
    assert header == names
    assert cases == [
        ["1.5", "01/01/1970", "01/02/2031 10:00:00", "ab", "", "1", "1", "alert", LONG],
        [" ", " ", " ", "", "", "0", "2", "new_confusion", "x"],
        ["-2", "12/31/1969", "12/31/1969 23:59:59", "38 °C", "", " ", "", "", "y" * 600],
    ]
    assert pspp_moments(path, ["taken_at"]) == [["02-JAN-2031 10:00:00.500000"], [" "],
                                                ["31-DEC-1969 23:59:59.750000"]]  # fmt: skip


EDGES = [0.0, -0.0, 1 / 3, 0.1, -123456.789, 1e300, -1e-300, 5e-324, 2.0**53 + 2, math.nextafter(LARGEST, 0),
         -math.nextafter(math.nextafter(LARGEST, 0), 0), 1e16, 123456789012.25]  # fmt: skip


def test_edge_doubles_and_random_bit_patterns_read_back_exactly_by_both_readers(tmp_path: Path) -> None:
    """Every finite double but SPSS's three: the edges above and 2,000 random bit patterns, all 64 bits drawn."""
    _pspp()
    bits = np.random.default_rng(23).integers(0, 2**64, size=2_000, dtype=np.uint64)
    drawn = bits.view(np.float64)
    drawn = drawn[np.isfinite(drawn) & (np.abs(drawn) < math.nextafter(LARGEST, 0))]
    values = [*EDGES, *drawn.tolist(), math.nan]
    path = _write(tmp_path / "x.sav", [[np.array(values)]], (SavVariable("x", "", "number"),))
    ours = list(pyreadstat.read_sav(path)[0]["x"])
    theirs = [math.nan if c == [" "] else float(c[0]) for c in pspp_cases(path)[1]]
    for read in (ours, theirs):
        assert all((math.isnan(w) and math.isnan(r)) or (r == w and math.copysign(1, r) == math.copysign(1, w))
                   for r, w in zip(read, values, strict=True))  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_infinity=False, allow_nan=False).filter(lambda x: abs(x) < LARGEST / 2),
                          st.just(math.nan)), min_size=1, max_size=20))  # fmt: skip
def test_generated_doubles_round_trip_through_pyreadstat(tmp_path_factory: pytest.TempPathFactory,
                                                         values: list[float]) -> None:  # fmt: skip
    path = _write(tmp_path_factory.mktemp("sav") / "x.sav", [[np.array(values)]], (SavVariable("x", "", "number"),))
    read = list(pyreadstat.read_sav(path)[0]["x"])
    assert all((math.isnan(w) and math.isnan(r)) or r == w for r, w in zip(read, values, strict=True))


@pytest.mark.parametrize("value", [math.inf, -math.inf, -LARGEST, LARGEST, -math.nextafter(LARGEST, 0)])
def test_a_number_spss_keeps_for_itself_is_refused(value: float, tmp_path: Path) -> None:
    with pytest.raises(SavError, match=r"^x: .* cannot be held by an SPSS number"):
        _write(tmp_path / "x.sav", [[np.array([1.0, value])]], (SavVariable("x", "", "number"),))


def test_why_those_numbers_and_nul_bytes_are_refused(tmp_path: Path) -> None:
    """The bytes the writer refuses, put in a file by hand: ReadStat reads SPSS's own three values as missing and
    drops a NUL byte, PSPP ends the text at it. So either reader would give back something else."""
    _pspp()
    variables = (SavVariable("x", "", "number"), SavVariable("t", "", "text", 4))
    path = _write(tmp_path / "r.sav", [[np.array([1.0, 2.0, 3.0]), pa.array(["aQQb", "c", "d"])]], variables)
    data = path.read_bytes()
    for number, own in ((1.0, LARGEST), (2.0, -LARGEST), (3.0, -math.nextafter(LARGEST, 0))):
        data = data.replace(struct.pack("<d", number), struct.pack("<d", own))
    path.write_bytes(data.replace(b"aQQb", b"a\0\0b"))
    ours = pyreadstat.read_sav(path)[0]
    assert ours["x"].isna().all() and ours["t"][0] == "ab"
    assert pspp_cases(path)[1][0][1] == "a"


def test_text_with_a_nul_byte_is_refused_naming_the_variable_and_the_row(tmp_path: Path) -> None:
    """The row is counted over the whole file (the second batch's second row is row 4)."""
    with pytest.raises(SavError, match=r"^t: row 4: text with a NUL byte"):
        _write(tmp_path / "t.sav", [[pa.array(["ab", None])], [pa.array(["c", "a\0b"])]],
               (SavVariable("t", "", "text", 5),))  # fmt: skip


@pytest.mark.parametrize(
    ("variable", "rule"),
    [
        (SavVariable("v" * 65, "", "number"), "1 to 64 ASCII letters"),
        (SavVariable("_x", "", "number"), "beginning with a letter or @"),
        (SavVariable("x.", "", "number"), "not ending in ."),
        (SavVariable("nämlich", "", "number"), "1 to 64 ASCII letters"),
        (SavVariable("with", "", "number"), "a reserved word"),
        (SavVariable("x", "é" * 128, "number"), "label is at most 255 bytes"),
        (SavVariable("x", "", "text", 32768), "1 to 32,767 bytes wide"),
        (SavVariable("x", "", "text", 0), "1 to 32,767 bytes wide"),
        (SavVariable("x", "", "number", value_labels=((1.0, "x" * 121),)), "value label is at most 120 bytes"),
        (SavVariable("x", "", "number", value_labels=((math.inf, "x"),)), "on a finite number"),
        (SavVariable("x", "", "number", value_labels=(("1", "x"),)), "on a finite number"),
        (SavVariable("x", "", "text", 3, value_labels=(("four", "x"),)), "code 'four' is not text that fits"),
        (SavVariable("x", "", "number", format="A8"), "not an SPSS format for number"),
        (SavVariable("x", "", "text", 3, format="F8.2"), "not an SPSS format for text"),
        (SavVariable("x", "", "text", 3, format="A4"), "format is A3, not A4"),
        (SavVariable("x", "", "number", format="DATE8"), "DATE8 is not a valid SPSS DATE format"),
        (SavVariable("x", "", "number", format="F8.8"), "F8.8 is not a valid SPSS F format"),
        (SavVariable("x", "", "number", measure="interval"), "nominal, ordinal or scale"),  # type: ignore[arg-type]
    ],
)
def test_names_labels_widths_formats_and_value_labels_beyond_the_format_are_refused(
    variable: SavVariable, rule: str, tmp_path: Path
) -> None:
    with pytest.raises(SavError, match=rule):
        SavWriter(tmp_path / "x.sav", "", [variable])
    assert not (tmp_path / "x.sav").exists()


def test_a_file_label_over_64_bytes_twice_a_name_and_a_value_too_long_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SavError, match=r"^an SPSS file label is at most 64 bytes"):
        SavWriter(tmp_path / "x.sav", "é" * 33, [SavVariable("x", "", "number")])
    with pytest.raises(SavError, match=r"^X: SPSS names are unique, ignoring case"):
        SavWriter(tmp_path / "x.sav", "", [SavVariable("x", "", "number"), SavVariable("X", "", "number")])
    with pytest.raises(SavError, match=r"^t: a value of 4 bytes does not fit the variable's 3$"):
        _write(tmp_path / "t.sav", [[pa.array(["abc", "abcd"])]], (SavVariable("t", "", "text", 3),))


def test_short_names_stay_unique_when_long_names_share_their_first_eight_bytes(tmp_path: Path) -> None:
    """SPSS's 8-byte names are made from the long names; long names sharing their first 8 bytes, and very long
    strings' segments, still read back as the variables written, under their long names, by both readers."""
    _pspp()
    variables = tuple(SavVariable(n, n, "text", w) for n, w in (("measurement_a", 300), ("measurement_b", 3),
                                                                 ("MEASUREM", 2), ("measurement_c", 520)))  # fmt: skip
    path = _write(tmp_path / "n.sav", [[pa.array(["x" * 300]), pa.array(["b"]), pa.array(["m"]),
                                        pa.array(["ü" * 260])]], variables)  # fmt: skip
    ours, meta = pyreadstat.read_sav(path)
    assert meta.column_names == [v.name for v in variables] and ours.iloc[0].tolist() == ["x" * 300, "b", "m",
                                                                                           "ü" * 260]  # fmt: skip
    assert pspp_cases(path) == ([v.name for v in variables], [["x" * 300, "b", "m", "ü" * 260]])


# --- the SPSS export ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chapter_trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:
    return simulated_trial(tmp_path_factory)


def _same(read: str, cell: str, print_format: str, moment: str | None) -> bool:
    """Whether a value PSPP wrote (its CSV, and a date-time to the microsecond) is the CSV export's cell."""
    if read.strip() == "":
        return cell == ""
    if print_format.startswith("DATETIME"):
        pspp = dt.datetime.strptime(f"{moment} +0000", "%d-%b-%Y %H:%M:%S.%f %z")
        return abs(pspp - dt.datetime.fromisoformat(cell)) < dt.timedelta(milliseconds=1)
    if print_format.startswith("DATE"):
        month, day, year = map(int, read.split("/"))
        return dt.date(year, month, day) == dt.date.fromisoformat(cell)
    if print_format.startswith("F"):
        return float(read) == float(cell)
    limit = SpssExporter.text_limit
    return spreadsheet_cell(read) == cell or (len(cell.encode()) > limit and read == fit_bytes(cell, limit))


def test_pspp_reads_every_file_of_the_spss_export_as_the_csv_export(chapter_trial: Trial, tmp_path: Path) -> None:
    """The second reader over the whole export (pyreadstat's view is test_columnar_statistical's): every cell of
    every .sav, converted by PSPP, is the CSV export's cell, under the names names.csv maps; value labels of every
    choice and yes/no variable."""
    _pspp()
    source = blinded_source(chapter_trial)
    (tmp_path / "spss").mkdir()
    (tmp_path / "csv").mkdir()
    SpssExporter().write(source, tmp_path / "spss")
    CsvExporter().write(source, tmp_path / "csv")
    _, mapping = csv_rows(tmp_path / "spss" / "names.csv")
    columns: dict[str, dict[str, str]] = {}
    for file, _dataset, column, variable, _label in mapping:
        columns.setdefault(file, {})[variable] = column
    compared = 0
    for file, names in columns.items():
        path = tmp_path / "spss" / file
        dictionary = pspp_tables(path, "DISPLAY DICTIONARY.")["Variables"][1:]
        formats = {row[0]: row[7] for row in dictionary}
        header, cases = pspp_cases(path)
        timed = [r[0] for r in dictionary if r[7].startswith("DATETIME")]
        times = pspp_moments(path, timed) if timed else []
        expected_header, rows = csv_rows(tmp_path / "csv" / f"{file.rsplit('.', 1)[0]}.csv")
        assert [names[v] for v in header] == expected_header and len(cases) == len(rows), file
        for i, (case, row) in enumerate(zip(cases, rows, strict=True)):
            for j, (variable, read, cell) in enumerate(zip(header, case, row, strict=True)):
                moment = times[i][timed.index(variable)] if variable in timed else None
                assert _same(read, cell, formats[variable], moment), (file, i, j, variable, read, cell)
                compared += 1
    assert len(columns) == len(list((tmp_path / "csv").rglob("*.csv"))) and compared > 20_000


# --- memory ---------------------------------------------------------------------------------------------


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


def test_the_spss_export_peak_memory_is_flat_as_the_table_grows_tenfold(tmp_path: Path) -> None:
    rows = 2_000
    _peak(SpssExporter, BATCH, tmp_path / "warm")  # imports, caches
    _peak(WholeFrameSpss, BATCH, tmp_path / "warm-whole")  # the control's first write imports what it writes with
    peaks = {(e.name, n): _peak(e, n, tmp_path / f"{e.name}-{n}") for e in (SpssExporter, WholeFrameSpss)
             for n in (rows, 10 * rows)}  # fmt: skip
    written, meta = pyreadstat.read_sav(tmp_path / f"spss-{10 * rows}" / "measures.sav")
    assert len(written) == meta.number_rows == 10 * rows and written["note"].iloc[-1] == f"note {10 * rows - 1} °C"
    assert meta.variable_value_labels["grade"] == {"1": "Mild", "2": "Moderate"}
    assert dt.date(2021, 1, 1) + dt.timedelta(days=(10 * rows - 1) % 400) == written["taken_on"].iloc[-1]
    ours = peaks["spss", 10 * rows] / peaks["spss", rows]
    whole = peaks["spss-whole-frame", 10 * rows] / peaks["spss-whole-frame", rows]
    assert ours < 1.5, (ours, peaks)
    assert whole > 1.5, (whole, peaks)  # the measure sees a table held whole


def test_the_cases_bytes_are_those_pyreadstat_wrote_for_the_same_table(tmp_path: Path) -> None:
    """After the dictionary's terminator (record 999), the cases of the SPSS export are byte for byte those of
    pyreadstat's ``write_sav`` of the same table (doubles, SPSS seconds of dates and date-times, system-missing,
    text padded with spaces to the same widths)."""
    cases = []
    for exporter in (SpssExporter, WholeFrameSpss):
        folder = tmp_path / exporter.name
        folder.mkdir()
        sink = exporter(BATCH).open(folder, WIDE, _Run())
        for i in range(600):
            sink.add(_row(i) if i % 7 else dict.fromkeys(_row(i)))  # every seventh row all missing
        (path,) = sink.close()
        data = path.read_bytes()
        cases.append(data[data.index(struct.pack("<ii", 999, 0)) + 8 :])
    assert len(cases[0]) == 600 * 8 * 7 and cases[0] == cases[1]


def test_a_table_without_rows_is_a_file_both_readers_open_with_no_cases(tmp_path: Path) -> None:
    """As ``deaths`` in a trial without a death: an empty batch, or none."""
    _pspp()
    variables = (SavVariable("x", "", "number"), SavVariable("t", "T", "text", 3))
    for batches in ([], [[np.array([], np.float64), pa.array([], pa.string())]]):
        path = _write(tmp_path / f"e{len(batches)}.sav", batches, variables, "No rows")
        frame, meta = pyreadstat.read_sav(path)
        assert (len(frame), meta.number_rows, meta.column_names, meta.file_label) == (0, 0, ["x", "t"], "No rows")
        assert pspp_cases(path) == (["x", "t"], [])
