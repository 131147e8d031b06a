"""The FHIR export against HL7's own FHIR R4 (4.0.1) JSON schema: every file and every resource valid.

The export validates a sample with the ``fhir.resources`` R4B models (``trialwright.exports.fhir_check``), and the
other FHIR specs validate every resource of their exports with those models. This spec checks the same files with
something that is not those models: the official ``fhir.schema.json`` of the R4 specification
(``tests/data/fhir-r4-4.0.1``, with its provenance and digest), a draft-06 schema, by jsonschema-rs's draft-06
validator (the library the Dataset-JSON spec uses).

A small simulated trial (12 screened) on SQLite and PostgreSQL, with a concomitant medication (and one removed)
and a medical history entry added to one participant, exported twice: blinded by the data manager and with arms by
the unblinded statistician. Every file (a ``collection`` Bundle) is validated whole against the schema, and every
resource in it alone, against the schema and against its own type's definition. A copy of one bundle spoiled on
purpose (a Patient with a gender outside the code list and an element R4 does not have) fails, naming both.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from tests.spec.logs.test_log_entries import HEPARIN
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.roles import Role
from trialwright.exports.fhir import FhirExporter
from trialwright.protocol import load_protocol
from trialwright.services.exports import export_source, run_export
from trialwright.services.logs import add_entry, remove_entry
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import UserView, get_user
from trialwright.store.engine import make_engine

HL7 = Path(__file__).resolve().parents[2] / "data" / "fhir-r4-4.0.1"
#: As recorded in tests/data/fhir-r4-4.0.1/README.md.
DIGEST = "2230406893b4cf002a4ee1e5e2bbeca22ac5d2d4931b3e9ef7b9594bbc376a01"


@functools.cache
def _schema() -> dict[str, Any]:
    raw = (HL7 / "fhir.schema.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == DIGEST, "tests/data/fhir-r4-4.0.1/fhir.schema.json is not the copy"
    schema: dict[str, Any] = json.loads(raw)
    return schema


@functools.cache
def _root() -> jsonschema_rs.Draft6Validator:
    """The whole schema: any FHIR R4 resource (``oneOf`` the 146 resource types)."""
    return jsonschema_rs.Draft6Validator(_schema())


@functools.cache
def _definition(kind: str) -> jsonschema_rs.Draft6Validator:
    """One resource type's definition, so an error names the element rather than 'none of the types'."""
    return jsonschema_rs.Draft6Validator({"$ref": f"#/definitions/{kind}", "definitions": _schema()["definitions"]})


def _errors(validator: jsonschema_rs.Draft6Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message[:300]}" for e in
            validator.iter_errors(instance)]  # fmt: skip


@dataclass(frozen=True)
class Exported:
    blinded: Path
    with_arms: Path
    logged: str  # the participant with log entries


def who(engine: Any, role: Role) -> UserView:
    user = get_user(engine, f"sim-{role.value.replace('_', '-')}")
    assert user is not None
    return user


