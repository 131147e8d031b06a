"""A non-inferiority estimand (ICH E9 3.3.2; CONSORT extension for non-inferiority trials, Piaggio et al. JAMA
2012) is judged against its margin: the 95% CI's bound on the side of harm and the one-sided p for H0 "the
difference is the margin on the side of harm", computed here independently with statsmodels OLS and scipy from the
same data, for a trial that is non-inferior and one that is not, in both directions of benefit.

The trial: the first protocol's lymphocyte subsets outcome (ANCOVA of CD4 at day 7 on arm, baseline and stratum),
declared non-inferior with a margin of 50 cells/uL. 60 participants per arm in two strata, baseline N(500, 100),
day 7 = 200 + 0.6 baseline + N(0, 40) + the planted shift in the experimental arm (the reference group, Placebo, is
the first). With these numbers the 95% CI is about +/-15 wide: a shift of 0 is non-inferior, a shift of 45 towards
harm is not. The analysis runs in memory (``analyse_outcome``, as a locked trial's analysis does); the database only
feeds values to it, and that reading is unchanged by the hypothesis.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis import report as report_module
from trialwright.analysis.dataset import AnalysisData, Grouping, Screened, Subject
from trialwright.analysis.engine import analyse
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.analysis.noninferiority import NON_INFERIOR, NOT_SHOWN
from trialwright.analysis.report import render_html
from trialwright.protocol import load_protocol_text
from trialwright.web.report_words import report_words

GROUPS = ("Placebo", "Exosomes")  # the reference first
VARIABLE = "labs.cd4_abs"
MARGIN = 50.0
PER_ARM = 60


def _protocol(lower_is_better: bool) -> Any:
    def mutate(doc: Any) -> None:
        e = doc["outcomes"][4]["estimand"]  # lymphocyte_subsets: ANCOVA of a difference in means
        e.pop("sensitivity", None)  # Hodges-Lehmann has no non-inferiority test yet (refused at check)
        e["hypothesis"] = {"kind": "non_inferiority", "margin": MARGIN, "lower_is_better": lower_is_better}

    return load_protocol_text(mutated_text(mutate)).protocol


def _subjects(shift: float, seed: int) -> list[Subject]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(2 * PER_ARM):
        arm = i % 2
        baseline = float(rng.normal(500, 100))
        follow = 200 + 0.6 * baseline + float(rng.normal(0, 40)) + shift * arm
        out.append(
            Subject(
                participant_id=f"P-{i:03d}", site="RAZ", stratum=f"age={'old' if i % 4 < 2 else 'young'}",
                group=GROUPS[arm], treated=True, treated_group=GROUPS[arm], per_protocol=True, not_per_protocol=(),
                withdrawn=(), emergency_unblinded=False,
                values={"baseline": {VARIABLE: baseline}, "day7": {VARIABLE: follow}},
            )
        )  # fmt: skip
    return out


def _independent(subjects: list[Subject], lower_is_better: bool) -> tuple[float, float, float, float, float]:
    """Estimate, 95% CI and the one-sided p against the margin, by statsmodels OLS and scipy's t."""
    frame = pd.DataFrame(
        {
            "y": [s.values["day7"][VARIABLE] for s in subjects],
            "baseline": [s.values["baseline"][VARIABLE] for s in subjects],
            "arm": [1.0 if s.group == GROUPS[1] else 0.0 for s in subjects],
            "stratum": [s.stratum for s in subjects],
        }
    )
    fit = smf.ols("y ~ arm + baseline + C(stratum)", data=frame).fit()
    estimate, se, df = float(fit.params["arm"]), float(fit.bse["arm"]), float(fit.df_resid)
    lower, upper = (float(x) for x in fit.conf_int(0.05).loc["arm"])
    if lower_is_better:  # H0: difference >= +margin
        p = float(stats.t.cdf((estimate - MARGIN) / se, df))
    else:  # H0: difference <= -margin
        p = float(stats.t.sf((estimate + MARGIN) / se, df))
    return estimate, lower, upper, p, se


