"""The FHIR export: a study bundle and one bundle per participant, every file a FHIR collection Bundle that
parses back with the R4B models; every numeric laboratory and vital-sign value an Observation in its UCUM
unit, not-done values with a data-absent reason and censored values with a comparator; a pseudonymous Patient;
no arm anywhere in a blinded export, and with arms only each participant's own arm in its ResearchSubject.

A small simulated trial (16 screened) on SQLite and PostgreSQL: the exporter reads the form stream grouped by
participant in each database's order, so both run. After the simulation the study coordinator re-reports one
laboratory form: IL-6 not done, CRP below and TNF-alpha above the limit of quantification.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import Engine

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.roles import Role
from trialwright.exports import fhir, fhir_check
from trialwright.exports.base import FormRecord
from trialwright.exports.fhir import (
    LOINC_SYSTEM,
    UCUM_SYSTEM,
    FhirExporter,
    FhirExportError,
    FhirSample,
    validate_resource,
)
from trialwright.exports.fhir_check import Sampler
from trialwright.protocol import Protocol, ProtocolError, load_protocol, load_protocol_text
from trialwright.protocol.codes import loinc_check_digit, ucum_error
from trialwright.protocol.forms import FieldType
from trialwright.services.exports import ExportError, export_source, run_export
from trialwright.services.forms import save_form
from trialwright.services.screening import withdraw
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import UserView, get_user
from trialwright.store.engine import make_engine

KEY = b"a key the data manager keeps, 32b"
LOCAL = "https://trialwright.dev/fhir/CodeSystem/IRCT20190101042197N2"
VISIT_URL = "https://trialwright.dev/fhir/StructureDefinition/visit"
#: The re-reported laboratory values: as entered, and what the Observation must carry.
REPORTED = {
    "il6": {"not_done": "sample haemolysed"},
    "crp": {"below_lloq": 0.5},
    "tnf_alpha": {"above_uloq": 5000},
}

#: The specification of the units: each unit of the first protocol's exported fields, and the fields with no
#: unit, as UCUM codes (UCUM: mm[Hg], Cel, the {annotation} braces, unity 1, [pH]).
UCUM_OF = {
    "/min": "/min", "%": "%", "fraction": "1", "L/min": "L/min", "mmHg": "mm[Hg]", "°C": "Cel", "kg": "kg",
    "cm": "cm", "cmH2O": "cm[H2O]", "pg/mL": "pg/mL", "mg/L": "mg/L", "ug/mL FEU": "ug/mL{FEU}", "/uL": "/uL",
}  # fmt: skip
#: FiO2 is stored as a fraction (UCUM 1) and sent in LOINC's unit for 3150-0, % (the protocol's codes.fhir_ucum).
SENT_IN_PERCENT = {"vitals.fio2", "blood_gas.fio2"}
UCUM_UNITLESS = {"blood_gas.ph": "[pH]", "vitals.news2": "{score}", "vitals.priest_score": "{score}",
                 "blood_gas.sf_ratio": "1", "labs.cd4_cd8_ratio": "1"}  # fmt: skip

#: The first trial's LOINC codes, as checked when they were chosen (HL7 FHIR vital signs and US Core profiles,
#: laboratory catalogues, public LOINC tables; the protocol file says where each was checked); any other
#: numeric field is exported with the local code only.
FIRST_LOINC = {
    "vitals.resp_rate": ["9279-1"], "vitals.spo2": ["2708-6", "59408-5"], "vitals.oxygen_flow": ["3151-8"],
    "vitals.fio2": ["3150-0"], "vitals.systolic_bp": ["8480-6"], "vitals.pulse": ["8867-4"],
    "vitals.temperature": ["8310-5"], "demographics.weight": ["29463-7"], "demographics.height": ["8302-2"],
    "blood_gas.pao2": ["2703-7"], "blood_gas.paco2": ["2019-8"], "blood_gas.ph": ["2744-1"],
    "blood_gas.fio2": ["3150-0"], "labs.tnf_alpha": ["3074-2"], "labs.il6": ["26881-3"], "labs.crp": ["1988-5"],
    "labs.ddimer": ["48065-7"], "labs.lymphocytes": ["26474-7"], "labs.cd3_abs": ["8122-4"],
    "labs.cd3_pct": ["8124-0"], "labs.cd4_abs": ["24467-3"], "labs.cd4_pct": ["8123-2"],
    "labs.cd8_abs": ["14135-8"], "labs.cd8_pct": ["8101-8"], "labs.cd4_cd8_ratio": ["54218-3"],
}  # fmt: skip

#: ICH E2B outcome (as trialwright records it) -> FHIR R4 adverse-event-outcome.
OUTCOMES = {"recovered": "resolved", "recovering": "recovering", "not_recovered": "ongoing",
            "recovered_with_sequelae": "resolvedWithSequelae", "fatal": "fatal", "unknown": "unknown"}  # fmt: skip


@dataclass(frozen=True)
class Exported:
    """The trial and its two exports (blinded by the data manager, with arms by the unblinded statistician)."""

    engine: Engine
    blinded: Path
    unblinded: Path
    files: tuple[Path, ...]  # as run_export reported them
    progress: tuple[int, ...]
    edited: tuple[str, str]  # (participant, visit) of the re-reported laboratory form
    withdrawn: tuple[str, dt.date]  # a participant withdrawn from follow-up, and when


@pytest.fixture(scope="module")
def exported(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    engine = make_engine(module_database_url)
    init_trial(engine, load_protocol(FIRST_PROTOCOL))
    simulate(engine, FIRST_PROTOCOL, 16, seed=5)  # it makes one account per role, sim-<role>
    manager = who(engine, Role.DATA_MANAGER)
    source = export_source(engine, manager)
    left = {p.participant_id for p in source.participants() if p.withdrawals}
    lab = next(r for r in source.forms("labs") if r.participant_id not in left and r.state != "draft")
    save_form(engine, who(engine, Role.STUDY_COORDINATOR), lab.participant_id, lab.visit_id, "labs", REPORTED,
              reason="The laboratory re-reported the results")  # fmt: skip
    other = next(p for p in source.participants() if p.participant_id not in left | {lab.participant_id})
    on = other.enrolled_at.date() + dt.timedelta(days=5)
    withdraw(engine, who(engine, Role.STUDY_COORDINATOR), other.participant_id, scope="follow_up",
             cause="lost_to_follow_up", reason="moved away", withdrawn_on=on)  # fmt: skip
    out = tmp_path_factory.mktemp("fhir")
    seen: list[int] = []
    result = run_export(engine, manager, "fhir", out / "blinded", exporter=FhirExporter(), progress=seen.append)
    unblinded = out / "unblinded"
    unblinded.mkdir()
    statistician = export_source(engine, who(engine, Role.UNBLINDED_STATISTICIAN), with_arms=True)
    FhirExporter(key=KEY).write(statistician, unblinded)
    yield Exported(engine, out / "blinded", unblinded, result.files, tuple(seen), (lab.participant_id, lab.visit_id),
                   (other.participant_id, on))  # fmt: skip
    engine.dispose()


def who(engine: Engine, role: Role) -> UserView:
    """The simulation's account with this role."""
    user = get_user(engine, f"sim-{role.value.replace('_', '-')}")
    assert user is not None
    return user


