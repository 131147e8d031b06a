"""The tabular tables read from the database without an object per record, as the specification (issue 23, the read
path at scale).

CSV and Parquet read each form's records through ``ExportSource.form_rows``: the database source selects only the
seven columns the tables need, as plain tuples. The files must be, byte for byte, the files written from the record
stream every source has (``ExportSource.forms``, one ``FormRecord`` each: ``form_rows``' default), on SQLite and
PostgreSQL, for a simulated trial read in batches smaller than a participant's records.

| written from                                  | CSV and Parquet files         |
|-----------------------------------------------|-------------------------------|
| ``form_rows`` of the database (seven columns) | equal, byte for byte, to      |
| ``forms`` of the database (``FormRecord``)    | these                         |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.base import ExportSource, FormRow
from trialwright.exports.tabular import CsvExporter, ParquetExporter
from trialwright.services.exports import DatabaseSource, export_source
from trialwright.services.simulation import simulate


@dataclasses.dataclass(frozen=True)
class _RecordStream(DatabaseSource):
    """The database source with ``form_rows`` as every source has it: from ``forms``, one record object each."""

    def form_rows(self, form_id: str) -> Iterator[FormRow]:
        return ExportSource.form_rows(self, form_id)


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 24, seed=5)
    yield t
    t.engine.dispose()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("exporter", [CsvExporter, ParquetExporter], ids=["csv", "parquet"])
def test_the_tables_from_the_database_columns_equal_those_from_the_record_stream(
    trial: Trial, tmp_path: Path, exporter: type[CsvExporter] | type[ParquetExporter]
) -> None:
    source = dataclasses.replace(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), batch=7)
    stream = _RecordStream(**{f.name: getattr(source, f.name) for f in dataclasses.fields(source) if f.init})
    assert type(source).form_rows is not ExportSource.form_rows  # the database reads its own columns
    written = {}
    for name, which in (("columns", source), ("stream", stream)):
        (tmp_path / name).mkdir()
        exporter(batch_rows=5).write(which, tmp_path / name)
        written[name] = _files(tmp_path / name)
    stored = sum(1 for _ in source.forms())
    assert stored > 100 and len(written["columns"]) > 5
    assert written["columns"] == written["stream"]
