"""The Persian study report says the values the analysis writes in English words in Persian (issue 24, item 2):
Table 1's "median" and an undefined value's "NA" (a standard deviation of one value, a missing quartile), on the
page and in the HTML report, both databases; the figures are drawn left to right inside a right-to-left report
(``<figure dir="ltr">``: matplotlib places each line of text from its start, so a right-to-left direction would
move it out of its box; the browser check is ``tests/browser/test_analysis_rtl.py``). An English reader's report
keeps NA and median."""

from __future__ import annotations

import datetime as dt
import html
import re
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from tests.spec.web.conftest import sign_in
from tests.spec.web.test_analysis_pages import _randomized
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms
from trialwright.services.users import set_preferences

CELL = re.compile(r"<td>(.*?)</td>", re.S)


def _table_one(text: str) -> list[str]:
    body = text.split('id="report"', 1)[1]
    return CELL.findall(body.split("<h2>", 4)[3].split("</table>", 1)[0])  # the fourth heading: Table 1


def _one_crp(trial: Trial) -> None:
    """One randomized participant with one baseline CRP: its standard deviation is NA."""
    pid = _randomized(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    forms.record_visit(trial.engine, coordinator, pid, "baseline", dt.datetime.now(ZoneInfo("Asia/Tehran")).date())
    forms.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 40})


def test_the_persian_report_says_na_and_median_in_persian(client: TestClient, trial: Trial) -> None:
    _one_crp(trial)
    set_preferences(trial.engine, who(trial, Role.BLINDED_STATISTICIAN).username, language="fa")
    sign_in(client, Role.BLINDED_STATISTICIAN)
    for path in ("/analysis", "/analysis/report.html"):
        text = html.unescape(client.get(path).text)
        cells = " ".join(_table_one(text))
        assert "میانه" in cells and "نامشخص" in cells, cells
        # a row's unit in the protocol's word for it (demographics.age_at_enrolment: years, in Persian سال)
        labels = " ".join(re.findall(r"<tr><td>(.*?)</td>", text.split('id="report"', 1)[1]))
        assert "(سال)" in labels and "(years)" not in labels, labels
        body = re.sub(r"<[^>]*>", " ", text.split('id="report"', 1)[1])
        assert not re.search(r"\bNA\b", body) and not re.search(r"\bmedian\b", body)
        figures = re.findall(r"<figure[^>]*>", text)
        assert figures and set(figures) == {'<figure dir="ltr">'}


def test_the_english_report_keeps_na_and_median(client: TestClient, trial: Trial) -> None:
    _one_crp(trial)
    sign_in(client, Role.BLINDED_STATISTICIAN)
    cells = " ".join(_table_one(html.unescape(client.get("/analysis/report.html").text)))
    assert re.search(r"\bmedian\b", cells) and re.search(r"\bNA\b", cells), cells
