"""CSV and Parquet written through Arrow record batches (issue 23, the read path at scale), as the specification.

Memory: a tabular export holds one batch of rows at a time, whatever the size of the trial. The trial grows
from 10 screened patients to 40 (form records x3.5) on SQLite and PostgreSQL; the Python heap's peak
(``tracemalloc``) of a CSV and a Parquet export, with batches of 16 rows from the database and 16 rows per
record batch, may not double. The measure can see growth: with batches larger than the trial (everything
held at once) the same growth raises the peak by more.

| batches (database rows, record-batch rows) | peak at 40 patients / peak at 10 |
|--------------------------------------------|----------------------------------|
| 16, 16                                     | < 2                              |
| larger than the trial                      | more than with 16, 16            |

CSV text: each batch is formatted column by column with Arrow compute, and must give exactly the cells the
row-by-row writer gave (written out here as the definition: ``csv.writer`` with its minimal quoting and CRLF,
each cell ``spreadsheet_cell`` of the value's text: numbers in full precision without ``.0``, ISO dates and
date-times, yes/no 1/0, empty for missing) on awkward values and on generated text.

The first pass over a form (which fields need ``_status`` and ``_reason`` columns) reads only the records
whose stored JSON names such a status; a status that the first pass did not see (the data changed during the
export) is refused, never dropped.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.domain.text import spreadsheet_cell
from trialwright.exports.base import FormRecord
from trialwright.exports.columnar import csv_text
from trialwright.exports.tabular import Column, CsvExporter, ParquetExporter, Table, value_text
from trialwright.services.exports import DatabaseSource, export_source
from trialwright.services.forms import save_form
from trialwright.services.simulation import simulate

SMALL = 16


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    yield t
    t.engine.dispose()


def _peak(trial: Trial, folder: Path, source_batch: int, rows: int) -> int:
    source = dataclasses.replace(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), batch=source_batch)
    for exporter in (CsvExporter(rows), ParquetExporter(rows)):
        (folder / exporter.name).mkdir(parents=True)
    tracemalloc.start()
    try:
        for exporter in (CsvExporter(rows), ParquetExporter(rows)):
            exporter.write(source, folder / exporter.name)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_peak_memory_of_an_export_stays_flat_as_the_trial_grows(trial: Trial, tmp_path: Path) -> None:
    big = 1_000_000  # rows: larger than the trial, every table held at once
    simulate(trial.engine, FIRST_PROTOCOL, 10, seed=3)
    _peak(trial, tmp_path / "warm", SMALL, SMALL)  # imports and compiled statements, not the export's own
    small = export_source(trial.engine, who(trial, Role.DATA_MANAGER)).count()
    flat_1, whole_1 = _peak(trial, tmp_path / "f1", SMALL, SMALL), _peak(trial, tmp_path / "w1", big, big)
    simulate(trial.engine, FIRST_PROTOCOL, 30, seed=4)
    large = export_source(trial.engine, who(trial, Role.DATA_MANAGER)).count()
    flat_4, whole_4 = _peak(trial, tmp_path / "f4", SMALL, SMALL), _peak(trial, tmp_path / "w4", big, big)
    assert large >= 3 * small > 3 * SMALL  # the trial grew, and every table spans several batches
    assert flat_4 / flat_1 < 2
    assert whole_4 / whole_1 > flat_4 / flat_1  # the measure sees what a table held whole would cost


# --- CSV cells --------------------------------------------------------------------------------------------

KINDS = {"text": pa.string(), "number": pa.float64(), "date": pa.date32(),
         "datetime": pa.timestamp("us", tz="UTC"), "yesno": pa.bool_()}  # fmt: skip


def _definition_cell(value: Any) -> str:
    """A cell as the row-by-row writer wrote it."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return str(spreadsheet_cell(value.isoformat()))
    return str(spreadsheet_cell(value_text(value) or ""))


