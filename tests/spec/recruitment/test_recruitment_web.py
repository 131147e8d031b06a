"""The recruitment page and API as several roles, on both databases: the hand-built trial's counts, the forecast
and its what-if form (GET parameters), the registry text, arms only for the unblinded readers (checked with
the leak crawl's own detector), refusals that name the field, and the page in Persian."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.spec.recruitment.test_recruitment_service import hand_built
from tests.spec.web.conftest import csrf_of, sign_in
from tests.spec.web.test_blinded_crawl import ARM_SECRETS, _leaks
from tests.trialfixtures import Trial, username
from trialwright.domain.masking import UNBLINDED_ROLES
from trialwright.domain.roles import Role
from trialwright.services.recruitment import READERS
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

JUNE = "?as_of=2021-06-30"


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = hand_built(module_database_url)
    yield t
    t.engine.dispose()


@pytest.fixture(scope="module")
def app(trial: Trial):  # type: ignore[no-untyped-def]
    return create_app(Settings(database_url=trial.url))


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _bearer(trial: Trial, role: Role) -> dict[str, str]:
    token, _ = issue_token(trial.engine, username(role), name="recruitment", actor="test")
    return {"Authorization": f"Bearer {token}"}


def _text(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</(?:dd|p|textarea|dl)>', html, re.DOTALL)
    assert match, f"no {testid}"
    return re.sub(r"<[^>]+>", " ", match.group(1))


def test_the_dashboard_as_the_coordinator(client: TestClient) -> None:
    sign_in(client, Role.STUDY_COORDINATOR)
    assert 'href="/recruitment"' in client.get("/").text  # in the navigation
    page = client.get("/recruitment" + JUNE)
    assert page.status_code == 200
    html = page.text
    assert _text(html, "as-of").strip() == "As of 2021-06-30, 1400/04/09"
    assert _text(html, "randomized").strip() == "3 / 30 (10%)"
    assert (_text(html, "screened"), _text(html, "eligible"), _text(html, "consented")) == ("7", "5 (71%)", "3")
    assert _text(html, "consent-representative").strip() == "1 (33%)"
    assert "median 2 (interquartile range 1–3), 3 randomized" in _text(html, "days-to-randomization")
    assert _text(html, "median-date").strip().startswith("2022-")  # 27 more at 0.12 a day: about 226 days
    assert html.count("<svg") == 4 and 'data-plot="forecast"' in html
    assert "svg.fonttype" not in html and "<dc:date>" not in html  # text as text, no date in the metadata
    assert "3 participants randomized against a target of 30" in _text(html, "registry-text")
    assert 'data-testid="by-arm"' not in html and _leaks(html, ARM_SECRETS) == []
    today = client.get("/recruitment")
    assert today.status_code == 200 and "has passed" in _text(today.text, "warnings")  # the planned end, in 2021


def test_what_if_through_the_form(client: TestClient) -> None:
    sign_in(client, Role.INVESTIGATOR)
    plain = client.get("/recruitment" + JUNE).text
    asked = client.get("/recruitment" + JUNE + "&new_site_rate=20&new_site_opens=2021-07-10&end_date=2021-12-31")
    assert asked.status_code == 200
    html = asked.text
    assert "20 randomized a month from 2021-07-10, 1400/04/19" in _text(html, "new-site")
    assert _text(html, "probability-end-date").strip().endswith("%")
    assert _text(html, "median-date") < _text(plain, "median-date")  # a busy new site brings the date forward
    # The form keeps what was asked, its dates in the viewer's calendar (both: typed either way, shown Solar Hijri).
    assert 'value="20"' in html and 'value="1400/10/10"' in html
    refused = client.get("/recruitment" + JUNE + "&new_site_rate=-1&new_site_opens=2021-06-01&end_date=later")
    assert refused.status_code == 422
    assert "new_site_rate: must be a number &gt; 0" in _text(refused.text, "error-new_site_rate")
    # What was typed is quoted as typed, isolated (LRI ... PDI) so that it reads right in either direction.
    said = _text(refused.text, "error-end_date")
    assert "A later end of recruitment: \u2066later\u2069 is not a date written year first" in said
    assert _text(refused.text, "as-of").strip() == "As of 2021-06-30, 1400/04/09"  # the rest still shown
    past = client.get("/recruitment" + JUNE + "&new_site_rate=2&new_site_opens=2021-06-01")
    assert past.status_code == 422 and "is in the past" in _text(past.text, "error-new_site_opens")
    future = client.get("/recruitment?as_of=2100-01-01")
    assert future.status_code == 422 and "as_of: is after today" in _text(future.text, "error-as_of")


@pytest.mark.parametrize("role", READERS, ids=[r.value for r in READERS])
def test_arms_only_for_the_unblinded_readers(client: TestClient, trial: Trial, role: Role) -> None:
    sign_in(client, role)
    page = client.get("/recruitment" + JUNE)
    headers = _bearer(trial, role)
    answers = [client.get(f"/api/v1/recruitment/{what}{JUNE}", headers=headers) for what in
               ("status", "forecast", "registry-update")]  # fmt: skip
    assert page.status_code == 200 and all(a.status_code == 200 for a in answers)
    leaks = _leaks(page.text + "".join(a.text for a in answers), ARM_SECRETS)
    status = answers[0].json()
    if role in UNBLINDED_ROLES:
        assert 'data-testid="by-arm"' in page.text and {"EXO", "PBO"} <= set(leaks)  # the detector sees them
        assert status["by_arm"] is True and sorted(a["code"] for a in status["arms"]) == ["EXO", "PBO"]
    else:
        assert leaks == [] and status["by_arm"] is False and status["arms"] is None


def test_other_roles_are_refused(client: TestClient, trial: Trial) -> None:
    for role in (Role.OUTCOME_ASSESSOR, Role.UNBLINDED_PHARMACIST):
        client.cookies.clear()
        sign_in(client, role)
        assert 'href="/recruitment"' not in client.get("/").text
        assert client.get("/recruitment").status_code == 403
        assert client.get("/api/v1/recruitment/status", headers=_bearer(trial, role)).status_code == 403
    assert client.get("/api/v1/recruitment/forecast").status_code == 401


def test_the_api(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial, Role.MONITOR)
    status = client.get("/api/v1/recruitment/status" + JUNE, headers=headers).json()
    assert status["totals"] == {"screened": 7, "eligible": 5, "consented": 3, "enrolled": 3, "randomized": 3}
    assert [(r["code"], r["count"]) for r in status["non_enrolment"]] == [
        ("not_eligible", 2), ("declined", 1), ("not_recorded", 1)]  # fmt: skip
    assert status["as_of"] == "2021-06-30" and status["series"][-1]["on"] == "2021-06-30"
    asked = client.get("/api/v1/recruitment/forecast" + JUNE + "&new_site_rate=4&new_site_opens=1400/04/20"
                       "&end_date=2022-06-30", headers=headers).json()  # fmt: skip
    assert asked["state"] == "forecast" and asked["method"] == "monte-carlo"
    assert asked["new_sites"] == [{"rate_per_month": 4.0, "opens_on": "2021-07-11", "name": "new site"}]
    assert 0 <= asked["probability_by_planned_end"] <= asked["probability_by_end_date"] <= 1
    assert [iv["level"] for iv in asked["intervals"]] == [0.8, 0.95]
    bad = client.get("/api/v1/recruitment/forecast?new_site_rate=abc&as_of=2021-02-30", headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"] == [
        {
            "field": "as_of",
            "rule": "'2021-02-30' is not a date (YYYY-MM-DD, or Solar Hijri YYYY/MM/DD)",
            "message": None,
        },
        {"field": "new_site_rate", "rule": "'abc' is not a number", "message": None},
        {
            "field": "new_site_opens",
            "rule": "is required with new_site_rate (the date the new site opens)",
            "message": None,
        },
    ]
    past = client.get("/api/v1/recruitment/forecast" + JUNE + "&end_date=2021-01-01", headers=headers)
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "end_date"
    text = client.get("/api/v1/recruitment/registry-update" + JUNE, headers=headers).json()["text"]
    assert text.startswith("Recruitment as of 2021-06-30, 1400/04/09: 3 participants randomized")


def test_the_page_in_persian(client: TestClient) -> None:
    sign_in(client, Role.DATA_MANAGER)
    form = {"csrf_token": csrf_of(client.get("/profile").text), "language": "fa", "calendar": "jalali",
            "next": "/recruitment"}  # fmt: skip
    try:
        assert client.post("/profile/preferences", data=form).status_code == 303
        html = client.get("/recruitment?as_of=1400/04/09").text  # a Solar Hijri viewer's dates are Solar Hijri
        assert 'dir="rtl"' in html and "جذب در برابر هدف" in html and "پیش‌بینی" in html
        assert _text(html, "as-of").strip() == "تا تاریخ ۱۴۰۰/۰۴/۰۹"  # in Persian digits (docs/i18n.md, "Digits")
        assert "بیماران (تجمعی)" in html  # the plot's own labels are translated too
    finally:
        form = {"csrf_token": csrf_of(client.get("/profile").text), "language": "en", "calendar": "both"}
        client.post("/profile/preferences", data=form)
