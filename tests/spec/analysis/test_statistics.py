"""The trial's statistics (shared/reference/statistics.md), each checked against a published worked example
or an independent computation: statsmodels, scipy, brute-force inversion of a test, or arithmetic done by
hand in the test. Stored reference values live in reference/reference.json, made by
reference/make_reference.py (which does not import trialwright)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import statistics as pystats
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from trialwright.analysis.statistics import (
    ancova,
    browne_upper_sd,
    cumulative_incidence,
    describe,
    hodges_lehmann,
    newcombe_difference,
    plan_definitive,
    sample_size,
    simulate_power,
    t_test_power,
    wilson,
)

REFERENCE_DIR = Path(__file__).parent / "reference"
REFERENCE: dict[str, Any] = json.loads((REFERENCE_DIR / "reference.json").read_text(encoding="utf-8"))
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_stored_reference_values_are_what_the_committed_script_makes() -> None:
    """reference.json can be rebuilt from make_reference.py (so the numbers have a known origin)."""
    spec = importlib.util.spec_from_file_location("make_reference", REFERENCE_DIR / "make_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = json.loads(json.dumps(module.build(), default=float))
    for key in ("ancova", "hodges_lehmann", "wilson", "cumulative_incidence"):
        assert _close(rebuilt[key], REFERENCE[key]), key


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _json_roundtrip(result: Any) -> dict[str, Any]:
    as_dict = result.as_dict()
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
    assert isinstance(result.summary(), str) and "\n" not in result.summary()
    return as_dict


# --- describe --------------------------------------------------------------------------------------


def test_describe_counts_missing_and_uses_numpy_linear_quartiles() -> None:
    """[3, 1, 4, 1, 5, 9, 2, 6] plus None and NaN: n=8, missing=2, mean 31/8; sorted 1 1 2 3 4 5 6 9, so
    the median is 3.5, Q1 sits at position 1.75 (1 + 0.75 * (2 - 1) = 1.75), Q3 at 5.25 (5 + 0.25 = 5.25)."""
    d = describe([3, 1, 4, 1, 5, 9, 2, 6, None, float("nan")])
    assert (d.n, d.missing) == (8, 2)
    assert d.mean == pytest.approx(31 / 8)
    assert d.sd == pytest.approx(pystats.stdev([3, 1, 4, 1, 5, 9, 2, 6]))
    assert (d.median, d.q1, d.q3, d.min, d.max) == pytest.approx((3.5, 1.75, 5.25, 1, 9))
    assert _json_roundtrip(d)["missing"] == 2


def test_describe_empty_and_single_values_leave_undefined_statistics_as_none() -> None:
    """No values: only the counts; one value: no SD."""
    empty = describe([None, None])
    assert (empty.n, empty.missing, empty.mean, empty.sd, empty.median) == (0, 2, None, None, None)
    one = describe(np.array([7.0]))
    assert (one.n, one.mean, one.sd, one.median, one.q1, one.q3) == (1, 7.0, None, 7.0, 7.0, 7.0)
    assert _json_roundtrip(empty)["sd"] is None


# --- ANCOVA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["plain", "covariates_and_missing", "log"])
def test_ancova_matches_the_stored_statsmodels_fit(case: str) -> None:
    """tau, SE, df, t, p, CI, slope, residual SD, correlation and counts equal statsmodels' OLS to 1e-8."""
    reference = REFERENCE["ancova"][case]
    data, expected = reference["data"], reference["result"]
    covariates = {name: data[name] for name in reference["factors"]}
    result = ancova(data["followup"], data["baseline"], data["group"], covariates or None, log=reference["log"])
    got = _json_roundtrip(result)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-8, abs=1e-10), key


def test_ancova_drops_incomplete_rows_and_one_level_covariates_and_says_so() -> None:
    """Five rows have a missing value; 'country' has one level, so it is left out and named."""
    reference = REFERENCE["ancova"]["covariates_and_missing"]
    data = reference["data"]
    result = ancova(data["followup"], data["baseline"], data["group"], {k: data[k] for k in ("site", "sex", "country")})
    assert (result.n_treatment + result.n_reference, result.n_dropped) == (43, 5)
    assert result.covariates == ("site", "sex") and result.covariates_dropped == ("country",)
    assert "5 dropped" in result.summary()