CASES = [
    # (higher or lower is better, the planted shift, the conclusion the design makes)
    ("higher is better, no difference", False, 0.0, NON_INFERIOR),
    ("higher is better, 45 worse", False, -45.0, NOT_SHOWN),
    ("lower is better, no difference", True, 0.0, NON_INFERIOR),
    ("lower is better, 45 worse", True, 45.0, NOT_SHOWN),
]


@pytest.mark.parametrize(("case", "lower_is_better", "shift", "conclusion"), CASES, ids=[c[0] for c in CASES])
def test_the_bound_on_the_side_of_harm_and_the_one_sided_p_are_those_of_an_independent_ancova(
    case: str, lower_is_better: bool, shift: float, conclusion: str
) -> None:
    protocol = _protocol(lower_is_better)
    outcome = protocol.outcomes[4]
    subjects = _subjects(shift, seed=20261207)
    results = analyse_outcome(protocol, outcome, sets_of(protocol, subjects, GROUPS))
    (result,) = [r for r in results if r.variable == VARIABLE]
    (c,) = result.comparisons
    ni = c.non_inferiority
    assert ni is not None, f"{case}: the comparison carries no non-inferiority judgement: {c}"
    estimate, lower, upper, p, _ = _independent(subjects, lower_is_better)
    assert c.estimate == pytest.approx(estimate, rel=1e-9)
    assert (c.lower, c.upper) == (pytest.approx(lower, rel=1e-9), pytest.approx(upper, rel=1e-9))
    assert ni.bound == pytest.approx(upper if lower_is_better else lower, rel=1e-9)
    assert ni.limit == (MARGIN if lower_is_better else -MARGIN)
    assert ni.p_value == pytest.approx(p, rel=1e-7, abs=1e-15)
    independent = (upper < MARGIN) if lower_is_better else (lower > -MARGIN)
    assert (ni.conclusion == NON_INFERIOR) is independent, (case, ni)
    assert ni.conclusion == conclusion, (case, ni, lower, upper)
    # The one-sided p agrees with the bound: below 0.025 exactly when the bound lies within the margin.
    assert (ni.p_value < 0.025) is independent
    said = c.text()
    assert conclusion in said and "one-sided" in said and f"{ni.limit:+g}" in said, said
    assert f"p={c.p_value:.3f}" not in said or c.p_value == ni.p_value, f"the two-sided p alone: {said}"
    assert ("Hypothesis", _hypothesis_words(lower_is_better)) in result.estimand


def _hypothesis_words(lower_is_better: bool) -> str:
    if lower_is_better:
        return (
            "non-inferiority, margin +50 (lower is better): non-inferior when the upper bound of the 95% CI is below "
            "it (a one-sided test at 2.5%)"
        )
    return (
        "non-inferiority, margin -50 (higher is better): non-inferior when the lower bound of the 95% CI is above "
        "it (a one-sided test at 2.5%)"
    )


def test_a_superiority_estimand_says_so_and_keeps_its_two_sided_p() -> None:
    """No hypothesis declared: superiority, as every protocol before this key meant, said in the estimand's words."""
    protocol = load_protocol_text(mutated_text(lambda doc: doc["outcomes"][4]["estimand"].pop("sensitivity"))).protocol
    subjects = _subjects(0.0, seed=20261207)
    results = analyse_outcome(protocol, protocol.outcomes[4], sets_of(protocol, subjects, GROUPS))
    (result,) = [r for r in results if r.variable == VARIABLE]
    (c,) = result.comparisons
    assert c.non_inferiority is None
    assert ("Hypothesis", "superiority: a two-sided test of no difference (the default)") in result.estimand
    assert f"p={c.p_value:.3f}" in c.text() or "p<0.001" in c.text()


