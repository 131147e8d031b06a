"""The study report carries the safety table by MedDRA SOC and PT (both databases): the blinded statistician's
report pools every randomized participant (even where the protocol allows unnamed groups on the safety page), the
unblinded report (after the lock) counts by arm. Each line, participants n and events, is checked against an
independent count: pandas over the CSV export's adverse events and participants (``_independent``).

| report         | groups            | lines                                                   |
|----------------|-------------------|---------------------------------------------------------|
| blinded        | All participants  | each SOC, each PT under it, "Not yet coded"             |
| unblinded      | each arm          | the same lines, counted within each arm                 |
"""

from __future__ import annotations

from pathlib import Path

from tests.spec.coding.test_coding_safety_tables import _independent, coded  # noqa: F401 (the fixture)
from tests.spec.safety.test_safety_service import ARM_WORDS
from tests.trialfixtures import PASSWORD, Trial, first_protocol, who
from trialwright.analysis.engine import AnalysisReport
from trialwright.analysis.report import render_html
from trialwright.domain.coding import NOT_CODED
from trialwright.domain.roles import Role
from trialwright.services.analysis import run_analysis
from trialwright.services.forms import lock_trial, unlock_trial


def _ours(report: AnalysisReport, names: dict[str, str]) -> tuple[dict[tuple[str, str], dict], dict]:
    mine = {}
    for t in report.terms:
        line = f"{t.soc} / {t.pt}" if t.pt else t.soc or NOT_CODED
        for g in report.term_groups:
            if t.participants[g] or t.events[g]:
                mine[(names[g], line)] = {"n": t.participants[g], "events": t.events[g]}
    return mine, {names[g]: n for g, n in report.terms[0].totals.items()}


def test_the_blinded_report_pools_the_soc_and_pt_table(trial: Trial, coded: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    report = run_analysis(trial.engine, who(trial, Role.BLINDED_STATISTICIAN)).report
    assert report.term_groups == ("All participants",)
    assert _ours(report, {"All participants": "All participants"}) == _independent(trial, tmp_path, with_arms=False)
    html = render_html(report, {})
    table = html[html.index('data-testid="report-terms"') :]
    table = table[: table.index("</table>")]
    assert NOT_CODED in table and "2 (50%) [2]" in table
    assert 'data-testid="report-terms-population">Every randomized participant, in the group allocated' in html
    assert not any(w in table for w in ARM_WORDS)
    assert "Adverse events by MedDRA SOC and PT" in report.summary()


def test_the_unblinded_report_counts_the_soc_and_pt_table_by_arm(
    trial: Trial,
    coded: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    manager = who(trial, Role.DATA_MANAGER)
    lock_trial(trial.engine, manager, "final analysis", password=PASSWORD)
    try:
        report = run_analysis(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), unblinded=True).report
    finally:
        unlock_trial(trial.engine, manager, "the other specs go on")
    codes = {a.name: a.code for a in first_protocol().protocol.arms}
    assert set(report.term_groups) == set(codes)
    assert _ours(report, codes) == _independent(trial, tmp_path, with_arms=True)
    html = render_html(report, {})
    table = html[html.index('data-testid="report-terms"') :]
    assert all(name in table[: table.index("</table>")] for name in codes)