def _definition(columns: dict[str, list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in zip(*columns.values(), strict=True):
        writer.writerow([_definition_cell(v) for v in row])
    return out.getvalue()


def _batch(columns: dict[str, list[Any]]) -> pa.RecordBatch:
    return pa.record_batch([pa.array(v, type=KINDS[k.split("_")[0]]) for k, v in columns.items()],
                           names=list(columns))  # fmt: skip


UTC = dt.UTC
AWKWARD: dict[str, list[Any]] = {
    "text_a": ['=HYPERLINK("http://x","y")', "@SUM(A1)", "+1+1", "-2+3", "-3.5", "-۳", "\tx", "\rx", "a,b",
               'say "hi"', "two\nlines", "", None, "کد ۱۲", " spaced ", "-inf"],
    "number_b": [-350.5, 0.1, 3.0, 1e16, 1e-05, -0.0, 12.0, float("inf"), float("-inf"), 2.5e-300, None,
                 123456789.125, 7.0, -1.0, 1 / 3, float("nan")],
    "date_c": [dt.date(2021, 5, 9), None, dt.date(1999, 12, 31), *[dt.date(2026, 1, d) for d in range(1, 14)]],
    "datetime_d": [dt.datetime(2021, 5, 9, 7, 25, tzinfo=UTC), dt.datetime(2021, 5, 9, 7, 25, 1, 5, tzinfo=UTC),
                   None, *[dt.datetime(2026, 1, d, 23, 59, 59, 999999, tzinfo=UTC) for d in range(1, 14)]],
    "yesno_e": [True, False, None, *[d % 2 == 0 for d in range(13)]],
}  # fmt: skip


def test_the_batch_text_equals_the_row_by_row_writer_on_awkward_values() -> None:
    assert csv_text(_batch(AWKWARD)) == _definition(AWKWARD)


def test_a_table_of_one_column_writes_an_empty_cell_as_the_csv_module_does() -> None:
    one = {"text_a": ["", None, "x", "a,b"]}
    assert csv_text(_batch(one)) == _definition(one) == '""\r\n""\r\nx\r\n"a,b"\r\n'


#: Text as the store accepts it at most (no surrogates, no NUL); formula starts, quotes and line ends included.
TEXT = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00") | st.sampled_from('=+-@\t\r\n",۳1.e')


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.none(), st.text(TEXT)), st.one_of(st.none(), st.floats())), min_size=1, max_size=8)
)
def test_the_batch_text_equals_the_row_by_row_writer_on_generated_values(rows: list[tuple[Any, Any]]) -> None:
    columns = {"text_a": [t for t, _ in rows], "number_b": [n for _, n in rows]}
    assert csv_text(_batch(columns)) == _definition(columns)


#: Every date and UTC date-time a Python value can hold (years 1 to 9999), the microseconds zero or not.
#: (Hypothesis takes naive bounds; the values are made UTC below.)
DATETIMES = st.datetimes(
    min_value=dt.datetime(1, 1, 1),  # noqa: DTZ001
    max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),  # noqa: DTZ001
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.dates()),
                          st.one_of(st.none(), DATETIMES, DATETIMES.map(lambda d: d.replace(microsecond=0)))),
                min_size=1, max_size=12))  # fmt: skip
def test_dates_and_date_times_are_written_as_isoformat_writes_them(rows: list[tuple[Any, Any]]) -> None:
    """Dates ``YYYY-MM-DD`` and UTC date-times ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`` as ``isoformat`` writes them,
    four-digit years below 1000 included (the batch writer formats them with Arrow's cast)."""
    columns = {"date_a": [d for d, _ in rows],
               "datetime_b": [None if t is None else t.replace(tzinfo=UTC) for _, t in rows]}  # fmt: skip
    assert csv_text(_batch(columns)) == _definition(columns)


def test_a_csv_table_is_the_same_file_whatever_the_batch_size(tmp_path: Path) -> None:
    from trialwright.exports.columnar import CsvSink

    table = Table("t", "T", (Column("a", "text", "A"), Column("b", "number", "B"), Column("c", "yesno", "C")))
    rows = [{"a": f"=x{i}" if i % 3 else f"v,{i}", "b": i / 7 if i % 4 else None, "c": i % 2 == 0} for i in range(50)]
    texts = []
    for batch in (1, 7, 50, 4096):
        sink = CsvSink(tmp_path / f"{batch}.csv", table, batch)
        for row in rows:
            sink.add(row)
        sink.close()
        texts.append((tmp_path / f"{batch}.csv").read_bytes())
    assert len(set(texts)) == 1 and texts[0].count(b"\r\n") == 51


# --- the first pass ---------------------------------------------------------------------------------------


def test_a_status_the_first_pass_did_not_see_is_refused_never_dropped(database_url: str, tmp_path: Path) -> None:
    trial = make_trial(database_url)
    try:
        simulate(trial.engine, FIRST_PROTOCOL, 6, seed=2)
        source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
        labs = next(r for r in source.forms("labs") if r.site == "RAZ")
        save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), labs.participant_id, labs.visit_id, "labs",
                  {"crp": {"not_done": "Sample clotted"}}, reason="CRP sample clotted")  # fmt: skip
        found = list(source.records_with_status("labs", frozenset({"not_done", "not_applicable"})))
        assert (labs.participant_id, labs.visit_id) in [(r.participant_id, r.visit_id) for r in found]
        assert len(found) < sum(1 for _ in source.forms("labs"))  # only the records that may hold one

        @dataclasses.dataclass(frozen=True)
        class Changed(DatabaseSource):  # the not-done value arrives after the first pass
            def records_with_status(self, form_id: str, statuses: frozenset[str]) -> Iterator[FormRecord]:
                return iter(())

        changed = Changed(**{f.name: getattr(source, f.name) for f in dataclasses.fields(source)})
        (tmp_path / "csv").mkdir()
        with pytest.raises(ValueError, match=r"crp is not_done, which the first pass did not see"):
            CsvExporter().write(changed, tmp_path / "csv")
    finally:
        trial.engine.dispose()
