"""Two people amending one log entry (both databases): each change is made from the version of the entry its author
read, and a change made from a version that is no longer the stored one is refused, naming the entry and both
versions, so the later of two amendments made from one version never overwrites the earlier in silence.

| edge    | the second amendment from version 1                                   |
|---------|-----------------------------------------------------------------------|
| service | ``LogVersionConflict``: entry, version read, version stored, by whom   |
| API     | 409, ``version`` named                                                |
| page    | 409, the participant page again with the refusal                      |
| CLI     | ``--entry-version`` required; exit 1 with the refusal                 |
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.spec.logs.test_log_entries import HEPARIN, STARTED
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.logs import LogVersionConflict, add_entry, amend_entry, list_entries, remove_entry
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app


def test_the_second_amendment_from_the_same_version_is_refused(trial: Trial, pid: str) -> None:
    coordinator, investigator = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.INVESTIGATOR)
    read = add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    assert read.version == 1
    first = amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 60}, reason="chart", version=1)
    assert first.version == 2
    with pytest.raises(LogVersionConflict) as refused:
        amend_entry(trial.engine, investigator, pid, "conmeds", 1, {"dose": 20}, reason="ward notes", version=1)
    said = str(refused.value)
    assert said.startswith("version: entry 1 of conmeds was changed after you read it (you read version 1; it is "
                           f"at version 2, changed by {username(Role.STUDY_COORDINATOR)} at ")  # fmt: skip
    with pytest.raises(LogVersionConflict, match="you read version 1; it is at version 2"):
        remove_entry(trial.engine, investigator, pid, "conmeds", 1, reason="duplicate", version=1)
    (entry,) = list_entries(trial.engine, coordinator, pid, "conmeds")
    assert (entry.values["dose"].value, entry.version, entry.state) == (60, 2, "active")
    changes = audit.entries(trial.engine, action_prefix="log.value_changed")
    assert [(c.field, json.loads(c.new_value or "")["value"]) for c in changes] == [("dose", 60)]
    again = amend_entry(trial.engine, investigator, pid, "conmeds", 1, {"dose": 20}, reason="ward notes", version=2)
    assert (again.values["dose"].value, again.version) == (20, 3)


def test_the_api_answers_409_naming_the_versions(trial: Trial, pid: str) -> None:
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    token, _ = issue_token(trial.engine, username(Role.STUDY_COORDINATOR), name="t", actor="test")
    url, auth = f"/api/v1/participants/{pid}/logs/conmeds/1", {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        first = api.post(url, headers=auth, json={"values": {"dose": 60}, "reason": "chart", "version": 1})
        assert first.status_code == 200 and first.json()["version"] == 2
        second = api.post(url, headers=auth, json={"values": {"dose": 20}, "reason": "notes", "version": 1})
        assert second.status_code == 409, second.text
        (error,) = second.json()["errors"]
        assert error["field"] == "version" and "you read version 1; it is at version 2" in error["rule"]
        unversioned = api.post(url, headers=auth, json={"values": {"dose": 20}, "reason": "notes"})
        assert unversioned.status_code == 422  # the version is required by the body's schema
    (entry,) = list_entries(trial.engine, who(trial, Role.MONITOR), pid, "conmeds")
    assert (entry.values["dose"].value, entry.version) == (60, 2)


def test_the_page_sends_the_version_it_showed_and_a_stale_one_is_refused(trial: Trial, pid: str) -> None:
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    page = f"/participants/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        html = client.get(page).text
        assert '<input type="hidden" name="version" value="1">' in html
        csrf = csrf_of(html)
        fields = {"v-medication": "Enoxaparin", "v-dose": "40", "v-dose_unit": "mg",
                  "v-frequency": "QD", "v-route": "SUBCUTANEOUS", "v-started_on": STARTED,
                  "v-ongoing": "yes"}  # fmt: skip
        amend_entry(trial.engine, who(trial, Role.INVESTIGATOR), pid, "conmeds", 1, {"dose": 60}, reason="chart",
                    version=1)  # fmt: skip  # someone else, while the page was open
        stale = client.post(f"{page}/logs/conmeds/1", data={"csrf_token": csrf, **fields, "v-dose": "20",
                                                             "reason": "ward notes", "version": "1"})  # fmt: skip
        assert stale.status_code == 409 and "you read version 1; it is at version 2" in stale.text
        unversioned = client.post(f"{page}/logs/conmeds/1/remove", data={"csrf_token": csrf, "reason": "dup"})
        assert unversioned.status_code == 422
        assert "did not say which version of entry 1 of Concomitant medications" in unversioned.text
    (entry,) = list_entries(trial.engine, who(trial, Role.MONITOR), pid, "conmeds")
    assert (entry.values["dose"].value, entry.version, entry.state) == (60, 2, "active")
