"""Exports through the REST API (issue 26 item 3): ``POST /api/v1/exports`` answers 202 with a job, written in the
background by the one export service, downloaded by its requester only.

A blinded role's export through the API holds no arm and is, file for file, what the exports page gives the same
role (the same service, the same masking); asking for arms is refused to it as the page refuses it. The roles that
may not export are refused every export route; another user's job is not found; a failed job says why, and so does
a job whose worker stopped. Requests and downloads are audited. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.spec.masking.test_export_leaks import _export, _leaks, _texts
from tests.spec.web.conftest import sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, username, who
from trialwright.domain.audit_masking import AUDITED
from trialwright.domain.roles import Role
from trialwright.exports import fhir
from trialwright.exports.registry import FORMATS
from trialwright.exports.tabular import CsvExporter
from trialwright.services import audit, clock
from trialwright.services import export_jobs as jobs
from trialwright.services.simulation import simulate
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.store.export_tables import export_jobs
from trialwright.web.app import create_app

#: A fixed time for both exports of a comparison: every format stamps the time it was taken.
TAKEN = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 14, seed=5)
    yield t
    t.engine.dispose()


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    return tmp_path / "exports"


@pytest.fixture
def client(trial: Trial, export_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=trial.url, export_dir=export_dir)), follow_redirects=False) as c:
        yield c


def _bearer(trial: Trial, role: Role) -> dict[str, str]:
    token, _ = issue_token(trial.engine, username(role), name="exports", actor="test")
    return {"Authorization": f"Bearer {token}"}


def _job(client: TestClient, headers: dict[str, str], fmt: str, with_arms: bool = False) -> dict[str, Any]:
    """Ask for an export (the test client runs the background task before it returns) and read the job back."""
    asked = client.post("/api/v1/exports", headers=headers, json={"format": fmt, "with_arms": with_arms})
    assert asked.status_code == 202, asked.text
    assert asked.json()["state"] == "queued"
    assert asked.headers["Location"] == f"/api/v1/exports/{asked.json()['id']}"
    job = client.get(asked.headers["Location"], headers=headers)
    assert job.status_code == 200
    return job.json()  # type: ignore[no-any-return]


def _members(data: bytes) -> dict[str, bytes]:
    """Each file of a zip by its path, byte for byte (the statistical packages' files, whose headers stamp the time
    they were written, as their libraries read them back)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        found = {name: z.read(name) for name in z.namelist()}
    decoded = dict(_texts(data))
    for name in found:
        if name.endswith((".xpt", ".dta", ".sav")):
            found[name] = decoded[name].encode()
    return found


