"""A simulation file's field distributions are checked against the protocol before anything is drawn: a
``round`` finer than the field keeps (every value would be refused at the save) or a key that is no field of
the protocol is refused naming the key; a number drawn for a field with ``decimals`` is drawn to them."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.cli.main import app as cli
from trialwright.domain.forms import places_typed, validate_entries
from trialwright.protocol import load_protocol
from trialwright.services.simulation import (
    SimulationError,
    _from_z,
    check_plan,
    field_specs,
    load_plan,
    simulation_file_for,
)

P = load_protocol(FIRST_PROTOCOL).protocol


def test_a_round_finer_than_the_fields_decimals_is_refused() -> None:
    with pytest.raises(SimulationError) as caught:
        field_specs(P, {"fields": {"demographics.weight": {"normal": [78, 12], "round": 2}}})
    assert str(caught.value) == (
        "simulation file: fields.demographics.weight.round: 2 places, but the protocol keeps 1 (decimals); "
        "a save would refuse every value drawn"
    )


def test_a_key_that_is_no_field_of_the_protocol_is_refused() -> None:
    with pytest.raises(SimulationError, match=r"fields\.demographics\.wieght: not a form\.field of the protocol"):
        field_specs(P, {"fields": {"demographics.wieght": {"normal": [78, 12]}}})


def test_without_round_a_number_is_drawn_to_the_fields_decimals() -> None:
    specs = field_specs(P, {"fields": {"blood_gas.ph": {"normal": [7.35, 0.08]}}})
    assert specs["blood_gas.ph"]["round"] == 2
    rng = np.random.default_rng(7)
    for _ in range(200):
        value = _from_z(specs["blood_gas.ph"], float(rng.standard_normal()), rng)
        assert places_typed(value) <= 2
        validate_entries(P.form("blood_gas"), {"ph": min(max(value, 6.5), 8.0)}, today=dt.date(2021, 6, 1))


def test_the_shipped_simulation_file_passes() -> None:
    specs = field_specs(P, load_plan(simulation_file_for(FIRST_PROTOCOL)))
    assert specs["demographics.weight"]["round"] == 1


def test_simulate_refuses_a_missing_simulation_file_before_creating_a_database(tmp_path: Path) -> None:
    protocol = tmp_path / "LONE.yaml"
    shutil.copy(FIRST_PROTOCOL, protocol)
    database = tmp_path / "lone.db"
    done = CliRunner().invoke(cli, ["simulate", "--protocol", str(protocol), "--participants", "3",
                                    "--database", f"sqlite:///{database}"])  # fmt: skip
    assert done.exit_code == 1 and "LONE.simulation.yaml does not exist" in " ".join(done.output.split())
    assert not database.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda plan: plan.setdefault("adverse_events", {}).setdefault("expected", {}).update(
            dvt={"rate": 0.1, "term": "Deep vein thrombosis", "day": 2, "grades": [1, 2]}),
         "adverse_events.expected: 'dvt' is not an expected event of the protocol"),
        (lambda plan: plan["recruitment"].update(sites={"NOWHERE": 1}), "recruitment.sites: unknown site 'NOWHERE'"),
        (lambda plan: plan.setdefault("adverse_events", {}).update(causality={"related": "no_such_code"}),
         "adverse_events.causality.related: 'no_such_code' is not on the protocol's causality scale"),
    ],
)
def test_simulate_refuses_a_wrong_simulation_file_before_creating_a_database(
    tmp_path: Path, change: Any, message: str
) -> None:
    """Every part of the simulation file ``simulate`` reads is checked before the database is made, not only its
    fields (a walk found an unknown expected event refused after the trial was created, leaving the database)."""
    protocol = tmp_path / "WRONG.yaml"
    shutil.copy(FIRST_PROTOCOL, protocol)
    plan = YAML(typ="safe").load(simulation_file_for(FIRST_PROTOCOL).read_text(encoding="utf-8"))
    change(plan)
    with (tmp_path / "WRONG.simulation.yaml").open("w", encoding="utf-8") as out:
        YAML().dump(plan, out)
    database = tmp_path / "wrong.db"
    done = CliRunner().invoke(cli, ["simulate", "--protocol", str(protocol), "--participants", "3",
                                    "--database", f"sqlite:///{database}"])  # fmt: skip
    assert done.exit_code == 1 and message in " ".join(done.output.split()), done.output
    assert not database.exists()


def _plan_with(tmp_path: Path, change: Any) -> tuple[Path, Path]:
    """The first trial and its shipped simulation file, changed, copied into ``tmp_path``."""
    protocol = tmp_path / "WRONG.yaml"
    shutil.copy(FIRST_PROTOCOL, protocol)
    plan = YAML(typ="safe").load(simulation_file_for(FIRST_PROTOCOL).read_text(encoding="utf-8"))
    change(plan)
    path = tmp_path / "WRONG.simulation.yaml"
    with path.open("w", encoding="utf-8") as out:
        YAML().dump(plan, out)
    return protocol, path


NAMED = [
    ("a field the protocol does not have (walk 5)",
     lambda plan: plan["fields"].update({"cognition.amt": {"normal": [8, 2]}}),
     "fields.cognition.amt: not a form.field of the protocol"),
    ("a round finer than the field keeps",
     lambda plan: plan["fields"].update({"demographics.weight": {"normal": [78, 12], "round": 2}}),
     "fields.demographics.weight.round: 2 places, but the protocol keeps 1 (decimals)"),
    ("an expected event the protocol does not declare",
     lambda plan: plan.setdefault("adverse_events", {}).setdefault("expected", {}).update(
         dvt={"rate": 0.1, "term": "Deep vein thrombosis", "day": 2, "grades": [1, 2]}),
     "adverse_events.expected: 'dvt' is not an expected event of the protocol"),
    ("an unknown site", lambda plan: plan["recruitment"].update(sites={"NOWHERE": 1}),
     "recruitment.sites: unknown site 'NOWHERE'"),
    ("a causality code off the protocol's scale",
     lambda plan: plan.setdefault("adverse_events", {}).update(causality={"related": "no_such_code"}),
     "adverse_events.causality.related: 'no_such_code' is not on the protocol's causality scale"),
    ("a death without its term", lambda plan: plan.update(death={"rate": 0.1}),
     "death: {'rate': 0.1}: name the fatal adverse event's term"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "words"), NAMED, ids=[c[0] for c in NAMED])
def test_every_refusal_of_a_simulation_files_setting_names_the_file(
    tmp_path: Path, case: str, change: Any, words: str
) -> None:
    """``simulation file: PATH: KEY: rule``, whichever check refuses the setting (walk 5: an unknown field said
    ``simulation file: fields.cognition.amt: ...``, naming no file, where other refusals named it)."""
    protocol, path = _plan_with(tmp_path, change)
    with pytest.raises(SimulationError) as caught:
        check_plan(protocol)
    assert str(caught.value).startswith(f"simulation file: {path}: {words}"), str(caught.value)
