"""The FHIR export against HL7's own FHIR R4 (4.0.1) JSON schema: every file and every resource valid.

The export validates a sample with the ``fhir.resources`` R4B models (``trialwright.exports.fhir_check``), and the
other FHIR specs validate every resource of their exports with those models. This spec checks the same files with
something that is not those models: the official ``fhir.schema.json`` of the R4 specification
(``tests/data/fhir-r4-4.0.1``, with its provenance and digest), a draft-06 schema, by jsonschema-rs's draft-06
validator (the library the Dataset-JSON spec uses).

A small simulated trial (12 screened) on SQLite and PostgreSQL, with a concomitant medication (and one removed)
and a medical history entry added to one participant, exported twice: blinded by the data manager and with arms by
the unblinded statistician, and a third time blinded with normal ranges declared on four fields (the first trial's
protocol declares none). Every file (a ``collection`` Bundle) is validated whole against the schema, and every
resource in it alone, against the schema and against its own type's definition. A copy of one bundle spoiled on
purpose (a Patient with a gender outside the code list and an element R4 does not have) fails, naming both.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.spec.logs.test_log_entries import HEPARIN
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.roles import Role
from trialwright.exports.fhir import FhirExporter
from trialwright.exports.fhir_check import validate_resource
from trialwright.protocol import Protocol, load_protocol
from trialwright.protocol.base import Range
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
    ranged: Path  # blinded, with the normal ranges of RANGES declared


#: Normal ranges declared for the reference-range spec (form.field: low, high; None an open end), in each field's
#: stored unit. FiO2 is stored as a fraction and sent in % (codes.fhir_ucum), so its range is sent as 21 to 50 %.
RANGES = {"labs.crp": (None, 5.0), "labs.tnf_alpha": (2.0, 8.1), "labs.lymphocytes": (1000.0, 4800.0),
          "vitals.fio2": (0.21, 0.5)}  # fmt: skip
SENT_IN_PERCENT = {"vitals.fio2"}
LOCAL = "https://trialwright.dev/fhir/CodeSystem/IRCT20190101042197N2"  # the trial's own code system (form.field)


def with_ranges(protocol: Protocol) -> Protocol:
    """The protocol with RANGES declared as the fields' normal_range."""
    forms = []
    for form in protocol.forms:
        fields = [f.model_copy(update={"normal_range": Range(min=RANGES[f"{form.id}.{f.id}"][0],
                                                             max=RANGES[f"{form.id}.{f.id}"][1])})
                  if f"{form.id}.{f.id}" in RANGES else f for f in form.fields]  # fmt: skip
        forms.append(form.model_copy(update={"fields": fields}))
    return protocol.model_copy(update={"forms": forms})


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
    (out / "ranged").mkdir()
    source = export_source(engine, manager)
    FhirExporter().write(dataclasses.replace(source, protocol=with_ranges(source.protocol)), out / "ranged")
    yield Exported(out / "blinded", out / "with_arms", pid, out / "ranged")
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


def test_a_declared_normal_range_is_the_observations_reference_range_in_the_value_s_unit(exported: Exported) -> None:
    """A field's declared normal_range is its Observations' referenceRange: low and high (an open end left out),
    each a quantity in the unit, system and code of the valueQuantity beside it, the value converted as the
    value is (FiO2 0.21 to 0.5 as 21 to 50 %); a field without a declared range has none, and the first trial's
    own exports (which declare none) carry none. Every ranged bundle is valid against the schema and is the text
    the fhir.resources R4B models write, and every Observation validates with them."""
    for folder in (exported.blinded, exported.with_arms):
        assert all('"referenceRange"' not in p.read_text(encoding="utf-8") for p in _files(folder))
    ranged: dict[str, int] = {}
    problems: list[str] = []
    for path in _files(exported.ranged / "participants"):
        text = path.read_text(encoding="utf-8")
        assert Bundle.model_validate_json(text).model_dump_json() == text, path.name
        bundle = json.loads(text)
        problems += [f"{path.name}: {e}" for e in _errors(_root(), bundle)]
        for entry in bundle["entry"]:
            o = entry["resource"]
            if o["resourceType"] != "Observation":
                continue
            validate_resource(o)
            problems += [f"{path.name} {o['id']}: {e}" for e in _errors(_definition("Observation"), o)]
            (ref,) = [c["code"] for c in o["code"]["coding"] if c["system"] == LOCAL]
            if ref not in RANGES or "valueQuantity" not in o:
                assert "referenceRange" not in o, (ref, o)
                continue
            unit = {k: o["valueQuantity"][k] for k in ("unit", "system", "code")}
            scale = Decimal(100) if ref in SENT_IN_PERCENT else Decimal(1)  # UCUM: 1 = 100 %
            (got,) = o["referenceRange"]
            ends = zip(("low", "high"), RANGES[ref], strict=True)
            expected = {end: Decimal(str(bound)) * scale for end, bound in ends if bound is not None}
            assert set(got) == set(expected), (ref, got)
            for end, value in expected.items():
                assert Decimal(str(got[end]["value"])) == value, (ref, got)
                assert {k: v for k, v in got[end].items() if k != "value"} == unit, (ref, got)
            ranged[ref] = ranged.get(ref, 0) + 1
    assert problems == []
    assert set(ranged) == set(RANGES) and min(ranged.values()) > 5, ranged
