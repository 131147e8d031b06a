"""Standard codes live in the protocol: a second trial's fields are exported to FHIR and SDTM exactly as its
protocol declares them (a lab in ng/mL, an HbA1c in mmol/mol), a field without codes is never coded from its
name or unit, a mistyped code is refused when the protocol loads, and ``protocol check`` says which exports
will be incomplete.

The codes used here: LOINC 33959-8 Procalcitonin [Mass/volume] in Serum or Plasma and 59261-8 Hemoglobin
A1c/Hemoglobin.total in Blood by IFCC protocol (mmol/mol), both with valid mod-10 check digits (loinc.org);
CDISC LBTESTCD PCT (Procalcitonin) and HBA1CHGB (Hemoglobin A1C/Hemoglobin), VSTESTCD SYSBP; UCUM ng/mL,
mmol/mol and mm[Hg] (UCUM specification, unitsofmeasure.org).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import FIRST_PROTOCOL
from tests.spec.protocol.conftest import mutated_text
from trialwright.cli.main import app
from trialwright.exports.fhir import LOINC_SYSTEM, SNOMED_SYSTEM, UCUM_SYSTEM, FhirExporter
from trialwright.exports.odm import OdmExporter
from trialwright.exports.sdtm import SdtmExporter
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.protocol.codes import export_gaps
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user
from trialwright.store.engine import make_engine

SECOND = FIRST_PROTOCOL.with_name("EXAMPLE-CAP-3ARM.yaml")

PCT = {
    "observation": "laboratory",
    "ucum": "ng/mL",
    "loinc": [{"code": "33959-8", "display": "Procalcitonin [Mass/volume] in Serum or Plasma"}],
    "sdtm": {"domain": "LB", "testcd": "PCT", "test": "Procalcitonin", "checked": "CDISC CT LBTESTCD",
             "category": "CHEMISTRY", "specimen": "SERUM"},
}
HBA1C = {
    "observation": "laboratory",
    "ucum": "mmol/mol",
    "loinc": [{"code": "59261-8", "display": "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol"}],
    "sdtm": {"domain": "LB", "testcd": "HBA1CHGB", "test": "Hemoglobin A1C/Hemoglobin"},
}
#: Systolic pressure with an SDTM test, a SNOMED CT concept and a CDASH name but no LOINC code: a FHIR
#: Observation with the SNOMED CT and the local code.
SYSBP = {
    "observation": "vital-signs",
    "ucum": "mm[Hg]",
    "cdash": "SYSBP_VSORRES",
    "snomed": [{"code": "271649006", "display": "Systolic blood pressure"}],
    "sdtm": {"domain": "VS", "testcd": "SYSBP", "test": "Systolic Blood Pressure", "units": {"mmHg": "mmHg"}},
}


def _field(doc: Any, form_id: str, field_id: str) -> Any:
    form = next(f for f in doc["forms"] if f["id"] == form_id)
    return next(f for f in form["fields"] if f["id"] == field_id)


def _second(doc: Any) -> None:
    """The second protocol stripped of its shipped codes, then with two declared labs and a declared systolic
    pressure; its CRP, pulse and the rest declare nothing."""
    for form in doc["forms"]:
        for f in form["fields"]:
            f.pop("codes", None)
    labs = next(f for f in doc["forms"] if f["id"] == "labs")
    labs["fields"].append({"id": "procalcitonin", "label": "Procalcitonin", "type": "decimal", "unit": "ng/mL",
                           "hard_limits": {"min": 0, "max": 200}, "decimals": 2, "codes": PCT})  # fmt: skip
    labs["fields"].append({"id": "hba1c", "label": "HbA1c", "type": "decimal", "unit": "mmol/mol",
                           "hard_limits": {"min": 20, "max": 150}, "decimals": 0, "codes": HBA1C})  # fmt: skip
    _field(doc, "vitals", "systolic_bp")["codes"] = SYSBP


@dataclass(frozen=True)
class Second:
    fhir: Path
    sdtm: Path
    odm: Path


@pytest.fixture(scope="module")
def second(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Second]:
    engine = make_engine(module_database_url)
    init_trial(engine, load_protocol_text(mutated_text(_second, SECOND), source="second.yaml"))
    simulate(engine, SECOND, 8, seed=3)  # the simulation plan of the shipped file; new fields drawn in limits
    manager = get_user(engine, "sim-data-manager")
    assert manager is not None
    source = export_source(engine, manager)
    out = tmp_path_factory.mktemp("codes")
    for folder in ("fhir", "sdtm", "odm"):
        (out / folder).mkdir()
    FhirExporter().write(source, out / "fhir")
    SdtmExporter().write(source, out / "sdtm")
    OdmExporter().write(source, out / "odm")
    yield Second(out / "fhir", out / "sdtm", out / "odm")
    engine.dispose()


def _observations(folder: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted((folder / "participants").glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        found += [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    return found


def test_fhir_codes_exactly_what_the_second_protocol_declares(second: Second) -> None:
    """Only fields declaring an observation are Observations; each carries its declared LOINC codes, the
    trial's local code and its declared UCUM code; nothing is coded from a field's name (its CRP and pulse,
    which the first trial codes, declare nothing here)."""
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for o in _observations(second.fhir):
        local = [c["code"] for c in o["code"]["coding"] if c["system"].endswith("/CodeSystem/EXAMPLE-CAP-3ARM")]
        by_ref.setdefault(local[0], []).append(o)
    assert set(by_ref) == {"labs.procalcitonin", "labs.hba1c", "vitals.systolic_bp"}
    expected = {"labs.procalcitonin": (["33959-8"], "ng/mL", "ng/mL", "laboratory"),
                "labs.hba1c": (["59261-8"], "mmol/mol", "mmol/mol", "laboratory"),
                "vitals.systolic_bp": ([], "mm[Hg]", "mmHg", "vital-signs")}  # fmt: skip
    for ref, (loinc, ucum, unit, category) in expected.items():
        assert any("valueQuantity" in o for o in by_ref[ref]), ref
        for o in by_ref[ref]:
            assert [c["code"] for c in o["code"]["coding"] if c["system"] == LOINC_SYSTEM] == loinc
            assert o["category"][0]["coding"][0]["code"] == category
            if "valueQuantity" in o:
                q = o["valueQuantity"]
                assert (q["system"], q["code"], q["unit"]) == (UCUM_SYSTEM, ucum, unit)
    for o in by_ref["vitals.systolic_bp"]:
        assert [(c["code"], c["display"]) for c in o["code"]["coding"] if c["system"] == SNOMED_SYSTEM] == [
            ("271649006", "Systolic blood pressure")]  # fmt: skip
    assert not any(c["system"] == SNOMED_SYSTEM for o in by_ref["labs.hba1c"] for c in o["code"]["coding"])
    displays = {c["display"] for o in by_ref["labs.hba1c"] for c in o["code"]["coding"]}
    assert "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol" in displays


def test_sdtm_holds_exactly_the_declared_tests(second: Second) -> None:
    """LB holds PCT in ng/mL and HBA1CHGB in mmol/mol, VS holds SYSBP; the undeclared CRP, white cells and
    pulse are in neither, and README.txt names them; testcodes.csv repeats the declaration."""
    lb = pd.read_csv(second.sdtm / "sdtm" / "lb.csv", dtype=str, keep_default_na=False)
    vs = pd.read_csv(second.sdtm / "sdtm" / "vs.csv", dtype=str, keep_default_na=False)
    assert set(lb.LBTESTCD) == {"PCT", "HBA1CHGB"} and set(vs.VSTESTCD) == {"SYSBP"}
    assert set(zip(lb.LBTESTCD, lb.LBTEST, lb.LBSTRESU, strict=True)) == {
        ("PCT", "Procalcitonin", "ng/mL"), ("HBA1CHGB", "Hemoglobin A1C/Hemoglobin", "mmol/mol")}  # fmt: skip
    assert set(vs.VSSTRESU) == {"mmHg"}
    assert set(zip(lb.LBTESTCD, lb.LBCAT, lb.LBSPEC, strict=True)) == {("PCT", "CHEMISTRY", "SERUM"),
                                                                       ("HBA1CHGB", "", "")}  # fmt: skip
    assert set(vs.VSCAT) == {""} and "VSSPEC" not in vs.columns
    with (second.sdtm / "sdtm" / "testcodes.csv").open(encoding="utf-8") as f:
        rows = [
            (r["domain"], r["testcd"], r["source"], r["protocol_unit"], r["terminology"]) for r in csv.DictReader(f)
        ]
    assert rows == [("LB", "PCT", "labs.procalcitonin", "ng/mL", "CDISC CT LBTESTCD"),
                    ("LB", "HBA1CHGB", "labs.hba1c", "mmol/mol", ""),
                    ("VS", "SYSBP", "vitals.systolic_bp", "mmHg", "")]  # fmt: skip
    readme = (second.sdtm / "README.txt").read_text(encoding="utf-8")
    line = next(x for x in readme.splitlines() if x.startswith("  - Not in LB/VS"))
    assert all(ref in line for ref in ("labs.crp", "labs.wbc", "vitals.pulse"))
    assert "labs.hba1c" not in line and "vitals.systolic_bp" not in line


def _refused(mutate: Any) -> list[str]:
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate, SECOND))
    return [f"{p.path}: {p.message} (line {p.line})" for p in caught.value.problems]


@pytest.mark.parametrize(
    ("codes", "words"),
    [
        ({**PCT, "loinc": [{"code": "33959-7", "display": "Procalcitonin"}]}, "check digit of 33959 is 8, not 7"),
        ({**PCT, "loinc": [{"code": "33959", "display": "Procalcitonin"}]}, "String should match pattern"),
        ({**PCT, "sdtm": {"domain": "LB", "testcd": "1PCT", "test": "Procalcitonin"}}, "not starting with a digit"),
        ({**PCT, "sdtm": {"domain": "LB", "testcd": "PROCALCITONIN", "test": "P"}}, "at most 8 characters"),
        ({**PCT, "sdtm": {"domain": "LB", "testcd": "pct", "test": "Procalcitonin"}}, "upper-case letters"),
        ({**PCT, "sdtm": {"domain": "MB", "testcd": "PCT", "test": "Procalcitonin"}}, "'LB' or 'VS'"),
        ({**PCT, "ucum": "ng mL"}, "UCUM code 'ng mL'"),
        ({**PCT, "ucum": "°C"}, "printable ASCII"),
        ({**PCT, "ucum": "ng//mL"}, "not a UCUM unit at position 4"),
        ({**PCT, "ucum": "ng/mLx"}, "not a UCUM unit at position 6"),
        ({**PCT, "ucum": "mg/L"}, "(1 ng/mL = 0.001 mg/L): the exports would write the stored values under"),
        ({**PCT, "ucum": "mmol/L"}, "is not the field's unit 'ng/mL' (not commensurable)"),
        ({**PCT, "ucum": None}, "needs the ucum code"),
        ({"ucum": "ng/mL", "loinc": PCT["loinc"]}, "loinc codes need observation"),
        (
            {**PCT, "sdtm": {"domain": "LB", "testcd": "PCT", "test": "P", "units": {"ug/L": "ug/L"}}},
            "ug/L is not a unit of this field",
        ),
        ({**PCT, "snomed": [{"code": "271649007", "display": "S"}]}, "Verhoeff check digit does not match"),
        ({**PCT, "snomed": [{"code": "271649113", "display": "S"}]}, "partition 11 is not a concept's"),
        ({**PCT, "cdash": "pct_lborres"}, "String should match pattern"),
        ({**PCT, "sdtm": {**PCT["sdtm"], "domain": "VS"}}, "sdtm.specimen is for LB tests only"),
        ({**PCT, "ndc": "123"}, "unknown key 'ndc'"),
    ],
)
def test_a_wrong_code_is_refused_when_the_protocol_loads(codes: dict[str, Any], words: str) -> None:
    """A mistyped LOINC code, a malformed SDTM test code, a UCUM code that is not UCUM, an Observation
    without its UCUM code: refused at load, naming the field's path and line."""

    def mutate(doc: Any) -> None:
        _second(doc)
        _field(doc, "labs", "procalcitonin")["codes"] = {k: v for k, v in codes.items() if v is not None}

    problems = _refused(mutate)
    assert any(p.startswith("forms[1].fields[4]") and words in p and "(line None)" not in p
               for p in problems), problems  # fmt: skip