def test_log_ancova_reports_the_ratio_of_geometric_means() -> None:
    """On the log scale exp(tau) and exp(tau -/+ t SE) are the ratio of geometric means and its CI."""
    reference = REFERENCE["ancova"]["log"]
    data, expected = reference["data"], reference["result"]
    result = ancova(data["followup"], data["baseline"], data["group"], log=True)
    assert result.ratio == pytest.approx(math.exp(expected["estimate"]), rel=1e-10)
    assert result.ratio_lower == pytest.approx(math.exp(expected["ci_lower"]), rel=1e-10)
    assert result.ratio_upper == pytest.approx(math.exp(expected["ci_upper"]), rel=1e-10)
    assert "ratio of geometric means" in result.summary()
    plain = ancova(data["followup"], data["baseline"], data["group"])
    assert plain.ratio is None and plain.ratio_lower is None


def test_log_ancova_refuses_values_at_or_below_zero_and_names_the_rule() -> None:
    """A zero (an unhandled < LLOQ result) is an error that points at the LLOQ rule."""
    with pytest.raises(ValueError, match=r"LLOQ"):
        ancova([1.0, 2.0, 0.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0], [1, 1, 0, 0, 1], log=True)


def test_ancova_rejects_group_codes_other_than_zero_and_one() -> None:
    with pytest.raises(ValueError, match=r"group must be 1"):
        ancova([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.5], [1, 2, 0, 0])


@PROPERTY
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(8, 60),
    rho=st.floats(-0.9, 0.9),
    with_site=st.booleans(),
    missing=st.integers(0, 3),
)
def test_ancova_equals_statsmodels_on_random_data(seed: int, n: int, rho: float, with_site: bool, missing: int) -> None:
    """Any data set: the hand-rolled QR fit equals statsmodels.formula.api.ols to 1e-8."""
    rng = np.random.default_rng(seed)
    group = rng.permutation(np.arange(n) % 2)
    baseline = rng.normal(10, 3, n)
    followup = 2 + rho * baseline + group * rng.normal() + rng.normal(0, 2, n)
    followup[rng.choice(n, missing, replace=False)] = np.nan
    site = rng.choice(["a", "b", "c"], n)
    frame = pd.DataFrame({"followup": followup, "baseline": baseline, "group": group, "site": site}).dropna()
    assume(frame["group"].nunique() == 2 and len(frame) > 6)
    formula = "followup ~ baseline + group" + (" + C(site)" if with_site and frame["site"].nunique() > 1 else "")
    model = smf.ols(formula, data=frame)
    covariates = {"site": site.tolist()} if with_site else None
    if np.linalg.matrix_rank(model.exog) < model.exog.shape[1]:  # e.g. a site seen in one arm only
        with pytest.raises(ValueError, match=r"rank deficient"):
            ancova(followup, baseline, group, covariates)
        return
    fit = model.fit()
    result = ancova(followup, baseline, group, covariates)
    lower, upper = fit.conf_int().loc["group"]
    assert result.estimate == pytest.approx(fit.params["group"], rel=1e-8, abs=1e-10)
    assert result.se == pytest.approx(fit.bse["group"], rel=1e-8)
    assert result.p_value == pytest.approx(fit.pvalues["group"], rel=1e-8, abs=1e-12)
    assert (result.ci_lower, result.ci_upper) == pytest.approx((lower, upper), rel=1e-8, abs=1e-10)
    assert result.df == int(fit.df_resid)


# --- Wilcoxon rank-sum and Hodges-Lehmann ----------------------------------------------------------


