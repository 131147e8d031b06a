"""Survival methods (trialwright.analysis.methods.survival), each result checked against another library's
computation, a numerical or simulated check written here, or a result printed in a textbook; the source and
tolerance are named at each test.

Simulated data come from seeded numpy Generators. The one printed data set is the 6-MP remission trial
(Freireich et al., Blood 1963;21:699): 21 children on 6-mercaptopurine and 21 on placebo, remission times in
weeks, as printed in Kleinbaum & Klein, "Survival Analysis: A Self-Learning Text" (3rd ed., Springer 2012),
chapter 1 (the "remission data"), and also in Klein & Moeschberger, "Survival Analysis" (2nd ed., 2003),
section 1.2. Kleinbaum & Klein's chapter 2 prints the Kaplan-Meier table of the 6-MP arm (0.8571, 0.8067,
0.7529, 0.6902, 0.6275, 0.5378, 0.4482 at 6, 7, 10, 13, 16, 22, 23 weeks), the medians (23 and 8 weeks) and
the log-rank statistic 16.79.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test, proportional_hazard_test
from lifelines.utils import restricted_mean_survival_time
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from trialwright.analysis.methods.survival import cox, kaplan_meier, log_rank, rmst_difference

# 6-MP arm (+ = censored): 6, 6, 6, 6+, 7, 9+, 10, 10+, 11+, 13, 16, 17+, 19+, 20+, 22, 23, 25+, 32+, 32+, 34+, 35+
MP_TIMES = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
MP_EVENTS = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
# placebo arm: every patient relapsed
PLACEBO_TIMES = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def _trial(seed: int, n: int = 200, log_hr: float = 0.4, decimals: int | None = 1) -> dict[str, Any]:
    """A two-arm trial: exponential event times (log hazard ratio ``log_hr`` for group 1 plus effects of a
    normal covariate x and a three-level stratum s), uniform censoring; times rounded to ``decimals`` (to
    make ties) unless None."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n).astype(float)
    x = rng.normal(size=n)
    stratum = rng.integers(0, 3, n)
    event_time = rng.exponential(1.0, n) / np.exp(log_hr * group + 0.5 * x + 0.3 * stratum)
    censor = rng.uniform(0.2, 3.0, n)
    times = np.minimum(event_time, censor)
    if decimals is not None:
        times = np.round(times, decimals)
    return {"times": times, "events": (event_time <= censor).astype(float), "group": group, "x": x, "s": stratum}


# --- Kaplan-Meier ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kaplan_meier_matches_statsmodels_survfuncright(seed: int) -> None:
    """statsmodels SurvfuncRight: survival and Greenwood SE at its event times (abs 1e-10), the median
    (quantile(0.5)) and its interval (quantile_ci(0.5, method="cloglog"), which inverts the same log(-log)
    pointwise interval), exactly. Times rounded to 0.1 so that events tie and censoring ties with events."""
    d = _trial(seed, n=150)
    arm = d["group"] == 1
    km = kaplan_meier(d["times"][arm], d["events"][arm])
    reference = SurvfuncRight(d["times"][arm], d["events"][arm])
    at_events = np.array(km.events_at) > 0
    np.testing.assert_allclose(np.array(km.times)[at_events], reference.surv_times, rtol=0, atol=0)
    np.testing.assert_allclose(np.array(km.survival)[at_events], reference.surv_prob, rtol=0, atol=1e-10)
    se = np.array([math.nan if v is None else v for v in km.se])[at_events]
    np.testing.assert_allclose(se, reference.surv_prob_se, rtol=0, atol=1e-10)
    assert km.median == reference.quantile(0.5)
    low, high = reference.quantile_ci(0.5, method="cloglog")
    assert km.median_lower == low
    assert km.median_upper == (None if not np.isfinite(high) else high)
    assert (km.n, km.n_events) == (int(arm.sum()), int(d["events"][arm].sum()))
    assert list(km.n_at_risk) == [int(np.sum(d["times"][arm] >= t)) for t in km.times]


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_kaplan_meier_interval_is_the_log_minus_log_interval(level: float) -> None:
    """The pointwise interval written out here from Klein & Moeschberger (2003), section 4.3, log-transformed
    interval: [S^(1/theta), S^theta], theta = exp(z sigma_S / log S), sigma_S = se / S, with the SE from
    statsmodels SurvfuncRight (abs 1e-10)."""
    d = _trial(5, n=120)
    km = kaplan_meier(d["times"], d["events"], level=level)
    reference = SurvfuncRight(d["times"], d["events"])
    s, sigma = reference.surv_prob, reference.surv_prob_se / reference.surv_prob
    theta = np.exp(stats.norm.isf((1 - level) / 2) * sigma / np.log(s))
    at_events = np.array(km.events_at) > 0
    np.testing.assert_allclose(np.array(km.lower)[at_events], s ** (1 / theta), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.array(km.upper)[at_events], s**theta, rtol=0, atol=1e-10)


