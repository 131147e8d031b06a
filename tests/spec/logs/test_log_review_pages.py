"""Log entries under review on the pages (both databases): the casebook page lists the participant's log entries
the investigator signs with the forms (one password entry) and the monitor verifies; the monitor raises a query on
an entry from the participant page; the query inbox names the log and the entry."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.spec.logs.test_log_review import _entries
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.services.logs import list_entries
from trialwright.settings import Settings
from trialwright.web.app import create_app


def _chosen_entries(html: str) -> list[str]:
    return re.findall(r'name="entry" value="([^"]+)"', html)


def test_the_casebook_page_lists_the_log_entries_signed_with_it(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "Stop date?", log_id="conmeds", sequence=2)
    url = f"/data/casebook/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.INVESTIGATOR)
        page = client.get(url).text
        assert 'data-testid="casebook-log-conmeds"' in page and 'data-testid="casebook-log-medical_history"' in page
        assert 'data-testid="casebook-entry-conmeds-1"' in page and "Enoxaparin" in page and "Pantoprazole" in page
        assert 'data-testid="why-entry-conmeds-2">Not ready: open queries<' in page
        chosen = _chosen_entries(page)
        assert [c.rsplit("|", 1)[0] for c in chosen] == ["conmeds|1", "medical_history|1"]
        posted = client.post(f"{url}/sign", data={"csrf_token": csrf_of(page), "entry": chosen, "password": PASSWORD})
        assert posted.status_code == 303 and posted.headers["location"] == url
        after = client.get(url).text
        assert after.count('data-testid="entry-done"') == 2 and after.count('data-testid="entry-signature"') == 2
        assert 'data-testid="entry-excluded"' not in after
    signed = {e.log_id: e.signed_by for e in list_entries(trial.engine, who(trial, Role.MONITOR), pid)
              if e.sequence == 1}  # fmt: skip
    assert signed == {"conmeds": username(Role.INVESTIGATOR), "medical_history": username(Role.INVESTIGATOR)}


def test_the_monitor_verifies_entries_on_the_casebook_page(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    url = f"/data/casebook/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.MONITOR)
        page = client.get(url).text
        chosen = [c for c in _chosen_entries(page) if c.startswith("conmeds|2|")]
        posted = client.post(f"{url}/verify", data={"csrf_token": csrf_of(page), "entry": chosen})
        assert posted.status_code == 303
        assert 'data-testid="why-entry-conmeds-2">Not ready: already verified<' in client.get(url).text
    verified = {e.sequence: e.verified_by for e in list_entries(trial.engine, who(trial, Role.MONITOR), pid, "conmeds")}
    assert verified == {1: None, 2: username(Role.MONITOR)}


def test_a_query_raised_on_an_entry_is_named_in_the_inbox(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.MONITOR)
        page = client.get(f"/participants/{pid}").text
        assert 'data-testid="log-query-conmeds-1"' in page
        asked = {"csrf_token": csrf_of(page), "field": "dose", "text": "Dose per source?"}
        posted = client.post(f"/participants/{pid}/logs/conmeds/1/queries", data=asked)
        assert posted.status_code == 303, posted.text
        inbox = client.get("/queries").text
    assert re.search(r'data-testid="query-log">Concomitant medications #1</a> · Dose', inbox), inbox
    (query,) = svc.list_queries(trial.engine, who(trial, Role.MONITOR), participant_id=pid)
    assert (query.log_id, query.sequence, query.field, query.raised_by) == ("conmeds", 1, "dose",
                                                                            username(Role.MONITOR))  # fmt: skip