def test_hodges_lehmann_reproduces_hollander_and_wolfe_permeability_example() -> None:
    """Hollander & Wolfe (1973) p. 110, results p. 111 and p. 126 (chorioamnion permeability, 5 vs 10),
    as printed by R's exactRankTests::wilcox.exact(y, x, conf.int=TRUE) in its stored example output
    (tests/Examples/exactRankTests-Ex.Rout.save): W = 15, p = 0.2544, 95% CI -0.76 to 0.15, estimate -0.305."""
    x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    y = [1.15, 0.88, 0.90, 0.74, 1.21]
    result = hodges_lehmann(y, x)
    assert result.method == "exact"
    assert result.u_statistic == 15
    assert round(result.p_value, 4) == 0.2544
    assert result.shift == pytest.approx(-0.305)
    assert (result.ci_lower, result.ci_upper) == pytest.approx((-0.76, 0.15))
    assert result.achieved_level >= 0.95
    swapped = hodges_lehmann(x, y)
    assert (swapped.shift, swapped.ci_lower, swapped.ci_upper) == pytest.approx((0.305, -0.15, 0.76))


def test_exact_interval_reports_its_coverage_counted_over_every_arrangement() -> None:
    """[D_(k), D_(mn+1-k)] misses the true shift when U <= k - 1 or U >= mn + 1 - k. Enumerating all
    C(15, 5) = 3003 equally likely rank sets of the 5-sample gives P(U <= k - 1), so the coverage."""
    x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    y = [1.15, 0.88, 0.90, 0.74, 1.21]
    result = hodges_lehmann(y, x)
    k = int(np.searchsorted(np.sort(np.subtract.outer(y, x).ravel()), result.ci_lower)) + 1
    u_values = [sum(r - i for i, r in enumerate(sorted(ranks))) for ranks in itertools.combinations(range(15), 5)]
    assert len(u_values) == 3003
    coverage = 1 - 2 * sum(u <= k - 1 for u in u_values) / 3003
    assert result.achieved_level == pytest.approx(coverage, abs=1e-12)
    assert coverage >= 0.95 and 1 - 2 * sum(u <= k for u in u_values) / 3003 < 0.95  # k is the largest valid


@pytest.mark.parametrize("case", ["exact_untied", "normal_tied", "normal_large"])
def test_hodges_lehmann_matches_the_stored_brute_force_inversion(case: str) -> None:
    """Estimate = median of all differences; interval = the shifts the rank-sum test does not reject."""
    reference = REFERENCE["hodges_lehmann"][case]
    result = _json_roundtrip(hodges_lehmann(reference["data"]["x"], reference["data"]["y"]))
    for key, value in reference["result"].items():
        assert result[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key


def _accepted_interval(x: np.ndarray, y: np.ndarray, method: str, alpha: float) -> tuple[float, float] | None:
    """Brute-force inversion: test the rank-sum of x - d against y at a point between every two
    neighbouring distinct differences (and beyond both ends); return the bounds of the accepted run, or
    None when no such shift is accepted (heavy ties: only a shift equal to a difference could be)."""
    differences = np.unique(np.subtract.outer(x, y).ravel())
    probes = np.concatenate([[differences[0] - 1], (differences[1:] + differences[:-1]) / 2, [differences[-1] + 1]])
    scipy_method = "exact" if method == "exact" else "asymptotic"
    accepted = [
        i
        for i, d in enumerate(probes)
        if stats.mannwhitneyu(x - d, y, alternative="two-sided", method=scipy_method).pvalue > alpha
    ]
    if not accepted:
        return None
    assert accepted == list(range(accepted[0], accepted[-1] + 1))
    lower = -math.inf if accepted[0] == 0 else differences[accepted[0] - 1]
    upper = math.inf if accepted[-1] == len(probes) - 1 else differences[accepted[-1]]
    return float(lower), float(upper)


samples = st.lists(st.floats(-50, 50, allow_nan=False).map(lambda v: round(v, 2)), min_size=1, max_size=9)
scores = st.lists(st.integers(0, 6).map(float), min_size=3, max_size=14)


@PROPERTY
@given(x=st.one_of(samples, scores), y=st.one_of(samples, scores), level=st.sampled_from([0.9, 0.95]))
def test_hodges_lehmann_interval_is_the_inverted_rank_sum_test(x: list[float], y: list[float], level: float) -> None:
    """For any data, the CI is exactly the set of shifts the same rank-sum test does not reject, and it
    contains the estimate; too-small samples get the widest interval and say their coverage is short."""
    result = hodges_lehmann(x, y, level)
    assert result.ci_lower <= result.shift <= result.ci_upper
    accepted = _accepted_interval(np.array(x), np.array(y), result.method, 1 - level)
    if accepted is None:  # the accepted run shrank onto one (tied) difference: a one-point interval
        assert result.ci_lower == result.ci_upper
        return
    lower, upper = accepted
    if result.achieved_level < level:  # no interval at this level exists: every shift is accepted
        assert (lower, upper) == (-math.inf, math.inf)
        differences = np.subtract.outer(x, y)
        assert (result.ci_lower, result.ci_upper) == (differences.min(), differences.max())
        assert "too few values" in result.summary()
    else:
        assert (result.ci_lower, result.ci_upper) == (lower, upper)


def test_hodges_lehmann_drops_missing_values_and_counts_them() -> None:
    result = hodges_lehmann([1.0, None, 3.0, 5.0], [float("nan"), 0.5, 2.5])
    assert (result.n_x, result.n_y, result.n_missing) == (3, 2, 2)


# --- proportions -----------------------------------------------------------------------------------

# Newcombe RG. Interval estimation for the difference between independent proportions: comparison of
# eleven methods. Stat Med 1998;17:873-890, Table II, method 10 (hybrid score, no continuity correction).
NEWCOMBE_TABLE_II_METHOD_10 = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_TABLE_II_METHOD_10)
def test_newcombe_difference_reproduces_newcombe_1998_table_ii(
    counts: tuple[int, int, int, int], published: tuple[float, float]
) -> None:
    """The interval, rounded to 4 decimals as in the paper, equals Table II (method 10)."""
    result = newcombe_difference(*counts)
    assert (round(result.lower, 4), round(result.upper, 4)) == published
    k1, n1, k2, n2 = counts
    assert result.difference == pytest.approx(k1 / n1 - k2 / n2)


