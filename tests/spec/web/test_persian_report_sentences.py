"""The Persian study report says the sentences the analysis builds with values in Persian (issue 24 item 2), both
databases: the notes (one built with a count), why a participant could not be used by an outcome (the listed
exclusions: the field, the visit by its Persian name, how the participant left follow-up and the day in Persian
digits), each comparison's label (the arms by their Persian names) and method (the catalog's Persian, the technical
name kept: ANCOVA), and, in the CONSORT diagram, a screened patient's coded reason for not being enrolled
("Consent not obtainable"). On the analysis page and in the HTML report; no English sentence is left. The English
report says them as before, and results.json keeps the English whoever asks (it is the record programs read).

The scenario: one participant randomized who withdrew consent to follow-up on the day of randomization and was
emergency-unblinded, one patient screened whose consent could not be obtained, the database locked, read by the
unblinded statistician. The Persian is read from the catalog file (an independent read, with babel) and the arms'
and visits' Persian from the protocol file (YAML)."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from zoneinfo import ZoneInfo

import yaml
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from tests.spec.web.conftest import sign_in
from tests.spec.web.test_analysis_pages import _randomized
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services.forms import lock_trial
from trialwright.services.randomization.unblinding import emergency_unblind
from trialwright.services.screening import screen, set_non_enrolment, withdraw
from trialwright.services.users import set_preferences
from trialwright.web.i18n import catalog_path

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
with catalog_path("fa").open("rb") as _handle:
    FA = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}
ARMS = {a["name"]: a["translations"]["fa"] for a in RAW["arms"]}
VISITS = {v["id"]: v["translations"]["fa"] for v in RAW["visits"]}
LRI, PDI = "\u2066", "\u2069"

#: The English a Persian reader must not meet: the sentences' own words
ENGLISH = (
    " vs ",
    "ANCOVA (log scale)",
    "Wilcoxon rank-sum",
    "Newcombe hybrid score",
    "Fisher's exact",
    "Fine-Gray",
    "withdrew consent",
    "on day 0",
    "how the stay ended",
    "emergency-unblinded",
    "participant(s)",
    "Consent not obtainable",
    "per site-month",
    "site-months",
)


def _scenario(trial: Trial) -> str:
    pid = _randomized(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    withdraw(trial.engine, coordinator, pid, scope="follow_up", cause="withdrew_consent", reason="moved away",
             withdrawn_on=None)  # fmt: skip
    emergency_unblind(trial.engine, who(trial, Role.INVESTIGATOR), pid, reason="anaphylaxis", password=PASSWORD)
    today = dt.datetime.now(ZoneInfo("Asia/Tehran")).date()  # the site's date (from 20:30 UTC, UTC's tomorrow)
    s = screen(trial.engine, coordinator, site="RAZ", screened_on=today, values={"age": 40})
    set_non_enrolment(trial.engine, coordinator, s.id, reason="consent_not_obtainable")
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    return str(who(trial, Role.UNBLINDED_STATISTICIAN).username)


def _report(text: str) -> str:
    return html.unescape(text).split('id="report"', 1)[1]


def _rows(report: str) -> list[list[str]]:
    """Each table row's cells, as text."""
    return [
        [re.sub(r"<[^>]*>", "", c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", report, re.S)
    ]


def test_the_report_says_its_built_sentences_in_the_readers_language(client: TestClient, trial: Trial) -> None:
    set_preferences(trial.engine, _scenario(trial), language="fa")
    sign_in(client, Role.UNBLINDED_STATISTICIAN)
    treatment, placebo = (a["name"] for a in RAW["arms"])
    versus = FA["%(treatment)s vs %(reference)s"] % {"treatment": ARMS[treatment], "reference": ARMS[placebo]}
    left = FA["Withdrew consent"]
    for path in ("/analysis?unblinded=1", "/analysis/report.html?unblinded=1"):
        page = client.get(path)
        assert page.status_code == 200
        report = _report(page.text)
        # (a) the note built with a count: the catalog's sentence, the count in Persian digits
        assert (
            '<p class="note">'
            + FA["%(n)s participant(s) were emergency-unblinded before this analysis."] % {"n": "۱"}
            + "</p>"
            in report
        )
        rows = _rows(report)
        # (c) every comparison: the arms by their Persian names, the method in the catalog's Persian
        compared = [r for r in rows if len(r) == 6 and r[0] == versus]
        methods = {r[1].removesuffix(" (" + FA["main"] + ")") for r in compared}
        assert compared and methods == {
            FA[m]
            for m in (
                "ANCOVA (log scale)",
                "ANCOVA",
                "Wilcoxon rank-sum, Hodges-Lehmann",
                "Newcombe hybrid score; Fisher's exact",
                "Fine-Gray (death competing); Gray's test",
                "Cause-specific Cox (death competing)",
            )
        }, methods
        assert "ANCOVA" in FA["ANCOVA (log scale)"]  # the technical name kept recognisable
        # (b) why the participant was not analysed: the field as written (isolated), the visit's Persian name, how
        # they left follow-up and the day in Persian digits
        why = {r[2] for r in rows if len(r) == 3 and r[0].startswith("RAZ-")}
        crp = "; ".join(
            FA["no %(variable)s at %(visit)s (%(how)s on day %(day)s)"]
            % {"variable": f"{LRI}labs.crp{PDI}", "visit": VISITS[visit], "how": left, "day": "۰"}
            for visit in ("day7", "baseline")
        ).replace("; ", FA["; "])
        assert crp in why, why
        assert FA["how the stay ended is not recorded (%(how)s)"] % {"how": left} in why, why
        # (d) the CONSORT diagram's reason for not being enrolled, in the catalog's Persian with its count
        svg = report.split("<figure", 1)[1].split("</figure>", 1)[0]
        assert FA["Consent not obtainable"] + " (۱\u00a0نفر)" in svg, svg
        # the pilot table's rates as the diagram says them: the catalog's words, Persian digits and percent sign
        retained = FA["%(percent)s%% (%(part)s/%(whole)s)"] % {"percent": "۰", "part": "۰", "whole": "۱"}
        assert [FA["Retained to the primary timepoint"], retained] in rows, retained
        # no English sentence is left
        body = re.sub(r"<[^>]*>", " ", report)
        assert [e for e in ENGLISH if e in body] == []
    # results.json: English whoever asks, a Persian reader too
    data = json.loads(client.get("/analysis/results.json?unblinded=1").text)
    crp = next(o for o in data["outcomes"] if o["variable"] == "labs.crp")
    assert crp["comparisons"][0]["label"] == f"{treatment} vs {placebo}"
    assert crp["comparisons"][0]["method"] == "ANCOVA (log scale)"
    assert crp["excluded"][0]["reason"].startswith("no labs.crp at day7 (withdrew consent on day 0)")
    assert "1 participant(s) were emergency-unblinded before this analysis." in data["notes"]
    assert {"label": "Consent not obtainable", "count": 1} in data["consort"]["excluded"]
    # the English reader's report says them as before
    set_preferences(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN).username, language="en")
    report = _report(client.get("/analysis/report.html?unblinded=1").text)
    assert '<p class="note">1 participant(s) were emergency-unblinded before this analysis.</p>' in report
    rows = _rows(report)
    assert [treatment + " vs " + placebo, "ANCOVA (log scale) (main)"] in [r[:2] for r in rows]
    why = {r[2] for r in rows if len(r) == 3 and r[0].startswith("RAZ-")}
    assert "no labs.crp at day7 (withdrew consent on day 0); no labs.crp at baseline (withdrew consent on day 0)" in why
    assert "Consent not obtainable (n=1)" in report


#: The English a Persian reader must not meet in the comparisons, the stay's summary and the tables by grade
ENGLISH_LEFT = (
    "not estimable",
    "needs at least",
    "must hold both arms",
    "ratio (of the change)",
    "shift of the change",
    "cause-specific hazard ratio",
    "value end",
    RAW["safety"]["expected_events"][0]["term"],
)


def test_the_estimates_scales_stay_and_expected_events_are_in_the_readers_language(
    client: TestClient, trial: Trial
) -> None:
    """(issue 24 item 2, the rest) With one participant nothing is estimable: each comparison says "not estimable"
    and why in the catalog's Persian; every scale is the catalog's; the length of stay's summary is at the end of the
    stay in words, not the id "end"; the table by worst grade names the expected event by the protocol's Persian
    term. The English report keeps every one of them as written."""
    set_preferences(trial.engine, _scenario(trial), language="fa")
    sign_in(client, Role.UNBLINDED_STATISTICIAN)
    ancova = FA["not estimable"] + " (" + FA["ANCOVA needs at least one complete row in each group"] + ")"
    hodges = FA["not estimable"] + " (" + FA["hodges_lehmann needs at least one value in each sample"] + ")"
    event = RAW["safety"]["expected_events"][0]["translations"]["fa"]
    for path in ("/analysis?unblinded=1", "/analysis/report.html?unblinded=1"):
        report = _report(client.get(path).text)
        crp = report.split('id="outcome-crp', 1)[1].split("</section>", 1)[0]
        compared = [r for r in _rows(crp) if len(r) == 6]
        assert [r[3:5] for r in compared] == [
            [FA["ratio of geometric means"], ancova],
            [FA["ratio (of the change)"], hodges],
            [FA["ratio of geometric means"], ancova],
        ], compared
        scales = {r[3] for r in _rows(report) if len(r) == 6}
        assert FA["cause-specific hazard ratio"] in scales and FA["shift of the change"] in scales, scales
        stay = report.split('id="outcome-length_of_stay', 1)[1].split("</section>", 1)[0]
        assert [r[1] for r in _rows(stay) if len(r) == 5] == [FA["value"] + " " + FA["end"]] * 2
        grades = [r for r in _rows(report) if len(r) == 8]
        assert grades and {r[0] for r in grades} == {event}, grades
        body = re.sub(r"<[^>]*>", " ", report.split("<figure", 1)[0] + report.split("</figure>", 1)[1])
        assert [e for e in ENGLISH_LEFT if e in body] == []
    set_preferences(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN).username, language="en")
    report = _report(client.get("/analysis/report.html?unblinded=1").text)
    assert "not estimable (ANCOVA needs at least one complete row in each group)" in report
    assert "<td>ratio (of the change)</td>" in report and "<td>value end</td>" in report
    assert f"<td>{RAW['safety']['expected_events'][0]['term']}</td>" in report
