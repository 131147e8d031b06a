"""The analysis and the exports read through the read replica (``read_database_url``) and give what the primary
gives; the replica takes no write, and one that lags or holds another trial is refused, never read.

The replica here is a second engine on the same database whose every transaction is READ ONLY (PostgreSQL:
``default_transaction_read_only``, as a hot standby refuses writes), or a second engine on the same SQLite file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, event, text

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.analysis.report import results_json
from trialwright.domain.roles import Role
from trialwright.services.analysis import AnalysisError, run_analysis
from trialwright.services.exports import ExportError, run_export
from trialwright.services.replica import ReplicaRefused, read_engine_for, reader
from trialwright.services.simulation import simulate
from trialwright.settings import Settings
from trialwright.store.audit_keys import key_of


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 16, seed=5)
    yield t
    t.engine.dispose()


def _read_only_url(url: str) -> str:
    if url.startswith("sqlite"):
        return url
    return url + quote(" -cdefault_transaction_read_only=on")  # the URL's options end with the search path


@pytest.fixture(scope="module")
def replica(trial: Trial) -> Iterator[Engine]:
    engine = read_engine_for(
        Settings(database_url=trial.url, read_database_url=_read_only_url(trial.url)), trial.engine
    )
    yield engine
    engine.dispose()


class Statements:
    """The SQL each engine ran, by engine."""

    def __init__(self, **engines: Engine) -> None:
        self.ran: dict[str, list[str]] = {name: [] for name in engines}
        for name, engine in engines.items():
            event.listen(engine, "before_cursor_execute", self._on(name))

    def _on(self, name: str) -> Any:
        def listener(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            self.ran[name].append(statement.lower())

        return listener

    def touching(self, name: str, table: str) -> int:
        return sum(f"from {table}" in s or f"join {table}" in s for s in self.ran[name])


def _comparable(report_json: dict[str, Any]) -> str:
    # Provenance differs between two runs (time, and the audit entry the first run wrote); the rest may not.
    return json.dumps({k: v for k, v in report_json.items() if k not in {"taken_at", "audit_seq"}}, sort_keys=True)


def test_a_replica_takes_no_write(trial: Trial, replica: Engine) -> None:
    assert replica is not trial.engine and key_of(replica) is key_of(trial.engine)  # it checks arms with the key
    if replica.dialect.name == "postgresql":
        with replica.connect() as conn, pytest.raises(Exception, match="read-only transaction"):
            conn.execute(text("CREATE TABLE refused (x integer)"))


def test_the_analysis_reads_the_replica_and_gives_the_primary_s_results(trial: Trial, replica: Engine) -> None:
    analyst = who(trial, Role.BLINDED_STATISTICIAN)
    on_primary = run_analysis(trial.engine, analyst)
    seen = Statements(primary=trial.engine, replica=replica)
    on_replica = run_analysis(trial.engine, analyst, read_engine=replica)
    assert seen.touching("replica", "form_records") >= 1 and seen.touching("primary", "form_records") == 0
    assert seen.touching("replica", "allocation_entries") >= 1 and seen.touching("primary", "allocation_entries") == 0
    assert any(s.startswith("insert into audit_") for s in seen.ran["primary"])  # the run is audited on the primary
    assert on_replica.data.subjects == on_primary.data.subjects
    assert on_replica.data.snapshot_sha256 == on_primary.data.snapshot_sha256
    assert _comparable(results_json(on_replica.report)) == _comparable(results_json(on_primary.report))
    assert on_replica.report.consort.randomized > 0


@pytest.mark.parametrize("fmt", ["csv", "odm"])
def test_an_export_reads_the_replica_and_writes_the_primary_s_files(
    trial: Trial, replica: Engine, tmp_path: Path, fmt: str
) -> None:
    manager = who(trial, Role.DATA_MANAGER)
    first = run_export(trial.engine, manager, fmt, tmp_path / "primary")
    seen = Statements(primary=trial.engine, replica=replica)
    second = run_export(trial.engine, manager, fmt, tmp_path / "replica", read_engine=replica)
    assert seen.touching("replica", "form_records") >= 1 and seen.touching("primary", "form_records") == 0
    assert second.files and {f.name for f in second.files} == {f.name for f in first.files}
    for one, other in zip(sorted(first.files), sorted(second.files), strict=True):
        if fmt == "odm":  # the ODM file names the moment it was made and the audit trail up to then
            continue
        assert _without_export_time(one) == _without_export_time(other), one.name
    assert first.sha256.keys() == second.sha256.keys()


def _without_export_time(path: Path) -> bytes:
    """A file's bytes, but the README's "Exported at" line: the two exports may straddle a second."""
    data = path.read_bytes()
    if path.name != "README.txt":
        return data
    return b"\n".join(line for line in data.split(b"\n") if not line.startswith(b"Exported at: "))


def test_a_replica_behind_the_primary_or_of_another_trial_is_refused(trial: Trial, tmp_path: Path) -> None:
    other = make_trial(f"sqlite:///{tmp_path / 'other.db'}")  # another trial: a shorter, different chain
    try:
        with pytest.raises(ReplicaRefused, match=r"has not replayed audit entry \d+ after 0.2 seconds"):
            reader(trial.engine, other.engine, wait=0.2)
        with pytest.raises(ReplicaRefused, match="not a copy of this trial's database"):
            reader(other.engine, trial.engine, wait=0.2)  # holds the entry's number, with another hash
        statistician, manager = who(trial, Role.BLINDED_STATISTICIAN), who(trial, Role.DATA_MANAGER)
        with pytest.raises(AnalysisError, match="not a copy of this trial's database"):
            run_analysis(trial.engine, statistician, read_engine=_longer_chain_than(trial, other))
        with pytest.raises(ExportError, match="not a copy of this trial's database"):
            run_export(trial.engine, manager, "csv", tmp_path / "out", read_engine=_longer_chain_than(trial, other))
        assert not (tmp_path / "out").exists()
    finally:
        other.engine.dispose()


def _longer_chain_than(trial: Trial, other: Trial) -> Engine:
    """``other``'s engine once its chain is longer than the trial's (so it is refused for its hash, not its lag)."""
    from trialwright.services import audit
    from trialwright.store.engine import session_scope

    while audit.count(other.engine) <= audit.count(trial.engine) + 2:
        with session_scope(other.engine) as session, audit.batched(session):
            for _ in range(50):
                audit.record(session, actor="test", action="test.filler")
    return other.engine


def test_without_the_setting_the_reader_is_the_primary(trial: Trial) -> None:
    assert read_engine_for(Settings(database_url=trial.url), trial.engine) is trial.engine
    assert reader(trial.engine, None) is trial.engine and reader(trial.engine, trial.engine) is trial.engine