def test_risk_difference_carries_counts_and_fishers_exact_p() -> None:
    """Fisher's tea-tasting table (3 of 4 vs 1 of 4): two-sided exact p = 34/70 = 0.4857."""
    result = newcombe_difference(3, 4, 1, 4)
    assert (result.k1, result.n1, result.k2, result.n2) == (3, 4, 1, 4)
    assert result.fisher_p == pytest.approx(34 / 70)
    as_dict = _json_roundtrip(result)
    assert as_dict["group1"]["k"] == 3 and as_dict["group2"]["n"] == 4


def test_wilson_matches_the_stored_statsmodels_intervals() -> None:
    for row in REFERENCE["wilson"]:
        result = wilson(row["k"], row["n"], row["level"])
        assert (result.lower, result.upper) == pytest.approx((row["lower"], row["upper"]), abs=1e-10)


@PROPERTY
@given(data=st.data(), level=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_and_newcombe_agree_with_statsmodels_and_hold_their_invariants(
    data: st.DataObject, level: float
) -> None:
    """Wilson equals statsmodels to 1e-10; Newcombe equals statsmodels' 'newcomb' method and its interval
    contains the estimate and lies within [-1, 1]."""
    n1, n2 = data.draw(st.integers(1, 300)), data.draw(st.integers(1, 300))
    k1, k2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    w = wilson(k1, n1, level)
    assert (w.lower, w.upper) == pytest.approx(proportion_confint(k1, n1, 1 - level, method="wilson"), abs=1e-10)
    result = newcombe_difference(k1, n1, k2, n2, level)
    assert -1 <= result.lower <= result.difference <= result.upper <= 1
    other = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff", alpha=1 - level)
    assert (result.lower, result.upper) == pytest.approx(other, abs=1e-10)


def test_proportions_refuse_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson(5, 4)
    with pytest.raises(ValueError):
        newcombe_difference(1, 0, 1, 2)


# --- length of stay with death as a competing event -------------------------------------------------


def test_cumulative_incidence_by_hand() -> None:
    """Six patients: day 1 discharged, day 2 died, day 2 discharged, day 3 censored, day 4 discharged,
    day 5 censored.
    day 1: 6 at risk, 1 discharge -> CIF_d = 1/6; S = 5/6.
    day 2: 5 at risk, 1 discharge, 1 death -> CIF_d = 1/6 + (5/6)(1/5) = 1/3; CIF_death = (5/6)(1/5) = 1/6;
           S = (5/6)(3/5) = 1/2.
    day 3: censored, no step.
    day 4: 2 at risk, 1 discharge -> CIF_d = 1/3 + (1/2)(1/2) = 7/12; S = 1/4.  (1/4 + 7/12 + 1/6 = 1.)"""
    days = [1, 2, 2, 3, 4, 5]
    events = ["discharged", "died", "discharged", "censored", "discharged", "censored"]
    result = cumulative_incidence(days, events, "discharged", "died")
    assert result.times == (1.0, 2.0, 4.0)
    assert result.cif == pytest.approx((1 / 6, 1 / 3, 7 / 12))
    assert result.cif_competing == pytest.approx((0, 1 / 6, 1 / 6))
    assert result.n_at_risk == (6, 5, 2)
    assert (result.at(0.5), result.at(2), result.at(3.9), result.at(100)) == pytest.approx((0, 1 / 3, 1 / 3, 7 / 12))
    assert result.competing_at(1.99) == 0
    assert (result.n_events, result.n_competing, result.n_censored) == (3, 1, 2)
    assert _json_roundtrip(result)["cif"][-1] == pytest.approx(7 / 12)


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 30), st.sampled_from(["discharged", "died"])), min_size=1, max_size=40))
def test_without_censoring_cumulative_incidence_is_the_empirical_proportion(rows: list[tuple[int, str]]) -> None:
    """No censoring: CIF(t) = share of all patients discharged (or dead) by day t."""
    days = [d for d, _ in rows]
    events = [e for _, e in rows]
    result = cumulative_incidence(days, events, "discharged", ["died"])
    for t in range(-1, 32):
        assert result.at(t) == pytest.approx(sum(d <= t and e == "discharged" for d, e in rows) / len(rows))
        assert result.competing_at(t) == pytest.approx(sum(d <= t and e == "died" for d, e in rows) / len(rows))