def _bundle(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _resources(path: Path, kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in _bundle(path)["entry"] if e["resource"]["resourceType"] == kind]


def _observations(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Observations by (visit, form.field)."""
    found = {}
    for o in _resources(path, "Observation"):
        visit = next(x["valueCoding"]["code"] for x in o["extension"] if x["url"] == VISIT_URL)
        ref = next(c["code"] for c in o["code"]["coding"] if c["system"] == LOCAL)
        assert (visit, ref) not in found
        found[(visit, ref)] = o
    return found


def _numeric(protocol: Protocol, rec: FormRecord) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(form.field, field, stored value) of the lab and vital-sign numbers of one form record."""
    form = protocol.form(rec.form_id)
    for f in form.fields:
        ref = f"{form.id}.{f.id}"
        exported = form.id in {"vitals", "blood_gas", "labs"} or ref in {"demographics.weight", "demographics.height"}
        if exported and f.type in {FieldType.INTEGER, FieldType.DECIMAL} and rec.values.get(f.id):
            yield ref, f, dict(rec.values[f.id])


def _text(path: Path) -> str:
    return json.dumps(_bundle(path), ensure_ascii=False)


def test_every_file_is_a_collection_bundle_one_for_the_study_and_one_per_participant(exported: Exported) -> None:
    """Each file parses back with the R4B Bundle model; there is study.json and participants/<id>.json for
    every enrolled participant, and run_export recorded exactly these files."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    people = sorted(p.participant_id for p in source.participants())
    assert len(people) >= 5
    for folder in (exported.blinded, exported.unblinded):
        files = sorted(folder.rglob("*.json"))
        assert [f.relative_to(folder).as_posix() for f in files] == [
            *(f"participants/{p}.json" for p in people),
            "study.json",
        ]
        for path in files:
            bundle = Bundle.model_validate_json(path.read_text(encoding="utf-8"))
            assert bundle.type == "collection" and bundle.entry
    assert sorted(exported.files) == sorted(exported.blinded.rglob("*.json"))


def test_every_resource_of_both_exports_is_valid_r4b_and_written_as_the_models_write_it(exported: Exported) -> None:
    """The export validates only a sample with the R4B models; here every resource of both exports is
    validated (the model and the required bindings), and every file is exactly the text the R4B Bundle model
    writes for it (compact JSON, the specification's element order), so the plain JSON writer cannot drift."""
    kinds: dict[str, int] = {}
    for folder in (exported.blinded, exported.unblinded):
        for path in sorted(folder.rglob("*.json")):
            text = path.read_text(encoding="utf-8")
            assert Bundle.model_validate_json(text).model_dump_json() == text, path.name
            for entry in json.loads(text)["entry"]:
                resource = entry["resource"]
                model = validate_resource(resource)
                assert json.loads(model.model_dump_json()) == resource
                assert entry["fullUrl"].endswith(f"/{resource['resourceType']}/{resource['id']}")
                kinds[resource["resourceType"]] = kinds.get(resource["resourceType"], 0) + 1
    assert set(kinds) == {"ResearchStudy", "Organization", "Group", "Location", "Practitioner", "PractitionerRole",
                          "Patient", "ResearchSubject", "Consent", "RelatedPerson", "Encounter", "Observation",
                          "AdverseEvent"}  # fmt: skip
    assert kinds["Observation"] > 800  # both exports


def test_the_sample_is_bounded_whatever_the_size_of_the_trial(exported: Exported, tmp_path: Path) -> None:
    """Beyond the first of each type, at most ``most`` of each type (and of the bundles) are validated; in a trial
    of more than ``participants`` participants each draw's probability is the rate scaled by participants / N,
    so the sample stays what it would be at that size, spread over the whole trial."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    capped = FhirExporter(key=KEY, sample=FhirSample(first=2, rate=1, participants=None, most=3))
    capped.write(source, tmp_path)
    counts: dict[str, int] = {"Bundle": len(list(tmp_path.rglob("*.json"))) - 1}
    for path in (tmp_path / "participants").glob("*.json"):
        for entry in _bundle(path)["entry"]:
            kind = entry["resource"]["resourceType"]
            counts[kind] = counts.get(kind, 0) + 1
    study = {"Bundle": 1}  # the study's bundle: always validated whole, beside the participants' sample
    for entry in _bundle(tmp_path / "study.json")["entry"]:
        study[entry["resource"]["resourceType"]] = study.get(entry["resource"]["resourceType"], 0) + 1
    assert capped.validated == {kind: study.get(kind, 0) + min(n, 5) for kind, n in counts.items()}
    assert counts["Observation"] > 100

    # The rate scaled: 10,000 participants against a sample sized for 100 draw each resource with 0.5 x 1%.
    sampler = Sampler(FhirSample(first=0, rate=0.5, participants=100, most=None), participants=10_000)
    drawn = sum(sampler.drawn("Observation") for _ in range(100_000))
    assert 400 < drawn < 600  # 500 expected (binomial, sd 22)
    few = Sampler(FhirSample(first=0, rate=0.5, participants=100, most=None), participants=100)
    assert 4_500 < sum(few.drawn("Observation") for _ in range(10_000)) < 5_500  # a trial within the size: the rate
    for bad in ({"participants": 0}, {"most": -1}):
        with pytest.raises(FhirExportError, match="sample"):
            FhirSample(**bad)  # type: ignore[arg-type]


def _observation(participant: int, n: int) -> tuple[dict[str, Any], bytes]:
    """A minimal valid Observation of participant ``participant`` (its n-th), and its text as the model writes it."""
    data = {"resourceType": "Observation", "id": f"p{participant}-{n}", "status": "final", "code": {"text": "crp"}}
    return data, json.dumps(data, separators=(",", ":")).encode()


def test_the_sample_reaches_the_whole_trial_however_many_resources_each_participant_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """2,000 participants with 300 Observations each, a sample of at most 50 beyond the first 5: the candidates
    (rate x 1,000 / N each) far outnumber the 50 places, and the ones validated are a uniform sample of all of them,
    not the first 50 drawn: with the fixed seed some come from the last 10% of participants (about 5 expected), and
    never more than 5 + 50 are validated."""
    participants, each, most = 2_000, 300, 50
    sampler = Sampler(FhirSample(first=5, rate=0.5, seed=1, participants=1000, most=most), participants=participants)
    owners: list[int] = []  # the participant of each resource validated with its R4B model, in that order

    def check(data: Any) -> Any:
        owners.append(int(data["id"][1:].split("-")[0]))
        return validate_resource(data)

    monkeypatch.setattr(fhir_check, "validate_resource", check)
    data, text = _observation(0, 0)
    assert validate_resource(data).model_dump_json().encode() == text  # the text the check expects
    for p in range(participants):
        for n in range(each):
            if sampler.drawn("Observation"):
                data, text = _observation(p, n)
                sampler.validate(data, text)
    sampler.finish()
    assert sampler.seen == {"Observation": participants * each}
    assert sampler.validated == {"Observation": len(owners)} and len(owners) == 5 + most
    assert owners[:5] == [0] * 5  # the first five, validated as written
    assert max(owners) >= participants * 9 // 10  # the last 10% of participants are reached
    assert sum(o >= participants // 2 for o in owners[5:]) >= 10  # the second half is sampled (25 expected)
    for unsampled in (FhirSample(first=5, rate=0.5, participants=1000, most=0),):
        none_beyond = Sampler(unsampled, participants=participants)
        assert sum(none_beyond.drawn("Observation") for _ in range(1000)) == 5


def test_a_sampled_invalid_resource_in_the_reservoir_stops_the_export_at_its_end() -> None:
    """A candidate kept in the reservoir is validated when the export ends: an invalid one is refused then, named."""
    sampler = Sampler(FhirSample(first=0, rate=1, participants=None, most=3))
    bad = {"resourceType": "Observation", "id": "late", "status": "final", "code": {"text": "crp"},
           "effectiveDateTime": "2021-05-20T06:30+00:00"}  # fmt: skip
    assert sampler.drawn("Observation")
    sampler.validate(bad, b"{}")
    assert sampler.validated == {}
    with pytest.raises(FhirExportError, match=r"^Observation/late does not validate as FHIR R4B"):
        sampler.finish()


class _Spoiled(FhirExporter):
    """An exporter that spoils, on purpose, the Observation of one place (participant|visit|form.field)."""

    def __init__(self, place: str, spoil: dict[str, Any], sample: FhirSample) -> None:
        super().__init__(sample=sample)
        self.place, self.spoil = place, spoil

    def _observations(self, source: Any, study_id: str, rec: FormRecord, amended: Any) -> list[dict[str, Any]]:
        out = super()._observations(source, study_id, rec, amended)
        for obs in out:
            if obs["id"] == self.pseudonym("observation", self.place):
                obs.update(self.spoil)
        return out


def _places(exported: Exported) -> list[str]:
    """Each exported Observation's place, in the order of the export."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    return [f"{rec.participant_id}|{rec.visit_id}|{ref}" for rec in source.forms()
            for ref, _, stored in _numeric(source.protocol, rec)
            if stored.get("status") in {"value", "derived"}]  # fmt: skip


def test_an_invalid_resource_is_refused_by_the_sample_check_and_no_export_is_left(
    exported: Exported, tmp_path: Path
) -> None:
    """An Observation spoiled on purpose (a date-time without seconds: its bindings are right, the R4B model
        refuses it) stops the export with its resource type, id and the validation error, when it is among the
        first of its type, and when it is the last one and the sample takes every resource; the service leaves no
        folder. A sample that does not draw it does not see it: the draw is what the export checks (the study's
    resources, made from the protocol, are validated whatever the sample)."""
    manager = who(exported.engine, Role.DATA_MANAGER)
    places = _places(exported)
    spoil = {"effectiveDateTime": "2021-05-20T06:30+00:00"}
    for place, sample in [(places[0], FhirSample()), (places[-1], FhirSample(first=0, rate=1))]:
        exporter = _Spoiled(place, spoil, sample)
        oid = exporter.pseudonym("observation", place)
        with pytest.raises(
            FhirExportError,
            match=rf"(?s)^Observation/{oid} does not validate as FHIR R4B: .*effectiveDateTime.*spec regex",
        ):
            run_export(exported.engine, manager, "fhir", tmp_path / "out", exporter=exporter)
        assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    unseen = _Spoiled(places[-1], spoil, FhirSample(first=0, rate=0))
    unseen.write(export_source(exported.engine, manager), tmp_path)
    study = {"Bundle": 1}
    for entry in _bundle(tmp_path / "study.json")["entry"]:
        study[entry["resource"]["resourceType"]] = study.get(entry["resource"]["resourceType"], 0) + 1
    assert unseen.validated == study  # the study only
    assert study == {"Bundle": 1, "ResearchStudy": 1, "Organization": 3, "Group": 1, "Location": 2, "Practitioner": 2,
                     "PractitionerRole": 2}  # fmt: skip


def test_a_resource_not_written_as_its_model_writes_it_is_refused(exported: Exported, tmp_path: Path) -> None:
    """A sampled resource that validates but whose text is not the R4B model's (here an instant with +00:00
    where the model writes Z) stops the export: the files stay exactly what the model-built writer wrote."""
    place = _places(exported)[0]
    exporter = _Spoiled(place, {"issued": "2021-05-20T06:30:00+00:00"}, FhirSample())
    oid = exporter.pseudonym("observation", place)
    with pytest.raises(FhirExportError, match=rf"^Observation/{oid}: the text written is not its R4B serialization"):
        exporter.write(export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER)), tmp_path)


