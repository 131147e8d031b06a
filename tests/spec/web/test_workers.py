"""Several workers on one database: nothing a worker keeps in its memory may answer for the database.

Each app here has an engine of its own, as each worker process of a deployment does (docs/deployment.md). What
one worker changes (an amendment, a sign-out, a locked account) holds at once on the other. The live test with
two real worker processes is tests/integration/test_two_workers.py.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, username
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services.trial import init_trial
from trialwright.settings import Settings
from trialwright.store.engine import make_engine
from trialwright.web.app import create_app


def _worker(trial: Trial, **settings: int) -> TestClient:
    return TestClient(create_app(Settings(database_url=trial.url, **settings)), follow_redirects=False)  # type: ignore[arg-type]


def _amend(doc):  # type: ignore[no-untyped-def]
    doc["version"] = {"number": "3.0", "date": "2026-11-01"}
    doc["amendments"].append(
        {"number": 2, "date": "2026-11-01", "version": "3.0", "reason": "Add a third site after slow recruitment."}
    )


def test_an_amendment_holds_in_a_running_worker_from_its_next_request(trial: Trial) -> None:
    with _worker(trial) as worker:
        sign_in(worker, Role.MONITOR)
        assert "<dd>2.0 (" in worker.get("/").text
        cli = make_engine(trial.url)  # `trialwright init --protocol amended.yaml`, or another worker
        try:
            init_trial(cli, load_protocol_text(mutated_text(_amend)))
        finally:
            cli.dispose()
        assert "<dd>3.0 (" in worker.get("/").text


def test_a_sign_out_and_a_lockout_on_one_worker_hold_on_the_other(trial: Trial) -> None:
    with _worker(trial, lockout_threshold=2) as first, _worker(trial, lockout_threshold=2) as second:
        sign_in(first, Role.MONITOR)
        second.cookies.update(first.cookies)  # the browser's next request lands on the other worker
        assert second.get("/").status_code == 200
        page = second.get("/")
        assert second.post("/sign-out", data={"csrf_token": csrf_of(page.text)}).status_code == 303
        assert first.get("/").status_code == 303  # signed out there too: the session is the database's
        target = username(Role.INVESTIGATOR)
        for client in (first, second):  # one wrong password on each worker: the account's two in a row
            form = client.get("/sign-in")
            data = {"username": target, "password": "Wrong-guess-123", "csrf_token": csrf_of(form.text)}
            assert client.post("/sign-in", data=data).status_code == 401
        form = first.get("/sign-in")
        data = {"username": target, "password": PASSWORD, "csrf_token": csrf_of(form.text)}
        assert first.post("/sign-in", data=data).status_code != 303  # locked, whichever worker counted