def _same_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both exports taken at the same time, and FHIR's pseudonyms (keyed afresh by each export, so that two
    exports cannot be linked) under one key."""
    monkeypatch.setattr(clock, "now", lambda: TAKEN)
    monkeypatch.setattr(fhir, "secrets", SimpleNamespace(token_bytes=lambda n: b"k" * n))


@pytest.mark.covers("REG-5")
@pytest.mark.parametrize("role", [Role.DATA_MANAGER, Role.BLINDED_STATISTICIAN])
def test_a_blinded_role_gets_through_the_api_exactly_the_page_s_export(
    client: TestClient, trial: Trial, role: Role, monkeypatch: pytest.MonkeyPatch
) -> None:
    _same_run(monkeypatch)
    headers = _bearer(trial, role)
    sign_in(client, role)
    for fmt in ("csv", "sdtm", "odm", "fhir", "dataset-json"):
        job = _job(client, headers, fmt)
        assert job["state"] == "done" and job["error"] is None and job["with_arms"] is False, job
        got = client.get(f"/api/v1/exports/{job['id']}/download", headers=headers)
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == job["sha256"] and len(got.content) == job["size"]
        page = _export(client, fmt)
        assert page.status_code == 200
        assert got.headers["content-type"] == "application/zip" and job["media_type"] == "application/zip"
        assert _members(got.content) == _members(page.content)
        assert f'filename="{job["file_name"]}"' in got.headers["content-disposition"]
        for name, text in _texts(page.content):
            assert _leaks(text) == [], (fmt, name)


def test_the_odm_file_is_in_its_zip(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial, Role.DATA_MANAGER)
    odm = _job(client, headers, "odm")
    assert odm["file_name"].startswith("odm-") and odm["file_name"].endswith(".zip")
    got = client.get(f"/api/v1/exports/{odm['id']}/download", headers=headers)
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        (xml,) = [n for n in z.namelist() if n.endswith("/IRCT20190101042197N2.odm.xml")]
        assert z.read(xml).startswith(b"<?xml")


@pytest.mark.covers("REG-5")
def test_arms_are_refused_to_a_blinded_role_and_given_to_the_unblinded_statistician(
    client: TestClient, trial: Trial
) -> None:
    refused = client.post(
        "/api/v1/exports", headers=_bearer(trial, Role.DATA_MANAGER), json={"format": "csv", "with_arms": True}
    )
    assert refused.status_code == 403  # a matter of permission, as the unblinded analysis asked by a masked role
    rule = ("a data manager is masked in this trial (masking.blinding: double) and may not see the arms; only an "
            "unblinded statistician may export the arms")
    assert (refused.json()["field"], refused.json()["rule"]) == ("with_arms", rule)
    headers = _bearer(trial, Role.UNBLINDED_STATISTICIAN)
    job = _job(client, headers, "csv", with_arms=True)
    got = client.get(f"/api/v1/exports/{job['id']}/download", headers=headers)
    table = next(text for name, text in _texts(got.content) if name.endswith("participants.csv"))
    assert _leaks(table)  # the arms are there, so the scans above could see them


@pytest.mark.covers("REG-4")
@pytest.mark.parametrize("role", [Role.INVESTIGATOR, Role.MONITOR, Role.ADMINISTRATOR, Role.DSMB_MEMBER])
def test_a_role_that_may_not_export_is_refused_every_export_route(client: TestClient, trial: Trial, role: Role) -> None:
    job = _job(client, _bearer(trial, Role.DATA_MANAGER), "csv")
    headers = _bearer(trial, role)
    assert client.post("/api/v1/exports", headers=headers, json={"format": "csv"}).status_code == 403
    assert client.get("/api/v1/exports", headers=headers).status_code == 403
    for path in (f"/api/v1/exports/{job['id']}", f"/api/v1/exports/{job['id']}/download"):
        assert client.get(path, headers=headers).status_code == 403
    assert client.delete(f"/api/v1/exports/{job['id']}", headers=headers).status_code == 403


def test_another_user_s_job_is_not_found(client: TestClient, trial: Trial) -> None:
    mine = _bearer(trial, Role.UNBLINDED_STATISTICIAN)
    job = _job(client, mine, "csv", with_arms=True)
    other = _bearer(trial, Role.BLINDED_STATISTICIAN)
    for path in (f"/api/v1/exports/{job['id']}", f"/api/v1/exports/{job['id']}/download"):
        answer = client.get(path, headers=other)
        assert answer.status_code == 404 and answer.json()["detail"] == "no such export job"
    assert client.delete(f"/api/v1/exports/{job['id']}", headers=other).status_code == 404
    assert job["id"] not in client.get("/api/v1/exports", headers=other).text
    assert client.get(f"/api/v1/exports/{job['id']}/download", headers=mine).status_code == 200


def test_unknown_formats_and_options_are_refused(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial, Role.DATA_MANAGER)
    for body in ({"format": "ipd"}, {"format": "xlsx"}, {"format": "csv", "wide": True}, {}):
        answer = client.post("/api/v1/exports", headers=headers, json=body)
        assert answer.status_code == 422, body
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert sorted(schema["ExportFormat"]["enum"]) == sorted(FORMATS)


def test_a_failed_job_reports_its_error(client: TestClient, trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    from trialwright.exports.sdtm import SdtmExportError

    def refuse(*_: object, **__: object) -> list[Path]:
        raise SdtmExportError("sdtm.domains: the protocol declares no SDTM domain for form labs")

    monkeypatch.setattr(CsvExporter, "write", refuse)
    headers = _bearer(trial, Role.DATA_MANAGER)
    job = _job(client, headers, "csv")
    assert job["state"] == "failed" and job["finished_at"] is not None and job["file_name"] is None
    assert job["error"] == "sdtm.domains: the protocol declares no SDTM domain for form labs"
    refused = client.get(f"/api/v1/exports/{job['id']}/download", headers=headers)
    assert refused.status_code == 409 and refused.json()["field"] == "state"
    failed = audit.entries(trial.engine, action_prefix="export.failed")
    assert job["id"] in (failed[-1].new_value or "")


def test_a_job_whose_worker_stopped_is_failed_not_running_forever(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial, Role.DATA_MANAGER)
    job = _job(client, headers, "csv")
    long_ago = clock.now() - dt.timedelta(minutes=6)
    with session_scope(trial.engine) as session:  # as a worker that died while writing would leave it
        session.execute(
            update(export_jobs)
            .where(export_jobs.c.job_id == job["id"])
            .values(state="running", heartbeat_at=long_ago, finished_at=None, file_name=None)
        )
    seen = client.get(f"/api/v1/exports/{job['id']}", headers=headers).json()
    assert seen["state"] == "failed" and seen["error"].startswith("worker: the process running this export stopped")
    (stale,) = [e for e in audit.entries(trial.engine, action_prefix="export.failed") if job["id"] in e.new_value]
    assert stale.actor == "system" and username(Role.DATA_MANAGER) in stale.new_value  # the system, naming whose
    recent = clock.now() - dt.timedelta(minutes=4)
    with session_scope(trial.engine) as session:
        session.execute(
            update(export_jobs).where(export_jobs.c.job_id == job["id"]).values(state="running", heartbeat_at=recent)
        )
    assert client.get(f"/api/v1/exports/{job['id']}", headers=headers).json()["state"] == "running"


def test_requests_and_downloads_are_audited(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial, Role.BLINDED_STATISTICIAN)
    job = _job(client, headers, "parquet")
    client.get(f"/api/v1/exports/{job['id']}/download", headers=headers)
    who = username(Role.BLINDED_STATISTICIAN)
    for action in ("export.requested", "export.written", "export.done", "export.downloaded"):
        entries = [e for e in audit.entries(trial.engine, action_prefix=action) if e.actor == who]
        assert entries, action
        assert action in AUDITED
    (downloaded,) = [
        e for e in audit.entries(trial.engine, action_prefix="export.downloaded") if job["id"] in (e.new_value or "")
    ]
    assert job["sha256"] in (downloaded.new_value or "")
    (done,) = [e for e in audit.entries(trial.engine, action_prefix="export.done") if job["id"] in (e.new_value or "")]
    assert job["sha256"] in (done.new_value or "")  # the file the job row names is the one the trail names


def test_a_file_finished_after_its_job_ended_is_discarded_not_kept(
    client: TestClient, trial: Trial, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job failed as stale (or deleted) while its worker was still writing: the file is removed, audited."""
    original = CsvExporter.write

    def slow_worker(self: CsvExporter, source: Any, out: Path, *args: Any, **kwargs: Any) -> Any:
        with session_scope(trial.engine) as session:  # meanwhile a reader found the job stale and failed it
            session.execute(update(export_jobs).where(export_jobs.c.state == "running").values(state="failed"))
        return original(self, source, out, *args, **kwargs)

    monkeypatch.setattr(CsvExporter, "write", slow_worker)
    headers = _bearer(trial, Role.DATA_MANAGER)
    job = _job(client, headers, "csv")
    assert job["state"] == "failed" and job["file_name"] is None
    assert not (export_dir / job["id"]).exists()
    entries = audit.entries(trial.engine, action_prefix="export.discarded")
    (discarded,) = [e for e in entries if job["id"] in e.new_value]
    assert discarded.actor == "system" and "export.discarded" in AUDITED
    assert not [e for e in audit.entries(trial.engine, action_prefix="export.done") if job["id"] in e.new_value]


