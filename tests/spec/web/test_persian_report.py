"""The study report in Persian (issue 24 item 3), both databases.

A Persian statistician's analysis page and HTML report speak Persian: the headings, table labels and sentences
are the catalog's Persian, the protocol's texts are the protocol's Persian where it gives them (the trial's public
title, the analysis sets, Table 1's fields and choices: read here from the protocol file, an independent YAML
read), the report is marked right to left, and its numbers and dates are in Persian digits (the snapshot's hash,
an identifier, stays as written). An English reader's report is unchanged.
"""

from __future__ import annotations

import html
import json
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
PERSIAN = re.compile(r"[\u0600-\u06FF]")
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
        # the rule for values below a limit of quantification in words, the snapshot's time to the minute in UTC
        assert "حد تقسیم بر √۲" in body and "limit_over_sqrt2" not in body
        assert re.search(r"[۰-۹]{4}-[۰-۹]{2}-[۰-۹]{2} [۰-۹]{2}:[۰-۹]{2} UTC", body) is not None
        sha = re.search(r"<code>([0-9a-f]{64})</code>", text)
        assert sha is not None  # the hash as written


def test_an_english_readers_report_is_english(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    sign_in(client, Role.BLINDED_STATISTICIAN)
    text = html.unescape(client.get("/analysis/report.html").text)
    assert '<html lang="en" dir="ltr">' in text and 'id="report" lang="en" dir="ltr"' in text
    assert all(f"<h2>{english}</h2>" in text for english in HEADINGS)
    assert RAW["trial"]["titles"]["public"] in text and "Taken at" in text


OUTCOME = re.compile(r'<section class="outcome" id="outcome-([a-z0-9_]+)-[^"]*">\s*<h3>(.*?)</h3>(.*?)</section>', re.S)
ROW = re.compile(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", re.S)
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]*")


def _visit(visit_id: str) -> dict:  # type: ignore[type-arg]
    return next(v for v in RAW["visits"] if v["id"] == visit_id)


def _persian_latin() -> set[str]:
    """Latin words the protocol's own Persian texts keep (abbreviations clinicians write in Latin: CRP, ELISA)."""
    texts = [s["translations"]["fa"] for s in RAW["analysis_sets"]]
    texts += [s["definition_translations"]["fa"] for s in RAW["analysis_sets"]]
    texts += [v["translations"]["fa"] for v in RAW["visits"]]
    texts += [x["translations"]["fa"] for f in RAW["forms"] for x in f["fields"] if "translations" in x]
    return {w for t in texts for w in LATIN_WORD.findall(t)}


def test_the_outcomes_and_their_estimands_in_persian_and_results_json_in_english(
    client: TestClient, trial: Trial
) -> None:
    _randomized(trial)
    set_preferences(trial.engine, who(trial, Role.BLINDED_STATISTICIAN).username, language="fa")
    sign_in(client, Role.BLINDED_STATISTICIAN)
    english = json.loads(client.get("/analysis/results.json").text)  # the declared first language, whoever reads
    raw = {o["id"]: o for o in RAW["outcomes"]}
    sets = {s["id"]: s for s in RAW["analysis_sets"]}
    for result in english["outcomes"]:
        o = raw[result["outcome_id"]]
        assert (result["description"], result["registry_timepoint"]) == (o["description"], o["registry_timepoint"])
        population = sets[o["estimand"]["population"]]
        assert result["estimand"][0] == ["Population", f"{population['name']}: {population['definition']}"]
    assert not PERSIAN.search(json.dumps([r["estimand"] for r in english["outcomes"]], ensure_ascii=False))
    kept = _persian_latin() | {"ANCOVA", "MMRM", "REML", "t"}  # method names statisticians write in Latin
    for path in ("/analysis", "/analysis/report.html"):
        text = html.unescape(client.get(path).text)
        sections = OUTCOME.findall(text)
        assert {oid for oid, _, _ in sections} == set(raw)
        for (oid, heading, body), result in zip(sections, english["outcomes"], strict=True):
            o, est = raw[oid], result["estimand"]
            heading = re.sub(r"\s*<small>.*?</small>", "", heading)
            assert heading == f"{o['description_translations']['fa']}: {o['registry_timepoint_translations']['fa']}"
            rows = dict(ROW.findall(body.split('<table class="estimand">', 1)[1].split("</table>", 1)[0]))
            assert len(rows) == len(est) == 7  # the five attributes, the sensitivity estimators, the hypothesis
            assert rows["فرضیه"] == "برتری: آزمون دوطرفهٔ نبود تفاوت (پیش‌فرض)"  # none declared: superiority
            population = sets[o["estimand"]["population"]]
            assert rows["جمعیت"] == f"{population['translations']['fa']}: {population['definition_translations']['fa']}"
            variable = o["estimand"]["variable"]
            if variable.get("at"):
                assert _visit(variable["at"])["translations"]["fa"] in rows["متغیر"]
            for ref in variable.get("fields", []):
                assert f"{_field(ref)['translations']['fa']} ({ref})" in rows["متغیر"]
            for words in rows.values():  # no English word is left, only ids and abbreviations written in Latin
                refs = set(variable.get("fields", []))
                assert set(LATIN_WORD.findall(words)) - refs - kept == set(), (oid, words)
        assert "the difference in means between the arms" not in text and "تفاوت میانگین‌ها میان بازوها" in text


def test_an_english_readers_outcomes_are_the_results_own_words(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    sign_in(client, Role.BLINDED_STATISTICIAN)
    english = json.loads(client.get("/analysis/results.json").text)
    text = html.unescape(client.get("/analysis/report.html").text)
    for result in english["outcomes"]:
        assert f"<h3>{result['description']}" in text and result["registry_timepoint"] in text
        for name, words in result["estimand"]:
            assert f"<tr><th>{name}</th><td>{words}</td></tr>" in text
