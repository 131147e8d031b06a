"""Coding log entries on the pages, and the codings read on the participant page and in the API (both databases).

The coder (the role that codes adverse events) sees the log entries to code on ``/coding`` beside the AEs, and
codes one on its page as an AE is coded: a medication (a log written to CM) to a WHO ATC level-5 code, a medical
history entry (MH) to a MedDRA LLT found by searching, recoding only with a reason. The participant's log table
shows each entry's coding (ATC code and name; MedDRA PT and SOC) and the logs API answers it in typed fields.

| entry                         | coded to                  | shown                                                    |
|-------------------------------|---------------------------|----------------------------------------------------------|
| conmeds 1 (Enoxaparin)        | ATC Z01AB05 (fictional)   | ATC Z01AB05 Zorbaparin                                   |
| medical_history 1 (diabetes)  | MedDRA LLT 90000011       | PT Zorbic kidney injury (90000001), SOC Fictional kid... |
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.logs.fictional_atc import write_index
from tests.spec.logs.test_log_entries import HEPARIN
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.coding import load_meddra
from trialwright.services.logs import add_entry, list_entries
from trialwright.services.medication_coding import load_atc
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

PT = "PT: Zorbic kidney injury (90000001) · SOC: Fictional kidney disorders (90100001)"


def _cell(html: str, testid: str) -> str:
    at = html[html.index(f'data-testid="{testid}">') :]
    return at[at.index(">") + 1 : at.index("</td>")]


def test_the_coder_codes_log_entries_on_their_pages(trial: Trial, pid: str, tmp_path: Path) -> None:
    coder = who(trial, Role.CODER)
    load_atc(trial.engine, coder, write_index(tmp_path / "atc.csv"), "2026")
    load_meddra(trial.engine, coder, write_release(tmp_path / "MedAscii"), "27.1")
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    add_entry(trial.engine, coordinator, pid, "medical_history", {"condition": "Type 2 diabetes", "ongoing": True})
    conmeds, history = f"/coding/logs/{pid}/conmeds/1", f"/coding/logs/{pid}/medical_history/1"
    app = create_app(Settings(database_url=trial.url))
    with TestClient(app, follow_redirects=False) as other:
        sign_in(other, Role.STUDY_COORDINATOR)
        assert other.get(conmeds).status_code == 403  # only the coder codes
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, Role.CODER)
        listed = client.get("/coding").text
        assert listed.count('data-testid="log-to-code-row"') == 2
        assert f'href="{conmeds}"' in listed and f'href="{history}"' in listed
        page = client.get(conmeds).text
        assert "Enoxaparin" in page and 'name="atc"' in page
        csrf = csrf_of(page)
        wrong = client.post(conmeds, data={"csrf_token": csrf, "atc": "Z01AB"})
        assert wrong.status_code == 422 and "Z01AB is a level 4 code" in wrong.text
        assert client.post(conmeds, data={"csrf_token": csrf, "atc": "z01ab05"}).status_code == 303
        assert "Z01AB05 Zorbaparin" in client.get(conmeds).text
        unexplained = client.post(conmeds, data={"csrf_token": csrf, "atc": "Z02BE01"})
        assert unexplained.status_code == 422 and "recoding needs a reason" in unexplained.text
        found = client.get(history, params={"q": "zorbic"}).text
        assert found.count('data-testid="llt-match"') == 2 and "Acute zorbic kidney (90000011)" in found
        coded = client.post(history, data={"csrf_token": csrf, "q": "zorbic", "llt": "90000011"})
        assert coded.status_code == 303, coded.text
        assert client.get("/coding").text.count('data-testid="log-to-code-row"') == 0
    with TestClient(app, follow_redirects=False) as reader:
        sign_in(reader, Role.MONITOR)
        html = reader.get(f"/participants/{pid}").text
        assert _cell(html, "coding-conmeds-1") == "ATC Z01AB05 Zorbaparin"
        assert _cell(html, "coding-medical_history-1") == PT
    coded_entries = audit.entries(trial.engine, action_prefix="log.coded")
    assert {(e.form, e.actor) for e in coded_entries} == {("conmeds", username(Role.CODER)),
                                                          ("medical_history", username(Role.CODER))}  # fmt: skip
    (entry,) = list_entries(trial.engine, coordinator, pid, "medical_history")
    assert entry.coding is not None and (entry.coding.pt, entry.coding.soc) == (
        ("90000001", "Zorbic kidney injury"), ("90100001", "Fictional kidney disorders"))  # fmt: skip


def test_the_logs_api_answers_the_coding_in_typed_fields(trial: Trial, pid: str, tmp_path: Path) -> None:
    from trialwright.services.medication_coding import code_history, code_medication

    coder = who(trial, Role.CODER)
    load_atc(trial.engine, coder, write_index(tmp_path / "atc.csv"), "2026")
    load_meddra(trial.engine, coder, write_release(tmp_path / "MedAscii"), "27.1")
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    add_entry(trial.engine, coordinator, pid, "medical_history", {"condition": "Type 2 diabetes", "ongoing": True})
    code_medication(trial.engine, coder, pid, "conmeds", 1, "Z01AB05")
    code_history(trial.engine, coder, pid, "medical_history", 1, 90000011)
    token, _ = issue_token(trial.engine, username(Role.MONITOR), name="t", actor="test")
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        (med,) = api.get(f"/api/v1/participants/{pid}/logs/conmeds", headers=auth).json()
        (hist,) = api.get(f"/api/v1/participants/{pid}/logs/medical_history", headers=auth).json()
        schema = api.get("/openapi.json").json()["components"]["schemas"]["LogCodingOut"]["properties"]
    assert {k: med["coding"][k] for k in ("dictionary", "code", "name", "pt_code", "soc_code")} == {
        "dictionary": "ATC", "code": "Z01AB05", "name": "Zorbaparin", "pt_code": None, "soc_code": None}  # fmt: skip
    assert {k: hist["coding"][k] for k in ("dictionary", "code", "pt_code", "pt_name", "soc_code", "soc_name")} == {
        "dictionary": "MedDRA", "code": "90000011", "pt_code": "90000001", "pt_name": "Zorbic kidney injury",
        "soc_code": "90100001", "soc_name": "Fictional kidney disorders"}  # fmt: skip
    assert {"pt_code", "pt_name", "soc_code", "soc_name"} <= set(schema)