def test_the_sample_is_the_first_of_each_type_and_a_seeded_share_of_the_rest(
    exported: Exported, tmp_path: Path
) -> None:
    """The default sample validates the first 20 of each resource type and of the bundles, then about 1% of
    the rest, the same ones for the same seed; rate 1 validates every resource; a rate outside [0, 1] is refused."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    runs = []
    for name in ("a", "b"):
        exporter = FhirExporter(key=KEY)
        (tmp_path / name).mkdir()
        exporter.write(source, tmp_path / name)
        runs.append(exporter.validated)
    assert runs[0] == runs[1]
    files = sorted((tmp_path / "a").rglob("*.json"))
    counts: dict[str, int] = {"Bundle": len(files)}
    for path in files:
        for entry in _bundle(path)["entry"]:
            kind = entry["resource"]["resourceType"]
            counts[kind] = counts.get(kind, 0) + 1
    for kind, n in counts.items():
        assert min(n, 20) <= runs[0][kind] <= n, kind
    assert runs[0]["Observation"] < counts["Observation"] / 2
    everything = FhirExporter(key=KEY, sample=FhirSample(first=0, rate=1))
    (tmp_path / "c").mkdir()
    everything.write(source, tmp_path / "c")
    assert everything.validated == counts
    for bad in ({"rate": 1.5}, {"rate": -0.1}, {"first": -1}):
        with pytest.raises(FhirExportError, match="sample"):
            FhirSample(**bad)  # type: ignore[arg-type]


def test_the_study_is_the_registry_record_of_the_protocol(exported: Exported) -> None:
    """ResearchStudy: the registry ids, title, status, phase, ICD-10 condition, period and the protocol's arms;
    the sponsor as an Organization; the planned enrolment as a Group."""
    path = exported.blinded / "study.json"
    [study] = _resources(path, "ResearchStudy")
    assert study["identifier"][0] == {"use": "official", "type": {"text": "IRCT"}, "value": "IRCT20190101042197N2"}
    assert study["title"].startswith("Randomized, double-blind, placebo-controlled clinical trial")
    assert study["status"] == "closed-to-accrual"  # recruitment complete, no completion date recorded
    assert study["phase"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/research-study-phase", "code": "phase-1"}
    ]
    assert study["condition"][0]["coding"] == [
        {"system": "http://hl7.org/fhir/sid/icd-10", "code": "J80", "display": "Acute respiratory distress syndrome"}
    ]
    assert study["period"] == {"start": "2021-05-20", "end": "2021-09-22"}  # the expected recruitment dates
    assert "arm" not in study  # the data manager's export: no arm, not even the design's list
    [unblinded] = _resources(exported.unblinded / "study.json", "ResearchStudy")
    assert [a["name"] for a in unblinded["arm"]] == ["EXO", "PBO"]
    organizations = {f"Organization/{o['id']}": o for o in _resources(path, "Organization")}
    sponsor = organizations[study["sponsor"]["reference"]]
    assert sponsor["name"] == "Danesh Bonyan Company: Tarmim Avaye Baran"
    [planned] = _resources(path, "Group")
    assert planned["quantity"] == 30 and planned["actual"] is False
    assert study["enrollment"] == [{"reference": f"Group/{planned['id']}"}]


def test_every_lab_and_vital_number_is_an_observation_in_its_ucum_unit(exported: Exported) -> None:
    """Every stored number of the laboratory, blood gas and vital-sign forms (and weight and height) is one
    Observation: the LOINC code where the table has one, the local code form.field, the UCUM code of the
    protocol's unit, and the stored value exactly; nothing else is an Observation."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    protocol = source.protocol
    expected: dict[str, int] = {}
    for rec in source.forms():
        observations = _observations(exported.blinded / "participants" / f"{rec.participant_id}.json")
        for ref, f, stored in _numeric(protocol, rec):
            expected[rec.participant_id] = expected.get(rec.participant_id, 0) + 1
            o = observations[(rec.visit_id, ref)]
            loinc = [c["code"] for c in o["code"]["coding"] if c["system"] == LOINC_SYSTEM]
            assert loinc == FIRST_LOINC.get(ref, [])
            percent = ref in SENT_IN_PERCENT
            if "valueQuantity" in o:
                ucum = "%" if percent else UCUM_OF[f.unit] if f.unit else UCUM_UNITLESS[ref]
                assert (o["valueQuantity"]["system"], o["valueQuantity"]["code"]) == (UCUM_SYSTEM, ucum)
                assert o["valueQuantity"].get("unit") == ("%" if percent else f.unit)
            if stored["status"] in {"value", "derived"}:
                sent = Decimal(str(stored["value"])) * (100 if percent else 1)  # a fraction is 100 % (UCUM: % = 10^-2)
                assert Decimal(str(o["valueQuantity"]["value"])) == sent, (ref, o)
                assert "comparator" not in o["valueQuantity"] and "dataAbsentReason" not in o
            assert o["subject"]["reference"].startswith("Patient/")
    for path in (exported.blinded / "participants").glob("*.json"):
        assert len(_resources(path, "Observation")) == expected.get(path.stem, 0)
    assert sum(expected.values()) > 400


