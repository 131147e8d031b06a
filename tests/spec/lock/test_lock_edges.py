"""The lock readiness and soft locks through the command line, the API and the data manager's pages: the same
service, the same blockers, the same refusals."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.spec.web.conftest import confirm_of, csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.services.lock import lock_state
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

runner = CliRunner()


def _draft(trial: Trial, pid: str) -> None:
    """One blocker: a draft laboratory form at a visit held today (the baseline's other six forms not started)."""
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 40})


def test_the_cli_reports_refuses_overrides_and_soft_locks(trial: Trial, pid: str, tmp_path: Path) -> None:
    manager = ["--database", trial.url, "--as", username(Role.DATA_MANAGER)]
    ready = runner.invoke(cli, ["database", "readiness", *manager])
    assert ready.exit_code == 0 and "nothing blocks the lock over 1 participant(s)" in ready.output
    _draft(trial, pid)
    report = runner.invoke(cli, ["database", "readiness", "--site", "RAZ", *manager])
    assert report.exit_code == 1, report.output  # something blocks: the check found a problem
    assert "7 blockers (7 forms not ready) over 1 participant(s)" in report.output
    assert "RAZ: 7 forms not ready" in report.output
    assert f"RAZ {pid} baseline labs: draft; the lock policy needs signed" in report.output
    refused = runner.invoke(cli, ["database", "lock", "--reason", "final", *manager])
    assert refused.exit_code == 1 and "trial: 7 blockers (7 forms not ready) block the lock" in refused.output
    assert not lock_state(trial.engine).locked
    wrong = runner.invoke(cli, ["database", "lock", "--reason", "final", "--override", "--password-stdin", *manager],
                          input="nope\n")  # fmt: skip
    assert wrong.exit_code == 4 and "password: wrong password" in wrong.output
    locked = runner.invoke(cli, ["database", "lock", "--reason", "final", "--override", "--password-stdin", *manager],
                           input=PASSWORD + "\n")  # fmt: skip
    assert locked.exit_code == 0 and "Locked with 7 open blockers by data-manager on " in locked.output
    after = runner.invoke(cli, ["database", "readiness", *manager])  # walk 5: the blockers, never a lock to make
    assert after.output.startswith("The trial database is locked since ") and "by data-manager: final" in after.output
    statistician = ["--database", trial.url, "--as", username(Role.BLINDED_STATISTICIAN)]
    analysed = runner.invoke(cli, ["analyse", "--out", str(tmp_path / "report"), *statistician])
    assert analysed.exit_code == 0, analysed.output  # its printed summary starts with the banner, as the report does
    assert analysed.output.lstrip().startswith("Locked with 7 open blockers by data-manager on "), analysed.output
    assert runner.invoke(cli, ["database", "unlock", "--reason", "late data", *manager]).exit_code == 0
    soft = runner.invoke(cli, ["database", "soft-lock", "--participant", pid, "--reason", "interim", *manager])
    assert soft.exit_code == 0 and f"The participant {pid} is soft-locked." in soft.output
    status = runner.invoke(cli, ["database", "status", *manager])
    assert "The trial database is open." in status.output and f"Soft-locked participant {pid}" in status.output
    unlocked = runner.invoke(cli, ["database", "soft-unlock", "--participant", pid, "--reason", "done", *manager])
    assert unlocked.exit_code == 0, unlocked.output
    coordinator = ["--database", trial.url, "--as", username(Role.STUDY_COORDINATOR)]
    assert runner.invoke(cli, ["database", "readiness", *coordinator]).exit_code == 4  # a role that may not


