"""A composite value against a field that declares no hard_limits: `protocol check` passes it with a note.

A composite number on a count or continuous variable takes the place of the field's value, so `protocol check`
refuses one outside the field's `hard_limits` (`test_estimability.py`). A field without `hard_limits` gives nothing
to check the value against: that is said, as a note (the author may know the value fits; nothing refuses it), one
per field the variable reads, never passed over in silence:

| the variable's field                | death takes | protocol check                                        |
|-------------------------------------|-------------|-------------------------------------------------------|
| declares hard_limits, value inside  | 0           | passes, no note                                       |
| declares no hard_limits             | 0           | passes; Note: <outcome>: the composite value 0 ...    |
| declares hard_limits, value outside | 20000       | refused (test_estimability.py)                        |

The shipped protocols whose composite values read a field without limits (the CAP trial's NEWS2, the MOBILISE
trial's FSS-ICU total) get their note; the first trial and the PACIFIC trial none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from trialwright.cli.main import app

runner = CliRunner()
LYMPHOCYTES = 4  # the first trial's lymphocyte_subsets: labs.cd3_abs, cd4_abs and cd8_abs, each with hard_limits


def _composite_death(unlimited: tuple[str, ...]) -> Any:
    """Death takes 0 on the lymphocyte subsets; the ``unlimited`` fields of the labs form lose their hard_limits."""

    def mutate(doc: Any) -> None:
        estimand = doc["outcomes"][LYMPHOCYTES]["estimand"]  # its events are shared with other outcomes (an anchor)
        estimand["intercurrent_events"] = [{"event": "death", "strategy": "composite", "value": 0}]
        labs = next(f for f in doc["forms"] if f["id"] == "labs")
        for field in labs["fields"]:
            if field["id"] in unlimited:
                del field["hard_limits"]

    return mutate


def _notes(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    path = tmp_path / "protocol.yaml"
    path.write_text(text, encoding="utf-8")
    plain = runner.invoke(app, ["protocol", "check", str(path)])
    assert plain.exit_code == 0, plain.output
    as_json = runner.invoke(app, ["protocol", "check", str(path), "--json"])
    return " ".join(plain.output.split()), json.loads(as_json.output)["notes"]


def _expected(text: str, outcome: int) -> list[str]:
    """The notes the file calls for, read from the YAML here: each numeric composite value of the outcome with each
    field it reads that declares no hard_limits."""
    doc = YAML(typ="safe").load(text)
    o = doc["outcomes"][outcome]
    fields = {f"{form['id']}.{f['id']}": f for form in doc["forms"] for f in form["fields"]}
    return [
        f"{o['id']}: the composite value {x['value']} for {x['event']} cannot be checked against {ref}'s range: the "
        "field declares no hard_limits"
        for x in o["estimand"]["intercurrent_events"] if x["strategy"] == "composite"
        for ref in o["estimand"]["variable"]["fields"] if "hard_limits" not in fields[ref]
    ]  # fmt: skip


@pytest.mark.parametrize("unlimited", [(), ("cd4_abs",), ("cd3_abs", "cd8_abs")], ids=["all", "cd4", "cd3 and cd8"])
def test_a_composite_value_on_a_field_without_hard_limits_is_noted_not_refused(
    tmp_path: Path, unlimited: tuple[str, ...]
) -> None:
    text = mutated_text(_composite_death(unlimited))
    said, notes = _notes(tmp_path, text)
    expected = _expected(text, LYMPHOCYTES)
    assert len(expected) == len(unlimited)  # the reading here agrees with the table above
    assert [n for n in notes if n.startswith("lymphocyte_subsets:")] == expected
    assert all(f"Note: {n}" in said for n in expected), said
    if unlimited == ("cd4_abs",):
        assert expected == ["lymphocyte_subsets: the composite value 0 for death cannot be checked against "
                            "labs.cd4_abs's range: the field declares no hard_limits"]  # fmt: skip


SHIPPED = {
    "EXAMPLE-CAP-3ARM": ["news2: the composite value 20 for death cannot be checked against vitals.news2's range: the "
                         "field declares no hard_limits"],
    "EXAMPLE-MOBILISE-OL": ["fss_icu_day7: the composite value 0 for death cannot be checked against "
                            "function.fss_total's range: the field declares no hard_limits"],
    "EXAMPLE-PACIFIC-CELLULITIS": [],
    "IRCT20190101042197N2": [],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_protocols_pass_with_their_composite_notes(tmp_path: Path, name: str) -> None:
    text = (ROOT / "protocols" / f"{name}.yaml").read_text(encoding="utf-8")
    _, notes = _notes(tmp_path, text)
    assert [n for n in notes if "cannot be checked against" in n] == SHIPPED[name]
