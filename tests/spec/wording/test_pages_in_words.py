"""The pages say fields in words (issue 24, item 4): the CRF, screening, consent and adverse event pages show a
refusal with the field's label (Persian where the protocol translates it), the eligibility summary names missing
fields and failed criteria in their words, and the audit page shows old -> new as a diff, one row per changed key
said in words, masked values still masked. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.spec.forms.conftest import enrolled_ten_days_ago, randomized_days_ago
from tests.spec.web.conftest import csrf_of, sign_in
from tests.spec.wording.test_messages_in_words import CRP_FA, LABS_FA, TEXT
from tests.trialfixtures import Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app

LABS = "/participants/{pid}/visits/baseline/forms/labs"


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url, load_protocol_text(TEXT))
    yield t
    t.engine.dispose()


def _client(trial: Trial, role: Role, lang: str = "en") -> TestClient:
    set_preferences(trial.engine, username(role), language=lang)
    client = TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False)
    return sign_in(client, role)


def _errors(page: str, testid: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(rf'data-testid="{testid}">([^<]*)<', page)]


def test_a_crf_refusal_and_its_query_name_the_field_by_its_label_in_each_language(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    url = LABS.format(pid=pid)
    with _client(trial, Role.STUDY_COORDINATOR) as coord:
        bad = coord.post(url, data={"csrf_token": csrf_of(coord.get(url).text), "v-crp": "900", "v-il6": "lots"})
        assert bad.status_code == 422
        assert _errors(bad.text, "error-crp") == [
            "C-reactive protein: 900 mg/L is outside the accepted range 0-600 mg/L"
        ]
        assert _errors(bad.text, "error-il6") == ["IL-6: must be a number, not 'lots'"]
    with _client(trial, Role.STUDY_COORDINATOR, "fa") as coord:
        bad = coord.post(url, data={"csrf_token": csrf_of(coord.get(url).text), "v-crp": "900"})
        # the rule in Persian too (docs/i18n.md, "Refusals in the page's words"): the label and each value isolated
        fsi, pdi = "\u2068", "\u2069"
        assert _errors(bad.text, "error-crp") == [
            f"{fsi}{CRP_FA}{pdi}: {fsi}900 mg/L{pdi} بیرون از گسترهٔ پذیرفتنی {fsi}0-600 mg/L{pdi} است"
        ]
        saved = coord.post(url, data={"csrf_token": csrf_of(coord.get(url).text), "v-crp": "450"})
        assert saved.status_code == 303
        shown = coord.get(url).text
        # The query beside its field (whose label is in Persian); its text (stored once, in English) is said in
        # Persian, naming the label too (its value in Persian digits, isolated left to right), so the banner above
        # does not repeat it: it leads to the field.
        said = f"{CRP_FA} \u2066۴۵۰ mg/L\u2069 خارج از محدوده مورد انتظار"
        row = shown[shown.index('data-testid="row-crp"'):]
        assert row.index('data-testid="field-query-crp"') < row.index(said)
        assert shown.count(said) == 1 and "is outside the expected range" not in shown
        assert 'data-testid="query-link"' in shown
        assert "<strong>crp</strong>" not in shown
        inbox = coord.get("/queries").text
        assert f"خط پایه (پیش از انفوزیون) / آزمایش‌ها</a> · {CRP_FA}" in inbox  # the visit and form by their names
        # "Still missing" lists the required fields by their labels
        missing = re.search(r'data-testid="missing">([^<]*)<', shown)
        assert missing is not None and "زمان نمونه‌گیری" in missing.group(1) and "sampled_at" not in missing.group(1)


def test_screening_refusals_and_the_eligibility_summary_in_words(trial: Trial) -> None:
    with _client(trial, Role.STUDY_COORDINATOR, "fa") as coord:
        token = csrf_of(coord.get("/screening/new").text)
        bad = coord.post(
            "/screening/new", data={"csrf_token": token, "site": "RAZ", "screened_on": "2026-01-05", "age": "old"}
        )
        assert bad.status_code == 422 and "سن: must be a whole number (got &#39;old&#39;)" in bad.text
        live = coord.post("/screening/check", data={"csrf_token": token, "age": "70", "trauma": "yes"}).json()
        assert live["decision"] == "not_eligible"
        assert live["failed"] == ["I1: سن ۱۸ تا ۶۵ سال", "E14: تروما"]
        unknown = coord.post("/screening/check", data={"csrf_token": token, "age": "40"}).json()
        assert unknown["decision"] == "incomplete" and "PCR مثبت SARS-CoV-2" in unknown["missing"]
        assert not [m for m in unknown["missing"] if re.fullmatch(r"[a-z0-9_]+", m)]  # no id left
    with _client(trial, Role.STUDY_COORDINATOR) as coord:
        token = csrf_of(coord.get("/screening/new").text)
        made = coord.post(
            "/screening/new", data={"csrf_token": token, "site": "RAZ", "screened_on": "2026-01-05", "age": "40"}
        )
        assert made.status_code == 303
        detail = coord.get(made.headers["location"]).text
        missing = re.search(r'data-testid="missing">([^<]*)<', detail)
        assert (
            missing is not None
            and "SARS-CoV-2 PCR positive" in missing.group(1)
            and "pcr_positive" not in missing.group(1)
        )
        # Consent by a representative without the representative's name: the input is said by its label.
        refused = coord.post(
            made.headers["location"] + "/consent",
            data={"csrf_token": token, "form_version": "1.0", "given_by": "representative", "obtained_by": "K",
                  "obtained_at": "2026-01-05T10:00", "decision": "consent"},
        )  # fmt: skip
        assert refused.status_code == 422
        assert "Representative&#39;s name: needed when a legally authorised representative consents" in refused.text
        assert "representative_name:" not in refused.text


def test_an_adverse_event_refusal_names_the_input_by_its_label(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    with _client(trial, Role.INVESTIGATOR) as inv:
        new = f"/participants/{pid}/adverse-events/new"
        refused = inv.post(f"/participants/{pid}/adverse-events", data={"csrf_token": csrf_of(inv.get(new).text)})
        assert refused.status_code == 422
        assert _errors(refused.text, "error-term") == ["Adverse event (term): is required: the adverse event's name"]
        assert _errors(refused.text, "error-onset") == ["Onset: is required"]


def test_the_audit_page_shows_each_change_as_a_row_in_words_in_each_language(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    url = LABS.format(pid=pid)
    with _client(trial, Role.STUDY_COORDINATOR) as coord:
        for crp in ("45", "38"):
            assert coord.post(url, data={"csrf_token": csrf_of(coord.get(url).text), "v-crp": crp}).status_code == 303
    for lang, label in (("en", "C-reactive protein (Laboratory)"), ("fa", f"{CRP_FA} ({LABS_FA})")):
        with _client(trial, Role.DATA_MANAGER, lang) as manager:
            page = manager.get("/admin/audit", params={"action": "form.value_changed"}).text
            rows = re.findall(
                r'<tr><th scope="row">([^<]*)</th><td class="old">(.*?)</td><td class="new">(.*?)</td></tr>', page
            )
            if lang == "en":
                assert rows == [(label, "45 mg/L", "38 mg/L")]
            else:  # in Persian digits, the value as stored in the title (issue 24)
                said = '<span class="stored" title="{0} mg/L" data-stored="{0} mg/L">{1} mg/L</span>'
                assert rows == [(label, said.format("45", "۴۵"), said.format("38", "۳۸"))]
            assert '{"' not in page and "&#34;45&#34;" not in page  # no raw JSON


def test_the_audit_page_says_the_allocation_seal_in_words_and_masked(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    randomized_days_ago(trial, pid, 1)
    for lang, key in (("en", "Allocation seal"), ("fa", "مهر تخصیص")):
        with _client(trial, Role.DATA_MANAGER, lang) as manager:
            page = manager.get("/admin/audit", params={"action": "participant.randomized"}).text
            row = r'<tr><th scope="row">([^<]*)</th><td class="old">.*?</td><td class="new">(.*?)</td>'
            rows = dict(re.findall(row, page))
            assert key in rows and "seal" not in rows  # in words, not the stored key (a walk saw "seal masked")
            assert "masked" in rows[key] or "پنهان" in rows[key]
