"""FHIR Encounter classes and principal investigators, exactly as the protocol declares them.

A visit's ``encounter_class`` (an HL7 v3 ActEncounterCode) is its Encounters' ``class``; a visit that declares
none is sent as unknown (v3 NullFlavor UNK) and ``protocol check`` notes it. A principal investigator declared for
the trial is the ResearchStudy's ``principalInvestigator`` (a PractitionerRole in the bundle), one declared for a
centre a PractitionerRole at its Organization and Location; both coded principal investigator (FHIR R5's
research-study-party-role, R4 has no such code) and every reference still resolves inside each bundle. A
malformed class or investigator is refused when the protocol loads, naming the line.

The first protocol with a principal investigator for the trial and for Razi hospital, and day 7 declared
ambulatory, simulated (12 screened) on SQLite and PostgreSQL and exported with every resource validated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from typer.testing import CliRunner

from tests.conftest import FIRST_PROTOCOL
from tests.spec.protocol.conftest import mutated_text
from trialwright.cli.main import app
from trialwright.exports.fhir import FhirExporter, FhirSample, validate_resource
from trialwright.protocol import ProtocolError, load_protocol, load_protocol_text
from trialwright.protocol.codes import export_gaps
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user
from trialwright.store.engine import make_engine

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
PARTY_ROLE = "http://hl7.org/fhir/research-study-party-role"

#: What each visit's Encounter.class must be (the displays are HL7's, FHIR R4 v3-ActEncounterCode): the first
#: protocol declares baseline, infusion and discharge inpatient and leaves days 1, 3 and 7 without a class; this
#: copy declares day 7 ambulatory.
CLASSES = {
    "baseline": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
    "infusion": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
    "discharge": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
    "day7": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
    "day1": {"system": NULL_FLAVOR, "code": "UNK", "display": "unknown"},
    "day3": {"system": NULL_FLAVOR, "code": "UNK", "display": "unknown"},
}
LEAD = {"name": "Dr. Test Lead", "degree": "MD", "address": {"city": "Ahvaz", "email": "lead@example.org"}}
RAZI_PI = {"name": "Dr. Razi Investigator"}


def _declared(doc: Any) -> None:
    doc["trial"]["principal_investigator"] = LEAD
    doc["sites"][0]["principal_investigator"] = RAZI_PI
    next(v for v in doc["visits"] if v["id"] == "day7")["encounter_class"] = "AMB"


@pytest.fixture(scope="module")
def exported(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    engine = make_engine(module_database_url)
    init_trial(engine, load_protocol_text(mutated_text(_declared), source="declared.yaml"))
    simulate(engine, FIRST_PROTOCOL, 12, seed=11)  # the first trial's simulation plan
    manager = get_user(engine, "sim-data-manager")
    assert manager is not None
    out = tmp_path_factory.mktemp("fhir")
    FhirExporter(sample=FhirSample(first=0, rate=1)).write(export_source(engine, manager), out)
    yield out
    engine.dispose()


def _entries(path: Path) -> list[dict[str, Any]]:
    return [e["resource"] for e in json.loads(path.read_text(encoding="utf-8"))["entry"]]


def _of(path: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {f"{kind}/{r['id']}": r for r in _entries(path) if r["resourceType"] == kind}


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                yield inner
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def test_each_encounter_has_the_class_its_visit_declares_and_unknown_otherwise(exported: Path) -> None:
    seen: set[str] = set()
    participants = sorted((exported / "participants").glob("*.json"))
    assert len(participants) >= 3
    for path in participants:
        for e in _of(path, "Encounter").values():
            visit = e["type"][0]["coding"][0]["code"]
            assert e["class"] == CLASSES[visit], (path.name, visit)
            seen.add(visit)
    assert {"baseline", "infusion", "day1", "day7"} <= seen  # declared, undeclared and the changed one


def test_the_trials_principal_investigator_is_the_research_studys(exported: Path) -> None:
    for path in [exported / "study.json", *sorted((exported / "participants").glob("*.json"))]:
        [study] = _of(path, "ResearchStudy").values()
        ref = study["principalInvestigator"]
        assert ref["display"] == "Dr. Test Lead"
        role = _of(path, "PractitionerRole")[ref["reference"]]
        assert role["code"] == [{"coding": [{"system": PARTY_ROLE, "code": "primary-investigator"}],
                                 "text": "Principal investigator"}]  # fmt: skip
        assert "organization" not in role and "location" not in role  # the protocol names no centre for it
        person = _of(path, "Practitioner")[role["practitioner"]["reference"]]
        assert person["name"] == [{"text": "Dr. Test Lead"}]
        assert person["qualification"] == [{"code": {"text": "MD"}}]
        assert person["telecom"] == [{"system": "email", "value": "lead@example.org"}]
        assert person["address"] == [{"city": "Ahvaz"}]


def test_a_centres_principal_investigator_is_a_practitioner_role_there(exported: Path) -> None:
    """Razi hospital's investigator works there (its Organization and Location) and is coded principal
    investigator; its responsible person keeps their own role; Golestan, which names no investigator, has none."""
    path = exported / "study.json"
    sites = {o["identifier"][0]["value"]: o["id"] for o in _of(path, "Organization").values() if "identifier" in o}
    roles = list(_of(path, "PractitionerRole").values())
    practitioners = _of(path, "Practitioner")
    investigators = [r for r in roles if r["code"][0].get("coding") and "organization" in r]
    [razi] = investigators
    assert razi["organization"] == {"reference": f"Organization/{sites['RAZ']}"}
    assert razi["location"] == [{"reference": f"Location/{sites['RAZ']}"}]
    assert razi["code"][0]["coding"] == [{"system": PARTY_ROLE, "code": "primary-investigator"}]
    assert practitioners[razi["practitioner"]["reference"]]["name"] == [{"text": "Dr. Razi Investigator"}]
    registry = [{"text": "Responsible person of the recruitment centre (trial registry)"}]
    responsible = {practitioners[r["practitioner"]["reference"]]["name"][0]["text"] for r in roles
                   if r["code"] == registry}  # fmt: skip
    assert responsible == {"Reza Khedri", "Mofid Husseinzadeh"}


def test_every_resource_is_valid_r4b_and_every_reference_resolves_in_its_bundle(exported: Path) -> None:
    for path in sorted(exported.rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert Bundle.model_validate_json(text).model_dump_json() == text, path.name
        entries = _entries(path)
        for resource in entries:
            assert json.loads(validate_resource(resource).model_dump_json()) == resource
        inside = {f"{r['resourceType']}/{r['id']}" for r in entries}
        assert len(inside) == len(entries), path.name
        dangling = {ref for r in entries for ref in _references(r)} - inside
        assert not dangling, (path.name, sorted(dangling))


def test_protocol_check_notes_the_visits_without_a_class_and_a_missing_investigator(tmp_path: Path) -> None:
    """The first protocol: days 1, 3 and 7 have no class and no investigator is declared, noted, not refused; the
    declared copy has only days 1 and 3 without a class and no investigator note."""
    result = CliRunner().invoke(app, ["protocol", "check", str(FIRST_PROTOCOL)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert ("Note: FHIR: 3 visits without encounter_class: their Encounters are sent with class unknown "
            "(v3 NullFlavor UNK): day1, day3, day7") in out  # fmt: skip
    assert "Note: FHIR: no principal investigator is declared" in out
    notes = export_gaps(load_protocol_text(mutated_text(_declared)).protocol)
    assert [n for n in notes if "encounter_class" in n] == [
        "FHIR: 2 visits without encounter_class: their Encounters are sent with class unknown (v3 NullFlavor "
        "UNK): day1, day3"
    ]
    assert not [n for n in notes if "principal investigator" in n]
    classes = {v.id: v.encounter_class for v in load_protocol(FIRST_PROTOCOL).protocol.visits}
    assert {k: (v.value if v else None) for k, v in classes.items()} == {
        "baseline": "IMP", "infusion": "IMP", "day1": None, "day3": None, "day7": None, "discharge": "IMP",
    }  # fmt: skip


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    ("mutate", "needle", "rule"),
    [
        (lambda d: d["visits"][0].__setitem__("encounter_class", "inpatient"), "encounter_class: inpatient",
         r"visits\[0\]\.encounter_class: Input should be 'AMB', 'EMER', .* or 'VR' \(got 'inpatient'\)"),
        (lambda d: d["visits"][0].__setitem__("encounter_class", "imp"), "encounter_class: imp",
         r"visits\[0\]\.encounter_class: Input should be 'AMB'"),
        (lambda d: d["sites"][1].__setitem__("principal_investigator", {"name": ""}), "name: ''",
         r"sites\[1\]\.principal_investigator\.name: String should have at least 1 character"),
        (lambda d: d["trial"].__setitem__("principal_investigator", {"name": "Dr. X", "role": "PI"}),
         "role: PI", r"trial\.principal_investigator\.role: unknown key 'role'"),
    ],
)  # fmt: skip
def test_a_malformed_class_or_investigator_is_refused_with_its_line(mutate: Any, needle: str, rule: str) -> None:
    text = mutated_text(mutate)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="broken.yaml")
    [problem] = caught.value.problems
    assert problem.line == _line(text, needle)
    assert re.search(rule, problem.render("broken.yaml")), problem.render("broken.yaml")