def test_not_done_values_carry_a_data_absent_reason_and_no_value(exported: Exported) -> None:
    """IL-6 recorded as not done: dataAbsentReason not-performed, no value; the reason (free text) stays out."""
    pid, visit = exported.edited
    path = exported.blinded / "participants" / f"{pid}.json"
    o = _observations(path)[(visit, "labs.il6")]
    assert o["dataAbsentReason"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed",
         "display": "Not Performed"}
    ]  # fmt: skip
    assert not [k for k in o if k.startswith("value")]
    assert "haemolysed" not in _text(path)


def test_values_beyond_the_limits_of_quantification_carry_a_comparator(exported: Exported) -> None:
    """CRP below the LLOQ: '<' with the limit in mg/L and interpretation off scale low; TNF-alpha above the
    ULOQ: '>' with the limit in pg/mL and off scale high. Never zero, never a bare limit."""
    pid, visit = exported.edited
    observations = _observations(exported.blinded / "participants" / f"{pid}.json")
    crp, tnf = observations[(visit, "labs.crp")], observations[(visit, "labs.tnf_alpha")]
    assert crp["valueQuantity"] == {"value": 0.5, "comparator": "<", "unit": "mg/L", "system": UCUM_SYSTEM,
                                    "code": "mg/L"}  # fmt: skip
    assert crp["interpretation"][0]["coding"][0]["code"] == "<"
    assert tnf["valueQuantity"] == {"value": 5000, "comparator": ">", "unit": "pg/mL", "system": UCUM_SYSTEM,
                                    "code": "pg/mL"}  # fmt: skip
    assert tnf["interpretation"][0]["coding"][0]["code"] == ">"