def test_the_caller_s_jobs_are_paged(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial, Role.DATA_MANAGER)
    before = client.get("/api/v1/exports", headers=headers).json()["total"]
    made = [_job(client, headers, "codebook")["id"] for _ in range(3)]
    first = client.get("/api/v1/exports?limit=2", headers=headers)
    assert first.status_code == 200 and first.json()["total"] == before + 3
    assert [j["id"] for j in first.json()["items"]] == made[::-1][:2]
    assert 'rel="next"' in first.headers["Link"]
    second = client.get("/api/v1/exports", headers=headers, params={"limit": 2, "cursor": first.json()["next"]})
    assert second.json()["items"][0]["id"] == made[0]


def test_a_job_is_deleted_on_request_and_after_the_retention(
    client: TestClient, trial: Trial, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = _bearer(trial, Role.DATA_MANAGER)
    job = _job(client, headers, "csv")
    assert (export_dir / job["id"] / job["file_name"]).is_file()
    assert client.delete(f"/api/v1/exports/{job['id']}", headers=headers).status_code == 204
    assert not (export_dir / job["id"]).exists()
    assert client.get(f"/api/v1/exports/{job['id']}", headers=headers).status_code == 404
    kept = _job(client, headers, "csv")
    expires = dt.datetime.fromisoformat(kept["expires_at"])
    assert expires == dt.datetime.fromisoformat(kept["finished_at"]) + dt.timedelta(hours=24)
    later = expires + dt.timedelta(seconds=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert kept["id"] not in client.get("/api/v1/exports", headers=headers).text
    assert not (export_dir / kept["id"]).exists()
    (expired,) = [
        e for e in audit.entries(trial.engine, action_prefix="export.expired") if kept["id"] in (e.new_value or "")
    ]
    assert expired.actor == "system"


def test_a_job_waiting_in_a_busy_worker_is_kept_alive_and_one_never_started_says_so(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = who(trial, Role.DATA_MANAGER)
    hour = dt.timedelta(hours=1)
    waiting = jobs.request_export(trial.engine, actor, "csv", with_arms=False, retention=hour)
    abandoned = jobs.request_export(trial.engine, actor, "csv", with_arms=False, retention=hour)
    long_ago = clock.now() - dt.timedelta(minutes=6)
    with session_scope(trial.engine) as session:  # both queued six minutes ago, neither started yet
        session.execute(
            update(export_jobs)
            .where(export_jobs.c.job_id.in_([waiting.id, abandoned.id]))
            .values(heartbeat_at=long_ago)
        )
    monkeypatch.setattr(jobs, "HEARTBEAT", dt.timedelta(milliseconds=20))
    stop = jobs.keep_alive(trial.engine, waiting.id)  # the worker that queued it is alive, only busy
    try:
        for _ in range(500):  # until its first beat (a few tens of milliseconds)
            with session_scope(trial.engine) as session:
                beat = session.execute(
                    select(export_jobs.c.heartbeat_at).where(export_jobs.c.job_id == waiting.id)
                ).scalar_one()
            if _aware(beat) > long_ago + dt.timedelta(minutes=1):
                break
            time.sleep(0.02)
        seen = jobs.get_job(trial.engine, actor, waiting.id, retention=hour)
        gone = jobs.get_job(trial.engine, actor, abandoned.id, retention=hour)
    finally:
        stop.set()
    assert seen.state == "queued"  # not failed as if its worker had died
    assert gone.state == "failed"  # nobody kept it alive: its worker stopped before starting it
    assert gone.error is not None and gone.error.startswith("worker: the export was never started")


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
