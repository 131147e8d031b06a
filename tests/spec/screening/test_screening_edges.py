"""Screening through the pages, the API and the CLI: the same rules, site scope, CSV, clear errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.spec.screening.test_screening_consent_enrolment import NOW, TODAY, TYPED
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import Trial, username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services.users import issue_token


def _form(values: dict[str, object]) -> dict[str, str]:
    return {k: ("yes" if v is True else "no" if v is False else str(v)) for k, v in values.items()}


def test_screen_consent_and_enrol_through_the_pages(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.STUDY_COORDINATOR)
    form = client.get("/screening/new")
    assert form.status_code == 200
    check = client.post("/screening/check", data={**_form(TYPED), "csrf_token": csrf_of(form.text)})
    # The live summary names what is missing by its label (the consent field, set from the consent record), and
    # shows the derived P/F ratio: PaO2 / FiO2, at the 1 decimal place the protocol declares for it
    pf = TYPED["pao2_mmhg"] / TYPED["fio2"]  # type: ignore[operator]
    assert check.json() == {"decision": "incomplete", "failed": [], "missing": ["Written informed consent given"],
                            "derived": {"pf_ratio": f"{pf:.1f}"}}  # fmt: skip
    created = client.post(
        "/screening/new",
        data={**_form(TYPED), "site": "RAZ", "screened_on": TODAY.isoformat(), "csrf_token": csrf_of(form.text)},
    )
    assert created.status_code == 303
    detail_url = created.headers["location"]
    page = client.get(detail_url)
    assert "RAZ-S0001" in page.text and 'data-testid="decision">incomplete' in page.text
    consent = client.post(
        f"{detail_url}/consent",
        data={
            "form_version": "1.0",
            "given_by": "representative",
            "representative_name": "Maryam Ahmadi",
            "representative_relationship": "daughter",
            "obtained_by": "Dr Khedri",
            "obtained_at": NOW.astimezone(ZoneInfo("Asia/Tehran")).strftime("%Y-%m-%dT%H:%M"),  # the site's clock
            "decision": "consent",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert consent.status_code == 303
    enrolled = client.post(f"{detail_url}/enrol", data={"csrf_token": csrf_of(page.text)})
    assert enrolled.status_code == 303
    enrolled = 'data-testid="participant-id">enrolled: <a href="/participants/RAZ-001">RAZ-001</a>'
    assert enrolled in client.get(detail_url).text
    assert 'data-testid="enrolled">1<' in client.get("/").text


def test_the_page_names_the_field_and_rule_and_keeps_the_entry(client: TestClient) -> None:
    sign_in(client, Role.STUDY_COORDINATOR)
    form = client.get("/screening/new")
    bad = client.post(
        "/screening/new",
        data={
            "age": "300",
            "fio2": "150",
            "fio2__unit": "%",
            "site": "RAZ",
            "screened_on": TODAY.isoformat(),
            "csrf_token": csrf_of(form.text),
        },
    )
    assert bad.status_code == 422
    # Said by the screening fields' labels, not their ids.
    assert "Age: 300 is outside the plausible range 0 to 120 years" in bad.text
    assert "FiO2 (fraction): 150 % is outside the plausible range 0.21 to 1" in bad.text
    assert 'value="300"' in bad.text  # nothing typed is lost


def test_readers_see_the_log_and_csv_writers_only_write(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.MONITOR)
    assert client.get("/screening").status_code == 200
    assert client.get("/screening/new").status_code == 403
    log = client.get("/screening.csv")
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/csv")
    assert next(csv.reader(io.StringIO(log.text)))[:4] == ["screening", "site", "screened_on", "decision"]


@pytest.mark.covers("REG-4")
def test_roles_without_need_cannot_read_the_log(client: TestClient) -> None:
    sign_in(client, Role.DSMB_MEMBER)
    assert client.get("/screening").status_code == 403


@pytest.mark.covers("REG-4")
def test_the_api_applies_the_same_rules_and_site_scope(client: TestClient, trial: Trial) -> None:
    token, _ = issue_token(trial.engine, username(Role.INVESTIGATOR), name="t", actor="t")
    headers = {"Authorization": f"Bearer {token}"}
    made = client.post(
        "/api/v1/screenings", headers=headers, json={"site": "RAZ", "screened_on": TODAY.isoformat(), "values": TYPED}
    )
    assert made.status_code == 201 and made.json()["decision"] == "incomplete"
    sid = made.json()["id"]
    consent = client.post(
        f"/api/v1/screenings/{sid}/consents",
        headers=headers,
        json={"form_version": "1.0", "given_by": "participant", "obtained_by": "Dr K", "obtained_at": NOW.isoformat()},
    )
    assert consent.status_code == 201 and consent.json()["decision"] == "eligible"
    enrolled = client.post(f"/api/v1/screenings/{sid}/enrol", headers=headers)
    assert enrolled.json()["participant_id"] == "RAZ-001"
    again = client.post(f"/api/v1/screenings/{sid}/enrol", headers=headers)
    assert again.status_code == 422 and "already enrolled" in again.json()["errors"][0]["rule"]
    other_site = client.post(
        "/api/v1/screenings", headers=headers, json={"site": "GOL", "screened_on": TODAY.isoformat(), "values": {}}
    )
    assert other_site.status_code == 422
    assert other_site.json()["errors"] == [
        {"field": "site", "rule": "site: you screen at RAZ, not at GOL", "message": None}
    ]
    bad = client.post(
        "/api/v1/screenings",
        headers=headers,
        json={"site": "RAZ", "screened_on": TODAY.isoformat(), "values": {"age": 300}},
    )
    assert bad.status_code == 422 and "age: 300 is outside" in bad.json()["errors"][0]["rule"]
    lost_from_treatment = client.post(
        "/api/v1/participants/RAZ-001/withdrawals",
        headers=headers,
        json={
            "scope": "intervention",
            "cause": "lost_to_follow_up",
            "reason": "gone",
            "withdrawn_on": TODAY.isoformat(),
        },
    )
    assert lost_from_treatment.status_code == 422
    assert (
        "cause: lost_to_follow_up applies only to the scope follow_up"
        in lost_from_treatment.json()["errors"][0]["rule"]
    )
    no_cause = client.post(
        "/api/v1/participants/RAZ-001/withdrawals",
        headers=headers,
        json={"scope": "follow_up", "cause": "moved", "reason": "moved away", "withdrawn_on": TODAY.isoformat()},
    )
    assert (
        no_cause.status_code == 422 and "cause: must be one of withdrew_consent" in no_cause.json()["errors"][0]["rule"]
    )
    withdrawn = client.post(
        "/api/v1/participants/RAZ-001/withdrawals",
        headers=headers,
        json={
            "scope": "follow_up",
            "cause": "lost_to_follow_up",
            "reason": "moved away",
            "withdrawn_on": TODAY.isoformat(),
        },
    )
    assert withdrawn.status_code == 201 and withdrawn.json()["withdrawn_scopes"] == ["follow_up"]


def test_the_cli_screens_consents_and_enrols(trial: Trial, tmp_path: Path) -> None:
    runner = CliRunner()
    db = ["--database", trial.url, "--as", username(Role.STUDY_COORDINATOR)]
    added = runner.invoke(cli, ["screening", "add", "--site", "RAZ", *db], input=json.dumps(TYPED))
    assert added.exit_code == 0, added.output
    assert "RAZ-S0001" in added.output and "missing: informed_consent" in added.output
    consent = tmp_path / "consent.json"
    consent.write_text(
        json.dumps(
            {
                "form_version": "1.0",
                "given_by": "representative",
                "representative_name": "Ali",
                "representative_relationship": "son",
                "obtained_by": "Dr K",
                "obtained_at": NOW.isoformat(),
            }
        )
    )
    # A screening is named as `screening add` printed it (RAZ-S0001) or by its number in the database.
    recorded = runner.invoke(cli, ["consent", "record", "RAZ-S0001", "--data", str(consent), *db])
    assert recorded.exit_code == 0 and "eligible" in recorded.output, recorded.output
    missing = runner.invoke(cli, ["screening", "show", "RAZ-S0009", *db])
    assert missing.exit_code == 3 and "no screening RAZ-S0009" in missing.output
    garbled = runner.invoke(cli, ["enrol", "S1", *db])
    assert garbled.exit_code == 1 and "neither a label like RAZ-S0001 nor a number" in garbled.output
    enrolled = runner.invoke(cli, ["enrol", "RAZ-S0001", *db])
    assert enrolled.exit_code == 0 and "RAZ-001" in enrolled.output
    second = runner.invoke(cli, ["enrol", "1", *db])
    assert second.exit_code == 1 and "already enrolled" in second.output and "Traceback" not in second.output
    bad = runner.invoke(cli, ["screening", "add", "--site", "RAZ", *db], input='{"age": 300}')
    assert bad.exit_code == 1 and "age: 300 is outside" in bad.output
    nobody = runner.invoke(cli, ["screening", "list", "--database", trial.url, "--as", "ghost"])
    assert nobody.exit_code == 4 and "no active user 'ghost'" in nobody.output