def test_results_codes_are_only_for_numbers_and_names_for_any_field() -> None:
    """An SDTM result or an Observation quantity needs a number; a CDASH name and a SNOMED CT concept do not."""

    def mutate(doc: Any) -> None:
        _field(doc, "symptoms", "sputum")["codes"] = {"sdtm": {"domain": "LB", "testcd": "SPUTUM", "test": "S"}}

    assert any("codes.sdtm: only for integer and decimal fields" in p for p in _refused(mutate))

    def named(doc: Any) -> None:
        _field(doc, "symptoms", "sputum")["codes"] = {
            "cdash": "SPUTUM_CEOCCUR", "snomed": [{"code": "45710003", "display": "Sputum (substance)"}]}  # fmt: skip

    sputum = load_protocol_text(mutated_text(named, SECOND)).protocol.form("symptoms").field("sputum")
    assert sputum.codes is not None and sputum.codes.cdash == "SPUTUM_CEOCCUR"


def _with_unit(unit: str, ucum: str, alternatives: list[dict[str, Any]]) -> Any:
    def mutate(doc: Any) -> None:
        _second(doc)
        pct = _field(doc, "labs", "procalcitonin")
        pct["unit"], pct["alternative_units"], pct["codes"] = unit, alternatives, {**PCT, "ucum": ucum}
        pct["codes"]["sdtm"] = {**PCT["sdtm"], "units": {}}

    return mutate


