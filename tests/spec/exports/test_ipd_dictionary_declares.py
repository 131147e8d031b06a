"""The IPD's data dictionary says what the protocol declares of a column's values that the column does not show
(both databases).

Walk 7 (F8): ``forms/nfl.csv``'s ``nfl`` held ``<2.0`` (a value below the limit of quantification, as text in a
numeric column) and ``fatigue.total`` was pro-rated from four of its five items, and data_dictionary.csv said
neither. Both are protocol facts, so the dictionary reads them from the protocol (walk 7's, read here as plain YAML):

=====================  ======================================  ===============================================
field                  the protocol declares                   the dictionary's label says
=====================  ======================================  ===============================================
nfl.nfl                quantification_limits: true             below the LLOQ is the text <limit (e.g. <2.0)
fatigue.total          sum, min_present 4, prorate: true       derived ... at least 4 of the 5 ... pro-rated
relapses.relapse_count neither                                 neither
=====================  ======================================  ===============================================
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.ipd import IpdExporter
from trialwright.protocol import load_protocol
from trialwright.services.exports import export_source, run_export
from trialwright.services.forms import save_form
from trialwright.services.simulation import simulate

WALKS = Path(__file__).parents[2] / "data" / "walks"


@pytest.fixture(scope="module")
def package(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Trial, Path]]:
    folder = tmp_path_factory.mktemp("ipd-dictionary")
    # the test accounts work at RAZ (tests/trialfixtures.py): walk 7's Tabriz clinic takes that code here
    for name in ("walk7.yaml", "walk7.simulation.yaml"):
        text = (WALKS / name).read_text(encoding="utf-8")
        (folder / name.replace("walk7", "seven")).write_text(text.replace("TBZ", "RAZ"), encoding="utf-8")
    path = folder / "seven.yaml"
    trial = make_trial(module_database_url, load_protocol(path))
    simulate(trial.engine, path, 40, seed=7)
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    sample = next(r for r in source.forms("nfl") if r.site == "RAZ")
    save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), sample.participant_id, sample.visit_id, "nfl",
              {"nfl": {"below_lloq": 2.0}}, reason="Assay report: below the LLOQ")  # fmt: skip
    run_export(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), "ipd", folder / "ipd", with_arms=True,
               exporter=IpdExporter())  # fmt: skip
    yield trial, folder / "ipd"
    trial.engine.dispose()


def _declared() -> dict[str, dict[str, object]]:
    """form.field -> its declaration, read from walk 7's protocol as plain YAML (not the protocol model)."""
    doc = yaml.safe_load((WALKS / "walk7.yaml").read_text(encoding="utf-8"))
    return {f"{form['id']}.{f['id']}": f for form in doc["forms"] for f in form["fields"]}


def _prorated(field: dict[str, object]) -> bool:
    derived = field.get("derived")
    missing = derived.get("missing") if isinstance(derived, dict) else None
    return isinstance(missing, dict) and missing.get("prorate") is True


def test_the_dictionary_says_what_the_protocol_declares(package: tuple[Trial, Path]) -> None:
    _, folder = package
    with (folder / "data_dictionary.csv").open(encoding="utf-8", newline="") as f:
        labels = {(r["file"], r["variable"]): r["label"] for r in csv.DictReader(f)}
    declared = _declared()
    censored = [ref for ref, f in declared.items() if f.get("quantification_limits")]
    prorated = [ref for ref, f in declared.items() if _prorated(f)]
    assert censored == ["nfl.nfl"] and prorated == ["fatigue.total"]
    for ref in declared:
        form_id, _, field_id = ref.partition(".")
        label = labels.get((f"forms/{form_id}.csv", field_id))
        if label is None:
            continue  # removed from the package (an identifier, free text): README.txt lists it
        assert ("below the lower limit of quantification is the text <limit (e.g. <2.0)" in label) == (
            ref in censored), (ref, label)  # fmt: skip
        assert ("pro-rated" in label) == (ref in prorated), (ref, label)
    rule = declared["fatigue.total"]["derived"]
    assert isinstance(rule, dict)
    inputs, least = rule["fields"], rule["missing"]["min_present"]
    assert (f"derived: the sum of {', '.join(inputs)}, with at least {least} of the {len(inputs)} present, "
            f"pro-rated x {len(inputs)}/(inputs present)") in labels["forms/fatigue.csv", "total"]  # fmt: skip


def test_the_column_does_hold_such_a_text(package: tuple[Trial, Path]) -> None:
    """What the dictionary says is there: the value saved below the LLOQ is ``<2.0`` in forms/nfl.csv."""
    _, folder = package
    with (folder / "forms" / "nfl.csv").open(encoding="utf-8", newline="") as f:
        values = [r["nfl"] for r in csv.DictReader(f)]
    assert "<2.0" in values
    assert all(v == "<2.0" or v in {"", "not_done"} or float(v) >= 0 for v in values)