def test_kaplan_meier_reproduces_kleinbaum_klein_six_mp_table() -> None:
    """Kleinbaum & Klein (2012), chapter 2: the 6-MP arm's product-limit table (4 decimals), its median of 23
    weeks and the placebo median of 8 weeks."""
    km = kaplan_meier(MP_TIMES, MP_EVENTS)
    printed = {6: 0.8571, 7: 0.8067, 10: 0.7529, 13: 0.6902, 16: 0.6275, 22: 0.5378, 23: 0.4482}
    assert {t: round(km.at(t) or math.nan, 4) for t in printed} == printed
    assert km.at(5.9) == 1.0
    assert km.median == 23
    assert kaplan_meier(PLACEBO_TIMES, [1] * 21).median == 8


def test_kaplan_meier_at_and_a_curve_that_reaches_zero() -> None:
    """Step function by hand: S is 1 before the first time, None past the last time when the curve is still
    above 0, 0 for ever once everyone failed; the SE is undefined (None) where S = 0."""
    open_end = kaplan_meier([1, 2, 3], [1, 0, 0])
    assert (open_end.at(0), open_end.at(1), open_end.at(2.5), open_end.at(3), open_end.at(3.1)) == (
        1.0,
        pytest.approx(2 / 3),
        pytest.approx(2 / 3),
        pytest.approx(2 / 3),
        None,
    )
    assert open_end.median is None and open_end.median_upper is None
    closed = kaplan_meier([1, 2, 3, 4], [1, 0, 1, 1])
    assert closed.survival == pytest.approx((0.75, 0.75, 0.375, 0.0))
    assert closed.at(100) == 0.0
    assert closed.se[-1] is None
    json.dumps(closed.as_dict())


# --- log-rank ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_log_rank_matches_lifelines_logrank_test(seed: int) -> None:
    """lifelines.statistics.logrank_test: statistic and p (rel 1e-10); E_1 + E_0 = O_1 + O_0 (abs 1e-9)."""
    d = _trial(seed)
    arm = d["group"] == 1
    result = log_rank(d["times"], d["events"], d["group"])
    reference = logrank_test(d["times"][arm], d["times"][~arm], d["events"][arm], d["events"][~arm])
    assert result.chisq == pytest.approx(reference.test_statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.p_value, rel=1e-10)
    assert result.expected_treatment + result.expected_reference == pytest.approx(d["events"].sum(), abs=1e-9)
    assert result.observed_treatment == d["events"][arm].sum()
    assert result.chisq == pytest.approx((result.observed_treatment - result.expected_treatment) ** 2 / result.variance)


