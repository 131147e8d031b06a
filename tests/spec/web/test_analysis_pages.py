"""The statistician's analysis page and its downloads: blinded for the blinded statistician, refused to the
rest of the team, unblinded only for the unblinded statistician after the database lock."""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient

from tests.spec.web.conftest import sign_in
from tests.spec.web.test_randomization_pages import enrolled
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, username, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services.forms import lock_trial
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.users import set_preferences
from trialwright.web.i18n import translations

ARM_NAMES = [a.name for a in load_protocol(FIRST_PROTOCOL).protocol.arms]


def _randomized(trial: Trial) -> str:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    pid = enrolled(trial)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    return pid


def test_the_blinded_statistician_reads_the_blinded_report_and_its_files(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    sign_in(client, Role.BLINDED_STATISTICIAN)
    page = client.get("/analysis")
    assert page.status_code == 200
    assert "Blinded analysis (double-blind trial): no arm is named." in page.text
    assert "Assessed for eligibility (n=1)" in page.text
    assert 'href="/analysis"' in page.text  # in the navigation
    assert not any(name in page.text for name in ARM_NAMES)
    results = client.get("/analysis/results.json")
    assert results.status_code == 200 and len(json.loads(results.text)["outcome_ids"]) == 9
    assert client.get("/analysis/report.pdf").content.startswith(b"%PDF")
    assert "Randomized (n=1)" in client.get("/analysis/consort.svg").text
    full = client.get("/analysis/report.html").text
    assert full.startswith("<!doctype html>") and "Table 1. Baseline characteristics" in full


def test_the_rest_of_the_team_may_not_run_the_analysis(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.INVESTIGATOR)
    assert client.get("/analysis").status_code == 403
    assert client.get("/analysis/results.json").status_code == 403


def test_the_unblinded_analysis_waits_for_the_lock(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    sign_in(client, Role.UNBLINDED_STATISTICIAN)
    refused = client.get("/analysis?unblinded=1")
    assert refused.status_code == 403
    assert "the unblinded analysis runs only after the database lock" in refused.text
    assert "Run the unblinded analysis" not in client.get("/analysis").text
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    assert "Run the unblinded analysis" in client.get("/analysis").text
    page = client.get("/analysis?unblinded=1")
    assert page.status_code == 200 and "Unblinded analysis (double-blind trial): arms are named." in page.text
    assert all(name in page.text for name in ARM_NAMES)


@pytest.mark.parametrize("language", ["en", "fa"])
def test_a_masked_statistician_asking_for_the_unblinded_analysis_is_told_their_role_and_the_rule(
    client: TestClient, trial: Trial, language: str
) -> None:
    """Walk 5, F9: the refusal names the role and the masking that keeps it from the arms, in the page's language."""
    if language == "fa":
        set_preferences(trial.engine, username(Role.BLINDED_STATISTICIAN), language="fa", calendar="gregorian")
    sign_in(client, Role.BLINDED_STATISTICIAN)
    refused = client.get("/analysis?unblinded=1")
    said = re.sub("[\u2066-\u2069]", "", html.unescape(refused.text))
    assert refused.status_code == 403
    if language == "en":
        assert ("unblinded: a blinded statistician is masked in this trial (masking.blinding: double) and may not see "
                "the arms; only an unblinded statistician may run the unblinded analysis") in said
        return
    fa = translations("fa").gettext
    rule = fa("%(role)s is masked in this trial (masking.blinding: %(blinding)s) and may not see the arms; only "
              "%(roles)s may %(what)s")
    expected = rule % {"role": fa("Blinded statistician"), "blinding": "double",
                       "roles": fa("Unblinded statistician"), "what": fa("run the unblinded analysis")}  # fmt: skip
    assert not rule.startswith("%(role)s is masked") and expected in said, said
    assert "is masked" not in said
