"""The coding in the exports (both databases): the SDTM AE dataset carries the coded MedDRA hierarchy (AEDECOD
is the PT, AELLT..AESOCCD the primary path; read back with pyreadstat), an event not coded has AEDECOD empty
(never the reported term copied) and is listed in the README; FHIR AdverseEvent carries the LLT and PT codings; the
tabular exports (CSV, Stata, ...) carry the same path in the adverse events table."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pyreadstat
from fhir.resources.R4B.bundle import Bundle

from tests.spec.coding.test_coding_service import event  # noqa: F401  (the fixture)
from tests.spec.safety.test_safety_service import sae
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.exports.fhir import validate_resource
from trialwright.services.coding import code_event
from trialwright.services.exports import run_export
from trialwright.services.safety import report_event

EXPECTED = {
    "AETERM": "Acute kidney injury",
    "AELLT": "Acute zorbic kidney", "AELLTCD": 90000011.0,
    "AEDECOD": "Zorbic kidney injury", "AEPTCD": 90000001.0,
    "AEHLT": "Fictional acute renal conditions", "AEHLTCD": 90300001.0,
    "AEHLGT": "Fictional renal failures", "AEHLGTCD": 90200001.0,
    "AEBODSYS": "Fictional kidney disorders", "AEBDSYCD": 90100001.0,
    "AESOC": "Fictional kidney disorders", "AESOCCD": 90100001.0,
}  # fmt: skip


def _coded_and_uncoded(trial: Trial, event: str) -> str:  # noqa: F811
    code_event(trial.engine, who(trial, Role.CODER), event, 90000011)
    other = report_event(trial.engine, who(trial, Role.INVESTIGATOR), _pid(trial, event), sae(term="Blorp fever"))
    return other.ae_number


def _pid(trial: Trial, ae_number: str) -> str:
    from trialwright.services.safety import get_event

    return get_event(trial.engine, who(trial, Role.INVESTIGATOR), ae_number).participant_id


def test_sdtm_ae_has_the_coded_hierarchy_and_leaves_uncoded_events_empty(
    trial: Trial, event: str, tmp_path: Path  # noqa: F811
) -> None:
    uncoded = _coded_and_uncoded(trial, event)
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "sdtm", tmp_path / "out")
    frame, meta = pyreadstat.read_xport(tmp_path / "out" / "sdtm" / "ae.xpt")
    rows = {r["AESPID"]: r for r in frame.to_dict("records")}
    coded = rows[event]
    assert {k: coded[k] for k in EXPECTED} == EXPECTED
    blank = rows[uncoded]
    assert blank["AETERM"] == "Blorp fever" and blank["AEDECOD"] == "" and blank["AESOC"] == ""
    assert math.isnan(blank["AEPTCD"]) and math.isnan(blank["AESOCCD"])
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["AEBDSYCD"] == "Body System or Organ Class Code" and labels["AELLT"] == "Lowest Level Term"
    readme = (tmp_path / "out" / "README.txt").read_text(encoding="utf-8")
    assert f"AE not coded to MedDRA (AEDECOD empty): {uncoded}" in readme
    assert "AE coded with MedDRA 27.1" in readme
    define = (tmp_path / "out" / "sdtm" / "define.csv").read_text(encoding="utf-8")
    assert "AESOCCD" in define and "the reported term: not coded" not in define


def test_fhir_adverse_event_carries_the_meddra_llt_and_pt_when_coded(
    trial: Trial, event: str, tmp_path: Path  # noqa: F811
) -> None:
    uncoded = _coded_and_uncoded(trial, event)
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "fhir", tmp_path / "out")
    found = {}
    for path in (tmp_path / "out").rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        assert Bundle.model_validate_json(text).model_dump_json() == text
        for entry in json.loads(text)["entry"]:
            if entry["resource"]["resourceType"] == "AdverseEvent":
                validate_resource(entry["resource"])
                found[entry["resource"]["identifier"]["value"]] = entry["resource"]["event"]
    assert found[event] == {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/mdr", "version": "27.1", "code": "90000011",
             "display": "Acute zorbic kidney"},
            {"system": "http://terminology.hl7.org/CodeSystem/mdr", "version": "27.1", "code": "90000001",
             "display": "Zorbic kidney injury"},
        ],
        "text": "Acute kidney injury",
    }  # fmt: skip
    assert found[uncoded] == {"text": "Blorp fever"}


TABULAR_EXPECTED = {
    "term": "Acute kidney injury", "meddra_version": "27.1",
    "llt_code": "90000011", "llt_name": "Acute zorbic kidney", "pt_code": "90000001", "pt_name": "Zorbic kidney injury",
    "hlt_code": "90300001", "hlt_name": "Fictional acute renal conditions",
    "hlgt_code": "90200001", "hlgt_name": "Fictional renal failures",
    "soc_code": "90100001", "soc_name": "Fictional kidney disorders",
}  # fmt: skip


def test_the_tabular_adverse_events_carry_the_coded_path_and_leave_uncoded_events_empty(
    trial: Trial, event: str, tmp_path: Path  # noqa: F811
) -> None:
    uncoded = _coded_and_uncoded(trial, event)
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "csv", tmp_path / "csv")
    with (tmp_path / "csv" / "adverse_events.csv").open(encoding="utf-8") as f:
        rows = {r["ae_number"]: r for r in csv.DictReader(f)}
    assert {k: rows[event][k] for k in TABULAR_EXPECTED} == TABULAR_EXPECTED
    assert rows[uncoded]["term"] == "Blorp fever"
    assert all(rows[uncoded][k] == "" for k in TABULAR_EXPECTED if k != "term")
    run_export(trial.engine, who(trial, Role.DATA_MANAGER), "stata", tmp_path / "stata")
    frame, _ = pyreadstat.read_dta(tmp_path / "stata" / "adverse_events.dta")
    coded = frame[frame["ae_number"] == event].to_dict("records")[0]
    assert {k: coded[k] for k in TABULAR_EXPECTED} == TABULAR_EXPECTED  # 8-digit codes kept exactly (text)