def test_the_api_lists_blockers_refuses_with_409_and_soft_locks(trial: Trial, pid: str) -> None:
    def bearer(role: Role) -> dict[str, str]:
        token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
        return {"Authorization": f"Bearer {token}"}

    _draft(trial, pid)
    manager, coordinator = bearer(Role.DATA_MANAGER), bearer(Role.STUDY_COORDINATOR)
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        report = api.get("/api/v1/trial/readiness", headers=manager).json()
        assert report["ready"] is False and report["total"] == 7 and report["counts"]["form"] == 7
        assert report["by_site"] == {"RAZ": {"form": 7, "log": 0, "query": 0, "sae": 0, "visit": 0, "coherence": 0}}
        assert {"kind": "form", "site": "RAZ", "participant_id": pid, "where": "baseline labs",
                "detail": "draft; the lock policy needs signed"} in report["blockers"]  # fmt: skip
        assert api.get("/api/v1/trial/readiness?site=GOL", headers=manager).json()["ready"] is True
        assert api.get("/api/v1/trial/readiness", headers=coordinator).status_code == 403
        refused = api.post("/api/v1/trial/lock", headers=manager, json={"reason": "final"})
        assert refused.status_code == 409 and refused.json()["readiness"]["total"] == 7
        assert refused.json()["rule"].startswith("trial: 7 blockers (7 forms not ready) block the lock")
        wrong = api.post("/api/v1/trial/lock", headers=manager, json={"reason": "final", "password": "nope"})
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["rule"].startswith("password: wrong")
        locked = api.post("/api/v1/trial/lock", headers=manager, json={"reason": "final", "password": PASSWORD})
        assert locked.json()["open_blockers"] == 7 and locked.json()["banner"].startswith("Locked with 7 open")
        assert api.post("/api/v1/trial/unlock", headers=manager, json={"reason": "late data"}).status_code == 200
        soft = api.post("/api/v1/soft-locks", headers=manager, json={"site": "RAZ", "reason": "interim"})
        assert soft.status_code == 200 and soft.json()["target"] == "RAZ"
        assert [s["target"] for s in api.get("/api/v1/soft-locks", headers=coordinator).json()] == ["RAZ"]
        url = f"/api/v1/participants/{pid}/visits/baseline/forms/labs"
        saved = api.post(url, headers=coordinator, json={"values": {"crp": 41}})
        assert saved.status_code == 422 and saved.json()["errors"][0]["rule"].startswith("site: RAZ is soft-locked")
        lifted = api.post("/api/v1/soft-locks/unlock", headers=manager, json={"site": "RAZ", "reason": "done"})
        assert lifted.status_code == 200
        assert api.post(url, headers=coordinator, json={"values": {"crp": 41}}).status_code == 200


def test_the_readiness_page_and_the_lock_page(trial: Trial, pid: str) -> None:
    _draft(trial, pid)
    app = create_app(Settings(database_url=trial.url))
    with TestClient(app, follow_redirects=False) as client:
        manager = sign_in(client, Role.DATA_MANAGER)
        page = manager.get("/data-management/readiness")
        assert page.status_code == 200 and 'href="/data-management/readiness"' in page.text
        assert re.search(r'data-testid="count-form">7<', page.text)
        assert f'data-testid="blockers-{pid}"' in page.text and "draft; the lock policy needs signed" in page.text
        assert manager.get("/data-management/readiness?site=XYZ").status_code == 422
        lock_page = manager.get("/data-management")
        assert "Open blockers: 7" in lock_page.text
        token = csrf_of(lock_page.text)
        asked = manager.post("/data-management/lock", data={"csrf_token": token, "action": "lock", "reason": "x"})
        assert asked.status_code == 200 and 'name="password"' in asked.text  # the override's password, asked here
        confirm = confirm_of(asked.text)
        refused = manager.post("/data-management/lock", data={"csrf_token": token, "action": "lock", "reason": "x",
                                                                "confirm": confirm})  # fmt: skip
        assert refused.status_code == 422 and "7 blockers (7 forms not ready) block the lock" in refused.text
        assert not lock_state(trial.engine).locked
        soft = manager.post("/data-management/soft-lock", data={"csrf_token": token, "action": "lock",
                                                                 "scope": "participant", "target": pid,
                                                                 "reason": "interim analysis"})  # fmt: skip
        assert soft.status_code == 303
        assert f"<td>{pid}</td>" in manager.get("/data-management").text
        locked = manager.post("/data-management/lock", data={"csrf_token": token, "action": "lock", "reason": "final",
                                                               "password": PASSWORD, "confirm": confirm})  # fmt: skip
        assert locked.status_code == 303
        assert 'data-testid="lock-banner">Locked with 7 open blockers' in manager.get("/data-management").text
    with TestClient(app, follow_redirects=False) as client:
        monitor = sign_in(client, Role.MONITOR)
        assert monitor.get("/data-management").status_code == 403  # the lock page is the data manager's
        token = csrf_of(monitor.get("/data-management/readiness").text)
        monitor.post("/profile/preferences", data={"language": "fa", "csrf_token": token, "next": "/"})
        persian = monitor.get("/data-management/readiness")
        assert "آمادگی برای قفل" in persian.text and "<td>فرم</td>" in persian.text


def test_a_lock_reason_is_printed_as_typed_never_read_as_markup(trial: Trial, pid: str) -> None:
    """A reason is free text: brackets are printed as typed (Rich markup once dropped "[see note]" and crashed on
    "[/x]")."""
    manager = ["--database", trial.url, "--as", username(Role.DATA_MANAGER)]
    reason = "final [see note] [/x]"
    _draft(trial, pid)
    locked = runner.invoke(cli, ["database", "lock", "--reason", reason, "--override", "--password-stdin", *manager],
                           input=PASSWORD + "\n")  # fmt: skip
    assert locked.exit_code == 0, locked.output
    for command in ("status", "readiness"):
        shown = runner.invoke(cli, ["database", command, *manager], terminal_width=300)
        assert shown.exception is None or isinstance(shown.exception, SystemExit), shown.exception
        assert f"by data-manager: {reason}" in shown.output, shown.output