def test_a_unit_written_as_ucum_is_checked_against_the_declared_code_by_the_ucum_definitions() -> None:
    """ng/mL declared as UCUM ug/L is the same unit (1 ng/mL = 1 ug/L by the UCUM definitions, worked out by
    the library, not here): accepted. An alternative unit that is UCUM must carry the factor UCUM defines:
    1 mg/dL = 10 000 ng/mL (mg/dL = 10^-3 g / 10^-1 L, ng/mL = 10^-9 g / 10^-3 L)."""
    ok = load_protocol_text(mutated_text(_with_unit("ng/mL", "ug/L", [{"unit": "mg/dL", "factor": 10000}]), SECOND))
    assert ok.protocol.form("labs").field("procalcitonin").codes.ucum == "ug/L"  # type: ignore[union-attr]
    refused = _refused(_with_unit("ng/mL", "ng/mL", [{"unit": "mg/dL", "factor": 1000}]))
    assert any("alternative unit mg/dL: factor 1000 and offset 0, but UCUM defines 1 mg/dL = 10000 ng/mL" in p
               for p in refused), refused  # fmt: skip
    # units no library can convert by definition are left to the protocol's note: mass to substance, non-UCUM
    mixed = [{"unit": "umol/L", "factor": 0.5, "note": "molar mass"}, {"unit": "ng/mL FEU", "factor": 2}]
    assert load_protocol_text(mutated_text(_with_unit("ng/mL", "ng/mL", mixed), SECOND))


