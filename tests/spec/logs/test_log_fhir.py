"""Log entries in the FHIR export (both databases): each concomitant medication is a MedicationStatement, each
medical history entry a Condition, in the participant's bundle, every resource and the bundle valid R4B (the
``fhir.resources`` models) and written as the models write it.

| entry                                | resource            | what it says                                            |
|--------------------------------------|---------------------|---------------------------------------------------------|
| Enoxaparin 40 mg SC QD, ongoing      | MedicationStatement | active, ATC Z02BE01 once coded, dose 40 mg, route, QD   |
| Paracetamol 1 g oral, stopped        | MedicationStatement | completed, period start and end, dose 1 g               |
| Aspirin, removed                     | MedicationStatement | entered-in-error (never dropped)                        |
| Type 2 diabetes, ongoing             | Condition           | problem-list-item, active, MedDRA LLT and PT once coded |

Expected values are read here from the stored entries (``log_entries``) as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.logs.fictional_atc import write_index
from tests.spec.logs.test_log_exports import _entries
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.exports.fhir import FhirExporter, FhirSample, validate_resource
from trialwright.services.coding import load_meddra
from trialwright.services.exports import export_source
from trialwright.services.medication_coding import code_history, code_medication, load_atc
from trialwright.store.engine import session_scope
from trialwright.store.log_tables import log_entries


def test_medications_and_history_are_medication_statements_and_conditions(
    trial: Trial, pid: str, tmp_path: Path
) -> None:
    _entries(trial, pid)
    coder = who(trial, Role.CODER)
    load_atc(trial.engine, coder, write_index(tmp_path / "atc.csv"), "2026")
    code_medication(trial.engine, coder, pid, "conmeds", 1, "Z02BE01")
    load_meddra(trial.engine, coder, write_release(tmp_path / "MedAscii"), "27.1")
    code_history(trial.engine, coder, pid, "medical_history", 1, 90000011)
    out = tmp_path / "fhir"
    out.mkdir()
    exporter = FhirExporter(key=b"k" * 32, sample=FhirSample(first=0, rate=1))
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    exporter.write(source, out)
    assert exporter.validated["MedicationStatement"] == 3 and exporter.validated["Condition"] == 1

    text = (out / "participants" / f"{pid}.json").read_text(encoding="utf-8")
    assert Bundle.model_validate_json(text).model_dump_json() == text
    resources = [e["resource"] for e in json.loads(text)["entry"]]
    for r in resources:
        assert json.loads(validate_resource(r).model_dump_json()) == r
    (patient,) = [r for r in resources if r["resourceType"] == "Patient"]
    with session_scope(trial.engine) as session:
        stored = {(r.log_id, r.sequence): json.loads(r.entry_values) for r in session.execute(select(log_entries))}

    def value(log: str, seq: int, name: str) -> object:
        return stored[(log, seq)][name]["value"]

    statements = {r["medicationCodeableConcept"]["text"]: r for r in resources
                  if r["resourceType"] == "MedicationStatement"}  # fmt: skip
    assert set(statements) == {value("conmeds", n, "medication") for n in (1, 2, 3)}
    heparin = statements[value("conmeds", 1, "medication")]
    assert heparin["status"] == "active" and heparin["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert heparin["medicationCodeableConcept"]["coding"] == [
        {"system": "http://www.whocc.no/atc", "version": "2026", "code": "Z02BE01", "display": "Blorpamol"}]
    (dosage,) = heparin["dosage"]
    assert dosage["doseAndRate"] == [{"doseQuantity": {"value": value("conmeds", 1, "dose"),
                                                       "unit": value("conmeds", 1, "dose_unit")}}]  # fmt: skip
    assert (dosage["route"], dosage["timing"]) == ({"text": value("conmeds", 1, "route")},
                                                   {"code": {"text": value("conmeds", 1, "frequency")}})
    assert heparin["effectivePeriod"] == {"start": value("conmeds", 1, "started_on")}
    paracetamol = statements["Paracetamol"]
    assert paracetamol["status"] == "completed"
    assert paracetamol["effectivePeriod"] == {"start": value("conmeds", 2, "started_on"),
                                              "end": value("conmeds", 2, "stopped_on")}  # fmt: skip
    assert "coding" not in paracetamol["medicationCodeableConcept"]
    assert statements["Aspirin"]["status"] == "entered-in-error"

    (condition,) = [r for r in resources if r["resourceType"] == "Condition"]
    assert condition["code"]["text"] == value("medical_history", 1, "condition")
    assert condition["clinicalStatus"]["coding"][0]["code"] == "active"
    assert condition["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert [(c["code"], c["display"]) for c in condition["code"]["coding"]] == [
        ("90000011", "Acute zorbic kidney"), ("90000001", "Zorbic kidney injury")]
    assert condition["subject"] == {"reference": f"Patient/{patient['id']}"}
