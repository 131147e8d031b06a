"""A simulated adverse event's action taken with the product is drawn, seeded, from the answers the protocol's
adverse event report declares (``safety.actions_taken``), never one constant (walk 5, F12: every simulated event of a
drug trial said "not applicable"). The simulation file may give the shares, for serious events (a fatal one among
them) apart from the others, so that a serious event more often leads to withdrawing the product; the codes are the
protocol's, and one it does not declare is refused naming the file, the setting and the declared codes. The draw has
its own stream, so a seed gives the same trial as before in everything else. On both databases.

| `adverse_events.action_taken`                  | the events' actions taken                             |
|------------------------------------------------|-------------------------------------------------------|
| the shipped file's shares                      | more than one, each a declared code                   |
| unset                                          | each the protocol's NOT APPLICABLE answer             |
| `{non_serious: {dose_not_changed: 1},`         | each serious one `infusion_stopped`,                  |
| `serious: {infusion_stopped: 1}}`              | each other `dose_not_changed`                         |
| `{serious: {stopped_for_good: 1}}`             | refused: not declared (the declared codes listed)     |
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.protocol import load_protocol
from trialwright.services.safety import AdverseEventView, list_events
from trialwright.services.simulation import SimulationError, check_plan, simulate, simulation_file_for
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user
from trialwright.store.engine import make_engine

DECLARED = [a.code for a in load_protocol(FIRST_PROTOCOL).protocol.safety.action_choices]


def _protocol_with(folder: Path, shipped: bool = False, **events: object) -> Path:
    """The first protocol beside its simulation file, every patient with an adverse event, half of them serious,
    with ``events`` added to ``adverse_events`` (and no ``action_taken`` but theirs, or the shipped file's)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FIRST_PROTOCOL.name
    shutil.copy(FIRST_PROTOCOL, path)
    yaml = YAML(typ="safe")
    plan = yaml.load(simulation_file_for(FIRST_PROTOCOL).read_text(encoding="utf-8"))
    if not shipped:
        plan["adverse_events"].pop("action_taken", None)  # the shipped file's shares: only those ``events`` give
    plan["adverse_events"].update({"rate": 1.0, "serious": 0.5, **events})
    with simulation_file_for(path).open("w", encoding="utf-8") as out:
        yaml.dump(plan, out)
    return path


def _events(url: str, path: Path) -> list[AdverseEventView]:
    engine = make_engine(url)
    try:
        init_trial(engine, load_protocol(FIRST_PROTOCOL))
        simulate(engine, path, 16, seed=5)
        monitor = get_user(engine, "sim-monitor")
        assert monitor is not None
        return list_events(engine, monitor)
    finally:
        engine.dispose()


def test_a_simulated_trial_s_events_take_more_than_one_action_all_declared(database_url: str, tmp_path: Path) -> None:
    events = _events(database_url, _protocol_with(tmp_path, shipped=True))
    taken = [e.current.action_taken for e in events]
    assert len(events) >= 5
    assert len(set(taken)) > 1, taken
    assert set(taken) <= set(DECLARED), taken


def test_without_the_file_s_shares_every_event_takes_the_not_applicable_answer(
    database_url: str, tmp_path: Path
) -> None:
    """Nothing is invented: equal shares of every declared answer would give, e.g., a dose increased of a single
    infusion (the review of walk 5's F12 fix)."""
    neutral = {a.code for a in load_protocol(FIRST_PROTOCOL).protocol.safety.action_choices
               if a.sdtm is not None and a.sdtm.value == "NOT APPLICABLE"}  # fmt: skip
    taken = {e.current.action_taken for e in _events(database_url, _protocol_with(tmp_path))}
    assert len(neutral) == 1 and taken == neutral


def test_the_file_s_shares_decide_the_action_of_serious_and_other_events(database_url: str, tmp_path: Path) -> None:
    shares = {"non_serious": {"dose_not_changed": 1}, "serious": {"infusion_stopped": 1}}
    events = _events(database_url, _protocol_with(tmp_path, action_taken=shares))
    serious = {e.current.action_taken for e in events if e.current.serious}
    other = {e.current.action_taken for e in events if not e.current.serious}
    assert serious == {"infusion_stopped"} and other == {"dose_not_changed"}, (serious, other)


def test_an_action_the_protocol_does_not_declare_is_refused_naming_the_declared_ones(tmp_path: Path) -> None:
    path = _protocol_with(tmp_path, action_taken={"serious": {"stopped_for_good": 1}})
    with pytest.raises(SimulationError) as refused:
        check_plan(path)
    said = str(refused.value)
    assert said.startswith(f"simulation file: {simulation_file_for(path)}: adverse_events.action_taken.serious: ")
    assert "stopped_for_good" in said and all(code in said for code in DECLARED), said
