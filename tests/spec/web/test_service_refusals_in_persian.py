"""The service rules a Persian page used to say in English (issue 24, "other service rules still English on Persian
pages"), said in the page's words on both databases: a crawl of each role's main write actions with bad input, as a
Persian user, finds no English rule left in any refusal. Covered: a date or date-and-time not read, a number not
read or outside its range, a whole number, a choice not among its codes, a form completed with required values
missing (the missing fields by their labels), a draft verified, a query without its text or answer, a participant
enrolled or randomized already, the allocation list made again or extended without a reason, a preparation's
required attribute, the database or a soft lock lifted without a reason, a DSMB decision not among the codes.

The English rule's words are unchanged (the English page below); the Persian ones are read from the catalog with
Babel and the labels from the protocol file (an independent YAML read)."""

from __future__ import annotations

import html
import re

import yaml
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app
from trialwright.web.i18n import catalog_path

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
with catalog_path("fa").open("rb") as _handle:
    CATALOG = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}
ISOLATES = re.compile("[\u2066-\u2069]")
ENGLISH_RULE = re.compile(r"[A-Za-z]{3,} [a-z]{2,}")


def _errors(page: str) -> list[str]:
    found = re.findall(r'class="error"[^>]*>(.*?)</', page, re.S) + re.findall(r'role="alert"[^>]*>(.*?)</', page, re.S)
    return sorted({ISOLATES.sub("", html.unescape(re.sub("<[^>]+>", "", e))).strip() for e in found})


def _label(form_id: str, field_id: str) -> str:
    form = next(f for f in RAW["forms"] if f["id"] == form_id)
    return str(next(f for f in form["fields"] if f["id"] == field_id)["translations"]["fa"])


class _As:
    def __init__(self, trial: Trial, role: Role) -> None:
        self.client = TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False)
        self.client.__enter__()
        sign_in(self.client, role)

    def post(self, shown: str, to: str, data: dict[str, str]) -> list[str]:
        response = self.client.post(to, data={"csrf_token": csrf_of(self.client.get(shown).text), **data})
        assert response.status_code == 422, (to, response.status_code)
        return _errors(response.text)

    def save(self, shown: str, data: dict[str, str]) -> bool:
        response = self.client.post(shown, data={"csrf_token": csrf_of(self.client.get(shown).text), **data})
        return response.status_code == 303

    def close(self) -> None:
        self.client.__exit__(None, None, None)


def _crawl(trial: Trial, lang: str) -> dict[str, list[str]]:
    for role in Role:
        set_preferences(trial.engine, username(role), language=lang, calendar="jalali" if lang == "fa" else "gregorian")
    pid = enrolled_ten_days_ago(trial)
    with trial.engine.connect() as c:
        sid = c.execute(text("SELECT screening_id FROM participants WHERE participant_id = :p"), {"p": pid}).scalar()
    p, form = f"/participants/{pid}", f"/participants/{pid}/visits/baseline/forms/vitals"
    inv, mon, dm = _As(trial, Role.INVESTIGATOR), _As(trial, Role.MONITOR), _As(trial, Role.DATA_MANAGER)
    st, ph = _As(trial, Role.UNBLINDED_STATISTICIAN), _As(trial, Role.UNBLINDED_PHARMACIST)
    ds = _As(trial, Role.DSMB_MEMBER)
    said = {
        "screening date": inv.post("/screening/new", "/screening/new", {}),
        "consent time": inv.post(f"/screening/{sid}", f"/screening/{sid}/consent", {}),
        "enrolled already": inv.post(f"/screening/{sid}", f"/screening/{sid}/enrol", {}),
        "withdrawal scope": inv.post(f"/screening/{sid}", f"/screening/{sid}/withdrawal", {}),
        "visit date": inv.post(p, f"{p}/visits", {"visit": "day3"}),
        "values": inv.post(form, form, {"v-resp_rate": "abc", "v-spo2": "300"}),
        "draft": [] if inv.save(form, {"v-resp_rate": "20"}) else ["not saved"],
        "complete": inv.post(form, f"{form}/complete", {}),
        "verify a draft": mon.post(form, f"{form}/verify", {}),
        "query text": mon.post(form, f"{form}/queries", {"field": "resp_rate", "text": ""}),
        "answer": inv.post("/queries", "/queries/99/answer", {"answer": ""}),
        "unlock": dm.post("/data-management", "/data-management/lock", {}),
        "soft unlock": dm.post("/data-management", "/data-management/soft-lock", {}),
        "entries": st.post("/randomization", "/randomization/extend", {}),
        "dsmb": ds.post("/dsmb", "/dsmb/decisions", {}),
    }
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    with trial.engine.connect() as c:
        code = c.execute(text("SELECT preparation_code FROM allocation_entries WHERE participant_id = :p"),
                         {"p": pid}).scalar()  # fmt: skip
    said["generated again"] = st.post("/randomization", "/randomization/generate", {})
    said["extend without reason"] = st.post("/randomization", "/randomization/extend", {"entries": "4"})
    said["randomized already"] = inv.post(p, f"{p}/randomize", {})
    said["preparation"] = ph.post(f"/pharmacy/{code}", f"/pharmacy/{code}", {})
    for who_ in (inv, mon, dm, st, ph, ds):
        who_.close()
    return said


def test_a_persian_page_says_the_services_rules_in_persian(trial: Trial) -> None:
    said = _crawl(trial, "fa")
    english = {action: [e for e in errors if ENGLISH_RULE.search(e)] for action, errors in said.items()}
    assert {a: e for a, e in english.items() if e} == {}
    assert said.pop("draft") == [] and all(said.values()), said  # every action was refused with words
    rule = CATALOG["required; enter a value or record it as not done with a reason (also missing: %(fields)s)"]
    assert said["complete"][0].startswith(f"{_label('vitals', 'assessed_at')}: {rule.split('%(')[0]}")
    assert _label("vitals", "systolic_bp") in said["complete"][0] and "spo2" not in said["complete"][0]
    assert f"{CATALOG['Question']}: {CATALOG['write the question']}" in said["query text"]
    assert f"{CATALOG['Answer']}: {CATALOG['write the answer']}" in said["answer"]
    assert f"{CATALOG['Reason']}: {CATALOG['say why the list is extended']}" in said["extend without reason"]
    assert f"{CATALOG['Entries']}: {CATALOG['must be a whole number']}" in said["entries"]
    assert any(e.endswith(CATALOG["must be a number, not %(value)s"] % {"value": "'abc'"}) for e in said["values"])


def test_the_english_page_keeps_the_rules_words(trial: Trial) -> None:
    said = _crawl(trial, "en")
    assert "Question: write the question" in said["query text"]
    assert "Reason: say why the list is extended" in said["extend without reason"]
    assert any(e.endswith("must be a number, not 'abc'") for e in said["values"])
    assert any("required; enter a value or record it as not done with a reason (also missing:" in e
               for e in said["complete"])  # fmt: skip