def test_cumulative_incidence_matches_the_stored_statsmodels_aalen_johansen() -> None:
    reference = REFERENCE["cumulative_incidence"]
    result = cumulative_incidence(reference["times"], reference["events"], "discharged", "died")
    for t, discharged, died in zip(
        reference["check_times"], reference["cif_discharged"], reference["cif_died"], strict=True
    ):
        assert result.at(t) == pytest.approx(discharged, abs=1e-12)
        assert result.competing_at(t) == pytest.approx(died, abs=1e-12)


#: Seventeen participants, each with the event by day 28 (none censored, none competing): summed in floating
#: point, S(t-) d / n over the days reaches 1.0000000000000002 on day 28 (a new user's walk printed a pooled
#: cumulative incidence of 1.0000000000000016 for such data).
EVERYONE_BY_DAY_28 = [19, 4, 15, 19, 23, 27, 12, 13, 14, 28, 6, 15, 2, 13, 28, 18, 11]


def test_a_cumulative_incidence_reaching_one_by_rounding_is_one_as_lifelines_gives() -> None:
    """Once everyone has had the event the cumulative incidence is exactly 1 (each day's share written out with
    fractions adds up to 1), never 1 plus rounding noise: the curve stays within [0, 1] and equals lifelines'
    AalenJohansenFitter at every day (ties jittered by lifelines; the estimate at the day's end does not depend on
    their order) to 1e-12."""
    from fractions import Fraction

    from lifelines import AalenJohansenFitter

    days = EVERYONE_BY_DAY_28
    survival, total, float_survival, noisy = Fraction(1), Fraction(0), 1.0, 0.0
    for day in sorted(set(days)):
        at_risk, d = sum(t >= day for t in days), days.count(day)
        total += survival * Fraction(d, at_risk)
        survival *= 1 - Fraction(d, at_risk)
        noisy += float_survival * d / at_risk  # the same sums in floating point: they overshoot 1
        float_survival *= 1 - d / at_risk
    assert total == 1 and noisy > 1  # the data produce the noise
    result = cumulative_incidence(days, ["healed"] * len(days), "healed", ["died"])
    assert result.cif[-1] == 1.0 and result.at(28) == 1.0
    assert all(0.0 <= x <= 1.0 for x in result.cif + result.cif_competing)
    fitter = AalenJohansenFitter(calculate_variance=False, jitter_level=1e-4, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' note that it jittered the tied times
        fitter.fit(np.array(days, dtype=float), np.ones(len(days), dtype=int), event_of_interest=1)
    walked = fitter.cumulative_density_.iloc[:, 0]
    for day in range(1, 30):
        assert result.at(day) == pytest.approx(float(walked[walked.index <= day + 0.25].iloc[-1]), abs=1e-12), day


def test_a_probability_is_clamped_only_for_rounding_noise_and_a_larger_excess_fails_loudly() -> None:
    """Below 1e-9 outside [0, 1] is rounding, clamped to the bound; beyond that it is a bug and raises naming what
    was computed, never clamped into a plausible number."""
    from trialwright.analysis.methods.base import probability

    assert (probability(1 + 2e-16, "p"), probability(-3e-17, "p"), probability(0.25, "p")) == (1.0, 0.0, 0.25)
    for wrong in (1 + 2e-9, -1e-6, 1.5):
        with pytest.raises(ArithmeticError, match="the cumulative incidence"):
            probability(wrong, "the cumulative incidence")


def test_cumulative_incidence_refuses_unknown_event_codes() -> None:
    """A misspelt code is an error, never silent censoring."""
    with pytest.raises(ValueError, match=r"unknown event code"):
        cumulative_incidence([1, 2], ["discharged", "dead"], "discharged", "died")


# --- sizing the definitive trial -------------------------------------------------------------------


def test_sample_size_is_the_t_tests_not_the_normal_approximations() -> None:
    """sd 1, delta 0.5, alpha 0.05, power 0.9: the normal formula gives 2 * (1.959964 + 1.281552)^2 / 0.25 =
    84.06 -> 85 per arm, but the t test with 85 per arm has power 0.8999 (statsmodels solves n = 85.03), so
    86; at 80% power 63.77 -> 64 (the normal formula's 62.79 -> 63 falls short)."""
    assert sample_size(1, 0.5) == 86
    assert sample_size(2, -1.0) == 86  # the sign of delta does not matter; only sd/delta does
    assert sample_size(1, 0.5, alpha=0.05, power=0.8) == 64


@pytest.mark.parametrize(("sd", "delta", "power"), [(1, 0.5, 0.9), (10, 4, 0.8), (3, 1, 0.9), (1, 0.3, 0.85)])
def test_sample_size_is_statsmodels_t_test_solution(sd: float, delta: float, power: float) -> None:
    """Exactly the smallest whole n at or above statsmodels' TTestIndPower solution."""
    exact = TTestIndPower().solve_power(effect_size=delta / sd, alpha=0.05, power=power, ratio=1)
    assert sample_size(sd, delta, power=power) == math.ceil(exact)


@pytest.mark.parametrize(("rho", "power"), [(0.5, 0.9), (0.3, 0.8), (0.8, 0.9), (-0.4, 0.85)])
def test_ancova_sample_size_is_the_smallest_n_whose_ancova_t_test_has_the_power(rho: float, power: float) -> None:
    """ANCOVA: the t test on the residual SD sd * sqrt(1 - rho^2) with 2n - 3 df; statsmodels' power of that
    test (TTestIndPower.power with df given) reaches the power at n and not at n - 1."""
    n = sample_size(1.0, 0.5, power=power, rho=rho)
    effect = 0.5 / math.sqrt(1 - rho**2)
    assert TTestIndPower().power(effect, nobs1=n, alpha=0.05, df=2 * n - 3) >= power
    assert TTestIndPower().power(effect, nobs1=n - 1, alpha=0.05, df=2 * (n - 1) - 3) < power
    assert t_test_power(n, 1.0, 0.5, rho=rho) == pytest.approx(
        TTestIndPower().power(effect, nobs1=n, alpha=0.05, df=2 * n - 3), abs=1e-12
    )


def test_browne_upper_limit_uses_the_lower_chi_square_quantile() -> None:
    """df 30, gamma 0.2: the lower 20% point of chi-square(30) is 23.364 (printed tables), so the upper SD
    is sqrt(30 / 23.364) = 1.1332 times the pilot SD."""
    assert browne_upper_sd(1.0, 30, 0.2) == pytest.approx(math.sqrt(30 / 23.364), rel=1e-4)
    assert browne_upper_sd(2.5, 30) == pytest.approx(2.5 * browne_upper_sd(1.0, 30))


def test_plan_definitive_gives_n_from_the_pilot_sd_and_from_its_upper_limit() -> None:
    """From the pilot SD: 86 per arm (65 with ANCOVA, rho 0.5); from the upper limit 1.1332 (the t test at effect
    size 0.5 / 1.1332, statsmodels solves 108.9 -> 109; with ANCOVA 82)."""
    plan = plan_definitive(sd=1.0, df=30, delta=0.5, alpha=0.05, power=0.9, rho=0.5, gamma=0.2)
    assert (plan.n_per_arm, plan.n_per_arm_ancova) == (86, 65)
    upper = TTestIndPower().solve_power(effect_size=0.5 / plan.upper_sd, alpha=0.05, power=0.9)
    assert plan.n_per_arm_upper_sd == math.ceil(upper) == 109
    assert plan.n_per_arm_upper_sd_ancova == 82
    assert "109" in plan.summary() and _json_roundtrip(plan)["upper_sd"] == pytest.approx(1.1332, abs=1e-4)


def test_simulated_power_without_baseline_correlation_matches_the_t_test_power() -> None:
    """rho = 0: within 3 Monte-Carlo SE of statsmodels' analytic two-sample t-test power."""
    result = simulate_power(sd=2.0, delta=1.0, n_per_arm=40, rho=0.0, n_sim=4000, seed=7)
    analytic = TTestIndPower().power(effect_size=0.5, nobs1=40, alpha=0.05, ratio=1)
    assert abs(result.power - analytic) < 3 * math.sqrt(analytic * (1 - analytic) / result.n_sim)


def test_simulated_rejection_rate_under_no_difference_is_alpha() -> None:
    """delta = 0: the ANCOVA test rejects at rate alpha (within 3 Monte-Carlo SE)."""
    result = simulate_power(sd=1.0, delta=0.0, n_per_arm=30, rho=0.6, n_sim=6000, seed=11)
    assert abs(result.power - 0.05) < 3 * math.sqrt(0.05 * 0.95 / result.n_sim)


def test_simulated_power_with_baseline_correlation_matches_the_residual_sd_approximation() -> None:
    """rho = 0.5: ANCOVA behaves like a t-test on residual SD sd * sqrt(1 - rho^2); the approximation
    ignores chance baseline imbalance and one df, so 0.01 is allowed on top of 3 Monte-Carlo SE."""
    result = simulate_power(sd=1.0, delta=0.5, n_per_arm=50, rho=0.5, n_sim=4000, seed=3)
    analytic = TTestIndPower().power(effect_size=0.5 / math.sqrt(0.75), nobs1=50, alpha=0.05, ratio=1)
    assert abs(result.power - analytic) < 3 * math.sqrt(analytic * (1 - analytic) / result.n_sim) + 0.01


def test_power_simulation_is_reproducible_and_reports_progress() -> None:
    """The same seed gives the same answer; progress(done, total) climbs to total."""
    calls: list[tuple[int, int]] = []
    first = simulate_power(1.0, 0.5, 200, n_sim=6000, seed=5, progress=lambda done, total: calls.append((done, total)))
    second = simulate_power(1.0, 0.5, 200, n_sim=6000, seed=5)
    assert first == second
    assert len(calls) > 1 and calls[-1] == (6000, 6000)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert first.mc_se == pytest.approx(math.sqrt(first.power * (1 - first.power) / 6000))
    assert _json_roundtrip(first)["rejections"] == first.rejections
    assert "6000 simulations" in first.summary()