def test_status_follows_the_form_preliminary_final_amended(exported: Exported) -> None:
    """A draft form's values are preliminary; values typed on a form saved once are final; the values
    changed after the form was completed are amended."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    states: dict[str, set[str]] = {"preliminary": set(), "final": set()}
    for rec in source.forms():
        observations = _observations(exported.blinded / "participants" / f"{rec.participant_id}.json")
        for ref, f, _ in _numeric(source.protocol, rec):
            status = observations[(rec.visit_id, ref)]["status"]
            if rec.state == "draft":
                assert status == "preliminary"
                states["preliminary"].add(ref)
            elif rec.version == 1 and f.derived is None:
                assert status == "final", (rec, ref)
                states["final"].add(ref)
    assert states["preliminary"] and states["final"]
    pid, visit = exported.edited
    observations = _observations(exported.blinded / "participants" / f"{pid}.json")
    assert {observations[(visit, f"labs.{name}")]["status"] for name in REPORTED} == {"amended"}
    assert observations[(visit, "labs.lymphocytes")]["status"] == "final"  # untouched on the same form


def test_the_amended_values_do_not_depend_on_what_the_audit_pass_remembers(
    exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass over the audit trail that finds amended values parses each distinct detail once and remembers at
    most ``_DETAILS`` of them (memory stays bounded); forgetting them all at every new detail finds the same
    values, the re-reported laboratory values among them and no value of a form never changed."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    found = fhir._amended(source)
    pid, visit = exported.edited
    assert {(pid, visit, "labs", name) for name in REPORTED} <= found
    assert (pid, visit, "labs", "lymphocytes") not in found  # untouched on the same form
    monkeypatch.setattr(fhir, "_DETAILS", 1)
    assert fhir._amended(source) == found


def test_the_patient_is_pseudonymous(exported: Exported) -> None:
    """The Patient has a keyed-hash id and at most a gender: no name, identifier, birth date, address or
    telecom; no participant id, screening number or birth date appears anywhere in the bundle."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    births = {r.participant_id: r.values["birth_date"]["value"] for r in source.forms("demographics")
              if r.values.get("birth_date")}  # fmt: skip
    sexes = {r.participant_id: r.values["sex"]["value"] for r in source.forms("demographics") if r.values.get("sex")}
    assert births and sexes
    for p in source.participants():
        path = exported.blinded / "participants" / f"{p.participant_id}.json"
        [patient] = _resources(path, "Patient")
        assert set(patient) <= {"resourceType", "id", "gender"}
        assert patient.get("gender") == sexes.get(p.participant_id)
        text = _text(path)
        assert p.participant_id not in text and p.screening_number not in text
        assert p.participant_id not in patient["id"] and len(patient["id"]) == 32
        if p.participant_id in births:
            assert births[p.participant_id] not in text
        [subject] = _resources(path, "ResearchSubject")
        assert subject["individual"] == {"reference": f"Patient/{patient['id']}"}
        # With the same key, the same pseudonym (the statistician's export used KEY); else unlinkable.
        [keyed] = _resources(exported.unblinded / "participants" / f"{p.participant_id}.json", "Patient")
        assert keyed["id"] == FhirExporter(key=KEY).pseudonym("patient", p.participant_id) != patient["id"]


