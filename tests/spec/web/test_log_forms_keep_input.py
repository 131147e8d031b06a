"""A refused log entry keeps what was typed, and its dates are said once per calendar (both databases; issue 24,
"forms that keep their input"; docs/web.md: every form keeps what was typed when refused).

- An entry added with its stop before its start comes back refused with every input as typed: the text and the
  number, the choices selected, both dates; the "Add an entry" form is open.
- An amendment refused (no reason for change) keeps the amended values typed, not the stored ones.
- The English refusal with the calendar "both" writes each date once in each calendar
  (``End date: 2026-01-01, 1404/10/11 is before Start date (...)``; the Solar Hijri date was written twice).

Dates computed with jdatetime; the labels read from the protocol file (an independent YAML read)."""

from __future__ import annotations

import datetime as dt
import html
import re

import jdatetime
import yaml
from fastapi.testclient import TestClient

from tests.spec.forms.conftest import TODAY, pid, trial
from tests.spec.logs.test_log_entries import HEPARIN
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, who
from trialwright.domain.roles import Role
from trialwright.services.logs import add_entry, amend_entry
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app

__all__ = ["pid", "trial"]

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
CONMEDS = next(g for g in RAW["logs"] if g["id"] == "conmeds")
START, STOP = TODAY - dt.timedelta(days=30), TODAY - dt.timedelta(days=31)


def _label(field_id: str) -> str:
    return str(next(f for f in CONMEDS["fields"] if f["id"] == field_id)["label"])


def _jalali(day: dt.date) -> str:
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")


def _input(page: str, input_id: str) -> str:
    """The value an input shows, or the code of the option a select shows selected ("" when none)."""
    tag = re.search(rf'<input id="{re.escape(input_id)}"[^>]*>', page)
    if tag:
        value = re.search(r'value="([^"]*)"', tag.group(0))
        return html.unescape(value.group(1)) if value else ""
    select = re.search(rf'<select id="{re.escape(input_id)}".*?</select>', page, re.S)
    assert select, f"no input {input_id}"
    chosen = re.search(r'<option value="([^"]*)" selected>', select.group(0))
    return chosen.group(1) if chosen else ""


def _errors(page: str) -> list[str]:
    return [html.unescape(e) for e in re.findall(r'<p class="error" role="alert">(.*?)</p>', page)]


def test_a_refused_entry_keeps_every_input_and_says_each_date_once(trial: Trial, pid: str) -> None:
    set_preferences(trial.engine, who(trial, Role.STUDY_COORDINATOR).username, language="en", calendar="both")
    typed = {"v-medication": "Enoxaparin", "v-indication": "thromboprophylaxis", "v-dose": "40", "v-dose_unit": "mg",
             "v-frequency": "QD", "v-route": "SUBCUTANEOUS", "v-started_on": START.isoformat(),
             "v-stopped_on": STOP.isoformat(), "v-ongoing": "no"}  # fmt: skip
    page = f"/participants/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        refused = client.post(f"{page}/logs/conmeds", data={"csrf_token": csrf_of(client.get(page).text), **typed})
    assert refused.status_code == 422
    for name, value in typed.items():
        assert _input(refused.text, f"add-conmeds-{name}") == value, name
    assert re.search(r'<details open><summary>Add an entry</summary>\s*<form method="post" action="[^"]*/logs/conmeds"',
                     refused.text)  # fmt: skip
    both = lambda day: f"{day.isoformat()}, {_jalali(day)}"  # noqa: E731
    assert _errors(refused.text) == [f"{_label('stopped_on')}: {both(STOP)} is before {_label('started_on')} "
                                     f"({both(START)})"]  # fmt: skip


def test_a_refused_amendment_keeps_the_values_typed(trial: Trial, pid: str) -> None:
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    page = f"/participants/{pid}"
    amended = {"v-medication": "Dalteparin", "v-indication": "thromboprophylaxis", "v-dose": "60",
               "v-dose_unit": "mg", "v-frequency": "QD", "v-route": "SUBCUTANEOUS",
               "v-started_on": HEPARIN["started_on"], "v-ongoing": "yes"}  # fmt: skip
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        shown = client.get(page).text
        assert _input(shown, "amend-conmeds-1-v-dose") == "40"  # the stored value before
        refused = client.post(f"{page}/logs/conmeds/1", data={"csrf_token": csrf_of(shown), **amended,
                                                               "version": "1"})  # fmt: skip
    assert refused.status_code == 422 and "needs a reason" in _errors(refused.text)[0]
    assert _input(refused.text, "amend-conmeds-1-v-dose") == "60"
    assert _input(refused.text, "amend-conmeds-1-v-medication") == "Dalteparin"
    assert _input(refused.text, "add-conmeds-v-dose") == ""  # the other form is left as it was
    assert "<details open><summary>Amend or remove entry 1</summary>" in refused.text


def test_an_amendment_refused_for_a_newer_version_shows_the_entry_as_it_now_stands(trial: Trial, pid: str) -> None:
    """Someone else amended the entry since the page was read: the page shows the entry as it now stands (with its
    new version), never the values typed over it, so one more click cannot overwrite their change unseen."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    page = f"/participants/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        shown = client.get(page).text
        amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {**HEPARIN, "dose": 50}, reason="dose corrected",
                    version=1)  # fmt: skip
        refused = client.post(f"{page}/logs/conmeds/1", data={
            "csrf_token": csrf_of(shown), "v-medication": HEPARIN["medication"], "v-dose": "60",
            "v-started_on": HEPARIN["started_on"], "reason": "typo", "version": "1"})  # fmt: skip
    assert refused.status_code in (409, 422), refused.status_code
    assert _input(refused.text, "amend-conmeds-1-v-dose") == "50"  # the newer stored value, not the 60 typed
    version = re.search(r'action="/participants/[^"]+/logs/conmeds/1".*?name="version" value="(\d+)"', refused.text,
                        re.S)  # fmt: skip
    assert version is not None and version.group(1) == "2"
