"""A simulated trial's SAEs are reported to the sponsor (and its SUSARs sent) through the safety service, at a
seeded moment within each deadline: with the simulation file's ``adverse_events.late`` at 0 (the default) every due
report is met and none is overdue on the safety pages; with ``late: 1`` every one is sent, late. A late share that
would carry the trial's reports into the sites' today is refused with the other settings, before any database.

| simulation file | every due report |
|---|---|
| `late` unset | sent, `met` (sent by its due time) |
| `late: 1` | sent, `late` (after its due time, before now) |
| `late: 1.5` | refused: a probability |
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from sqlalchemy import Engine

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.safety import DeadlineKind, DeadlineState
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.safety import AdverseEventView, list_events, overdue_for
from trialwright.services.simulation import (
    SimulationError,
    SimulationSummary,
    check_plan,
    simulate,
    simulation_file_for,
)
from trialwright.services.trial import init_trial
from trialwright.services.users import UserView, get_user
from trialwright.store.engine import make_engine


def _protocol_with(tmp_path: Path, **events: object) -> Path:
    """The first protocol beside its simulation file, every patient with an adverse event, each serious, half of
    them related (so SUSARs too), with ``events`` added to ``adverse_events``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / FIRST_PROTOCOL.name
    shutil.copy(FIRST_PROTOCOL, path)
    yaml = YAML(typ="safe")
    plan = yaml.load(simulation_file_for(FIRST_PROTOCOL).read_text(encoding="utf-8"))
    plan["adverse_events"].update({"rate": 1.0, "serious": 1.0, "related": 0.5, **events})
    with simulation_file_for(path).open("w", encoding="utf-8") as out:
        yaml.dump(plan, out)
    return path


def _simulated(url: str, path: Path) -> tuple[SimulationSummary, list[AdverseEventView], Engine, UserView]:
    """The trial simulated, its serious events as the simulated monitor reads them now."""
    engine = make_engine(url)
    init_trial(engine, load_protocol(FIRST_PROTOCOL))
    summary = simulate(engine, path, 16, seed=5)
    monitor = get_user(engine, "sim-monitor")
    assert monitor is not None
    return summary, list_events(engine, monitor, serious_only=True), engine, monitor


def test_every_sae_and_susar_is_sent_within_its_deadline_when_none_is_late(database_url: str, tmp_path: Path) -> None:
    summary, events, engine, monitor = _simulated(database_url, _protocol_with(tmp_path))
    due = [d for event in events for d in event.deadlines]
    kinds = {d.kind for d in due}
    assert summary.serious >= 3 and len(events) == summary.serious
    assert {DeadlineKind.SAE_TO_SPONSOR, DeadlineKind.SUSAR_INITIAL} <= kinds
    assert [(d.kind, d.state) for d in due if d.state is not DeadlineState.MET] == []
    for d in due:
        assert d.submitted_at is not None and d.clock_start < d.submitted_at <= d.due_at
    assert summary.reports_submitted == len(due) and summary.reports_late == 0
    assert overdue_for(engine, monitor) == []  # nothing overdue on the safety pages or the home page


def test_with_a_late_share_of_one_every_report_is_sent_after_its_deadline(database_url: str, tmp_path: Path) -> None:
    summary, events, _, _ = _simulated(database_url, _protocol_with(tmp_path, late=1))
    due = [d for event in events for d in event.deadlines]
    assert due and {d.state for d in due} == {DeadlineState.LATE}
    for d in due:
        assert d.submitted_at is not None and d.due_at < d.submitted_at < clock.now()
    assert summary.reports_submitted == summary.reports_late == len(due)


def _with_start(path: Path, start: str) -> None:
    """The trial recruiting from ``start``; its stays at most 20 days and no form signed, so that what a late SUSAR
    report adds (up to 31 days after its event instead of 15, by the first protocol's deadlines) sets its reach."""
    yaml = YAML(typ="safe")
    plan = yaml.load(simulation_file_for(path).read_text(encoding="utf-8"))
    plan["recruitment"]["start"] = start
    plan["length_of_stay"] = {"uniform": [2, 20], "round": 0}
    plan["lifecycle"]["sign"] = 0
    with simulation_file_for(path).open("w", encoding="utf-8") as out:
        yaml.dump(plan, out)


def test_a_late_share_is_a_probability_and_counts_in_the_trials_reach(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match=r"adverse_events\.late: 1\.5"):
        check_plan(_protocol_with(tmp_path, late=1.5))
    # The latest start whose trial, every report sent in time, ends before today: it is accepted; the same start
    # with reports sent late (up to as long again after their deadlines) would reach today, and is refused.
    on_time = _protocol_with(tmp_path / "on_time")
    _with_start(on_time, clock.now().date().isoformat())
    with pytest.raises(SimulationError, match=r"start on or before (\d{4}-\d\d-\d\d)") as refused:
        check_plan(on_time)
    latest = re.search(r"start on or before (\d{4}-\d\d-\d\d)", str(refused.value))
    assert latest is not None
    _with_start(on_time, latest.group(1))
    check_plan(on_time)
    late = _protocol_with(tmp_path / "late", late=0.1)
    _with_start(late, latest.group(1))
    with pytest.raises(SimulationError, match=r"recruitment\.start.*sent up to as long again after the deadline"):
        check_plan(late)
