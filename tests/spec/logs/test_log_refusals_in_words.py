"""The logs service's refusals on the participant page in the reader's words (both databases; issue 24, item 4):

- a stop before the start (``not_before``): both dates in the reader's calendar and digits, the start by its label;
- an amendment without a reason: "amending entry N of LOG needs a reason", the log by its Persian name;
- an amendment that changes nothing: "nothing changes in entry N of LOG";
- a removed entry amended: "entry N of LOG was removed (reason); add a new one";
- a change without the version read: "the page did not say which version ...".

The English page says the same rules in English, with the log by its name (never its id). Labels and names are
read from the protocol file (an independent YAML read), dates computed with jdatetime."""

from __future__ import annotations

import datetime as dt
import html
import re

import jdatetime
import yaml
from fastapi.testclient import TestClient

from tests.spec.forms.conftest import TODAY
from tests.spec.logs.test_log_entries import HEPARIN
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, who
from trialwright.domain.roles import Role
from trialwright.services.logs import add_entry, remove_entry
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
CONMEDS = next(g for g in RAW["logs"] if g["id"] == "conmeds")
FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ISOLATES = re.compile("[\u2066-\u2069]")


def _label(field_id: str, lang: str) -> str:
    f = next(f for f in CONMEDS["fields"] if f["id"] == field_id)
    return str(f["translations"]["fa"] if lang == "fa" else f["label"])


def _jalali(day: dt.date) -> str:
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d").translate(FA)


def _errors(page: str) -> list[str]:
    return [ISOLATES.sub("", html.unescape(e)) for e in re.findall(r'<p class="error" role="alert">(.*?)</p>', page)]


def _fields(start: dt.date, stop: dt.date | None = None) -> dict[str, str]:
    typed = {"v-medication": "Enoxaparin", "v-indication": "thromboprophylaxis", "v-dose": "40", "v-dose_unit": "mg",
             "v-frequency": "QD", "v-route": "SUBCUTANEOUS", "v-started_on": _jalali(start),
             "v-ongoing": "yes" if stop is None else "no"}  # fmt: skip
    return typed if stop is None else {**typed, "v-stopped_on": _jalali(stop)}


def test_the_logs_refusals_are_said_in_persian(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)  # entry 1
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)  # entry 2, removed below
    remove_entry(trial.engine, coordinator, pid, "conmeds", 2, reason="duplicate", version=1)
    set_preferences(trial.engine, coordinator.username, language="fa", calendar="jalali")
    start, stop = TODAY - dt.timedelta(days=30), TODAY - dt.timedelta(days=31)
    name = CONMEDS["translations"]["fa"]
    page = f"/participants/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        csrf = {"csrf_token": csrf_of(client.get(page).text)}
        before = client.post(f"{page}/logs/conmeds", data={**csrf, **_fields(start, stop)})
        unexplained = client.post(f"{page}/logs/conmeds/1", data={**csrf, **_fields(start), "v-dose": "60",
                                                                   "version": "1"})  # fmt: skip
        same = client.post(f"{page}/logs/conmeds/1", data={**csrf, **_fields(start), "reason": "checked",
                                                            "version": "1"})  # fmt: skip
        removed = client.post(f"{page}/logs/conmeds/2", data={**csrf, **_fields(start), "reason": "again",
                                                               "version": "2"})  # fmt: skip
        unversioned = client.post(f"{page}/logs/conmeds/1/remove", data={**csrf, "reason": "duplicate"})
    assert [r.status_code for r in (before, unexplained, same, removed, unversioned)] == [422] * 5
    assert _errors(before.text) == [
        f"{_label('stopped_on', 'fa')}: {_jalali(stop)} پیش از {_label('started_on', 'fa')} ({_jalali(start)}) است"
    ]
    assert f"اصلاح مورد ۱ از {name} دلیل می‌خواهد" in _errors(unexplained.text)[0]
    assert _errors(same.text)[0].endswith(f"در مورد ۱ از {name} چیزی تغییر نمی‌کند")
    assert _errors(removed.text)[0].endswith(f"مورد ۲ از {name} حذف شده است (duplicate)؛ مورد تازه‌ای بیفزایید")
    assert _errors(unversioned.text)[0].endswith(
        f"صفحه نگفت کدام نسخه‌ی مورد ۱ از {name} را تغییر داده‌اید؛ صفحه‌ی شرکت‌کننده را دوباره باز کنید"
    )
    for r in (before, unexplained, same, removed, unversioned):
        said = " ".join(_errors(r.text))
        assert "conmeds" not in said and not re.search(r"[a-z]{4,} [a-z]{2,}", said), said  # no English rule left


def test_the_english_page_names_the_log_by_its_name(trial: Trial, pid: str) -> None:
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    page = f"/participants/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        csrf = {"csrf_token": csrf_of(client.get(page).text)}
        typed = {"v-medication": "Enoxaparin", "v-indication": "thromboprophylaxis", "v-dose": "60",
                 "v-dose_unit": "mg", "v-frequency": "QD", "v-route": "SUBCUTANEOUS",
                 "v-started_on": HEPARIN["started_on"], "v-ongoing": "yes"}  # fmt: skip
        unexplained = client.post(f"{page}/logs/conmeds/1", data={**csrf, **typed, "version": "1"})
    assert unexplained.status_code == 422
    assert _errors(unexplained.text) == [f"Reason for change: amending entry 1 of {CONMEDS['name']} needs a reason"]