@pytest.mark.parametrize("seed", [21, 22])
def test_stratified_log_rank_matches_statsmodels_survdiff(seed: int) -> None:
    """statsmodels.duration.survfunc.survdiff with strata= (and without): statistic and p, rel 1e-10."""
    d = _trial(seed)
    strata = [f"site {k}" for k in d["s"]]
    stratified = log_rank(d["times"], d["events"], d["group"], strata=strata)
    chisq, p = survdiff(d["times"], d["events"], d["group"], strata=d["s"])
    assert (stratified.chisq, stratified.p_value) == pytest.approx((chisq, p), rel=1e-10)
    assert stratified.n_strata == 3
    plain = log_rank(d["times"], d["events"], d["group"])
    assert (plain.chisq, plain.p_value) == pytest.approx(survdiff(d["times"], d["events"], d["group"]), rel=1e-10)
    assert stratified.chisq != pytest.approx(plain.chisq, rel=1e-3)


def test_log_rank_reproduces_kleinbaum_klein_six_mp() -> None:
    """Kleinbaum & Klein (2012), chapter 2: log-rank statistic 16.79 for 6-MP vs placebo (2 decimals);
    observed relapses 9 and 21."""
    result = log_rank(MP_TIMES + PLACEBO_TIMES, MP_EVENTS + [1] * 21, [1] * 21 + [0] * 21)
    assert round(result.chisq, 2) == 16.79
    assert (result.observed_treatment, result.observed_reference) == (9, 21)


# --- Cox ---------------------------------------------------------------------------------------------------


def _phreg(d: dict[str, Any], columns: list[str], strata: bool) -> Any:
    exog = np.column_stack([d[c] for c in columns])
    model = PHReg(d["times"], exog, status=d["events"], ties="efron", strata=d["s"] if strata else None)
    return model.fit()


@pytest.mark.parametrize(("covariates", "strata"), [(False, False), (True, False), (False, True), (True, True)])
def test_cox_matches_lifelines_and_statsmodels_phreg(covariates: bool, strata: bool) -> None:
    """lifelines CoxPHFitter (its default fit) and statsmodels PHReg(ties="efron") on the same data: log HR and
    SE of group and of the covariate (abs 1e-6); CI and p from the Wald formula (rel 1e-12)."""
    d = _trial(31, n=300)
    result = cox(
        d["times"], d["events"], d["group"], {"age": d["x"]} if covariates else None, d["s"] if strata else None
    )
    columns = ["group", "x"] if covariates else ["group"]
    frame = pd.DataFrame({"time": d["times"], "event": d["events"], **{c: d[c] for c in columns}})
    if strata:
        frame["s"] = d["s"]
    reference = CoxPHFitter(strata=["s"] if strata else None).fit(frame, "time", "event")
    other = _phreg(d, columns, strata)
    for fitted_params, fitted_se in (
        (reference.params_.to_numpy(), reference.standard_errors_.to_numpy()),
        (other.params, other.bse),
    ):
        assert result.log_hr == pytest.approx(fitted_params[0], abs=1e-6)
        assert result.se == pytest.approx(fitted_se[0], abs=1e-6)
        assert result.covariate_log_hr == pytest.approx(tuple(fitted_params[1:]), abs=1e-6)
        assert result.covariate_se == pytest.approx(tuple(fitted_se[1:]), abs=1e-6)
    z = stats.norm.isf(0.025)
    assert (result.ci_lower, result.ci_upper) == pytest.approx(
        (math.exp(result.log_hr - z * result.se), math.exp(result.log_hr + z * result.se)), rel=1e-12
    )
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(result.log_hr / result.se)), rel=1e-12)
    assert result.covariates == (("age",) if covariates else ())
    assert result.n_strata == (3 if strata else 1)
    json.dumps(result.as_dict())