def test_a_temperature_alternative_carries_ucums_factor_and_offset() -> None:
    """[degF] to Cel: factor 5/9 and offset -160/9 (-17.78), each to 3 significant digits."""

    def mutate(factor: float, offset: float) -> Any:
        def change(doc: Any) -> None:
            _second(doc)
            pct = _field(doc, "labs", "procalcitonin")
            pct.update(unit="Cel", hard_limits={"min": 30, "max": 43},
                       alternative_units=[{"unit": "[degF]", "factor": factor, "offset": offset}],
                       codes={"observation": "vital-signs", "ucum": "Cel"})  # fmt: skip

        return change

    assert load_protocol_text(mutated_text(mutate(0.5556, -17.78), SECOND))
    assert any("but UCUM defines 1 [degF] = 0.555556 Cel + -17.7778" in p for p in _refused(mutate(0.5556, -32)))
    assert any("but UCUM defines" in p for p in _refused(mutate(1.8, 32)))  # the Cel -> [degF] direction


def test_odm_names_each_declared_code_as_an_alias(second: Second) -> None:
    """ItemDef Alias elements carry what the protocol declares, and nothing for a field that declares nothing."""
    import xml.etree.ElementTree as ET

    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
    (path,) = second.odm.rglob("*.xml")
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    aliases = {item.get("OID"): [(a.get("Context"), a.get("Name")) for a in item.findall("odm:Alias", ns)]
               for item in root.iter(f"{{{ns['odm']}}}ItemDef")}  # fmt: skip
    systolic = next(v for k, v in aliases.items() if k and k.endswith("vitals.systolic_bp"))
    assert systolic == [("CDASH", "SYSBP_VSORRES"), ("SNOMED-CT", "271649006"), ("UCUM", "mm[Hg]"),
                        ("SDTM VSTESTCD", "SYSBP")]  # fmt: skip
    pct = next(v for k, v in aliases.items() if k and k.endswith("labs.procalcitonin"))
    assert pct == [("LOINC", "33959-8"), ("UCUM", "ng/mL"), ("SDTM LBTESTCD", "PCT")]
    assert next(v for k, v in aliases.items() if k and k.endswith("labs.crp")) == []


