"""Rows handed to a table as columns, as the specification (issue 23 item 4: the tables built column by column).

The tabular exports write each form's wide table and the long table a chunk of records at a time, as one list per
column (``_BatchSink.extend``), with no object per row or per stored value. A table's file must not depend on how its
rows were handed over: the same rows given one at a time (``add``), as columns in pieces of any size, or both mixed,
give the same CSV text and the same Parquet file, byte for byte (the Parquet row groups are cut at the same rows).

| rows handed over as                                   | CSV and Parquet files          |
|-------------------------------------------------------|--------------------------------|
| one mapping per row (``add``)                         | the reference                  |
| columns, in pieces of 1, 2, 3, 5, 7, 11 ... rows      | equal to the reference         |
| columns and single rows alternately                   | equal to the reference         |
| a column not given (``extend`` without it)            | empty in those rows            |
"""

from __future__ import annotations

import datetime as dt
from itertools import cycle
from pathlib import Path
from typing import Any

import pytest

from trialwright.exports.columnar import CsvSink, ParquetSink
from trialwright.exports.tabular import Column, Table

TABLE = Table("forms/awkward", "Awkward", (
    Column("participant_id", "text", "Participant id"),
    Column("value", "number", "Value"),
    Column("on", "date", "Date"),
    Column("at", "datetime", "Moment"),
    Column("yes", "yesno", "Yes/no"),
    Column("note", "text", "Note"),
))  # fmt: skip
BATCH = 4  # rows per batch: every way of handing rows over crosses batch boundaries


def _rows(n: int) -> list[dict[str, Any]]:
    moment = dt.datetime(2021, 5, 2, 8, 1, tzinfo=dt.UTC)
    return [
        {
            "participant_id": f"P{i:03d}",
            "value": None if i % 5 == 0 else i / 7,
            "on": dt.date(2021, 5, 1) + dt.timedelta(days=i) if i % 3 else None,
            "at": moment + dt.timedelta(seconds=i, microseconds=i * 11) if i % 4 else None,
            "yes": None if i % 6 == 0 else i % 2 == 0,
            "note": ["plain", "a, comma", '"quoted"', "=1+1", None][i % 5],
        }
        for i in range(n)
    ]


def _columns(rows: list[dict[str, Any]], *, leave_out: str = "") -> dict[str, list[Any]]:
    return {c.name: [r[c.name] for r in rows] for c in TABLE.columns if c.name != leave_out}


def _by_rows(sink: Any, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        sink.add(r)


def _by_pieces(sink: Any, rows: list[dict[str, Any]]) -> None:
    sizes, at = cycle((1, 2, 3, 5, 7, 11, 0)), 0
    while at < len(rows):
        piece = rows[at : at + next(sizes)]
        sink.extend(_columns(piece), len(piece))
        at += len(piece)


def _mixed(sink: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 4):
        sink.add(rows[i])
        piece = rows[i + 1 : i + 4]
        sink.extend(_columns(piece), len(piece))


def _write(folder: Path, handing: Any, rows: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    csv, parquet = CsvSink(folder / "t.csv", TABLE, BATCH), ParquetSink(folder / "t.parquet", TABLE, BATCH)
    for sink in (csv, parquet):
        handing(sink, rows)
        sink.close()
        assert sink.rows == len(rows)
    return (folder / "t.csv").read_bytes(), (folder / "t.parquet").read_bytes()


@pytest.mark.parametrize("count", [0, 1, 3, 4, 5, 17, 40])
@pytest.mark.parametrize("handing", [_by_pieces, _mixed], ids=["columns in pieces", "columns and rows mixed"])
def test_a_table_given_columns_is_the_table_given_rows(tmp_path: Path, handing: Any, count: int) -> None:
    rows = _rows(count)
    (tmp_path / "rows").mkdir()
    (tmp_path / "columns").mkdir()
    reference = _write(tmp_path / "rows", _by_rows, rows)
    assert _write(tmp_path / "columns", handing, rows) == reference
    if count:
        assert reference[0].count(b"\r\n") == count + 1  # the header and one line per row: the rows are there


def test_a_column_not_given_is_empty(tmp_path: Path) -> None:
    rows = _rows(9)
    (tmp_path / "rows").mkdir()
    (tmp_path / "columns").mkdir()
    reference = _write(tmp_path / "rows", _by_rows, [{**r, "note": None} for r in rows])

    def without_note(sink: Any, given: list[dict[str, Any]]) -> None:
        sink.extend(_columns(given, leave_out="note"), len(given))

    assert _write(tmp_path / "columns", without_note, rows) == reference


# --- columns given as Arrow arrays (the long table: built by Arrow, no Python object per cell) -------------------


def _arrays(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import pyarrow as pa

    from trialwright.exports.columnar import arrow_schema

    schema = arrow_schema(TABLE)
    return {f.name: pa.array([r[f.name] for r in rows], type=f.type) for f in schema}


def _by_arrays(sink: Any, rows: list[dict[str, Any]]) -> None:
    sizes, at = cycle((3, 1, 6, 2, 9, 0)), 0
    while at < len(rows):
        piece = rows[at : at + next(sizes)]
        sink.extend(_arrays(piece), len(piece))
        at += len(piece)


def _arrays_lists_and_rows(sink: Any, rows: list[dict[str, Any]]) -> None:
    ways = cycle(("array", "row", "list", "array", "array", "list", "row"))
    at = 0
    while at < len(rows):
        way = next(ways)
        piece = rows[at : at + (1 if way == "row" else 3)]
        if way == "row":
            sink.add(piece[0])
        else:
            sink.extend(_arrays(piece) if way == "array" else _columns(piece), len(piece))
        at += len(piece)


@pytest.mark.parametrize("count", [0, 1, 3, 4, 5, 17, 40])
@pytest.mark.parametrize("handing", [_by_arrays, _arrays_lists_and_rows], ids=["arrays", "arrays, lists and rows"])
def test_a_table_given_arrow_arrays_is_the_table_given_rows(tmp_path: Path, handing: Any, count: int) -> None:
    """Columns given as Arrow arrays of the table's types (in pieces, or between lists and single rows) are held as
    they are and cut into the same batches: the same CSV text and Parquet file as the rows added one at a time."""
    rows = _rows(count)
    (tmp_path / "rows").mkdir()
    (tmp_path / "arrays").mkdir()
    reference = _write(tmp_path / "rows", _by_rows, rows)
    assert _write(tmp_path / "arrays", handing, rows) == reference
    if count:
        assert reference[0].count(b"\r\n") == count + 1


def test_an_array_of_another_type_is_refused_never_converted(tmp_path: Path) -> None:
    import pyarrow as pa

    sink = CsvSink(tmp_path / "t.csv", TABLE, BATCH)
    given = {**_arrays(_rows(2)), "value": pa.array(["1.5", "2"])}  # text where the table holds numbers
    with pytest.raises(TypeError, match=r"forms/awkward\.value: 2 string, not 2 double"):
        sink.extend(given, 2)
