"""The safety API and `trialwright safety report|list|export|tables|submit|pause|decide`: the same rules as
the service, each refusal naming the field and the rule (both databases)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.spec.forms.conftest import NOW, TODAY
from tests.spec.safety.test_safety_service import sae
from tests.trialfixtures import PASSWORD, Trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

runner = CliRunner()


def _randomized(trial: Trial, pid: str) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=2)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)


def test_safety_through_the_api(trial: Trial, pid: str) -> None:
    _randomized(trial, pid)

    def bearer(role: Role) -> dict[str, str]:
        token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
        return {"Authorization": f"Bearer {token}"}

    inv, dsmb, assessor = bearer(Role.INVESTIGATOR), bearer(Role.DSMB_MEMBER), bearer(Role.OUTCOME_ASSESSOR)
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        bad = api.post(f"/api/v1/participants/{pid}/adverse-events", headers=inv,
                       json=sae(seriousness_criteria=[], grade=6))  # fmt: skip
        assert bad.status_code == 422 and bad.json()["errors"] == [
            {"field": "grade", "rule": "6 is outside the CTCAE v5.0 grades 1-5", "message": None},
            {
                "field": "seriousness_criteria",
                "rule": "a serious adverse event needs at least one ICH E2A criterion",
                "message": None,
            },
        ]
        assert api.get("/api/v1/adverse-events", headers=inv).json()["items"] == []  # nothing saved
        made = api.post(f"/api/v1/participants/{pid}/adverse-events", headers=inv, json=sae())
        assert made.status_code == 201 and made.json()["arm"] == "masked"
        assert [d["kind"] for d in made.json()["deadlines"]] == ["sae_to_sponsor", "susar_initial"]
        orphan = api.post("/api/v1/adverse-events/AE-0042/follow-ups", headers=inv,
                          json={"values": {"grade": 2, "aware_at": NOW.isoformat()}})  # fmt: skip
        assert orphan.status_code == 422 and orphan.json()["errors"][0]["field"] == "initial_report"
        later = api.post("/api/v1/adverse-events/AE-0001/follow-ups", headers=inv,
                         json={"values": {"outcome": "recovered", "end": TODAY.isoformat(),
                                          "aware_at": NOW.isoformat()}, "reason": "discharged"})  # fmt: skip
        assert later.status_code == 201 and len(later.json()["reports"]) == 2
        assert api.get("/api/v1/safety/pause", headers=inv).json()["active"] is True
        assert api.get("/api/v1/safety/tables", headers=inv).json()["grouping"] == "pooled"
        by_arm = api.get("/api/v1/safety/tables", headers=dsmb).json()
        assert by_arm["grouping"] == "by_arm" and len(by_arm["groups"]) == 2
        assert api.get("/api/v1/adverse-events/AE-0001", headers=dsmb).json()["arm"] in {"EXO", "PBO"}
        assert api.get("/api/v1/adverse-events", headers=assessor).status_code == 403
        decided = api.post("/api/v1/safety/decisions", headers=dsmb,
                           json={"decision": "resume", "reason": "reviewed", "password": PASSWORD})  # fmt: skip
        assert decided.status_code == 201 and decided.json()["active"] is False


def test_safety_from_the_command_line(trial: Trial, pid: str, tmp_path: Path) -> None:
    _randomized(trial, pid)
    db = ["--database", trial.url]
    report = tmp_path / "ae.json"
    report.write_text(json.dumps(sae(end=(TODAY - dt.timedelta(days=3)).isoformat())))
    inv = [*db, "--as", username(Role.INVESTIGATOR)]
    refused = runner.invoke(cli, ["safety", "report", pid, "--data", str(report), *inv])
    assert refused.exit_code == 1 and "nothing was saved" in refused.output and "end: " in refused.output
    report.write_text(json.dumps(sae()))
    made = runner.invoke(cli, ["safety", "report", pid, "--data", str(report), *inv])
    assert made.exit_code == 0, made.output
    assert "AE-0001" in made.output and "SUSAR" in made.output and "sae_to_sponsor: due" in made.output
    follow = tmp_path / "follow.json"
    follow.write_text(json.dumps({"outcome": "recovered", "end": TODAY.isoformat(), "aware_at": NOW.isoformat()}))
    followed = runner.invoke(cli, ["safety", "report", pid, "--follow-up", "AE-0001", "--data", str(follow), *inv])
    assert followed.exit_code == 0 and "2 report(s)" in followed.output
    submit = ["safety", "submit", "AE-0001", "--kind", "sae_to_sponsor", "--at", NOW.isoformat()]
    sent = runner.invoke(cli, [*submit, *inv])
    assert sent.exit_code == 0 and "sae_to_sponsor: due" in sent.output and ", met" in sent.output
    listed = runner.invoke(cli, ["safety", "list", "--serious", *[*db, "--as", username(Role.MONITOR)]])
    assert "AE-0001" in listed.output
    out = tmp_path / "listing.csv"
    exported = runner.invoke(cli, ["safety", "export", "--out", str(out), *[*db, "--as", username(Role.MONITOR)]])
    assert exported.exit_code == 0
    (row,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert row["ae_number"] == "AE-0001" and "arm" not in row and row["susar"] == "yes"
    tables = runner.invoke(cli, ["safety", "tables", *[*db, "--as", username(Role.DSMB_MEMBER)]])
    assert "by arm" in tables.output and "hUCMSC-Exos" in tables.output
    assert "paused" in runner.invoke(cli, ["safety", "pause", *db]).output
    dsmb = [*db, "--as", username(Role.DSMB_MEMBER)]
    decided = runner.invoke(cli, ["safety", "decide", "resume", "--reason", "reviewed", "--password-stdin", *dsmb],
                            input=PASSWORD + "\n")  # fmt: skip
    assert decided.exit_code == 0 and "randomization: open" in decided.output


def test_the_command_lines_submission_time_carries_its_offset_as_its_help_says(
    trial: Trial, pid: str, tmp_path: Path
) -> None:
    """`safety submit --at` takes a time with its UTC offset, as the consent and the report do in the CLI; its help
    and docs/safety.md's example say so, and a time without one is refused naming submitted_at (never read as the
    site's time behind the user's back, and never promised to be)."""
    helped = runner.invoke(cli, ["safety", "submit", "--help"], terminal_width=200)
    assert "UTC offset" in helped.output and "site time" not in helped.output
    example = next(line for line in Path("docs/safety.md").read_text(encoding="utf-8").splitlines()
                   if line.startswith("trialwright safety submit "))  # fmt: skip
    assert dt.datetime.fromisoformat(example.split("--at ")[1].split()[0]).utcoffset() is not None
    _randomized(trial, pid)
    db = ["--database", trial.url]
    inv = [*db, "--as", username(Role.INVESTIGATOR)]
    report = tmp_path / "ae.json"
    report.write_text(json.dumps(sae()))
    assert runner.invoke(cli, ["safety", "report", pid, "--data", str(report), *inv]).exit_code == 0
    submit = ["safety", "submit", "AE-0001", "--kind", "sae_to_sponsor", "--at"]
    naive = runner.invoke(cli, [*submit, NOW.replace(tzinfo=None).isoformat(timespec="minutes"), *inv])
    assert naive.exit_code == 1 and "submitted_at" in naive.output and "offset" in naive.output
    sent = runner.invoke(cli, [*submit, NOW.isoformat(), *inv])
    assert sent.exit_code == 0 and ", met" in sent.output
