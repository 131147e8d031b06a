"""Stata date-times: whole milliseconds, each time rounded once, and every time changed listed, never silently.

Stata holds a date-time (%tc) as milliseconds from 1960-01-01. A stored time has microseconds:

| stored time (after a whole millisecond) | written (%tc)                      | listed in datetimes_rounded.csv |
|-----------------------------------------|------------------------------------|---------------------------------|
| a whole millisecond                     | that millisecond, the bytes as before | no                           |
| 1-499 microseconds past it              | that millisecond                   | yes: stored time, time read back |
| 500 microseconds past it                | the next (half goes to the later)  | yes                              |
| 501-999 microseconds past it            | the next                           | yes                              |
| missing                                 | Stata's ``.``                      | no                               |

The list (file, variable, row counted from the file's first, stored time, time read back) is written batch by
batch; the README gives its count and the format notes state the limit. Checked against the file as two
independent readers read it (pyreadstat and pandas.read_stata: the doubles and the times), the expected
millisecond computed exactly with ``fractions.Fraction``; then on both databases, a simulated trial whose stored
enrolment and consent times are given microseconds, its Stata export against the CSV export of the same source
(which holds every time as stored) and the times written to the database.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pyreadstat
import sqlalchemy as sa

from tests.trialfixtures import FIRST_PROTOCOL, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.stata import StataExporter
from trialwright.exports.tabular import Column, CsvExporter, Table, _Run
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate
from trialwright.store.screening_tables import consents, participants

TIMES = Table("times", "Times", (Column("n", "number", "Row"), Column("at", "datetime", "Taken at")))
BATCH = 64
START = dt.datetime(2026, 12, 5, 20, 30, tzinfo=dt.UTC)
#: Stata's day zero, as the independent reading counts from it
STATA_ZERO = dt.datetime(1960, 1, 1, tzinfo=dt.UTC)
HEADER = ["file", "variable", "row", "stored", "read_back"]


def _at(i: int) -> dt.datetime | None:
    """Every microsecond of the first two milliseconds (two halves among them), then whole milliseconds and
    seconds, and a time before Stata's day zero half a millisecond short of a millisecond; every 50th missing."""
    if i % 50 == 49:
        return None
    if i < 2000:
        return START + dt.timedelta(microseconds=i)
    if i == 2000:
        return STATA_ZERO - dt.timedelta(microseconds=1500)
    return START + dt.timedelta(seconds=i, milliseconds=i % 7)


