"""Dates, times and numbers on Persian pages are in Persian digits (issue 24 item 2), both databases.

A participant with visits held, an overdue visit, a form saved, a query and a serious adverse event with its
reporting deadlines; every role, reading Persian (each calendar preference), walks its main pages (every page its
navigation links to: the home page and its work list, participants, the status matrix, queries, safety and its
deadlines, the DSMB, pharmacy, recruitment, the audit trail, users, ...), and the investigator a work list's own
page, the participant's page (visit dates and windows), a form and the adverse event's page. What a person reads
on each (the page's text, without its inputs, scripts and attributes) holds no date or time in Latin digits.
Identifiers and codes (``RAZ-001``, ``AE-0001``, a snapshot's hash) stay as written (docs/i18n.md, "Digits").

An English reader's pages keep Latin digits: the rule is the language's, not a change of what is stored.
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.services.safety import report_event
from trialwright.services.users import set_preferences
from trialwright.web.deps import nav_for

#: A date (ISO or Solar Hijri, - or /) or a time of day, in Latin digits.
LATIN_DATE_OR_TIME = re.compile(r"\d{4}[-/]\d{1,2}[-/]\d{1,2}|(?<!\d)\d{1,2}:\d{2}(?!\d)", re.ASCII)
PERSIAN_DATE = re.compile(r"[۰-۹]{4}[-/][۰-۹]{1,2}[-/][۰-۹]{1,2}")


def _read(page: str) -> str:
    """What a person reads: the page's text without its head, scripts, styles, inputs and attributes."""
    body = page.split("<body", 1)[-1]
    body = re.sub(r"<(script|style|textarea|select)\b.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]*>", " ", body))


def _walk(app, trial: Trial) -> dict[str, str]:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.record_visit(trial.engine, coordinator, pid, "infusion", TODAY - dt.timedelta(days=7))
    taken = TODAY - dt.timedelta(days=3)
    svc.save_form(trial.engine, coordinator, pid, "day7", "labs", {"sampled_at": f"{taken.isoformat()}T09:00+03:30"},
                  visit_date=TODAY)  # fmt: skip
    aware = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)  # its deadlines passed: overdue on the safety pages
    event = report_event(trial.engine, coordinator, pid, {
        "term": "Pneumothorax", "onset": (TODAY - dt.timedelta(days=4)).isoformat(), "grade": 3,
        "serious": True, "seriousness_criteria": ["hospitalisation"], "causality": "unlikely",
        "action_taken": "not_applicable", "outcome": "recovering", "aware_at": aware.isoformat(),
    })  # fmt: skip
    pages = {}
    with as_role(app, Role.INVESTIGATOR) as inv:
        for path in ("/work?list=visits_overdue", "/work?list=forms_to_enter", f"/participants/{pid}",
                     f"/participants/{pid}/visits/day7/forms/labs", f"/adverse-events/{event.ae_number}"):  # fmt: skip
            response = inv.get(path)
            assert response.status_code == 200, (path, response.status_code)
            pages[path] = response.text
    for role in Role:  # every role's main pages: those its navigation links to
        with as_role(app, role) as client:
            for item in nav_for(who(trial, role)):
                response = client.get(item.href)
                assert response.status_code == 200, (role, item.href, response.status_code)
                pages[f"{role.value} {item.href}"] = response.text
    return pages


@pytest.mark.parametrize("calendar", ["jalali", "both", "gregorian"])
def test_no_date_or_time_in_latin_digits_on_persian_pages(app, trial: Trial, calendar: str) -> None:  # type: ignore[no-untyped-def]
    for role in Role:
        set_preferences(trial.engine, who(trial, role).username, language="fa", calendar=calendar)
    pages = _walk(app, trial)
    found = {path: LATIN_DATE_OR_TIME.findall(_read(text)) for path, text in pages.items()}
    assert {path: hits for path, hits in found.items() if hits} == {}
    # and dates are there, in Persian digits: the visits' days, the audit's times
    for path in ("investigator /participants", "monitor /admin/audit", "/work?list=visits_overdue"):
        assert PERSIAN_DATE.search(_read(pages[path])), path


def test_english_pages_keep_latin_digits(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pages = _walk(app, trial)
    for path in ("investigator /participants", "monitor /admin/audit", "/work?list=visits_overdue"):
        text = _read(pages[path])
        assert LATIN_DATE_OR_TIME.search(text) and not PERSIAN_DATE.search(text), path