def _report(lower_is_better: bool, shift: float) -> tuple[Any, Any]:
    protocol = _protocol(lower_is_better)
    subjects = tuple(_subjects(shift, seed=20261207))
    data = AnalysisData(
        trial_id="T", protocol_version="1", grouping=Grouping.BY_ARM, groups=GROUPS, subjects=subjects,
        screened=Screened(2 * PER_ARM, 2 * PER_ARM, 0, 0, {}, 2 * PER_ARM, 0, 2 * PER_ARM, 1.0),
        taken_at=dt.datetime(2021, 10, 1, tzinfo=dt.UTC), audit_seq=0, below_limit_rule="limit_over_sqrt2",
    )  # fmt: skip
    return protocol, analyse(protocol, data, software_version="test", unblinded=True)


def test_the_report_states_margin_bound_one_sided_p_and_conclusion_in_english_and_persian_and_in_results_csv() -> None:
    """What a reader of the report, the /analysis page (the same HTML fragment), the PDF and results.csv sees: the
    margin, the bound on the side of harm, the one-sided p and the conclusion, in the reader's language; never the
    two-sided p of no difference alone."""
    protocol, report = _report(lower_is_better=False, shift=-45.0)
    (outcome,) = [o for o in report.outcomes if o.variable == VARIABLE]
    (c,) = outcome.comparisons
    ni = c.non_inferiority
    assert ni is not None and ni.conclusion == NOT_SHOWN
    english = render_html(report, {}, fragment=True)
    assert "non-inferiority not shown" in english and "one-sided" in english and "margin -50" in english
    persian_words = report_words(protocol, "fa")
    persian = render_html(report, {}, fragment=True, words=persian_words)
    assert "عدم فروتری نشان داده نشد" in persian and "یک‌طرفه" in persian and "فرضیه" in persian
    assert "عدم فروتری" in report_module._estimate_text(persian_words, c)  # the PDF's cell
    assert "non-inferiority not shown" in report_module._estimate_text(report_module.ENGLISH, c)
    (row,) = [r for r in report.csv_rows() if r["outcome"] == outcome.outcome_id and r["variable"] == VARIABLE
              and r["scale"] != "mean"]  # fmt: skip
    assert (row["hypothesis"], row["margin"], row["conclusion"]) == ("non_inferiority", -MARGIN, NOT_SHOWN)
    assert row["harm_bound"] == ni.bound and row["p_value_one_sided"] == ni.p_value
    others = [r for r in report.csv_rows() if r["outcome"] != outcome.outcome_id and r["scale"] != "mean"]
    assert others and all(r["hypothesis"] == "superiority" and r["conclusion"] is None for r in others)


def test_a_hypothesis_the_engine_cannot_judge_is_refused_never_printed_or_dropped() -> None:
    """``protocol check`` refuses both first; should one reach the engine (a protocol object built in code), the
    log-scale ANCOVA gives no estimate and says why instead of a ratio without its declared judgement, and a margin
    or direction that is missing is never said as a margin of +0."""
    from trialwright.analysis.estimands.words import hypothesis_words
    from trialwright.protocol.estimands import Scale

    protocol = _protocol(lower_is_better=True)
    outcome = protocol.outcomes[4]
    e = outcome.estimand
    logged = outcome.model_copy(
        update={"estimand": e.model_copy(update={"variable": e.variable.model_copy(update={"scale": Scale.LOG})})}
    )
    subjects = _subjects(0.0, seed=7)
    results = analyse_outcome(protocol, logged, sets_of(protocol, subjects, GROUPS))
    (result,) = [r for r in results if r.variable == VARIABLE]
    (c,) = result.comparisons
    assert c.estimate is None and c.non_inferiority is None
    assert "not on the log scale" in c.text(), c.text()
    # results.csv keeps the declared hypothesis for it (never "superiority"), with no bound and no conclusion.
    from trialwright.analysis.engine import _hypothesis_columns

    assert _hypothesis_columns(c, result.hypothesis) == {"hypothesis": "non_inferiority", "margin": None,
                                                         "harm_bound": None, "p_value_one_sided": None,
                                                         "conclusion": None}  # fmt: skip
    with pytest.raises(ValueError, match="no margin or no direction"):
        hypothesis_words(e.hypothesis.model_copy(update={"margin": None}))