@pytest.fixture(scope="module")
def exported(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    engine = make_engine(module_database_url)
    init_trial(engine, load_protocol(FIRST_PROTOCOL))
    simulate(engine, FIRST_PROTOCOL, 12, seed=7)
    manager = who(engine, Role.DATA_MANAGER)
    source = export_source(engine, manager)
    pid = next(p.participant_id for p in source.participants() if not p.withdrawals)
    coordinator = who(engine, Role.STUDY_COORDINATOR)
    add_entry(engine, coordinator, pid, "conmeds", HEPARIN)
    add_entry(engine, coordinator, pid, "conmeds", {"medication": "Aspirin", "started_on": HEPARIN["started_on"],
                                                    "ongoing": True})  # fmt: skip
    remove_entry(engine, coordinator, pid, "conmeds", 2, reason="another patient's chart")
    add_entry(engine, coordinator, pid, "medical_history", {"condition": "Type 2 diabetes", "ongoing": True})
    out = tmp_path_factory.mktemp("fhir-schema")
    run_export(engine, manager, "fhir", out / "blinded")
    statistician = export_source(engine, who(engine, Role.UNBLINDED_STATISTICIAN), with_arms=True)
    (out / "with_arms").mkdir()
    FhirExporter().write(statistician, out / "with_arms")
    yield Exported(out / "blinded", out / "with_arms", pid)
    engine.dispose()


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.json"))


def test_the_schema_is_hl7s_r4_4_0_1_copy() -> None:
    """The copy shipped is the one the README records (its digest), of R4 (id 4.0) and of 4.0.1 (its
    corrections: 4.0.1 a known fhirVersion, Meta an open type), draft-06."""
    schema = _schema()
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0"
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    assert "4.0.1" in schema["definitions"]["StructureDefinition"]["properties"]["fhirVersion"]["enum"]
    assert "valueMeta" in schema["definitions"]["Extension"]["properties"]
    assert len(schema["discriminator"]["mapping"]) == len(schema["oneOf"]) == 146
    assert DIGEST in (HL7 / "README.md").read_text(encoding="utf-8")


@pytest.mark.covers("REG-11")
def test_every_file_and_every_resource_of_both_exports_is_valid_fhir_r4(exported: Exported) -> None:
    """Each bundle whole, then each of its resources alone (the whole schema and its type's definition): no
    errors. Both exports, and every resource type the export writes (logs included; with this seed the trial
    has an adverse event and a representative's consent)."""
    kinds: dict[str, int] = {}
    problems: list[str] = []
    for folder in (exported.blinded, exported.with_arms):
        files = _files(folder)
        assert folder / "study.json" in files and len(files) > 5
        for path in files:
            bundle = json.loads(path.read_text(encoding="utf-8"))
            assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
            problems += [f"{path.name}: {e}" for e in _errors(_root(), bundle)]
            for entry in bundle["entry"]:
                resource = entry["resource"]
                kind = resource["resourceType"]
                kinds[kind] = kinds.get(kind, 0) + 1
                where = f"{path.name} {kind}/{resource['id']}"
                problems += [f"{where}: {e}" for e in _errors(_root(), resource) + _errors(_definition(kind), resource)]
    assert problems == []
    assert set(kinds) == {"ResearchStudy", "Organization", "Group", "Location", "Practitioner", "PractitionerRole",
                          "Patient", "ResearchSubject", "Consent", "RelatedPerson", "Encounter", "Observation",
                          "AdverseEvent", "MedicationStatement", "Condition"}  # fmt: skip
    assert kinds["Observation"] > 300 and kinds["MedicationStatement"] == 2 * 2 and kinds["Condition"] == 2


def test_the_export_with_arms_carries_the_arms_the_schema_checks_and_the_blinded_one_none(exported: Exported) -> None:
    """The elements only the export with arms has (ResearchStudy.arm, ResearchSubject.assignedArm) are there, so
    the schema checked them; the blinded export has neither."""
    study = json.loads((exported.with_arms / "study.json").read_text(encoding="utf-8"))
    (research,) = [e["resource"] for e in study["entry"] if e["resource"]["resourceType"] == "ResearchStudy"]
    assert research["arm"] and _errors(_definition("ResearchStudy"), research) == []
    assigned = [e["resource"]["assignedArm"] for p in _files(exported.with_arms / "participants")
                for e in json.loads(p.read_text(encoding="utf-8"))["entry"]
                if e["resource"]["resourceType"] == "ResearchSubject" and "assignedArm" in e["resource"]]  # fmt: skip
    assert assigned
    blinded = "".join(p.read_text(encoding="utf-8") for p in _files(exported.blinded))
    assert '"assignedArm"' not in blinded and '"arm"' not in blinded


def test_a_spoiled_copy_of_a_bundle_fails_naming_the_element(exported: Exported) -> None:
    """A copy of the logged participant's bundle whose Patient has gender ``woman`` (not in R4's code list) and a
    ``birthdate`` element (R4 spells it ``birthDate``): the bundle fails the schema, and the Patient's definition
    names both; the untouched bundle passes."""
    path = exported.blinded / "participants" / f"{exported.logged}.json"
    bundle = json.loads(path.read_text(encoding="utf-8"))
    assert _errors(_root(), bundle) == []
    spoiled = copy.deepcopy(bundle)
    index, patient = next((i, e["resource"]) for i, e in enumerate(spoiled["entry"])
                          if e["resource"]["resourceType"] == "Patient")  # fmt: skip
    patient["gender"] = "woman"
    patient["birthdate"] = "1970-01-01"
    assert _errors(_root(), spoiled) != []
    assert _errors(_root(), spoiled["entry"][index]["resource"]) != []
    named = _errors(_definition("Patient"), patient)
    assert any(e.startswith("gender: ") and '"woman"' in e for e in named), named
    assert any("'birthdate' was unexpected" in e for e in named), named
    # A wrong type deep inside: an Observation's valueQuantity.value as text.
    spoiled = copy.deepcopy(bundle)
    observation = next(e["resource"] for e in spoiled["entry"] if e["resource"]["resourceType"] == "Observation"
                       and "valueQuantity" in e["resource"])  # fmt: skip
    observation["valueQuantity"]["value"] = str(observation["valueQuantity"]["value"])
    assert _errors(_root(), spoiled) != []
    assert any(e.startswith("valueQuantity/value: ") for e in _errors(_definition("Observation"), observation))
