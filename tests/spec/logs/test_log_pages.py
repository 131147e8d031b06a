"""Log entries on the participant page (both databases): each log the protocol declares, its entries (removed ones
marked with the reason), and for data entry roles forms to add, amend (with a reason) and remove (with a reason)
an entry, through the logs service; the page speaks English or Persian as the reader prefers."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.spec.logs.test_log_entries import HEPARIN, STARTED
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.logs import add_entry, list_entries
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app


def test_entries_are_added_amended_and_removed_on_the_participant_page(trial: Trial, pid: str) -> None:
    page = f"/participants/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        html = client.get(page).text
        assert "Concomitant medications" in html and "Medical history" in html and "Add an entry" in html
        csrf = csrf_of(html)
        fields = {"v-medication": "Enoxaparin", "v-dose": "40", "v-dose_unit": "mg",
                  "v-route": "SUBCUTANEOUS", "v-started_on": STARTED, "v-ongoing": "yes"}  # fmt: skip
        refused = client.post(f"{page}/logs/conmeds", data={"csrf_token": csrf, **fields, "v-dose": "-5"})
        assert refused.status_code == 422
        assert "Dose per administration: -5 is outside the accepted range" in refused.text
        added = client.post(f"{page}/logs/conmeds", data={"csrf_token": csrf, **fields})
        assert added.status_code == 303, added.text
        unexplained = client.post(f"{page}/logs/conmeds/1", data={"csrf_token": csrf, **fields, "v-dose": "60",
                                                                    "version": "1"})  # fmt: skip
        assert unexplained.status_code == 422 and "needs a reason" in unexplained.text
        amended = client.post(f"{page}/logs/conmeds/1", data={"csrf_token": csrf, **fields, "v-dose": "60",
                                                               "reason": "chart says 60", "version": "1"})  # fmt: skip
        assert amended.status_code == 303
        removed = client.post(f"{page}/logs/conmeds/1/remove", data={"csrf_token": csrf, "reason": "duplicate",
                                                                      "version": "2"})  # fmt: skip
        assert removed.status_code == 303
        html = client.get(page).text
        assert 'data-testid="log-conmeds-1"' in html and "duplicate" in html
    (entry,) = list_entries(trial.engine, who(trial, Role.MONITOR), pid, "conmeds")
    assert (entry.values["dose"].value, entry.state, entry.removed_reason) == (60, "removed", "duplicate")
    (change,) = audit.entries(trial.engine, action_prefix="log.value_changed")  # only the dose changed
    assert (change.field, change.reason) == ("dose", "chart says 60")


def test_a_monitor_reads_the_entries_in_persian_and_gets_no_forms(trial: Trial, pid: str) -> None:
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    set_preferences(trial.engine, "monitor", language="fa", calendar="gregorian")
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.MONITOR)
        html = client.get(f"/participants/{pid}").text
    assert "داروهای همزمان" in html and "سابقه پزشکی" in html and "Enoxaparin" in html
    assert "افزودن ردیف" not in html  # no entry form: the monitor reads, and may only raise a query on an entry
    actions = set(re.findall(r'action="([^"]+)"', html))
    assert not {a for a in actions if "/logs/" in a and not a.endswith("/queries")}, actions
    assert f"/participants/{pid}/logs/conmeds/1/queries" in actions


def test_a_value_emptied_on_the_page_is_cleared_with_the_reason_not_kept_in_silence(trial: Trial, pid: str) -> None:
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", {**HEPARIN, "indication": "DVT"})
    page = f"/participants/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        csrf = csrf_of(client.get(page).text)
        fields = {"v-medication": "Enoxaparin", "v-indication": "", "v-dose": "40",
                  "v-dose_unit": "mg", "v-frequency": "QD", "v-route": "SUBCUTANEOUS",
                  "v-started_on": STARTED, "v-ongoing": "yes"}  # fmt: skip
        emptied = client.post(f"{page}/logs/conmeds/1", data={"csrf_token": csrf, **fields,
                                                               "reason": "indication not in the chart",
                                                               "version": "1"})  # fmt: skip
        assert emptied.status_code == 303, emptied.text
    (entry,) = list_entries(trial.engine, who(trial, Role.MONITOR), pid, "conmeds")
    assert "indication" not in entry.values
    (cleared,) = [e for e in audit.entries(trial.engine, action_prefix="log.value") if e.field == "indication"
                  and e.reason == "indication not in the chart"]  # fmt: skip
    assert "DVT" in (cleared.old_value or "")


def test_entries_read_in_the_readers_words(trial: Trial, pid: str) -> None:
    """Yes/no in words and choices by their labels, as the read-only form page says them (not True, not codes)."""
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.MONITOR)
        html = client.get(f"/participants/{pid}").text
    row = html[html.index('data-testid="log-conmeds-1"'):]
    row = row[: row.index("</tr>")]
    assert "True" not in row and ">yes<" in row.lower()


def test_a_refusal_on_the_log_page_names_the_field_by_its_label(trial: Trial, pid: str) -> None:
    """As a form page says its refusals: the log's field by its label in the page's language, never its id."""
    page = f"/participants/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        csrf = csrf_of(client.get(page).text)
        refused = client.post(f"{page}/logs/conmeds", data={"csrf_token": csrf, "v-medication": "Enoxaparin",
                                                             "v-started_on": STARTED})  # fmt: skip
    assert refused.status_code == 422
    assert "Ongoing at the end of the study: is required" in refused.text
    assert ">ongoing: is required" not in refused.text and "ongoing: is required" not in refused.text


def test_entry_numbers_are_in_the_readers_digits(trial: Trial, pid: str) -> None:
    """On a Persian page an entry's number is in Persian digits, in the table and in its amend form's heading."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    set_preferences(trial.engine, coordinator.username, language="fa", calendar="jalali")
    for _ in range(12):
        add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        html = client.get(f"/participants/{pid}").text
    row = html[html.index('data-testid="log-conmeds-12"'):]
    assert row.startswith('data-testid="log-conmeds-12"><td>۱۲</td>')
    assert re.search(r"<summary>[^<]*۱۲</summary>", html)
