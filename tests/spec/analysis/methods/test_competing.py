"""Competing risks (trialwright.analysis.methods.competing), each result checked against printed output of the
reference R implementation or an independent computation; the source and tolerance are named at each test.

The ``bmtcrr`` data (177 transplant patients; Status 0 = censored, 1 = relapse, 2 = competing death) are the
example of Scrucca, Santucci & Aversa's tutorial (Bone Marrow Transplant 2007;40:381), shipped as
casebase::bmtcrr; the rows below are the public copy bmtcrr.csv in github.com/manalirupji/CASAS, whose first
rows agree with ``str(casebase::bmtcrr)``. The cmprsk output for them (``cuminc`` by disease, ``crr`` on all
five covariates coded as integers) is as printed in an R teaching text adapted from
github.com/ayueme/R_medical_stat (CC BY-SA 4.0); the values checked below match it to every printed digit.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import AalenJohansenFitter, CoxPHFitter, CoxTimeVaryingFitter
from lifelines.statistics import logrank_test
from statsmodels.duration.hazard_regression import PHReg

from trialwright.analysis.methods.competing import cause_specific_cox, fine_gray, gray_test
from trialwright.analysis.statistics import cumulative_incidence

BMTCRR = """
0.67 2 M ALL Relapse 48 BM+PB; 9.5 1 F AML CR2 23 BM+PB; 131.77 0 M ALL CR3 7 BM+PB;
24.03 2 F ALL CR2 26 BM+PB; 1.47 2 F ALL CR2 36 BM+PB; 2.23 2 M ALL Relapse 17 BM+PB;
124.83 0 M ALL CR1 7 BM+PB; 10.53 2 F ALL CR1 17 BM+PB; 123.9 0 M ALL CR1 26 BM+PB;
2 1 F ALL Relapse 8 BM+PB; 1.7 2 M ALL Relapse 29 BM+PB; 6.33 2 M AML Relapse 13 BM+PB;
2.3 2 F AML CR2 29 BM+PB; 3.57 1 M ALL Relapse 7 BM+PB; 0.4 2 M ALL Relapse 40 BM+PB;
0.87 2 F ALL CR2 20 BM+PB; 121.1 0 M ALL CR3 18 BM+PB; 5.27 2 M AML CR1 29 BM+PB; 7.5 2 M ALL CR1 6 BM+PB;
6.3 2 M AML CR2 33 BM+PB; 6.13 1 F ALL CR3 27 BM+PB; 2.8 2 F ALL CR2 22 PB; 5.37 1 M ALL CR3 15 PB;
2.87 1 M ALL CR2 8 PB; 10.9 2 M AML CR2 46 PB; 3.07 1 M ALL Relapse 21 PB; 1.7 1 F ALL Relapse 21 PB;
114.7 0 M AML Relapse 7 PB; 1.8 1 M ALL Relapse 4 PB; 114.1 0 F AML Relapse 53 PB; 35 1 M AML CR2 27 PB;
112.93 0 M AML Relapse 28 PB; 3.63 2 F ALL CR2 23 PB; 112.23 0 M ALL Relapse 17 PB;
1.67 1 F ALL Relapse 19 PB; 7.63 2 M AML Relapse 39 PB; 7.53 1 M ALL CR2 15 PB; 110.37 0 M AML CR2 47 PB;
20.93 2 F AML Relapse 16 PB; 6.03 2 F ALL CR1 17 PB; 2.83 2 M AML CR3 26 PB; 9.63 2 M AML CR2 44 PB;
3.17 2 F AML Relapse 30 PB; 9.97 2 M AML Relapse 32 PB; 5.7 1 M AML CR1 20 PB; 106.13 0 M AML CR1 38 PB;
2.53 1 M ALL Relapse 17 PB; 4.2 1 M AML Relapse 38 PB; 9.17 2 M AML CR2 36 PB; 8.73 2 M AML CR2 34 PB;
85.1 0 F AML CR2 42 PB; 4.8 2 F AML Relapse 58 PB; 3.57 2 F AML Relapse 30 PB; 8 2 F ALL CR1 37 PB;
82.6 0 M ALL CR1 25 PB; 81.67 0 F AML CR1 47 PB; 6 2 F ALL CR1 46 PB; 6.2 1 M AML CR2 21 PB;
3.47 2 F AML Relapse 17 PB; 4.23 1 M ALL Relapse 25 PB; 1 2 F AML CR2 45 PB; 7.47 2 M ALL CR1 17 PB;
6.1 2 M AML Relapse 44 PB; 77 0 F AML CR1 20 PB; 76.03 0 M AML CR2 18 PB; 28.53 1 F AML CR2 46 PB;
1.97 2 F AML Relapse 49 PB; 13.07 1 M ALL Relapse 17 PB; 1.43 2 F ALL Relapse 36 PB;
72.93 0 M ALL CR2 14 PB; 71.83 0 M ALL Relapse 22 PB; 67.8 0 M AML CR3 38 PB; 8.17 2 F ALL CR2 20 PB;
7.57 1 F ALL Relapse 26 PB; 2.4 1 M ALL Relapse 20 PB; 70.2 0 M AML CR1 28 PB; 3.03 1 F AML Relapse 45 PB;
5.87 1 M AML Relapse 17 PB; 68.83 0 M AML CR2 40 PB; 1.1 2 F ALL Relapse 9 PB; 9.13 1 M AML Relapse 18 PB;
6.07 1 F AML Relapse 33 PB; 3.3 2 M ALL CR1 33 PB; 59.17 0 F AML CR2 17 PB; 1.23 1 F ALL Relapse 17 PB;
58.23 0 M AML CR2 28 PB; 58 0 F AML CR1 26 PB; 56.6 0 M ALL CR2 32 PB; 3.6 2 M AML Relapse 62 PB;
1.6 1 M AML Relapse 46 PB; 5.63 1 F AML CR1 20 PB; 4.4 2 F AML CR2 50 PB; 13.8 2 M AML Relapse 40 PB;
49.27 0 M AML CR1 43 PB; 9.2 2 F AML CR3 31 PB; 8.63 1 F ALL CR1 46 PB; 6.7 2 M AML Relapse 51 PB;
1.1 1 M ALL Relapse 39 PB; 5.43 2 F ALL Relapse 19 PB; 45.3 0 F ALL CR1 33 PB; 12.57 1 F AML Relapse 23 PB;
43.67 0 F ALL CR1 50 PB; 11.8 2 F AML CR1 36 PB; 43.2 0 M AML CR2 36 PB; 4.17 2 M ALL CR1 35 PB;
6.63 1 F AML Relapse 41 PB; 42.5 0 F AML CR1 28 PB; 1.87 1 M AML CR1 30 PB; 1.23 2 F AML CR1 39 PB;
41.3 0 M AML CR1 52 PB; 3.9 2 M AML CR1 38 PB; 4.57 2 M AML CR1 35 PB; 4.4 2 F AML CR3 27 PB;
3.7 2 M AML CR1 38 PB; 3.4 2 F AML Relapse 22 PB; 20.83 1 M ALL CR1 26 PB; 8.6 2 F AML CR2 47 PB;
1.3 1 M AML Relapse 17 PB; 0.37 2 M ALL Relapse 21 PB; 0.27 2 M ALL CR1 28 PB; 35.5 0 M ALL CR2 24 PB;
35.5 0 F AML CR1 35 PB; 4.07 1 F ALL CR3 19 PB; 7.93 1 M ALL CR1 23 PB; 17.23 1 M ALL CR2 33 PB;
3.43 2 F ALL CR3 38 PB; 2 2 M AML CR1 36 PB; 8.8 2 M AML Relapse 48 PB; 32.63 0 F AML Relapse 25 PB;
12.17 2 M ALL CR2 22 PB; 7.2 2 F AML Relapse 37 PB; 9 2 M AML CR2 52 PB; 6 1 F AML CR1 53 PB;
29.9 0 M AML CR2 22 PB; 29.2 0 M ALL CR2 20 PB; 28.7 0 M AML CR1 51 PB; 42.17 1 M AML Relapse 33 PB;
0.13 2 F AML CR3 33 PB; 3.63 1 M ALL CR1 20 PB; 12.27 1 M AML Relapse 37 PB; 26.13 0 F AML CR1 14 PB;
4.73 1 M AML CR1 33 PB; 3.93 2 F AML Relapse 55 PB; 24.77 0 F ALL CR2 16 PB; 2.03 1 F AML Relapse 52 PB;
6.6 2 M ALL CR1 43 PB; 9.43 1 M ALL Relapse 18 PB; 5 1 M AML CR2 39 PB; 1.87 1 F ALL Relapse 14 PB;
5.6 1 F AML Relapse 28 PB; 19.9 0 M ALL Relapse 13 PB; 1.2 1 F AML Relapse 34 PB;
5.23 2 M AML Relapse 58 PB; 3.5 2 F AML CR2 14 PB; 2.8 2 M AML Relapse 16 PB; 1.47 2 M AML Relapse 52 PB;
7.63 1 M ALL Relapse 48 PB; 2.23 1 F ALL CR2 45 PB; 0.87 2 F AML Relapse 41 PB; 7.2 2 M AML Relapse 45 PB;
3.23 2 F ALL Relapse 25 PB; 3.57 2 F AML CR2 34 PB; 4.57 2 M AML CR1 37 PB; 1.77 2 F AML Relapse 41 PB;
16.83 0 F ALL CR2 32 PB; 16.6 0 M AML CR1 28 PB; 16.13 0 F ALL CR1 51 PB; 2.7 2 M ALL CR2 11 PB;
10.3 1 M ALL Relapse 20 PB; 15.17 0 F AML CR1 54 PB; 7 1 F AML CR2 17 PB; 2.53 1 M AML Relapse 44 PB;
14.5 0 M AML CR2 21 PB; 2.3 1 F AML Relapse 44 PB; 10.2 0 M AML CR1 23 PB; 9.97 0 F AML CR3 27 PB;
7.63 1 M AML Relapse 48 PB;
"""


def _bmtcrr() -> dict[str, Any]:
    rows = [record.split() for record in BMTCRR.replace("\n", " ").split(";") if record.strip()]
    assert len(rows) == 177
    column = list(zip(*rows, strict=True))
    return {
        "ftime": np.array(column[0], dtype=float),
        "status": np.array(column[1], dtype=int),
        "aml": np.array([d == "AML" for d in column[3]], dtype=float),  # group: AML = 1, ALL = 0
        # as.integer() of the factors, as in the printed crr call: F/M, CR1/CR2/CR3/Relapse, BM+PB/PB -> 1, 2, ...
        "sex": np.array([1 + (v == "M") for v in column[2]], dtype=float),
        "phase": np.array([["CR1", "CR2", "CR3", "Relapse"].index(v) + 1 for v in column[4]], dtype=float),
        "age": np.array(column[5], dtype=float),
        "source": np.array([1 + (v == "PB") for v in column[6]], dtype=float),
    }


def _competing_data(seed: int, n: int, effect: float = 0.0, censoring: float | None = None) -> tuple[Any, ...]:
    """Untied exponential times with a log-hazard ``effect`` of group on both causes, cause 1 with
    probability 0.6, and exponential censoring at rate ``censoring`` (none when None)."""
    rng = np.random.default_rng(seed)
    group = np.repeat([0.0, 1.0], n // 2)
    times = rng.exponential(1.0, n) / np.exp(effect * group)
    status = rng.choice([1, 2], n, p=[0.6, 0.4])
    if censoring is not None:
        censor = rng.exponential(1 / censoring, n)
        status = np.where(censor < times, 0, status)
        times = np.minimum(times, censor)
    return times, status, group, rng


def _kept_at_risk(times: Any, status: Any, cause: int = 1) -> tuple[Any, Any]:
    """The data without censoring as an ordinary survival problem: a competing event moves beyond the last
    time and becomes censored, so the participant stays in every risk set (Fine & Gray 1999, section 2)."""
    return np.where(status == 3 - cause, times.max() + 1, times), (status == cause).astype(int)


# --- Gray's test ---------------------------------------------------------------------------------------


def test_gray_test_reproduces_cmprsk_cuminc_on_bmtcrr() -> None:
    """cuminc(ftime, Status, D) printed Tests: cause 1 stat 2.8623325 pv 0.09067592, cause 2 stat 0.4481279
    pv 0.50322531 (df 1), and CIF estimates ALL 1: 0.3713851 at 20, 0.3875571 at 40; AML 1: 0.2414530,
    0.2663827, 0.2810390 at 20, 40, 60; ALL 2 / AML 2: 0.3698630 / 0.4439103 at 20. Printed to 8 significant
    digits, so rel 1e-6 for the statistics, 1e-7 absolute for the CIF (7 decimals)."""
    d = _bmtcrr()
    relapse = gray_test(d["ftime"], d["status"], d["aml"], cause=1)
    death = gray_test(d["ftime"], d["status"], d["aml"], cause=2)
    assert (relapse.statistic, relapse.p_value, relapse.df) == pytest.approx((2.8623325, 0.09067592, 1), rel=1e-6)
    assert (death.statistic, death.p_value) == pytest.approx((0.4481279, 0.50322531), rel=1e-6)
    assert [relapse.cif_reference.at(t) for t in (20, 40)] == pytest.approx([0.3713851, 0.3875571], abs=1e-7)
    aml = [relapse.cif_treatment.at(t) for t in (20, 40, 60)]
    assert aml == pytest.approx([0.2414530, 0.2663827, 0.2810390], abs=1e-7)
    assert relapse.cif_reference.competing_at(20) == pytest.approx(0.3698630, abs=1e-7)
    assert relapse.cif_treatment.competing_at(20) == pytest.approx(0.4439103, abs=1e-7)
    assert relapse.statistic == pytest.approx(relapse.score**2 / relapse.variance, rel=1e-12)
    assert (relapse.n, relapse.n_events, relapse.n_competing, relapse.n_censored) == (177, 56, 75, 46)


def test_without_censoring_grays_score_is_the_log_rank_score_with_competing_events_kept_at_risk() -> None:
    """With no censoring, S_k(t-) = Y_k / n_k, so Gray's subdistribution risk set R_k = n_k (1 - F_k(t-)) is the
    number not yet failed from the cause: his score is exactly the log-rank score (observed minus expected)
    on the data with competing events kept at risk for ever. The log-rank U and hypergeometric V are computed
    here and checked against lifelines' logrank_test (U^2 / V, rel 1e-9); Gray's score equals U (abs 1e-9).
    Gray's variance is a different estimator (the martingale one of his section 3, not the permutation
    variance), equal only asymptotically: here within 5% at n = 400 under the null. One late competing event
    per arm keeps both arms at risk to the end: once an arm has nobody at risk, h_k = Y_k / S_k(t-) is
    undefined and Gray (like cmprsk) leaves that arm out, while the modified data would keep its competing
    events at risk."""
    times, status, group, _ = _competing_data(seed=11, n=400)
    times[[0, -1]], status[[0, -1]] = 50.0, 2
    modified, event = _kept_at_risk(times, status)
    u = v = 0.0
    for t in np.unique(modified[event == 1]):
        at_risk, at_risk_1 = np.sum(modified >= t), np.sum((modified >= t) & (group == 1))
        d, d_1 = np.sum((modified == t) & (event == 1)), np.sum((modified == t) & (event == 1) & (group == 1))
        u += d_1 - d * at_risk_1 / at_risk
        v += d * at_risk_1 / at_risk * (1 - at_risk_1 / at_risk) * (at_risk - d) / (at_risk - 1)
    treated = group == 1
    lifelines = logrank_test(modified[treated], modified[~treated], event[treated], event[~treated])
    assert lifelines.test_statistic == pytest.approx(u**2 / v, rel=1e-9)
    result = gray_test(times, status, group)
    assert result.score == pytest.approx(u, abs=1e-9)
    assert result.variance == pytest.approx(v, rel=0.05)


def test_stratified_gray_test_adds_the_strata_scores_and_variances() -> None:
    """cmprsk's stratified test sums each stratum's score and variance (crstm): checked against the
    unstratified test run on each stratum alone (rel 1e-12)."""
    d = _bmtcrr()
    stratified = gray_test(d["ftime"], d["status"], d["aml"], strata=d["source"].astype(int).tolist())
    parts = [gray_test(d["ftime"][k], d["status"][k], d["aml"][k]) for k in (d["source"] == 1, d["source"] == 2)]
    assert stratified.n_strata == 2
    assert stratified.score == pytest.approx(sum(p.score for p in parts), rel=1e-12)
    assert stratified.variance == pytest.approx(sum(p.variance for p in parts), rel=1e-12)
    assert stratified.statistic == pytest.approx(stratified.score**2 / stratified.variance, rel=1e-12)


# --- Fine-Gray -----------------------------------------------------------------------------------------


def test_fine_gray_reproduces_cmprsk_crr_on_bmtcrr() -> None:
    """crr(ftime, Status, covs) on Sex, D, Phase, Age, Source (integer codes) printed coef (se): Sex 0.0494
    (0.2867), D -0.4860 (0.3040), Phase 0.4144 (0.1194), Age -0.0174 (0.0118), Source 0.9526 (0.5469);
    exp(coef) of D 0.615 with 95% CI 0.339 to 1.12; pseudo log-likelihood -267. The se are crr's robust
    (sandwich) ones. Printed to 4 decimals, so abs 5e-5 (half the last digit); CI to 3 significant digits."""
    d = _bmtcrr()
    covariates = {name: d[name] for name in ("sex", "phase", "age", "source")}
    result = fine_gray(d["ftime"], d["status"], d["aml"], covariates)
    assert result.log_shr == pytest.approx(-0.4860, abs=5e-5)
    assert result.se == pytest.approx(0.3040, abs=5e-5)
    assert result.covariate_log_shr == pytest.approx((0.0494, 0.4144, -0.0174, 0.9526), abs=5e-5)
    assert result.covariate_se == pytest.approx((0.2867, 0.1194, 0.0118, 0.5469), abs=5e-5)
    assert (round(result.shr, 3), round(result.ci_lower, 3), round(result.ci_upper, 2)) == (0.615, 0.339, 1.12)
    assert round(result.log_pseudo_likelihood) == -267
    assert result.covariates == ("sex", "phase", "age", "source")


def test_without_censoring_fine_gray_is_cox_with_competing_events_kept_at_risk() -> None:
    """No censoring: every IPCW weight is 1, so Fine-Gray is the Cox model on the modified data (Fine & Gray
    1999, section 2). lifelines CoxPHFitter (Efron ties, identical to Breslow here: the times are untied):
    log SHR abs 1e-6, model-based SE rel 1e-6."""
    times, status, group, _ = _competing_data(seed=3, n=120, effect=0.4)
    modified, event = _kept_at_risk(times, status)
    cox = CoxPHFitter().fit(pd.DataFrame({"T": modified, "E": event, "g": group}), "T", "E")
    result = fine_gray(times, status, group)
    assert result.log_shr == pytest.approx(cox.params_["g"], abs=1e-6)
    assert result.se_model == pytest.approx(cox.standard_errors_["g"], rel=1e-6)


def _censoring_survival_before(times: Any, status: Any, t: float) -> float:
    """G(t-): product-limit estimate of the censoring distribution (censorings are its events, any failure a
    censored observation, at risk at its own time), over censoring times strictly before t."""
    g = 1.0
    for u in np.unique(times[status == 0]):
        if u >= t:
            break
        g *= 1 - np.sum((times == u) & (status == 0)) / np.sum(times >= u)
    return float(g)


def test_with_censoring_fine_gray_is_the_weighted_cox_fit_on_finegrays_expanded_data() -> None:
    """R survival::finegray's construction, built here: a participant with the competing event at T_i keeps
    a row (0, T_i] and then one row (t_(k-1), t_k] up to each later failure time t_k of the cause of
    interest, with weight G(t_k-) / G(T_i-); everyone else keeps one row. lifelines CoxTimeVaryingFitter
    with weights_col fits it (Efron = Breslow: no tied failures): coefficients abs 1e-6, model-based
    SE rel 1e-6."""
    times, status, group, rng = _competing_data(seed=5, n=150, effect=0.5, censoring=0.5)
    age = rng.normal(50, 10, times.size)
    failures = np.unique(times[status == 1])
    rows = []
    for i in range(times.size):
        rows.append((i, 0.0, times[i], int(status[i] == 1), 1.0))
        if status[i] == 2:
            start, base = times[i], _censoring_survival_before(times, status, times[i])
            for t in failures[failures > times[i]]:
                rows.append((i, start, t, 0, _censoring_survival_before(times, status, t) / base))
                start = t
    expanded = pd.DataFrame(rows, columns=["id", "start", "stop", "event", "w"])
    expanded["g"], expanded["age"] = group[expanded["id"]], age[expanded["id"]]
    cox = CoxTimeVaryingFitter().fit(
        expanded.drop(columns="id"), event_col="event", start_col="start", stop_col="stop", weights_col="w"
    )
    result = fine_gray(times, status, group, {"age": age})
    assert (result.log_shr, *result.covariate_log_shr) == pytest.approx(list(cox.params_[["g", "age"]]), abs=1e-6)
    assert result.se_model == pytest.approx(cox.standard_errors_["g"], rel=1e-6)  # sqrt of -H^-1 (robust=False)
    assert result.n_censored > 20 and result.n_competing > 20


def _literal_fine_gray(times: Any, status: Any, x: Any, beta: Any) -> tuple[Any, Any, Any]:
    """Score, model variance and sandwich variance of Fine & Gray (1999, section 4) at beta, written out
    term by term with loops: Breslow ties, w_j(t) = 1 if T_j >= t, G(t-)/G(T_j-) after a competing event,
    0 after censoring; eta_i = sum_t (Z_i - Zbar(t)) (dN_i(t) - w_i(t) e^(b Z_i) dL(t)), dL = d / S0;
    psi_i = sum_u q(u) / pi(u) (dNc_i(u) - I(T_i >= u) dNc(u) / pi(u)) over censoring times u, with
    q(u) = sum_(t >= u) sum_(j competing, T_j < u) w_j(t) e^(b Z_j) (Z_j - Zbar(t)) dL(t); cmprsk::crr's
    convention for t = u."""
    n, p = x.shape
    risk = np.exp(x @ beta)
    failures = np.unique(times[status == 1])

    def weight(j: int, t: float) -> float:
        if times[j] >= t:
            return 1.0
        if status[j] == 2:
            return _censoring_survival_before(times, status, t) / _censoring_survival_before(times, status, times[j])
        return 0.0

    w = {t: np.array([weight(j, t) for j in range(n)]) for t in failures}
    score, info = np.zeros(p), np.zeros((p, p))
    zbar, hazard = {}, {}
    for t in failures:
        s0 = np.sum(w[t] * risk)
        zbar[t] = np.sum((w[t] * risk)[:, None] * x, axis=0) / s0
        second = sum(w[t][j] * risk[j] * np.outer(x[j], x[j]) for j in range(n)) / s0
        d = np.sum((times == t) & (status == 1))
        hazard[t] = d / s0
        score += sum(x[i] - zbar[t] for i in range(n) if times[i] == t and status[i] == 1)
        info += d * (second - np.outer(zbar[t], zbar[t]))
    eta = np.zeros((n, p))
    for i in range(n):
        for t in failures:
            jump = 1.0 if times[i] == t and status[i] == 1 else 0.0
            eta[i] += (x[i] - zbar[t]) * (jump - w[t][i] * risk[i] * hazard[t])
    psi = np.zeros((n, p))
    for u in np.unique(times[status == 0]):
        q = np.zeros(p)
        for t in failures[failures >= u]:
            for j in range(n):
                if status[j] == 2 and times[j] < u:
                    q += w[t][j] * risk[j] * (x[j] - zbar[t]) * hazard[t]
        at_risk, censored = np.sum(times >= u), np.sum((times == u) & (status == 0))
        for i in range(n):
            psi[i] += q / at_risk * (float(times[i] == u and status[i] == 0) - (times[i] >= u) * censored / at_risk)
    inverse = np.linalg.inv(info)
    meat = sum(np.outer(e, e) for e in eta + psi)
    return score, inverse, inverse @ meat @ inverse


def test_fine_gray_variance_matches_a_literal_transcription_of_fine_and_gray() -> None:
    """The vectorised fit against _literal_fine_gray on bmtcrr (tied times, censoring at failure times):
    the score at the estimate is 0 (abs 1e-8), and the model-based and robust SEs agree (rel 1e-8)."""
    d = _bmtcrr()
    result = fine_gray(d["ftime"], d["status"], d["aml"], {"age": d["age"]})
    x = np.column_stack([d["aml"], d["age"]])
    beta = np.array([result.log_shr, *result.covariate_log_shr])
    score, model, robust = _literal_fine_gray(d["ftime"], d["status"], x, beta)
    assert score == pytest.approx([0, 0], abs=1e-8)
    assert result.se_model == pytest.approx(math.sqrt(model[0, 0]), rel=1e-8)
    assert (result.se, *result.covariate_se) == pytest.approx(np.sqrt(np.diag(robust)), rel=1e-8)


def test_swapping_the_arms_or_the_cause_codes_mirrors_the_results() -> None:
    """Recoding treatment as reference negates log SHR and Gray's score (abs 1e-9); calling the competing
    event the cause of interest equals swapping the status codes 1 and 2."""
    d = _bmtcrr()
    forward = fine_gray(d["ftime"], d["status"], d["aml"])
    backward = fine_gray(d["ftime"], d["status"], 1 - d["aml"])
    assert backward.log_shr == pytest.approx(-forward.log_shr, abs=1e-9)
    assert backward.se == pytest.approx(forward.se, rel=1e-9)
    gray, yarg = gray_test(d["ftime"], d["status"], d["aml"]), gray_test(d["ftime"], d["status"], 1 - d["aml"])
    assert yarg.score == pytest.approx(-gray.score, abs=1e-9)
    swapped = np.where(d["status"] == 0, 0, 3 - d["status"])
    assert fine_gray(d["ftime"], d["status"], d["aml"], cause=2).log_shr == pytest.approx(
        fine_gray(d["ftime"], swapped, d["aml"]).log_shr, abs=1e-12
    )


# --- cause-specific Cox and the Aalen-Johansen curves it is read beside -----------------------------------


def test_cause_specific_cox_is_cox_with_competing_events_censored() -> None:
    """bmtcrr (tied times): lifelines CoxPHFitter on relapse with deaths censored (abs 1e-8) and statsmodels
    PHReg with Efron ties, an independent implementation (abs 1e-6)."""
    d = _bmtcrr()
    result = cause_specific_cox(d["ftime"], d["status"], d["aml"])
    relapse = (d["status"] == 1).astype(int)
    frame = pd.DataFrame({"T": d["ftime"], "E": relapse, "aml": d["aml"]})
    lifelines = CoxPHFitter().fit(frame, "T", "E")
    assert result.log_hr == pytest.approx(lifelines.params_["aml"], abs=1e-8)
    assert result.se == pytest.approx(lifelines.standard_errors_["aml"], abs=1e-8)
    phreg = PHReg(d["ftime"], d["aml"][:, None], status=relapse, ties="efron").fit()
    assert result.log_hr == pytest.approx(phreg.params[0], abs=1e-6)
    assert result.se == pytest.approx(phreg.bse[0], abs=1e-6)
    assert result.hr == pytest.approx(math.exp(result.log_hr))
    assert result.ci_lower < result.hr < result.ci_upper


def test_the_reused_aalen_johansen_curves_match_lifelines() -> None:
    """statistics.cumulative_incidence (behind gray_test's curves and fine_gray's censoring weights) against
    lifelines' AalenJohansenFitter on untied data, where it does not jitter: abs 1e-10 at every event time."""
    times, status, group, _ = _competing_data(seed=8, n=90, effect=0.3, censoring=0.4)
    result = gray_test(times, status, group)
    for arm, curve in ((1, result.cif_treatment), (0, result.cif_reference)):
        keep = group == arm
        fitter = AalenJohansenFitter(calculate_variance=False).fit(times[keep], status[keep], event_of_interest=1)
        expected = fitter.cumulative_density_.iloc[:, 0]
        assert list(curve.cif) == pytest.approx(list(expected.loc[list(curve.times)]), abs=1e-10)
    codes = np.where(status == 0, "censored", np.where(status == 1, "discharged", "died"))
    assert cumulative_incidence(times[group == 1], codes[group == 1], "discharged", "died").cif == pytest.approx(
        result.cif_treatment.cif, abs=1e-15
    )