def _nearest_millisecond(at: dt.datetime) -> Fraction:
    """The %tc value a stored time should be written as: its milliseconds from 1960, half a millisecond up."""
    milliseconds = Fraction((at - STATA_ZERO) // dt.timedelta(microseconds=1), 1000)
    return Fraction(math.floor(milliseconds + Fraction(1, 2)))


def _export(folder: Path, rows: int) -> tuple[_Run, list[dt.datetime | None]]:
    folder.mkdir()
    exporter, run = StataExporter(BATCH), _Run()
    sink = exporter.open(folder, TIMES, run)
    stored = [_at(i) for i in range(rows)]
    for i, at in enumerate(stored):
        sink.add({"n": i, "at": at})
    sink.close()
    exporter.finish(folder, run)
    return run, stored


def _listed(folder: Path) -> list[list[str]]:
    with (folder / "datetimes_rounded.csv").open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    assert header == HEADER
    return rows


def _utc(value: object) -> dt.datetime:
    """A time as a reader gives it (naive UTC, pandas' Timestamp) as an aware datetime."""
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()


def test_every_date_time_is_the_nearest_whole_millisecond_and_each_one_changed_is_listed(tmp_path: Path) -> None:
    run, stored = _export(tmp_path / "stata", 2100)
    path = tmp_path / "stata" / "times.dta"
    doubles = pyreadstat.read_dta(path, disable_datetime_conversion=True)[0]["at"]
    times = pyreadstat.read_dta(path)[0]["at"]
    theirs = pd.read_stata(path)["at"]
    expected = []
    for row, (at, number, ours, pandas_at) in enumerate(zip(stored, doubles, times, theirs, strict=True), 1):
        if at is None:
            assert math.isnan(number) and pd.isna(ours) and pd.isna(pandas_at)
            continue
        assert Fraction(float(number)) == _nearest_millisecond(at), row  # one rounding, a whole millisecond
        if at.microsecond % 1000 == 0:  # a whole millisecond: the bytes the microseconds over 1000 made before
            micro = (at - STATA_ZERO) // dt.timedelta(microseconds=1)
            assert float(number).hex() == (float(micro) / 1e3).hex(), row
        back = _utc(ours)
        assert back == _utc(pandas_at), row  # the two readers agree
        if back != at:
            expected.append(["times.dta", "at", str(row), at.isoformat(), back.isoformat()])
    listed = _listed(tmp_path / "stata")
    assert listed == expected
    assert len([r for r in listed if int(r[2]) <= 2000]) == 2000 - 2 - 40  # all but whole milliseconds and missing
    assert {int(r[2]) % BATCH for r in listed} == set(range(BATCH))  # across batches: rows counted from the first
    halves = {r[3]: r[4] for r in listed if dt.datetime.fromisoformat(r[3]).microsecond % 1000 == 500}
    assert halves[(START + dt.timedelta(microseconds=500)).isoformat()] == (START + dt.timedelta(
        milliseconds=1)).isoformat()  # fmt: skip
    before_zero = STATA_ZERO - dt.timedelta(microseconds=1500)  # -1.5 ms: half goes to the later, -1 ms
    assert halves[before_zero.isoformat()] == (STATA_ZERO - dt.timedelta(milliseconds=1)).isoformat()
    assert not [r for r in listed if int(r[2]) > 2001]  # whole milliseconds and seconds are held
    assert run.tables[-1] == ("datetimes_rounded.csv", run.tables[-1][1], len(expected))
    assert f"{len(expected)} date-times cannot be held to the microsecond by Stata" in run.notes[-1]


def test_the_format_notes_state_the_limit_and_no_list_is_written_when_every_time_is_held(tmp_path: Path) -> None:
    assert any("whole milliseconds from 1960-01-01" in note and "datetimes_rounded.csv" in note
               for note in StataExporter.format_notes)  # fmt: skip
    run, _ = _export(tmp_path / "stata", 0)
    assert not (tmp_path / "stata" / "datetimes_rounded.csv").exists()
    assert [t[0] for t in run.tables] == ["names.csv"]
    folder = tmp_path / "whole"
    folder.mkdir()
    exporter, run = StataExporter(BATCH), _Run()
    sink = exporter.open(folder, TIMES, run)
    for i in range(3):
        sink.add({"n": i, "at": START + dt.timedelta(milliseconds=i)})
    sink.close()
    exporter.finish(folder, run)
    assert not (folder / "datetimes_rounded.csv").exists() and not run.notes


def _plant_microseconds(engine: sa.Engine) -> dict[str, dt.datetime]:
    """Each participant's enrolment and consent times given microseconds (0, 500, and others); the new times."""
    offsets = [0, 500, 1, 999, 123_456, 4_000]
    planted: dict[str, dt.datetime] = {}
    with engine.begin() as conn:
        for i, (pid, at) in enumerate(conn.execute(sa.select(participants.c.participant_id, participants.c.enrolled_at)
                                                   .order_by(participants.c.participant_id))):  # fmt: skip
            planted[pid] = at + dt.timedelta(microseconds=offsets[i % len(offsets)])
            conn.execute(participants.update().where(participants.c.participant_id == pid)
                         .values(enrolled_at=planted[pid]))  # fmt: skip
        for cid, at in conn.execute(sa.select(consents.c.id, consents.c.obtained_at)):
            conn.execute(consents.update().where(consents.c.id == cid)
                         .values(obtained_at=at + dt.timedelta(microseconds=777)))  # fmt: skip
    return planted


def test_on_both_databases_every_stored_time_stata_changes_is_listed_against_the_stored_times(
    database_url: str, tmp_path: Path
) -> None:
    built = make_trial(database_url)
    simulate(built.engine, FIRST_PROTOCOL, 6, seed=3)
    planted = _plant_microseconds(built.engine)
    source = export_source(built.engine, who(built, Role.DATA_MANAGER))
    folders = {}
    for exporter in (StataExporter, CsvExporter):
        folders[exporter.name] = tmp_path / exporter.name
        folders[exporter.name].mkdir()
        exporter().write(source, folders[exporter.name])
    stata, tables = folders["stata"], folders["csv"]
    with (stata / "names.csv").open(newline="", encoding="utf-8") as f:
        columns = {(r["file"], r["variable"]): r["column"] for r in csv.DictReader(f)}
    expected, checked = [], 0
    for path in sorted(stata.rglob("*.dta")):
        file = str(path.relative_to(stata))
        frame, meta = pyreadstat.read_dta(path)
        theirs = pd.read_stata(path)
        dated = [v for v, kind in meta.original_variable_types.items() if kind == "%tc"]
        if not dated:
            continue
        as_stored = pd.read_csv(tables / file.replace(".dta", ".csv"), dtype=str, keep_default_na=False)
        for variable in dated:
            for row, (text, ours, pandas_at) in enumerate(zip(as_stored[columns[file, variable]], frame[variable],
                                                              theirs[variable], strict=True), 1):  # fmt: skip
                if not text:
                    assert pd.isna(ours) and pd.isna(pandas_at)
                    continue
                at, back = dt.datetime.fromisoformat(text), _utc(ours)
                assert back == _utc(pandas_at) and Fraction((back - STATA_ZERO) // dt.timedelta(microseconds=1),
                                                            1000) == _nearest_millisecond(at)  # fmt: skip
                checked += 1
                if back != at:
                    expected.append([file, variable, str(row), at.isoformat(), back.isoformat()])
    listed = _listed(stata)
    assert sorted(listed) == sorted(expected) and checked > len(listed)
    enrolled = {r[3] for r in listed if r[0] == "participants.dta" and columns[r[0], r[1]] == "enrolled_at"}
    assert enrolled == {at.isoformat() for at in planted.values() if at.microsecond % 1000}  # as in the database
    assert {r[0] for r in listed} >= {"participants.dta", "consents.dta"}
    readme = (stata / "README.txt").read_text(encoding="utf-8")
    assert "datetimes_rounded.csv  each date-time Stata cannot hold" in readme
    assert f"{len(listed)} date-times cannot be held to the microsecond by Stata" in readme
    built.engine.dispose()