@pytest.mark.parametrize("strata", [False, True])
def test_cox_proportional_hazards_check_is_grambsch_therneau_on_event_rank(strata: bool) -> None:
    """The approximate score test of Grambsch & Therneau (1994) as lifelines' documentation describes it, rebuilt
    here from statsmodels PHReg's Schoenfeld residuals r_k: scaled s_k = d r_k V (V the inverse information, d
    the number of events), g_k the rank of event k's time among all events, T = (sum (g_k - gbar) s_k)^2 /
    (d V_jj sum (g_k - gbar)^2) on 1 df (rel 1e-5: the two fits agree to about 1e-7). Untied times, so ranks
    are unambiguous. Unstratified it is exactly lifelines' proportional_hazard_test(time_transform="rank")."""
    d = _trial(41, n=300, decimals=None)
    covariates = {"x": d["x"]}
    result = cox(d["times"], d["events"], d["group"], covariates, d["s"] if strata else None)
    fit = _phreg(d, ["group", "x"], strata)
    observed = d["events"] == 1
    residuals, variance = fit.schoenfeld_residuals[observed], fit.cov_params()
    scaled = observed.sum() * residuals @ variance
    rank = stats.rankdata(d["times"][observed])
    centred = rank - rank.mean()
    statistic = (centred @ scaled) ** 2 / (observed.sum() * np.diag(variance) * np.sum(centred**2))
    assert result.ph_statistic == pytest.approx(statistic[0], rel=1e-5)
    assert result.ph_p_value == pytest.approx(stats.chi2.sf(statistic[0], 1), rel=1e-4)
    if not strata:
        frame = pd.DataFrame({"time": d["times"], "event": d["events"], "group": d["group"], "x": d["x"]})
        fitted = CoxPHFitter().fit(frame, "time", "event")
        lifelines = proportional_hazard_test(fitted, frame, time_transform="rank").summary.loc["group"]
        assert result.ph_statistic == pytest.approx(lifelines["test_statistic"], rel=1e-5)