# --- refusals and results ------------------------------------------------------------------------------

TIMES, STATUS, GROUP = [1.0, 2.0, 3.0, 4.0], [1, 2, 1, 0], [0, 1, 1, 0]


@pytest.mark.parametrize("method", [gray_test, fine_gray, cause_specific_cox])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"times": [1.0, -2.0, 3.0, 4.0]}, r"times must be present, finite and >= 0"),
        ({"times": [1.0, None, 3.0, 4.0]}, r"times must be present"),
        ({"times": [1.0, "two", 3.0, 4.0]}, r"times must hold numbers"),
        ({"times": [1.0, 2.0, 3.0]}, r"times, status and group must have the same length"),
        ({"status": [1, 3, 1, 0]}, r"status must be 0 \(censored\), 1 or 2.*\[3\.0\]"),
        ({"status": [1, None, 1, 0]}, r"status must be 0 \(censored\), 1 or 2.*missing"),
        ({"status": [0, 2, 2, 0]}, r"status has no event of interest \(code 1\)"),
        ({"group": [0, 2, 1, 0]}, r"group must be 1 \(treatment\) or 0 \(reference\).*\[2\.0\]"),
        ({"group": [0, float("nan"), 1, 0]}, r"group must be 1 \(treatment\) or 0 \(reference\).*missing"),
        ({"group": [1, 1, 1, 1]}, r"group must hold both arms"),
        ({"cause": 3}, r"cause must be 1 or 2"),
        ({"cause": True}, r"cause must be 1 or 2"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(method: Any, change: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"times": TIMES, "status": STATUS, "group": GROUP} | change
    with pytest.raises(ValueError, match=message):
        method(**arguments)


def test_method_specific_refusals() -> None:
    with pytest.raises(ValueError, match=r"level must lie strictly between 0 and 1"):
        fine_gray(TIMES, STATUS, GROUP, level=1.5)
    with pytest.raises(ValueError, match=r"level must lie strictly between 0 and 1"):
        cause_specific_cox(TIMES, STATUS, GROUP, level=0)
    with pytest.raises(ValueError, match=r"status has no event of interest in group 0"):
        fine_gray(TIMES, [0, 2, 1, 0], GROUP)
    with pytest.raises(ValueError, match=r"status has no event of interest in group 1"):
        cause_specific_cox(TIMES, [1, 2, 0, 0], GROUP)
    with pytest.raises(ValueError, match=r"covariates\['age'\] must hold a finite number"):
        fine_gray(TIMES, STATUS, GROUP, {"age": [50, None, 60, 70]})
    with pytest.raises(ValueError, match=r"covariates\['age'\] must hold a finite number"):
        fine_gray(TIMES, STATUS, GROUP, {"age": [50, 60]})
    with pytest.raises(ValueError, match=r"information matrix is singular"):
        fine_gray(TIMES, STATUS, GROUP, {"site": [1, 1, 1, 1]})
    with pytest.raises(ValueError, match=r"strata must have a label for every participant"):
        gray_test(TIMES, STATUS, GROUP, strata=["a", None, "b", "b"])
    with pytest.raises(ValueError, match=r"strata must have one label per participant"):
        gray_test(TIMES, STATUS, GROUP, strata=["a", "b"])


def test_a_cause_specific_cox_fit_without_a_finite_maximum_is_refused_not_reported() -> None:
    """Every treated participant is discharged before any of the reference arm: the partial likelihood grows
    without bound in the log hazard ratio (monotone likelihood, common in a 12-person trial). lifelines warns and
    returns a huge estimate whose interval overflowed exp(); the method refuses, so the estimand says why."""
    times, status, group = [1, 2, 3, 10, 11, 12], [1, 1, 1, 1, 1, 2], [1, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match=r"the cause-specific Cox fit has no finite maximum \(separation\?\)"):
        cause_specific_cox(times, status, group)


def test_results_are_json_ready_and_summarised() -> None:
    d = _bmtcrr()
    gray = gray_test(d["ftime"], d["status"], d["aml"])
    shr = fine_gray(d["ftime"], d["status"], d["aml"], {"age": d["age"]})
    hr = cause_specific_cox(d["ftime"], d["status"], d["aml"])
    for result in (gray, shr, hr):
        data = json.loads(json.dumps(result.as_dict()))
        assert data["cause"] == 1 and data["n"] == 177
    assert gray.summary().startswith("Gray's test of the cumulative incidence of cause 1: chi2=2.862 on 1 df")
    assert "adjusted for age" in shr.summary() and "95% CI" in shr.summary()
    assert hr.summary().startswith("Cause-specific HR for cause 1 (competing events censored)")
    assert json.loads(json.dumps(gray.as_dict()))["cif_treatment"]["n"] == 104  # AML


# --- planted effect ------------------------------------------------------------------------------------

REPLICATES = 1000


def test_fine_gray_interval_covers_a_planted_subdistribution_hazard_ratio() -> None:
    """Data from the Fine-Gray model of Fine & Gray (1999, section 5): P(cause 1 | Z) = 1 - (1 - p)^exp(bZ) and
    F1(t | Z) = 1 - (1 - p (1 - e^-t))^exp(bZ), so the SHR of group is exactly exp(b); given cause 2 the time
    is a unit exponential; exponential censoring (mean 2). p = 0.6, SHR 1.5, n = 60 (30 per arm), 1000
    replicates (about 3 s): the 95% CI must cover 1.5 in 95% +/- three binomial SEs (0.0069) of them."""
    rng = np.random.default_rng(20240601)
    shr, p, n = 1.5, 0.6, 60
    group = np.repeat([0.0, 1.0], n // 2)
    power = shr**group
    covered = 0
    for _ in range(REPLICATES):
        u = rng.uniform(size=n)
        cause1 = u < 1 - (1 - p) ** power
        v = np.where(cause1, u, 0.0)  # inverse of F1(t | Z) at u, for the participants whose cause is 1
        latent = np.where(cause1, -np.log(1 - (1 - (1 - v) ** (1 / power)) / p), rng.exponential(1.0, n))
        censor = rng.exponential(2.0, n)
        status = np.where(censor < latent, 0, np.where(cause1, 1, 2))
        result = fine_gray(np.minimum(latent, censor), status, group)
        covered += result.ci_lower <= shr <= result.ci_upper
    rate, band = covered / REPLICATES, 3 * math.sqrt(0.95 * 0.05 / REPLICATES)
    assert abs(rate - 0.95) <= band, f"coverage {rate:.3f} outside 0.95 +/- {band:.3f}"
