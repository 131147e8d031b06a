"""The data access page: the data manager registers a written request and a publication, the administrator
signs the decision with their password, the unblinded statistician downloads the IPD package as a zip; each
step refused to the wrong person, with the rule named."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services.forms import lock_trial
from trialwright.services.sharing import access_window_opens
from trialwright.services.simulation import simulate
from trialwright.services.users import set_preferences

REQUEST = {
    "requester": "A. Researcher", "organisation": "Uni", "email": "a@uni.org", "purpose": "meta-analysis",
    "reasons": "An individual participant data meta-analysis of pilot trials.", "received_on": "2026-01-05",
}  # fmt: skip


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    """A small simulated trial (a publication is dated after its first randomization, in 2021), with sex alone as
    quasi-identifier so that its package passes k=3."""
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    t = make_trial(database_url, load_protocol_text(text.replace("[demographics.sex, age]", "[demographics.sex]")))
    simulate(t.engine, FIRST_PROTOCOL, 14, seed=8)
    yield t
    t.engine.dispose()


def _post(client: TestClient, path: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    page = client.get("/data-access")
    assert page.status_code == 200, page.text
    return client.post(path, data={**data, "csrf_token": csrf_of(page.text)})


def _row(client: TestClient, number: str) -> str:
    """The register's row of one request (the status filter above it names every status too)."""
    found = re.search(rf'<tr data-testid="request-{number}">.*?</tr>', client.get("/data-access").text, re.DOTALL)
    assert found, f"no row for {number}"
    return found.group(0)


def test_from_a_written_request_to_the_downloaded_package(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.DATA_MANAGER)
    assert "No publication is recorded yet" in client.get("/data-access").text
    assert _post(client, "/data-access/requests", REQUEST).status_code == 303
    refused = _post(client, "/data-access/requests", {**REQUEST, "reasons": "because"})
    assert refused.status_code == 422 and "reasons: the written request must give the reasons" in refused.text
    published = {"citation": "Khedri R, et al. A pilot trial. Trials 2022;23:101.", "published_on": "2022-01-10"}
    assert _post(client, "/data-access/publications", published).status_code == 303
    page = client.get("/data-access").text
    assert "DAR-0001" in page and "2022-07-10" in page and "Sign the decision" not in page

    client.cookies.clear()
    sign_in(client, Role.ADMINISTRATOR)
    unclear = _post(client, "/data-access/requests/DAR-0001/decision",
                    {"decision": "", "reason": "fine", "password": PASSWORD})  # fmt: skip
    assert unclear.status_code == 422 and "decision: choose approve or reject" in unclear.text
    wrong = _post(client, "/data-access/requests/DAR-0001/decision",
                  {"decision": "approve", "reason": "fine", "password": "nope"})  # fmt: skip
    assert wrong.status_code == 422 and "password: re-enter your own password" in wrong.text
    signed = _post(client, "/data-access/requests/DAR-0001/decision",
                   {"decision": "approve", "reason": "Meets the criteria", "password": PASSWORD})  # fmt: skip
    assert signed.status_code == 303 and "<td>approved</td>" in _row(client, "DAR-0001")

    client.cookies.clear()
    sign_in(client, Role.UNBLINDED_STATISTICIAN)
    early = _post(client, "/data-access/requests/DAR-0001/package", {})
    assert early.status_code == 422 and "database: the IPD is issued from the locked database only" in early.text
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    package = _post(client, "/data-access/requests/DAR-0001/package", {})
    assert package.status_code == 200 and package.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(package.content)).namelist()
    assert "ipd-DAR-0001/deidentification.json" in names and "ipd-DAR-0001/data_dictionary.csv" in names
    assert "<td>issued</td>" in _row(client, "DAR-0001")


def test_the_register_is_not_for_the_whole_team(client: TestClient) -> None:
    sign_in(client, Role.STUDY_COORDINATOR)
    assert client.get("/data-access").status_code == 403
    assert client.get("/exports").status_code == 403


def test_the_registers_refusals_are_said_in_persian(client: TestClient, trial: Trial) -> None:
    set_preferences(trial.engine, who(trial, Role.DATA_MANAGER).username, language="fa", calendar="gregorian")
    sign_in(client, Role.DATA_MANAGER)
    short = _post(client, "/data-access/requests", {**REQUEST, "reasons": "pooling"})
    assert short.status_code == 422
    assert "درخواست کتبی باید دلیل‌های نیاز به داده‌ها را در دست‌کم \u206820\u2069 نویسه بیان کند" in short.text
    assert "(\u20687\u2069 نویسه دارد)" in short.text
    published = {"citation": "Khedri R, et al. A pilot trial. Trials 2022;23:101.", "published_on": "2020-01-10"}
    early = _post(client, "/data-access/publications", published)
    assert early.status_code == 422 and "\u20682020-01-10\u2069 پیش از نخستین تصادفی‌سازی در" in early.text
    assert "انتشار اصلی نتایج یک کارآزمایی نمی‌تواند پیش از نخستین تصادفی‌سازی آن باشد" in early.text
    assert access_window_opens(trial.engine) is None and "DAR-0001" not in early.text  # nothing recorded