def test_the_research_subject_follows_enrolment_and_withdrawal(exported: Exported) -> None:
    """ResearchSubject: the study, the Patient, on-study from enrolment (randomized), withdrawn with the period
    ending on the date of withdrawal from follow-up."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    gone, on = exported.withdrawn
    for p in source.participants():
        [subject] = _resources(exported.blinded / "participants" / f"{p.participant_id}.json", "ResearchSubject")
        assert subject["study"] == {"reference": "ResearchStudy/IRCT20190101042197N2"}
        assert subject["period"]["start"].startswith(p.enrolled_at.date().isoformat())
        if p.participant_id == gone:
            assert (subject["status"], subject["period"]["end"]) == ("withdrawn", on.isoformat())
        elif not p.withdrawals:
            assert subject["status"] == "on-study" and "end" not in subject["period"]


def test_a_blinded_export_names_no_arm(exported: Exported) -> None:
    """No arm code or name of the protocol appears in any file of the data manager's export, not even the
    design's list of arms in study.json (the masking policy never shows a blinded user an arm's name)."""
    arms = load_protocol(FIRST_PROTOCOL).protocol.arms
    for path in (exported.blinded / "participants").glob("*.json"):
        text = _text(path)
        assert "assignedArm" not in text and "actualArm" not in text
        for arm in arms:
            assert arm.code not in text and arm.name not in text, (path.name, arm.code)
    study = _text(exported.blinded / "study.json")
    assert not [arm.code for arm in arms if re.search(rf"\b{arm.code}\b", study) or arm.name in study]
    with pytest.raises(ExportError, match="with_arms"):
        export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER), with_arms=True)


def test_with_arms_each_participants_arm_is_in_its_research_subject_only(exported: Exported) -> None:
    """The unblinded statistician's export puts the participant's own arm code in ResearchSubject.assignedArm
    and nowhere else: the rest of the bundle names no arm."""
    arms = load_protocol(FIRST_PROTOCOL).protocol.arms
    source = export_source(exported.engine, who(exported.engine, Role.UNBLINDED_STATISTICIAN), with_arms=True)
    allocated = {p.participant_id: p.arm for p in source.participants()}
    assert set(allocated.values()) == {"EXO", "PBO"}
    for pid, arm in allocated.items():
        bundle = _bundle(exported.unblinded / "participants" / f"{pid}.json")
        [subject] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ResearchSubject"]
        assert subject["assignedArm"] == arm and "actualArm" not in subject
        # The study in the bundle lists the protocol's arms (assignedArm names one of them), every arm alike.
        [study] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ResearchStudy"]
        assert [a["name"] for a in study["arm"]] == [a.code for a in arms]
        rest = json.dumps([e for e in bundle["entry"]
                           if e["resource"]["resourceType"] not in {"ResearchSubject", "ResearchStudy"}],
                          ensure_ascii=False)  # fmt: skip
        assert not [a.code for a in arms if a.code in rest or a.name in rest]


def test_adverse_events_are_actual_with_grade_seriousness_outcome_and_no_suspect(exported: Exported) -> None:
    """Each adverse event is an AdverseEvent of its participant: actual, the term as text, the CTCAE grade
    (extension and severity), seriousness, outcome and onset date; no suspectEntity, no narrative."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    events = list(source.events())
    assert events
    for e in events:
        path = exported.blinded / "participants" / f"{e.participant_id}.json"
        [patient] = _resources(path, "Patient")
        [ae] = [r for r in _resources(path, "AdverseEvent") if r["identifier"]["value"] == e.ae_number]
        assert ae["actuality"] == "actual" and ae["event"] == {"text": e.assessment["term"]}
        assert ae["subject"] == {"reference": f"Patient/{patient['id']}"}
        assert ae["date"] == e.assessment["onset"]
        grade = {x["url"]: x for x in ae["extension"][0]["extension"]}["grade"]["valueInteger"]
        assert grade == e.assessment["grade"]
        assert ae["severity"]["coding"][0]["code"] == {1: "mild", 2: "moderate"}.get(grade, "severe")
        assert ae["seriousness"]["coding"][0]["code"] == ("serious" if e.serious else "non-serious")
        assert ae["outcome"]["coding"][0]["code"] == OUTCOMES[e.assessment["outcome"]]
        assert "suspectEntity" not in ae
    written = [r for p in (exported.blinded / "participants").glob("*.json") for r in _resources(p, "AdverseEvent")]
    assert len(written) == len(events)


