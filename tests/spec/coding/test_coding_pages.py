"""The coder's pages (both databases): the home page counts the AEs to code, the coding page searches the loaded
release, codes the event to the LLT picked (recoding asks a reason), asks the site a question; other roles are
refused; and no page the coder reads names an arm."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.safety.test_safety_service import sae
from tests.spec.web.conftest import csrf_of, sign_in
from tests.spec.web.test_blinded_crawl import ARM_SECRETS, _leaks
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services.coding import coding_item, load_meddra
from trialwright.services.forms import list_queries
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.safety import report_event
from trialwright.settings import Settings
from trialwright.web.app import create_app


def test_the_coder_codes_an_event_from_the_pages_and_never_sees_its_arm(
    trial: Trial, pid: str, tmp_path: Path
) -> None:
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


def test_other_roles_may_not_open_the_coding_pages(trial: Trial) -> None:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.DATA_MANAGER)
        assert client.get("/coding").status_code == 403
        assert 'href="/coding"' not in client.get("/").text