def test_protocol_check_notes_the_incomplete_exports(tmp_path: Path) -> None:
    """``protocol check`` passes and notes, field by field, what FHIR exports with the local code only, what
    is no Observation, and what SDTM leaves out of LB and VS."""
    path = tmp_path / "second.yaml"
    path.write_text(mutated_text(_second, SECOND), encoding="utf-8")
    result = CliRunner().invoke(app, ["protocol", "check", str(path)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Note: FHIR: 1 numeric field has no LOINC code and is exported with the local code only: " \
           "vitals.systolic_bp" in out  # fmt: skip
    assert "are not exported as Observations: " in out and "labs.crp" in out
    notes = export_gaps(load_protocol_text(path.read_text(encoding="utf-8")).protocol)
    sdtm = next(n for n in notes if n.startswith("SDTM: "))
    assert "left out of LB and VS" in sdtm and "labs.crp" in sdtm and "vitals.pulse" in sdtm
    assert "labs.hba1c" not in sdtm and "vitals.systolic_bp" not in sdtm


#: Valid UCUM expressions in the case-sensitive syntax, from the examples of the UCUM specification
#: (unitsofmeasure.org, sections 2-4: prefixes, exponents, 10*, brackets, annotations, parentheses) and the
#: units the shipped protocols declare; invalid ones as people write units, and an atom UCUM does not have.
UCUM_VALID = [
    *("m", "kg/m2", "m.s-2", "m/s2", "10*3/uL", "10*9/L", "mm[Hg]", "cm[H2O]", "[in_i]", "[pH]", "%", "{score}"),
    *("ug/mL{FEU}", "/min", "1", "(8.h)", "mmol/mol", "Cel", "[degF]", "a", "4.[pi].10*-7.N/A2"),
]
UCUM_INVALID = {
    **{"mm Hg": "printable ASCII", "°C": "printable ASCII", "": "printable ASCII", "mg//L": "position 4"},
    **{"mg/": "ends before it is complete", "(mg/L": "ends before", "mg/L)": "position 5 (')')"},
    **{"mg/Lx": "position 5 ('x')", "mmHg": "position", "IU/L": "position"},
}


def test_the_ucum_check_accepts_the_specifications_examples_and_refuses_the_rest() -> None:
    from trialwright.protocol.codes import ucum_error

    assert {code: ucum_error(code) for code in UCUM_VALID} == dict.fromkeys(UCUM_VALID)
    for code, words in UCUM_INVALID.items():
        assert words in (ucum_error(code) or ""), (code, ucum_error(code))


def test_protocol_check_notes_an_exposure_end_it_cannot_know() -> None:
    """Walk 5: RFXENDTC was empty for every subject with no word from protocol check (the SDTM README said so only
    after the export). A treatment with neither end_field nor single_administration is noted before the trial."""
    from tests.spec.protocol.conftest import mutated_text
    from trialwright.protocol import load_protocol_text
    from trialwright.protocol.codes import export_gaps

    def endless(doc: dict) -> None:  # type: ignore[type-arg]
        doc["analysis_plan"]["treatment"].pop("end_field")

    note = "SDTM DM: RFXENDTC and EX's EXENDTC are left empty"
    assert not [n for n in export_gaps(load_protocol_text(mutated_text(lambda doc: None)).protocol) if note in n]
    assert [n for n in export_gaps(load_protocol_text(mutated_text(endless)).protocol) if note in n]
