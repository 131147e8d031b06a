"""A simulation file's field distributions are checked against the protocol before anything is drawn: a
``round`` finer than the field keeps (every value would be refused at the save) or a key that is no field of
the protocol is refused naming the key; a number drawn for a field with ``decimals`` is drawn to them."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.cli.main import app as cli
from trialwright.domain.forms import places_typed, validate_entries
from trialwright.protocol import load_protocol
from trialwright.services.simulation import SimulationError, _from_z, field_specs, load_plan, simulation_file_for

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
