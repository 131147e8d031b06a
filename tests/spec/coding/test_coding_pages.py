"""The coder's pages (both databases): the home page counts the AEs to code, the coding page searches the loaded
release, codes the event to the LLT picked (recoding asks a reason), asks the site a question; other roles are
refused; and no page the coder reads names an arm."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.safety.test_safety_service import sae
from tests.spec.web.conftest import csrf_of, sign_in
from tests.spec.web.test_blinded_crawl import ARM_SECRETS, _leaks
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.coding import CodingError, close_event_query, coding_item, load_meddra, query_event
from trialwright.services.forms import answer_query, list_queries
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.readiness import BlockerKind, lock_readiness
from trialwright.services.safety import report_event
from trialwright.services.users import create_user, get_user
from trialwright.settings import Settings
from trialwright.web.app import create_app


def test_the_coder_codes_an_event_from_the_pages_and_never_sees_its_arm(trial: Trial, pid: str, tmp_path: Path) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    load_meddra(trial.engine, who(trial, Role.CODER), write_release(tmp_path / "MedAscii"), "27.1")
    ae = report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, sae()).ae_number
    pages: list[str] = []
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.CODER)
        home = client.get("/")
        pages.append(home.text)
        assert re.search(r'data-testid="count-to-code">[^<]*: <strong>1</strong>', home.text)
        listed = client.get("/coding")
        pages.append(listed.text)
        assert f'href="/coding/{ae}"' in listed.text and "Acute kidney injury" in listed.text
        found = client.get(f"/coding/{ae}", params={"q": "zorbic"})
        pages.append(found.text)
        assert found.status_code == 200 and found.text.count('data-testid="llt-match"') == 2
        coded = client.post(f"/coding/{ae}", data={"llt": "90000011", "csrf_token": csrf_of(found.text)})
        assert coded.status_code == 303
        item = coding_item(trial.engine, who(trial, Role.CODER), ae)
        assert item.coding is not None and item.coding.soc_name == "Fictional kidney disorders"
        page = client.get(f"/coding/{ae}", params={"q": "blorp"})
        pages.append(page.text)
        assert "Fictional acute renal conditions" in page.text and 'name="reason"' in page.text
        refused = client.post(f"/coding/{ae}", data={"llt": "90000021", "csrf_token": csrf_of(page.text)})
        pages.append(refused.text)
        assert refused.status_code == 422 and "recoding needs a reason" in refused.text
        question = {"text": "Which kidney test?", "csrf_token": csrf_of(page.text)}
        asked = client.post(f"/coding/{ae}/query", data=question)
        assert asked.status_code == 303
        assert client.get("/coding/AE-9999").status_code == 404
        pages.append(client.get("/coding").text)
    (query,) = list_queries(trial.engine, who(trial, Role.INVESTIGATOR))
    assert query.text == f"{ae} (coding): Which kidney test?"
    for text in pages:  # the first trial's arm codes, names and descriptions, as the leak crawl looks for them
        assert _leaks(text, ARM_SECRETS) == []


def test_the_coder_reads_the_sites_answer_and_closes_the_query_so_it_no_longer_blocks_the_lock(
    trial: Trial, pid: str, tmp_path: Path
) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    ae = report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, sae()).ae_number
    manager = who(trial, Role.DATA_MANAGER)

    def query_blockers() -> list[str]:
        return [b.where for b in lock_readiness(trial.engine, manager).blockers if b.kind is BlockerKind.QUERY]

    pages: list[str] = []
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.CODER)
        page = client.get(f"/coding/{ae}")
        asked = client.post(
            f"/coding/{ae}/query", data={"text": "Which kidney test?", "csrf_token": csrf_of(page.text)}
        )
        assert asked.status_code == 303
        (query,) = list_queries(trial.engine, manager)
        assert query_blockers() == [f"query {query.id}"]
        page = client.get(f"/coding/{ae}")
        pages.append(page.text)
        (row,) = re.findall(r'<tr data-testid="coding-query">(.*?)</tr>', page.text, re.S)
        assert "Which kidney test?" in row and "query-open" in row and "/close" not in row  # nothing to close yet
        answer_query(trial.engine, who(trial, Role.INVESTIGATOR), query.id, "Serum creatinine")
        page = client.get(f"/coding/{ae}")
        pages.append(page.text)
        (row,) = re.findall(r'<tr data-testid="coding-query">(.*?)</tr>', page.text, re.S)
        assert "Serum creatinine" in row and "query-answered" in row
        assert f'action="/coding/{ae}/queries/{query.id}/close"' in row
        closed = client.post(
            f"/coding/{ae}/queries/{query.id}/close",
            data={"note": "coded as creatinine", "csrf_token": csrf_of(page.text)},
        )
        assert closed.status_code == 303
        page = client.get(f"/coding/{ae}")
        pages.append(page.text)
        (row,) = re.findall(r'<tr data-testid="coding-query">(.*?)</tr>', page.text, re.S)
        assert "query-closed" in row and "coded as creatinine" in row and "/close" not in row
        again = client.post(f"/coding/{ae}/queries/{query.id}/close", data={"csrf_token": csrf_of(page.text)})
        pages.append(again.text)
        assert again.status_code == 422 and "closed already" in again.text
        assert (
            client.post(
                f"/coding/AE-9999/queries/{query.id}/close", data={"csrf_token": csrf_of(page.text)}
            ).status_code
            == 404
        )
    (after,) = list_queries(trial.engine, manager)
    assert (after.status, after.closed_by, after.close_note) == (
        "closed",
        who(trial, Role.CODER).username,
        "coded as creatinine",
    )
    (entry,) = audit.entries(trial.engine, action_prefix="query.closed")
    assert entry.actor == who(trial, Role.CODER).username
    assert query_blockers() == []
    for text in pages:
        assert _leaks(text, ARM_SECRETS) == []


def test_a_coder_closes_only_the_queries_they_raised(trial: Trial, pid: str) -> None:
    ae = report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, sae()).ae_number
    query_id = query_event(trial.engine, who(trial, Role.CODER), ae, "Which kidney test?")
    answer_query(trial.engine, who(trial, Role.INVESTIGATOR), query_id, "Serum creatinine")
    create_user(trial.engine, username="coder-two", password=PASSWORD, role=Role.CODER, sites=[], actor="test")
    other = get_user(trial.engine, "coder-two")
    assert other is not None
    with pytest.raises(CodingError, match="only whoever raised a query closes it"):
        close_event_query(trial.engine, other, ae, query_id)
    (query,) = list_queries(trial.engine, who(trial, Role.DATA_MANAGER))
    assert query.status == "answered"


def test_other_roles_may_not_open_the_coding_pages(trial: Trial) -> None:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.DATA_MANAGER)
        assert client.get("/coding").status_code == 403
        assert 'href="/coding"' not in client.get("/").text