def test_progress_is_reported_per_form_record(exported: Exported) -> None:
    """progress(n) is called once per form record, counting up to the source's count."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    assert exported.progress == tuple(range(1, source.count() + 1))


def test_the_first_protocols_loinc_codes_are_checked() -> None:
    """The first protocol declares exactly the LOINC codes above, each on a numeric field with a valid mod-10
    check digit and a note of where it was checked; 3074-4, once proposed for TNF-alpha, is not a LOINC code."""
    protocol = load_protocol(FIRST_PROTOCOL).protocol
    declared = {}
    for form in protocol.forms:
        for f in form.fields:
            if f.codes and f.codes.loinc:
                assert f.type in {FieldType.INTEGER, FieldType.DECIMAL}
                declared[f"{form.id}.{f.id}"] = [c.code for c in f.codes.loinc]
                for entry in f.codes.loinc:
                    number, _, check = entry.code.partition("-")
                    assert loinc_check_digit(number) == int(check), entry.code
                    assert entry.display and entry.checked and len(entry.checked) > 20
    assert declared == FIRST_LOINC
    assert loinc_check_digit("3074") == 2  # TNF-alpha is 3074-2; 3074-4 fails the check


def test_the_first_protocol_declares_the_ucum_code_of_each_exported_unit() -> None:
    """Every field the first protocol exports as an Observation declares the UCUM code of its canonical unit,
    as the specification above has it; every UCUM code of both shipped protocols passes the UCUM grammar."""
    protocol = load_protocol(FIRST_PROTOCOL).protocol
    for form in protocol.forms:
        for f in form.fields:
            ref = f"{form.id}.{f.id}"
            if f.codes and f.codes.observation:
                assert f.codes.ucum == (UCUM_OF[f.unit] if f.unit else UCUM_UNITLESS[ref]), ref
    for path in sorted(FIRST_PROTOCOL.parent.glob("*.yaml")):
        if path.name.endswith(".simulation.yaml"):
            continue
        for form in load_protocol(path).protocol.forms:
            for f in form.fields:
                if f.codes and f.codes.ucum:
                    assert ucum_error(f.codes.ucum) is None


def test_an_invalid_ucum_code_is_refused_when_the_protocol_loads() -> None:
    """A declared UCUM code that is not UCUM (a space, as people write units) stops the protocol at load,
    naming the field and its line."""
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    old = "          ucum: mg/L\n"
    assert text.count(old) == 1
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text.replace(old, "          ucum: mg L\n"))
    (problem,) = caught.value.problems
    assert problem.path == "forms[3].fields[5].codes.ucum" and "UCUM code 'mg L'" in problem.message
    assert problem.line == text[: text.index(old)].count("\n") + 1


def test_a_resource_that_is_not_valid_fhir_is_refused() -> None:
    """Validation is the R4B model plus the required bindings and the Observation invariant it leaves out."""
    good = {"resourceType": "Observation", "id": "a1", "status": "final", "code": {"text": "CRP"},
            "valueQuantity": {"value": 3, "system": UCUM_SYSTEM, "code": "mg/L"}}  # fmt: skip
    assert validate_resource(good).status == "final"
    absent = {"dataAbsentReason": {"text": "not done"}}
    for bad, message in [
        ({**good, "status": "done"}, "status 'done' is not one of"),
        ({**good, **absent}, "obs-6"),
        ({**good, "id": "a_1"}, "does not validate as FHIR R4B"),
        ({**good, "effectiveDateTime": "2021-05-20T06:30+00:00"}, "does not validate as FHIR R4B"),
        ({"resourceType": "ResearchSubject", "id": "s", "status": "randomized", "study": {}, "individual": {}},
         "status 'randomized'"),
    ]:  # fmt: skip
        with pytest.raises(FhirExportError, match=message):
            validate_resource(bad)


def _references(value: Any) -> Iterator[str]:
    """Every ``reference`` anywhere in a resource."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                yield inner
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def test_every_bundle_is_self_contained(exported: Exported) -> None:
    """Each file's references (Type/id) all resolve to a resource inside the same bundle: a participant's bundle
    carries the study, its sponsor, the planned enrolment and the sites with it, so it reads on its own."""
    for folder in (exported.blinded, exported.unblinded):
        for path in sorted(folder.rglob("*.json")):
            entries = _bundle(path)["entry"]
            inside = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries}
            assert len(inside) == len(entries), path.name  # no resource twice
            dangling = {r for e in entries for r in _references(e["resource"])} - inside
            assert not dangling, (path.name, sorted(dangling))


