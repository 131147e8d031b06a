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
from trialwright.exports.fhir import LOINC_SYSTEM, UCUM_SYSTEM, FhirExporter
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
    "sdtm": {"domain": "LB", "testcd": "PCT", "test": "Procalcitonin", "checked": "CDISC CT LBTESTCD"},
}
HBA1C = {
    "observation": "laboratory",
    "ucum": "mmol/mol",
    "loinc": [{"code": "59261-8", "display": "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol"}],
    "sdtm": {"domain": "LB", "testcd": "HBA1CHGB", "test": "Hemoglobin A1C/Hemoglobin"},
}
#: Systolic pressure with an SDTM test but no LOINC code: a FHIR Observation with the local code only.
SYSBP = {
    "observation": "vital-signs",
    "ucum": "mm[Hg]",
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


@pytest.fixture(scope="module")
def second(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Second]:
    engine = make_engine(module_database_url)
    init_trial(engine, load_protocol_text(mutated_text(_second, SECOND), source="second.yaml"))
    simulate(engine, SECOND, 8, seed=3)  # the simulation plan of the shipped file; new fields drawn in limits
    manager = get_user(engine, "sim-data-manager")
    assert manager is not None
    source = export_source(engine, manager)
    out = tmp_path_factory.mktemp("codes")
    for folder in ("fhir", "sdtm"):
        (out / folder).mkdir()
    FhirExporter().write(source, out / "fhir")
    SdtmExporter().write(source, out / "sdtm")
    yield Second(out / "fhir", out / "sdtm")
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
        ({**PCT, "ucum": "ng//mL"}, "no unit at position 4"),
        ({**PCT, "ucum": None}, "needs the ucum code"),
        ({"ucum": "ng/mL", "loinc": PCT["loinc"]}, "loinc codes need observation"),
        (
            {**PCT, "sdtm": {"domain": "LB", "testcd": "PCT", "test": "P", "units": {"ug/L": "ug/L"}}},
            "ug/L is not a unit of this field",
        ),
        ({**PCT, "snomed": "123"}, "unknown key 'snomed'"),
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


def test_codes_are_only_for_numbers() -> None:
    def mutate(doc: Any) -> None:
        _field(doc, "symptoms", "sputum")["codes"] = {"sdtm": {"domain": "LB", "testcd": "SPUTUM", "test": "S"}}

    assert any("only for integer and decimal fields" in p for p in _refused(mutate))


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
#: units the shipped protocols declare; invalid ones as people write units.
UCUM_VALID = [
    *("m", "kg/m2", "m.s-2", "m/s2", "10*3/uL", "10*9/L", "mm[Hg]", "cm[H2O]", "[in_i]", "[pH]", "%", "{score}"),
    *("ug/mL{FEU}", "/min", "1", "(8.h)", "mmol/mol", "Cel", "[degF]", "a", "4.[pi].10*-7.N/A2"),
]
UCUM_INVALID = {
    **{"mm Hg": "printable ASCII", "°C": "printable ASCII", "": "printable ASCII", "mg//L": "no unit"},
    **{"mg/": "no unit", "(mg/L": "not closed", "mg/L)": "unexpected ')'"},
}


def test_the_ucum_grammar_check_accepts_the_specifications_examples() -> None:
    from trialwright.protocol.codes import ucum_syntax_error

    assert {code: ucum_syntax_error(code) for code in UCUM_VALID} == dict.fromkeys(UCUM_VALID)
    for code, words in UCUM_INVALID.items():
        assert words in (ucum_syntax_error(code) or ""), code
