"""SPSS holds a date-time as seconds from 1582-10-14 in a double; near today's dates (about 1.4e10 seconds) a double
steps by 2**-19 seconds, about 1.9 microseconds, so about half of all microseconds cannot be held: such a time would
read back 1 microsecond off. The SPSS export never changes a time silently (as SAS transport lists the cells it
cannot spell and every format lists the labels it cut): each date-time whose nearest microsecond in the file is not
the stored one is listed in datetimes_rounded.csv with its file, variable, row, the stored time and the time read
back, and the README says how many. Checked against an independent reading: the file's doubles read by pyreadstat
(without its date conversion) and turned into microseconds exactly with ``fractions.Fraction``."""

from __future__ import annotations

import csv
import datetime as dt
from fractions import Fraction
from pathlib import Path

import pyreadstat

from trialwright.exports.spss import SpssExporter
from trialwright.exports.tabular import Column, Table, _Run

TIMES = Table("times", "Times", (Column("n", "number", "Row"), Column("at", "datetime", "Taken at")))
BATCH = 64
START = dt.datetime(2026, 12, 5, 20, 30, tzinfo=dt.UTC)
#: SPSS's day zero, as the independent reading counts from it
SPSS_ZERO = dt.datetime(1582, 10, 14, tzinfo=dt.UTC)


def _at(i: int) -> dt.datetime | None:
    """Every microsecond of the first 300, then some whole seconds and milliseconds; every 50th row missing."""
    if i % 50 == 49:
        return None
    return START + (dt.timedelta(microseconds=i) if i < 300 else dt.timedelta(seconds=i, milliseconds=i % 3))


def _export(folder: Path, rows: int) -> tuple[_Run, list[dt.datetime | None]]:
    folder.mkdir()
    exporter, run = SpssExporter(BATCH), _Run()
    sink = exporter.open(folder, TIMES, run)
    stored = [_at(i) for i in range(rows)]
    for i, at in enumerate(stored):
        sink.add({"n": i, "at": at})
    sink.close()
    exporter.finish(folder, run)
    return run, stored


def _read_back(seconds: float) -> tuple[dt.datetime, bool]:
    """The microsecond nearest a double of SPSS seconds, computed exactly, and whether it lies halfway."""
    micro = Fraction(seconds) * 1_000_000
    nearest = round(micro)
    return SPSS_ZERO + dt.timedelta(microseconds=nearest), abs(micro - nearest) == Fraction(1, 2)


def test_every_date_time_an_spss_double_reads_back_changed_is_listed_with_the_stored_time(tmp_path: Path) -> None:
    run, stored = _export(tmp_path / "spss", 400)
    frame, _ = pyreadstat.read_sav(tmp_path / "spss" / "times.sav", disable_datetime_conversion=True)
    expected = []
    for row, (at, seconds) in enumerate(zip(stored, frame["at"], strict=True), 1):
        if at is None:
            continue
        # the double written is the one nearest the instant (its step here is 2**-19 seconds)
        instant = Fraction((at - SPSS_ZERO) // dt.timedelta(microseconds=1), 1_000_000)
        assert abs(Fraction(float(seconds)) - instant) <= Fraction(1, 2**20), row
        back, halfway = _read_back(float(seconds))
        if back != at or halfway:
            shown = f"{back.isoformat()} (halfway to the next microsecond)" if halfway else back.isoformat()
            expected.append(["times.sav", "at", str(row), at.isoformat(), shown])
    with (tmp_path / "spss" / "datetimes_rounded.csv").open(newline="", encoding="utf-8") as f:
        header, *listed = list(csv.reader(f))
    assert header == ["file", "variable", "row", "stored", "read_back"]
    assert listed == expected
    first = [r for r in listed if int(r[2]) <= 300]  # every microsecond: about half cannot be held
    assert 0.4 * 294 <= len(first) <= 0.6 * 294 and len({r[2] for r in first}) == len(first)
    assert {int(r[2]) % BATCH for r in first} >= {0, 1}  # across batches: rows counted from the file's first
    # whole seconds are held; milliseconds (0.001 is no binary fraction) not always
    assert not [r for r in listed if int(r[2]) > 300 and dt.datetime.fromisoformat(r[3]).microsecond == 0]
    assert [r for r in listed if int(r[2]) > 300]
    assert ("datetimes_rounded.csv", run.tables[-1][1], len(expected)) == run.tables[-1]
    assert f"{len(expected)} date-times cannot be held to the microsecond by SPSS" in run.notes[-1]


def test_the_readme_states_the_limit_and_no_list_is_written_when_every_time_is_held(tmp_path: Path) -> None:
    assert any("2**-19 seconds (about 1.9 microseconds)" in note for note in SpssExporter.format_notes)
    run, _ = _export(tmp_path / "spss", 0)
    assert not (tmp_path / "spss" / "datetimes_rounded.csv").exists()
    assert [t[0] for t in run.tables] == ["names.csv"]