def test_each_site_is_an_organization_and_a_location_with_its_responsible_person(exported: Exported) -> None:
    protocol = load_protocol(FIRST_PROTOCOL).protocol
    path = exported.blinded / "study.json"
    [study] = _resources(path, "ResearchStudy")
    locations = {f"Location/{r['id']}": r for r in _resources(path, "Location")}
    organizations = {f"Organization/{r['id']}": r for r in _resources(path, "Organization")}
    roles = _resources(path, "PractitionerRole")
    practitioners = {f"Practitioner/{r['id']}": r for r in _resources(path, "Practitioner")}
    assert [s["display"] for s in study["site"]] == [site.name for site in protocol.sites]
    for ref, site in zip((s["reference"] for s in study["site"]), protocol.sites, strict=True):
        location = locations[ref]
        organization = organizations[location["managingOrganization"]["reference"]]
        assert organization["identifier"][0]["value"] == site.code and organization["name"] == site.name
        assert location["address"]["city"] == site.address.city == "Ahvaz"
        [role] = [r for r in roles if r["location"] == [{"reference": ref}]]
        assert role["organization"]["reference"] == f"Organization/{organization['id']}"
        assert practitioners[role["practitioner"]["reference"]]["name"] == [{"text": site.responsible_person}]


def test_each_consent_is_a_consent_resource_by_the_participant_or_the_representative(exported: Exported) -> None:
    """One Consent per consented participant here (the simulation records one consent each; several:
    ``test_fhir_consents``): research scope, the time consent was given, given by the Patient or
    by a RelatedPerson (the legally authorised representative, no name), at the site's Organization; inactive
    once the participant withdrew from follow-up."""
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    kinds = set()
    for p in source.participants():
        path = exported.blinded / "participants" / f"{p.participant_id}.json"
        [patient] = _resources(path, "Patient")
        [consent] = _resources(path, "Consent")
        kinds.add(p.consent_given_by)
        assert consent["scope"]["coding"][0]["code"] == "research"
        assert consent["patient"] == {"reference": f"Patient/{patient['id']}"}
        assert p.consented_at is not None
        assert dt.datetime.fromisoformat(consent["dateTime"]) == p.consented_at
        [performer] = consent["performer"]
        if p.consent_given_by == "participant":
            assert performer == {"reference": f"Patient/{patient['id']}"} and not _resources(path, "RelatedPerson")
        else:
            [related] = _resources(path, "RelatedPerson")
            assert performer == {"reference": f"RelatedPerson/{related['id']}"}
            assert set(related) == {"resourceType", "id", "patient", "relationship"}  # no name, no contact
        [site] = [o for o in _resources(path, "Organization") if o.get("identifier", [{}])[0].get("value") == p.site]
        assert consent["organization"] == [{"reference": f"Organization/{site['id']}"}]
        left = {w[0] for w in p.withdrawals} & {"follow_up", "data_use"}
        assert consent["status"] == ("inactive" if left else "active")
    assert "participant" in kinds
    withdrawn, _ = exported.withdrawn
    [consent] = _resources(exported.blinded / "participants" / f"{withdrawn}.json", "Consent")
    assert consent["status"] == "inactive"


def test_each_visit_with_forms_is_an_encounter_its_observations_point_to(exported: Exported) -> None:
    source = export_source(exported.engine, who(exported.engine, Role.DATA_MANAGER))
    visits: dict[str, dict[str, list[FormRecord]]] = {}
    for rec in source.forms():
        visits.setdefault(rec.participant_id, {}).setdefault(rec.visit_id, []).append(rec)
    for pid, by_visit in visits.items():
        path = exported.blinded / "participants" / f"{pid}.json"
        encounters = {e["type"][0]["coding"][0]["code"]: e for e in _resources(path, "Encounter")}
        assert set(encounters) == set(by_visit), pid
        for visit_id, recs in by_visit.items():
            e = encounters[visit_id]
            assert e["status"] == ("in-progress" if any(r.state == "draft" for r in recs) else "finished")
            # The first protocol declares baseline, infusion and discharge inpatient (v3 ActCode IMP) and says
            # nothing of days 1, 3 and 7: those are unknown (v3 NullFlavor UNK), not guessed.
            assert e["class"]["code"] == ("IMP" if visit_id in {"baseline", "infusion", "discharge"} else "UNK")
            date = next((r.visit_date for r in recs if r.visit_date), None)
            assert e.get("period") == ({"start": date.isoformat()} if date else None)
        for o in _resources(path, "Observation"):
            visit = next(x["valueCoding"]["code"] for x in o["extension"] if x["url"] == VISIT_URL)
            assert o["encounter"] == {"reference": f"Encounter/{encounters[visit]['id']}"}


def test_a_unit_fhir_cannot_be_sent_in_is_refused_when_the_protocol_loads() -> None:
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    broken = text.replace('fhir_ucum: "%"', 'fhir_ucum: "mg"', 1)
    assert broken != text
    with pytest.raises(ProtocolError, match=r"fhir_ucum 'mg': the field's ucum '1' cannot be converted"):
        load_protocol_text(broken)
