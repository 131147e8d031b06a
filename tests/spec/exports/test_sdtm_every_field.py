"""Nothing is silently dropped from SDTM: every visit-form field is in a domain, or README.txt names it and says why
(both databases).

Walk 7 (F3): the SDTM export left out every non-numeric visit-form field (choices, yes/no, multiple choice, dates,
text) without naming it; README.txt listed only the numbers without a ``codes.sdtm`` test. The trial here is walk 7's
(``tests/data/walks/walk7.yaml``), with its weight a VS test, its NfL an LB test and an optional time field added, so
it has fields of every kind. Where its fields go, read off the protocol by hand:

==============================  ============  ==========================  ==================================
field                           kind          domain, variable            why
==============================  ============  ==========================  ==================================
demographics.age_at_enrolment   integer       DM AGE                      demographics.age's first source
demographics.sex                choice        DM SEX (female F, male M)   demographics.sex's first source
demographics.weight             decimal       VS VSORRES (WEIGHT)         codes.sdtm (added here)
nfl.nfl                         decimal       LB LBORRES (NFL)            codes.sdtm (added here)
nfl.sampled_at                  datetime      LB LBDTC                    the date-time of a form with a test
first_dose.given_at             datetime      EX EXSTDTC                  analysis_plan.treatment.given_field
every other field               each kind     none: README.txt names it   its kind, or what it is read for
==============================  ============  ==========================  ==================================

The domains are read back with pyreadstat (XPT) and the csv module (CSV); the README's list is read as text.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pyreadstat
import pytest

from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.sdtm import SdtmExporter
from trialwright.protocol import Protocol, load_protocol
from trialwright.protocol.forms import FieldType
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate

Exported = tuple[Trial, Path, Protocol]
WALKS = Path(__file__).parents[2] / "data" / "walks"

WEIGHT_TEST = """\
        codes:
          sdtm: {domain: VS, testcd: WEIGHT, test: Weight, checked: "CDISC CT VSTESTCD C66741", units: {kg: kg}}
"""
NFL_TEST = """\
        quantification_limits: true
        codes:
          sdtm: {domain: LB, testcd: NFL, test: Neurofilament Light Chain, checked: sponsor-defined,
                 units: {pg/mL: pg/mL}}
      - {id: thawed_at, label: Time the sample was thawed, type: time, required: false}
"""

#: form.field -> (domain, the variable its values are in, the test code for LB/VS): read off the protocol by hand.
WRITTEN = {
    "demographics.age_at_enrolment": ("DM", "AGE", None),
    "demographics.sex": ("DM", "SEX", None),
    "demographics.weight": ("VS", "VSORRES", "WEIGHT"),
    "nfl.nfl": ("LB", "LBORRES", "NFL"),
    "nfl.sampled_at": ("LB", "LBDTC", "NFL"),
    "first_dose.given_at": ("EX", "EXSTDTC", None),
}

#: A reason README.txt gives for each kind of field left out (the brief's words for a choice field).
WHY = {
    "demographics.ms_symptoms": "a multiple-choice field: no findings domain is declared for it",
    "quality.mobility": "a choice field: no findings domain is declared for it",
    "adherence.stopped_early": "a yes/no field: no findings domain is declared for it",
    "demographics.birth_date": "a date field",
    "nfl.thawed_at": "a time field",
    "first_dose.preparation_code": "read, not written: the arm its preparation codes name is ACTARMCD/ACTARM",
    "fatigue.item1": "Not in LB/VS (no codes.sdtm test declared in the protocol)",
    "relapses.relapse_count": "Not in LB/VS (no codes.sdtm test declared in the protocol)",
}


def _protocol(folder: Path) -> Path:
    text = (WALKS / "walk7.yaml").read_text(encoding="utf-8")
    weight = "        alternative_units: [{unit: lb, factor: 0.45359237, note: 1 lb = 0.45359237 kg exactly}]\n"
    assert text.count(weight) == 1 and text.count("        quantification_limits: true\n") == 1
    text = text.replace(weight, weight + WEIGHT_TEST).replace("        quantification_limits: true\n", NFL_TEST)
    # the test accounts work at RAZ (tests/trialfixtures.py): walk 7's Tabriz clinic takes that code here
    path = folder / "seven.yaml"
    path.write_text(text.replace("TBZ", "RAZ"), encoding="utf-8")
    simulation = (WALKS / "walk7.simulation.yaml").read_text(encoding="utf-8")
    (folder / "seven.simulation.yaml").write_text(simulation.replace("TBZ", "RAZ"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def exported(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    folder = tmp_path_factory.mktemp("every-field")
    path = _protocol(folder)
    loaded = load_protocol(path)
    trial = make_trial(module_database_url, loaded)
    simulate(trial.engine, path, 24, seed=7)
    SdtmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), folder)
    yield trial, folder, loaded.protocol
    trial.engine.dispose()


def _named_in_readme(readme: str) -> dict[str, str]:
    """form.field -> the README line naming it among the fields in no domain."""
    named: dict[str, str] = {}
    lines = readme.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  - Not in LB/VS"):
            for ref in line.split(": ", 1)[1].rstrip(".").split(", "):
                named[ref] = line
        if line.startswith("  - In no SDTM domain"):
            for item in lines[i + 1:]:
                if not item.startswith("      "):
                    break
                ref, _, why = item.strip().partition(": ")
                named[ref] = why
    return named


def _xpt(folder: Path, domain: str) -> list[dict[str, object]]:
    frame, _ = pyreadstat.read_xport(folder / "sdtm" / f"{domain.lower()}.xpt")
    return list(frame.to_dict("records"))


def _csv(folder: Path, domain: str) -> list[dict[str, str]]:
    with (folder / "sdtm" / f"{domain.lower()}.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_every_form_field_is_in_a_domain_or_named_with_why(exported: Exported) -> None:
    _, folder, protocol = exported
    fields = {f"{form.id}.{f.id}": f.type for form in protocol.forms for f in form.fields}
    assert {FieldType(k) for k in fields.values()} == set(FieldType), "the protocol has fields of every kind"
    named = _named_in_readme((folder / "README.txt").read_text(encoding="utf-8"))
    assert set(named) | set(WRITTEN) == set(fields), "a form field neither written nor named"
    assert not set(named) & set(WRITTEN), "a field named as left out is written"
    for ref, why in WHY.items():
        assert why in named[ref], (ref, named[ref])
    for ref, (domain, variable, testcd) in WRITTEN.items():
        for rows in (_xpt(folder, domain), _csv(folder, domain)):
            held = [r[variable] for r in rows if testcd is None or r[f"{domain}TESTCD"] == testcd]
            assert [v for v in held if v not in ("", None) and v == v], f"{ref}: no value in {domain}.{variable}"


def test_the_written_values_are_the_stored_ones(exported: Exported) -> None:
    """The numbers a test's --ORRES holds are the field's stored values (besides any censored ``<limit``)."""
    trial, folder, _ = exported
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    for ref, (domain, variable, testcd) in WRITTEN.items():
        if variable != f"{domain}ORRES":
            continue
        form_id, _, field_id = ref.partition(".")
        stored = sorted(float(r.values[field_id]["value"]) for r in source.forms(form_id)
                        if r.values.get(field_id, {}).get("status", "value") == "value"
                        and isinstance(r.values[field_id].get("value"), int | float))  # fmt: skip
        written = sorted(float(r[variable]) for r in _csv(folder, domain)
                         if r[f"{domain}TESTCD"] == testcd and re.fullmatch(r"-?\d+(\.\d+)?", r[variable]))  # fmt: skip
        assert stored and written == stored, ref
