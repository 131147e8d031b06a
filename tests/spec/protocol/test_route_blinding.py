"""A blinded trial whose arms are given by different routes: `protocol check` passes it with a note.

The participant (or the nurse at the bedside) sees how a dose is given, so arms given one intravenously and one by
mouth are told apart unless every participant receives both routes, one of them as a placebo (a double dummy) or
the administration is made to match. The pharmacy can do either, so this is a note, never a refusal: it names each
arm's route and says what the blind needs. Arms given by the same route (the first trial: both intravenous,
whatever the spelling's case), or a trial that masks no one at the bedside, get no such note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.cli.main import app
from trialwright.protocol import load_protocol_text
from trialwright.protocol.masking_checks import route_notes

runner = CliRunner()

NOTE = (
    "Note: Blinding: the arms are given by different routes (arm EXO: intravenous; arm PBO: oral) while the "
    "participant is masked: the blind needs a double-dummy (each participant receives every route, a placebo by "
    "all but their arm's) or a matching administration"
)


def _route(route: str) -> Any:
    def mutate(doc: Any) -> None:
        doc["arms"][1]["intervention"]["route"] = route

    return mutate


def _check(tmp_path: Path, text: str, *options: str) -> Any:
    path = tmp_path / "protocol.yaml"
    path.write_text(text, encoding="utf-8")
    return runner.invoke(app, ["protocol", "check", str(path), *options])


def test_a_double_blind_trial_with_arms_by_different_routes_passes_with_a_note_naming_each_route(
    tmp_path: Path,
) -> None:
    text = mutated_text(_route("oral"))
    result = _check(tmp_path, text)
    assert result.exit_code == 0, result.output
    assert NOTE in " ".join(result.output.split()), result.output
    notes = json.loads(_check(tmp_path, text, "--json").output)["notes"]
    assert [n for n in notes if n.startswith("Blinding:")] == [NOTE.removeprefix("Note: ")]


def test_arms_by_the_same_route_get_no_note() -> None:
    assert route_notes(load_protocol_text(FIRST_PROTOCOL.read_text(encoding="utf-8")).protocol) == ()
    same = load_protocol_text(mutated_text(_route(" Intravenous"))).protocol
    assert route_notes(same) == ()
    result = runner.invoke(app, ["protocol", "check", str(FIRST_PROTOCOL)])
    assert result.exit_code == 0 and "Blinding:" not in result.output, result.output
