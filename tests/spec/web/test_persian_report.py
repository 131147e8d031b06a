"""The study report in Persian (issue 24 item 3), both databases.

A Persian statistician's analysis page and HTML report speak Persian: the headings, table labels and sentences
are the catalog's Persian, the protocol's texts are the protocol's Persian where it gives them (the trial's public
title, the analysis sets, Table 1's fields and choices: read here from the protocol file, an independent YAML
read), the report is marked right to left, and its numbers and dates are in Persian digits (the snapshot's hash,
an identifier, stays as written). An English reader's report is unchanged.
"""

from __future__ import annotations

import html
import re

import yaml
from fastapi.testclient import TestClient

from tests.spec.web.conftest import sign_in
from tests.spec.web.test_analysis_pages import _randomized
from tests.spec.web.test_persian_digits import LATIN_DATE_OR_TIME, _read
from tests.trialfixtures import FIRST_PROTOCOL, Trial, who
from trialwright.domain.roles import Role
from trialwright.services.users import set_preferences

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
HEADINGS = {  # the English heading, and the words a Persian reader gets instead
    "Participant flow (CONSORT)": "جریان شرکت‌کنندگان (CONSORT)",
    "Analysis sets": "مجموعه‌های تحلیل",
    "Table 1. Baseline characteristics": "جدول ۱. ویژگی‌های پایه",
    "Outcomes": "پیامدها",
}


def _field(ref: str) -> dict:  # type: ignore[type-arg]
    form_id, _, field_id = ref.partition(".")
    form = next(f for f in RAW["forms"] if f["id"] == form_id)
    return next(x for x in form["fields"] if x["id"] == field_id)


def test_the_report_in_persian(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    set_preferences(trial.engine, who(trial, Role.BLINDED_STATISTICIAN).username, language="fa")
    sign_in(client, Role.BLINDED_STATISTICIAN)
    for path in ("/analysis", "/analysis/report.html"):
        page = client.get(path)
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert 'id="report" lang="fa" dir="rtl"' in text
        for english, persian in HEADINGS.items():
            assert f"<h2>{persian}</h2>" in text and f"<h2>{english}</h2>" not in text
        assert RAW["trial"]["titles"]["translations"]["fa"]["public"] in text
        for s in RAW["analysis_sets"]:
            assert s["translations"]["fa"] in text
        for ref in RAW["analysis_plan"]["baseline_table"]:
            field = _field(ref)
            assert field["translations"]["fa"] in text, ref
            for choice in field.get("choices", []):
                assert choice["translations"]["fa"] in text, (ref, choice["code"])
        body = _read(text.split('id="report"', 1)[1])
        assert LATIN_DATE_OR_TIME.findall(body) == []
        assert "هجری شمسی" in body and "Taken at" not in body and "Mean (SD)" not in body
        sha = re.search(r"<code>([0-9a-f]{64})</code>", text)
        assert sha is not None  # the hash as written


def test_an_english_readers_report_is_english(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    sign_in(client, Role.BLINDED_STATISTICIAN)
    text = html.unescape(client.get("/analysis/report.html").text)
    assert '<html lang="en" dir="ltr">' in text and 'id="report" lang="en" dir="ltr"' in text
    assert all(f"<h2>{english}</h2>" in text for english in HEADINGS)
    assert RAW["trial"]["titles"]["public"] in text and "Taken at" in text