def test_cox_proportional_hazards_check_flags_crossing_hazards() -> None:
    """Planted violation: treatment hazard twice the reference's before time 0.5 and half of it after; the
    arm's PH test rejects (p < 0.001). Under proportional hazards (HR 1.5, same generator) it does not
    (p > 0.05)."""
    rng = np.random.default_rng(51)
    n = 600
    group = np.repeat([0.0, 1.0], n // 2)
    early = rng.exponential(1.0, n) / np.where(group == 1, 2.0, 1.0)
    late = 0.5 + rng.exponential(1.0, n) / np.where(group == 1, 0.5, 1.0)
    times = np.where(early < 0.5, early, late)
    censor = rng.uniform(0.5, 4.0, n)
    crossing = cox(np.minimum(times, censor), (times <= censor).astype(float), group)
    assert crossing.ph_p_value < 0.001
    times = rng.exponential(1.0, n) / np.where(group == 1, 1.5, 1.0)
    proportional = cox(np.minimum(times, censor), (times <= censor).astype(float), group)
    assert proportional.ph_p_value > 0.05


def test_cox_and_friends_keep_lifelines_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    """No warning and no printed output escape, even for data on which lifelines warns: a covariate measured in
    small units (variance 1e-6) draws its "very low variance" ConvergenceWarning, checked here on a direct
    CoxPHFitter fit, yet the model fits (log HR per unit x 1000 that of x, rel 1e-6)."""
    d = _trial(61, n=200)
    small = d["x"] * 1e-3
    frame = pd.DataFrame({"time": d["times"], "event": d["events"], "group": d["group"], "small": small})
    with warnings.catch_warnings(record=True) as direct:
        warnings.simplefilter("always")
        CoxPHFitter().fit(frame, "time", "event")
    assert any("low variance" in str(w.message) for w in direct)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaled = cox(d["times"], d["events"], d["group"], {"small": small}, d["s"])
        kaplan_meier(d["times"], d["events"])
    assert caught == []
    assert capsys.readouterr() == ("", "")
    unscaled = cox(d["times"], d["events"], d["group"], {"x": d["x"]}, d["s"])
    assert scaled.covariate_log_hr[0] == pytest.approx(1000 * unscaled.covariate_log_hr[0], rel=1e-6)


# --- RMST ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.5, 1.3, 2.0])
def test_rmst_matches_lifelines_restricted_mean_survival_time(tau: float) -> None:
    """lifelines.utils.restricted_mean_survival_time on a fitted KaplanMeierFitter, per arm (rel 1e-10);
    tau = 0.5 and 2.0 are observed (rounded) times, 1.3 maybe not."""
    d = _trial(71)
    result = rmst_difference(d["times"], d["events"], d["group"], tau)
    for arm, value in ((1, result.rmst_treatment), (0, result.rmst_reference)):
        keep = d["group"] == arm
        fitted = KaplanMeierFitter().fit(d["times"][keep], d["events"][keep])
        assert value == pytest.approx(restricted_mean_survival_time(fitted, t=tau), rel=1e-10)
    assert result.difference == pytest.approx(result.rmst_treatment - result.rmst_reference, rel=1e-12)


def _area(event_times: Any, hazards: Any, tau: float) -> float:
    """Area under the step function prod_{t_i <= t} (1 - h_i) on [0, tau], written independently."""
    edges = np.concatenate([[0.0], event_times, [tau]])
    levels = np.concatenate([[1.0], np.cumprod(1 - hazards)])
    return float(np.sum(levels * np.diff(edges)))


def test_rmst_variance_is_the_delta_method_variance() -> None:
    """Delta method done numerically: the area as a function of the hazard increments h_i = d_i / n_i, each
    with binomial variance h_i (1 - h_i) / n_i and independent across event times (the Greenwood argument);
    the gradient by central differences (step 1e-6). Var = sum (dA/dh_i)^2 h_i (1 - h_i) / n_i, rel 1e-6."""
    d = _trial(81, n=160)
    tau = 1.5
    result = rmst_difference(d["times"], d["events"], d["group"], tau)
    for arm, se in ((1, result.se_treatment), (0, result.se_reference)):
        t, e = d["times"][d["group"] == arm], d["events"][d["group"] == arm]
        u = np.unique(t[(e == 1) & (t <= tau)])
        at_risk = np.array([np.sum(t >= v) for v in u], dtype=float)
        h = np.array([np.sum((t == v) & (e == 1)) for v in u]) / at_risk
        assert (h < 1).all()
        gradient = np.empty(u.size)
        for i in range(u.size):
            step = np.zeros(u.size)
            step[i] = 1e-6
            gradient[i] = (_area(u, h + step, tau) - _area(u, h - step, tau)) / 2e-6
        variance = np.sum(gradient**2 * h * (1 - h) / at_risk)
        assert se**2 == pytest.approx(variance, rel=1e-6)
    assert result.se == pytest.approx(math.hypot(result.se_treatment, result.se_reference), rel=1e-12)


def test_rmst_difference_se_and_coverage_in_simulation() -> None:
    """400 seeded trials, 150 per arm, exponential hazards 0.10 (treatment) and 0.15 (reference), uniform
    censoring on [5, 30], tau = 10. True RMST (1 - exp(-lambda tau)) / lambda. The empirical SD of the
    estimated difference is within 10% of the mean reported SE, and the 95% interval covers the true
    difference at a rate within 3 binomial SEs of 95%."""
    rng = np.random.default_rng(91)
    rates, tau, n, trials = {1: 0.10, 0: 0.15}, 10.0, 150, 400
    truth = (1 - math.exp(-rates[1] * tau)) / rates[1] - (1 - math.exp(-rates[0] * tau)) / rates[0]
    group = np.repeat([1.0, 0.0], n)
    estimates, ses, covered = [], [], 0
    for _ in range(trials):
        event_time = rng.exponential(1.0, 2 * n) / np.where(group == 1, rates[1], rates[0])
        censor = rng.uniform(5.0, 30.0, 2 * n)
        result = rmst_difference(np.minimum(event_time, censor), (event_time <= censor).astype(float), group, tau)
        estimates.append(result.difference)
        ses.append(result.se)
        covered += result.ci_lower <= truth <= result.ci_upper
    assert np.std(estimates, ddof=1) == pytest.approx(np.mean(ses), rel=0.10)
    assert abs(covered / trials - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / trials)


def test_rmst_six_mp() -> None:
    """6-MP data at tau = 23 (the placebo arm's last time), against lifelines (rel 1e-10): the reference arm
    fails entirely by 23, so its last variance term has n = d and contributes 0."""
    result = rmst_difference(MP_TIMES + PLACEBO_TIMES, MP_EVENTS + [1] * 21, [1] * 21 + [0] * 21, 23)
    placebo = KaplanMeierFitter().fit(PLACEBO_TIMES, [1] * 21)
    assert result.rmst_reference == pytest.approx(restricted_mean_survival_time(placebo, t=23), rel=1e-10)
    assert result.rmst_reference == pytest.approx(np.mean(PLACEBO_TIMES), rel=1e-12)  # no censoring: plain mean
    assert math.isfinite(result.se) and result.p_value is not None


# --- refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: kaplan_meier([1, None, 3], [1, 0, 1]), "times"),
        (lambda: kaplan_meier([1, -2, 3], [1, 0, 1]), "times"),
        (lambda: kaplan_meier([], []), "times"),
        (lambda: kaplan_meier([1, 2, 3], [1, 2, 0]), "events"),
        (lambda: kaplan_meier([1, 2, 3], [1, 0]), "events"),
        (lambda: kaplan_meier([1, 2, 3], [1, 0, 1], level=1.0), "level"),
        (lambda: log_rank([1, 2, 3, 4], [1, 0, 1, 1], [1, 1, 1, 1]), "group"),
        (lambda: log_rank([1, 2, 3, 4], [1, 0, 1, 1], [1, 0, 2, 0]), "group"),
        (lambda: log_rank([1, 2, 3, 4], [1, 0, 1, 1], [1, 0, 1]), "group"),
        (lambda: log_rank([1, 2, 3, 4], [0, 0, 0, 0], [1, 0, 1, 0]), "events"),
        (lambda: log_rank([1, 2, 3, 4], [1, 0, 1, 1], [1, 0, 1, 0], strata=["a", None, "b", "b"]), "strata"),
        (lambda: log_rank([1, 2, 3, 4], [1, 0, 1, 1], [1, 0, 1, 0], strata=["a", "b"]), "strata"),
        (lambda: cox([1, 2, 3, 4], [1, 0, 0, 1], [1, 1, 0, 0], {"age": [1, None, 3, 4]}), "covariates['age']"),
        (lambda: cox([1, 2, 3, 4], [1, 0, 0, 1], [1, 1, 0, 0], {"age": [5, 5, 5, 5]}), "covariates"),
        (lambda: cox([1, 2, 3, 4], [1, 1, 0, 0], [1, 1, 0, 0]), "events"),
        (lambda: rmst_difference([1, 2, 3, 9], [1, 0, 1, 0], [1, 0, 1, 0], tau=5), "tau"),
        (lambda: rmst_difference([1, 2, 3, 9], [1, 0, 1, 0], [1, 0, 1, 0], tau=0), "tau"),
        (lambda: rmst_difference([1, 2, 3, 9], [1, 0, 1, 0], [1, 0, 1, 0], tau=math.nan), "tau"),
        (lambda: rmst_difference([1, 2, 3, 9], [1, 0, 1, 0], [1, 0, 1, 0], tau="2"), "tau"),
        (lambda: rmst_difference([1, 2, 3, 9], [1, 0, 1, 0], [1, 1, 1, 1], tau=1), "group"),
    ],
)
def test_refusals_name_the_argument(call: Any, named: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(named)):
        call()


def test_cox_refuses_an_arm_without_events_naming_the_rule() -> None:
    with pytest.raises(ValueError, match="group 0 has no events, so the hazard ratio is 0 or infinite"):
        cox([1, 2, 3, 4, 5, 6], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0])


def test_cox_refuses_a_covariate_that_separates_the_events() -> None:
    """A covariate equal to the event indicator makes the partial likelihood monotone (no finite maximum);
    lifelines' convergence warning becomes a refusal instead of a coefficient that is merely large."""
    d = _trial(101, n=120)
    with pytest.raises(ValueError, match=r"^covariates or group: the Cox fit has no finite maximum"):
        cox(d["times"], d["events"], d["group"], {"separating": d["events"]})
