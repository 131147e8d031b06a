"""The tabular exports read the participants once (issue 23 item 3/4, CSV and Parquet at scale).

The participants table, the consents and randomization tables and each participant's site for the deaths table all
come from one pass over the participants (each with its allocation checked against its keyed digest): reading them
three times was about a tenth of the CSV export. The files are unchanged (``test_tabular_oracle.py`` holds every
cell; here the tables' rows are checked against the participants themselves).

| export          | reads of the participants | participants rows | consents rows        | randomization rows       |
|-----------------|---------------------------|-------------------|----------------------|--------------------------|
| CSV, Parquet    | 1                         | one each          | one per consent      | one per randomized one   |
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.tabular import CsvExporter, ParquetExporter
from trialwright.services.exports import DatabaseSource, export_source
from trialwright.services.simulation import simulate


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 12, seed=5)
    yield t
    t.engine.dispose()


@pytest.mark.parametrize("exporter", [CsvExporter, ParquetExporter], ids=["csv", "parquet"])
def test_an_export_reads_the_participants_once(
    trial: Trial, tmp_path: Path, exporter: type[CsvExporter] | type[ParquetExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    people = list(source.participants())
    reads = []
    read = DatabaseSource.participants

    def counted(self: DatabaseSource) -> Iterator[object]:
        reads.append(1)
        return read(self)

    monkeypatch.setattr(DatabaseSource, "participants", counted)
    with source.snapshot():
        exporter().write(source, tmp_path)
    assert len(reads) == 1
    readme = (tmp_path / "README.txt").read_text(encoding="utf-8")
    consented = sum(p.consented_at is not None or p.consent_given_by is not None for p in people)
    randomized = sum(p.randomized_at is not None or p.randomization_number is not None for p in people)
    ext = exporter.extension
    assert people and consented and randomized
    assert f"participants.{ext}  Participants: one row per participant ({len(people)} rows)" in readme
    assert (f"consents.{ext}  Consents: one row per participant with a recorded consent: the consent they were "
            f"enrolled on, with its assent; a later re-consent's assent is not here (the ODM and FHIR exports carry "
            f"every consent record) ({consented} rows)") in readme
    assert f"randomization.{ext}  Randomization: one row per randomized participant ({randomized} rows)" in readme
    # The README lists the tables in the order they always had: participants, forms, long, consents, randomization.
    order = [line.split()[0] for line in readme.splitlines() if line.startswith("  ") and f".{ext}" in line]
    assert order.index(f"values_long.{ext}") < order.index(f"consents.{ext}") < order.index(f"randomization.{ext}")
    assert order[0] == f"participants.{ext}" and order.index(f"randomization.{ext}") < order.index(f"deaths.{ext}")
    if ext == "csv":
        with (tmp_path / "consents.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["participant_id"] for r in rows] == [
            p.participant_id for p in people if p.consented_at is not None or p.consent_given_by is not None
        ]
