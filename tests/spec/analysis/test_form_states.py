"""The study report says how many form records it read, by state (docs/analysis.md: every record counts, whatever
its state: a draft as much as a signed form).

A simulated trial on SQLite and PostgreSQL (its records are drafts, complete, verified and signed; none locked):
the blinded report's counts by state (draft, complete, verified, signed, locked, in that order, zeros shown) equal
a count made by SQL straight from ``form_records``; results.json carries the same; the HTML report says them in
English and in Persian (Persian words and digits). They are trial-wide: no group, arm or arm code anywhere near them.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterator

import pytest
from pypdf import PdfReader
from sqlalchemy import text

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.analysis.engine import AnalysisReport
from trialwright.analysis.report import render_html, render_pdf, results_json
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services.analysis import run_analysis
from trialwright.services.simulation import simulate
from trialwright.web.report_words import report_words

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
STATES = ("draft", "complete", "verified", "signed", "locked")
PERSIAN = {"draft": "پیش‌نویس", "complete": "کامل", "verified": "تطبیق‌شده", "signed": "امضاشده", "locked": "قفل‌شده"}
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 16, seed=5)
    yield t
    t.engine.dispose()


def _counted(trial: Trial) -> dict[str, int]:
    with trial.engine.connect() as connection:
        rows = connection.execute(text("SELECT state, COUNT(*) FROM form_records GROUP BY state")).all()
    return {state: int(n) for state, n in rows}


def _report(trial: Trial) -> AnalysisReport:
    return run_analysis(trial.engine, who(trial, Role.BLINDED_STATISTICIAN)).report


def _section(page: str) -> str:
    """The form-state line and its table, tags removed."""
    part = page.split('id="form-states">', 1)[1].split("</table>", 1)[0]
    return " ".join(re.sub(r"<[^>]*>", " ", html.unescape(part)).split())


def test_the_report_counts_the_form_records_it_read_by_state_as_sql_does(trial: Trial) -> None:
    counted = _counted(trial)
    assert sum(1 for n in counted.values() if n) >= 3 and set(counted) <= set(STATES)  # several states to tell apart
    report = _report(trial)
    assert list(report.form_states) == list(STATES)
    assert dict(report.form_states) == {s: counted.get(s, 0) for s in STATES}
    assert json.loads(json.dumps(results_json(report)))["form_states"] == {s: counted.get(s, 0) for s in STATES}


def test_the_html_report_says_the_counts_in_english_and_in_persian_and_names_no_arm(trial: Trial) -> None:
    counted = _counted(trial)
    report = _report(trial)
    english = _section(render_html(report, {}))
    assert english.startswith("Form records read, by state: every record counts, whatever its state")
    for state in STATES:
        assert f" {state} {counted.get(state, 0)} " in f"{english} ", english
    persian = _section(render_html(report, {}, words=report_words(PROTOCOL, "fa")))
    assert persian.startswith("فرم‌های خوانده‌شده، به تفکیک وضعیت") and "Form records" not in persian
    for state in STATES:
        assert f" {PERSIAN[state]} {str(counted.get(state, 0)).translate(PERSIAN_DIGITS)} " in f"{persian} ", persian
    for said in (english, persian):
        assert not [w for a in PROTOCOL.arms for w in (a.name, a.code) if re.search(rf"\b{re.escape(w)}\b", said)]
        assert "All participants" not in said and "Group" not in said


def test_the_pdf_report_says_the_counts_too(trial: Trial) -> None:
    counted = _counted(trial)
    report = _report(trial)
    reader = PdfReader(io.BytesIO(render_pdf(report, {})))
    words = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert "Form records read, by state" in words
    after = words.split("Form records read, by state", 1)[1]
    for state in STATES:
        assert f"{state} {counted.get(state, 0)}" in after, after[:400]
    render_pdf(report, {}, words=report_words(PROTOCOL, "fa"))  # drawn right to left without a failure
