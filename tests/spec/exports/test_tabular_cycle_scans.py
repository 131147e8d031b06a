"""A form's records become table columns without Python's cyclic garbage collector scanning them (issue 23, the read
path at scale).

A chunk of form records allocates tens of thousands of containers (the parsed JSON's dicts, one list per column),
and the collector, run every few hundred allocations, scanned the young ones again and again while the wide and
long columns were built: about a fifth of the CSV export's CPU. Nothing in a chunk is cyclic, so the collector is
paused while a chunk is read and turned into columns, and back on between chunks and for every other table.

| collector threshold | collections while a chunk's columns are built | collections elsewhere in the export |
|---------------------|-----------------------------------------------|-------------------------------------|
| every 10 allocations | none                                          | some (the collector stays on)       |
| after the export     | enabled, as before                            |                                     |
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.columnar import no_cycle_scans
from trialwright.exports.tabular import CsvExporter, ParquetExporter
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate

#: The functions that turn a chunk of records into the wide and long tables' columns.
_BUILDING = frozenset({"_wide_columns", "_long_columns", "_stored_of", "_gather", "_plain_values", "_text_and_number"})


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 8, seed=3)
    yield t
    t.engine.dispose()


@pytest.mark.parametrize("exporter", [CsvExporter, ParquetExporter], ids=["csv", "parquet"])
def test_no_collection_runs_while_a_chunk_of_form_records_becomes_columns(
    trial: Trial, tmp_path: Path, exporter: type[CsvExporter] | type[ParquetExporter]
) -> None:
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    seen = {"building": 0, "elsewhere": 0}

    def collection(phase: str, info: dict[str, Any]) -> None:
        if phase != "start":
            return
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name not in _BUILDING:
            frame = frame.f_back  # type: ignore[assignment]
        seen["building" if frame is not None else "elsewhere"] += 1

    threshold = gc.get_threshold()
    gc.set_threshold(10)
    gc.callbacks.append(collection)
    try:
        exporter().write(source, tmp_path)
    finally:
        gc.callbacks.remove(collection)
        gc.set_threshold(*threshold)
    assert gc.isenabled()
    assert seen["building"] == 0, seen
    assert seen["elsewhere"] > 0, seen  # the collector ran around the chunks: the hook sees collections
    assert (tmp_path / "values_long.csv").exists() or (tmp_path / "values_long.parquet").exists()


def test_overlapping_pauses_keep_the_collector_off_until_the_last_ends_then_on_again() -> None:
    """Exports run in threads of one process: while one export's chunk is built another's may start and end. The
    collector stays paused until the last pause ends and is then back on (never left off for the process), and a
    process that turned it off itself keeps it off."""
    assert gc.isenabled()
    first, second = no_cycle_scans(), no_cycle_scans()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second export's chunk is still being built
    second.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()
    try:
        with no_cycle_scans():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
