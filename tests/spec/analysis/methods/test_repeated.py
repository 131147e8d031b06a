"""Checks of the MMRM (trialwright.analysis.methods.repeated) against independent computations:

1. complete data, unstructured covariance: the effect at each visit equals the per-visit OLS ANCOVA (statsmodels)
   to 1e-6, its SE too, and the Satterthwaite df equals the ANCOVA residual df (seemingly unrelated regressions
   with identical regressors: GLS = OLS equation by equation, Zellner 1962; REML Sigma = E'E/(n - k));
2. compound symmetry: fixed effects and variance components equal statsmodels MixedLM with a random intercept
   fitted by REML on the same formula (1e-4), and the SEs equal a GLS computed here from MixedLM's variances;
3. the unstructured fit is at least as good as the compound-symmetry and AR(1) fits it nests;
4. behaviour under missing at random: on a large seeded sample with dropout driven by the last observed value
   the MMRM recovers the full-data effect while the completers-only ANCOVA is biased, and the 95% CI covers the
   true effect in 200 seeded small trials to within three binomial SEs of 95%.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from trialwright.analysis.methods.repeated import COVARIANCES, MmrmResult, mmrm


def _json_roundtrip(result: MmrmResult) -> Any:
    return json.loads(json.dumps(result.as_dict()))


def test_unstructured_nests_the_other_covariances_so_its_reml_deviance_is_lowest() -> None:
    """Compound symmetry and AR(1) are special cases of the unstructured covariance, so at the REML optimum
    the unstructured -2 log-likelihood can be no larger; all three fits converge on seeded data with dropout."""
    d = _complete(11, n=120, t=4)
    keep = np.random.default_rng(12).random(len(d)) > 0.15
    d = d[keep | (d.visit == "W0")]
    fits = {
        name: mmrm(d.participant.to_numpy(), d.visit.to_numpy(), d.value.to_numpy(), d.group.to_numpy(),
                   d.baseline.to_numpy(), ["W0", "W1", "W2", "W3"], "W3", covariance=name)
        for name in COVARIANCES
    }
    assert all(f.converged for f in fits.values())
    assert fits["unstructured"].reml_deviance <= fits["compound_symmetry"].reml_deviance + 1e-6
    assert fits["unstructured"].reml_deviance <= fits["ar1"].reml_deviance + 1e-6
    cs = np.array(fits["compound_symmetry"].covariance_matrix)
    assert np.allclose(np.diag(cs), cs[0, 0]) and np.allclose(cs[~np.eye(4, dtype=bool)], cs[0, 1])
    ar = np.array(fits["ar1"].covariance_matrix)
    rho = ar[0, 1] / ar[0, 0]
    assert ar[0, 2] / ar[0, 0] == pytest.approx(rho**2) and ar[0, 3] / ar[0, 0] == pytest.approx(rho**3)


# --- complete data: equal to per-visit OLS ANCOVA --------------------------------------------------------------


def _complete(seed: int, n: int = 60, t: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group, baseline = rng.integers(0, 2, n), rng.normal(50, 10, n)
    stratum = rng.choice(["a", "b", "c"], n)
    corr = 0.5 + 0.5 * np.eye(t)
    noise = rng.multivariate_normal(np.zeros(t), 25 * corr, n)
    value = 10 + 0.5 * baseline[:, None] + 2 * group[:, None] + np.arange(t) + noise
    return pd.DataFrame(
        {
            "participant": np.repeat(np.arange(n), t),
            "visit": np.tile([f"W{k}" for k in range(t)], n),
            "value": value.ravel(),
            "group": np.repeat(group, t),
            "baseline": np.repeat(baseline, t),
            "stratum": np.repeat(stratum, t),
        }
    )


@pytest.mark.parametrize("with_covariate", [False, True])
def test_complete_data_unstructured_equals_per_visit_ols_ancova(with_covariate: bool) -> None:
    """SUR with identical regressors in every equation: GLS = OLS per visit, whatever Sigma; the REML Sigma is
    E'E/(n - k), so the SE is the OLS SE and the Satterthwaite df is exactly n - k. (Covariates by visit keep
    the regressors identical; as main effects they would not.)"""
    d = _complete(1)
    visits = ["W0", "W1", "W2"]
    covariates = {"stratum": d.stratum.tolist()} if with_covariate else None
    r = mmrm(
        d.participant,
        d.visit.tolist(),
        d.value,
        d.group,
        d.baseline,
        visits,
        "W2",
        covariates,
        covariates_by_visit=True,
    )
    formula = "value ~ group + baseline" + (" + C(stratum)" if with_covariate else "")
    for effect in r.visit_effects:
        ols = smf.ols(formula, d[d.visit == effect.visit]).fit()
        assert effect.estimate == pytest.approx(ols.params["group"], abs=1e-6)
        assert effect.se == pytest.approx(ols.bse["group"], rel=1e-6)
        assert effect.df == pytest.approx(ols.df_resid, abs=1e-4)
        assert effect.p_value == pytest.approx(ols.pvalues["group"], rel=1e-4)
        assert effect.ci_lower == pytest.approx(ols.conf_int().loc["group", 0], abs=1e-5)


# --- compound symmetry: equal to MixedLM with a random intercept -------------------------------------------------


def test_compound_symmetry_equals_mixedlm_random_intercept_reml() -> None:
    """value ~ visit + visit:group + visit:baseline + stratum with a random intercept per participant (REML), 20%
    of values missing: the group effects at each visit to 1e-4, between- and within-participant variances
    (Sigma = s2_w I + s2_b J) to 1e-4 relative, and the SEs equal the GLS SEs computed here from MixedLM's
    variances. The baseline's slope differs by visit in the data, so the comparison tells baseline by visit (the
    model fitted) from one baseline term: that fit's effects differ (walk 4, F8: -0.0561 against -0.0477)."""
    rng = np.random.default_rng(3)
    n, t = 80, 4
    visits = [f"W{k}" for k in range(t)]
    group, baseline, stratum = rng.integers(0, 2, n), rng.normal(50, 10, n), rng.choice(["a", "b"], n)
    d = pd.DataFrame(
        {
            "participant": np.repeat(np.arange(n), t),
            "visit": np.tile(visits, n),
            "group": np.repeat(group, t),
            "baseline": np.repeat(baseline, t),
            "stratum": np.repeat(stratum, t),
        }
    )
    slope = np.tile(0.2 + 0.1 * np.arange(t), n)  # the baseline's slope by visit: 0.2, 0.3, 0.4, 0.5
    noise = np.repeat(rng.normal(0, 3, n), t) + rng.normal(0, 4, n * t)
    d["value"] = 5 + slope * d.baseline + 1.5 * d.group + noise
    d.loc[rng.random(n * t) < 0.2, "value"] = np.nan
    r = mmrm(
        d.participant,
        d.visit.tolist(),
        d.value,
        d.group,
        d.baseline,
        visits,
        "W3",
        {"stratum": d.stratum.tolist()},
        covariance="compound_symmetry",
    )
    observed = d.dropna().reset_index(drop=True)
    formula = "value ~ 0 + C(visit) + C(visit):group + C(visit):baseline + C(stratum)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm(formula, observed, groups=observed.participant).fit(reml=True, method="bfgs")
    assert fit.converged
    between, within = float(fit.cov_re.iloc[0, 0]), float(fit.scale)
    sigma = np.array(r.covariance_matrix)
    assert sigma[0, 1] == pytest.approx(between, rel=1e-4)
    assert sigma[0, 0] - sigma[0, 1] == pytest.approx(within, rel=1e-4)
    names = [f"C(visit)[{v}]:group" for v in visits]
    assert [e.estimate for e in r.visit_effects] == pytest.approx([fit.fe_params[k] for k in names], abs=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one_term = smf.mixedlm(formula.replace("C(visit):baseline", "baseline"), observed, groups=observed.participant)
        single = one_term.fit(reml=True, method="bfgs").fe_params
    assert max(abs(e.estimate - single[k]) for e, k in zip(r.visit_effects, names, strict=True)) > 1e-2
    x = np.asarray(fit.model.exog)
    information = np.zeros((x.shape[1], x.shape[1]))
    for _, rows in observed.groupby("participant").groups.items():
        xi = x[np.asarray(rows)]
        vi = within * np.eye(len(rows)) + between
        information += xi.T @ np.linalg.solve(vi, xi)
    gls_se = np.sqrt(np.diag(np.linalg.inv(information)))
    columns = list(fit.model.exog_names)
    assert [e.se for e in r.visit_effects] == pytest.approx([gls_se[columns.index(k)] for k in names], rel=1e-4)


# --- missing at random: behaviour ------------------------------------------------------------------------------

EFFECT = np.array([0.5, 1.0, 1.5, 2.0])  # true treatment effect at V1..V4
CORR = np.array([[1, 0.6, 0.5, 0.4], [0.6, 1, 0.6, 0.5], [0.5, 0.6, 1, 0.6], [0.4, 0.5, 0.6, 1.0]])
MAR_VISITS = ["V1", "V2", "V3", "V4"]


def _mar_trial(rng: np.random.Generator, per_arm: int, slope: float) -> tuple[np.ndarray, ...]:
    """Values at four visits; after each visit a participant drops out with probability expit(-2 - slope *
    (their last observed value - 0.6 baseline)): missing at random (depends on observed data only), and more
    dropout among the low values that are commoner under reference."""
    n = 2 * per_arm
    group, baseline = np.repeat([0, 1], per_arm), rng.normal(0, 2, n)
    full = 0.6 * baseline[:, None] + group[:, None] * EFFECT + rng.multivariate_normal(np.zeros(4), 4 * CORR, n)
    observed, staying = full.copy(), np.ones(n, dtype=bool)
    for k in range(1, 4):
        staying &= rng.random(n) >= 1 / (1 + np.exp(2 + slope * (observed[:, k - 1] - 0.6 * baseline)))
        observed[~staying, k] = np.nan
    return group, baseline, observed, full


def _mar_mmrm(group: np.ndarray, baseline: np.ndarray, values: np.ndarray) -> MmrmResult:
    n = group.size
    return mmrm(
        np.repeat(np.arange(n), 4),
        np.tile(MAR_VISITS, n).tolist(),
        values.ravel(),
        np.repeat(group, 4),
        np.repeat(baseline, 4),
        MAR_VISITS,
        "V4",
    )


def _ancova(group: np.ndarray, baseline: np.ndarray, value: np.ndarray) -> tuple[float, float]:
    keep = ~np.isnan(value)
    fit = sm.OLS(value[keep], sm.add_constant(np.column_stack([group[keep], baseline[keep]]))).fit()
    return float(fit.params[1]), float(fit.bse[1])


def test_mar_dropout_mmrm_recovers_the_effect_that_completers_analysis_misses() -> None:
    """4000 participants, about 40% (reference) and 60% (treatment) still observed at V4: the MMRM estimate at V4
    lies within 2 of its SEs of the full-data ANCOVA (same participants before dropout) and within 3 SEs of the
    true 2.0, while the completers-only ANCOVA is more than 4 of its SEs below both."""
    group, baseline, observed, full = _mar_trial(np.random.default_rng(7), 2000, slope=2.5)
    r = _mar_mmrm(group, baseline, observed)
    full_estimate, _ = _ancova(group, baseline, full[:, 3])
    completers, completers_se = _ancova(group, baseline, observed[:, 3])
    assert abs(r.estimate - full_estimate) < 2 * r.se
    assert abs(r.estimate - EFFECT[3]) < 3 * r.se
    assert EFFECT[3] - completers > 4 * completers_se
    assert full_estimate - completers > 4 * completers_se
    assert r.n_observations == int(np.sum(~np.isnan(observed)))


def test_mar_ci_coverage_over_200_small_trials() -> None:
    """25 participants per arm, MAR dropout: the 95% CI for the V4 effect covers the truth in 200 seeded trials
    within three binomial SEs of 95% (SE = sqrt(0.95 * 0.05 / 200) = 0.0154); every fit converges."""
    rng = np.random.default_rng(2024)
    trials = 200
    covered = 0
    for _ in range(trials):
        group, baseline, observed, _ = _mar_trial(rng, 25, slope=1.0)
        r = _mar_mmrm(group, baseline, observed)
        covered += r.ci_lower <= EFFECT[3] <= r.ci_upper
    assert abs(covered / trials - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / trials)


# --- counting, refusals -------------------------------------------------------------------------------------------


def _small() -> dict[str, Any]:
    d = _complete(5, n=30)
    return {
        "participant": d.participant.tolist(),
        "visit": d.visit.tolist(),
        "value": d.value.tolist(),
        "group": d.group.tolist(),
        "baseline": d.baseline.tolist(),
        "visits": ["W0", "W1", "W2"],
        "at_visit": "W2",
    }


def test_missing_values_participants_without_outcome_and_dropped_participants_are_counted() -> None:
    """Participant 0 has no values (contributes nothing, counted), participant 1 misses its baseline (dropped,
    counted), participant 2 misses one visit (kept: contributes its other two)."""
    args = _small()
    for i in range(3):
        args["value"][i] = None  # participant 0: all three visits
    args["baseline"][3] = args["baseline"][4] = args["baseline"][5] = math.nan  # participant 1
    args["value"][7] = None  # participant 2, visit W1
    r = mmrm(**args)
    assert (r.n_without_outcome, r.n_dropped, r.n_missing_values) == (1, 1, 4)
    assert r.n_observations == 90 - 3 - 3 - 1
    assert r.n_treatment + r.n_reference == 28
    assert sum(e.n_treatment + e.n_reference for e in r.visit_effects) == r.n_observations
    as_dict = _json_roundtrip(r)
    assert as_dict["visit_effects"][2]["visit"] == "W2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"visit": ["BASELINE", *_small()["visit"][1:]]}, "visit holds labels not in visits"),
        ({"visit": ["W0", "W0", *_small()["visit"][2:]]}, "more than one row"),
        ({"group": [1 - _small()["group"][0], *_small()["group"][1:]]}, "group must be the same"),
        ({"group": [2, *_small()["group"][1:]]}, "group must be 1"),
        ({"at_visit": "W9"}, "at_visit"),
        ({"visits": ["W0"]}, "at least two distinct"),
        ({"covariance": "toeplitz"}, "covariance must be one of"),
        ({"level": 1.5}, "level"),
        ({"value": _small()["value"][:-1]}, "same length"),
        ({"participant": [None, *_small()["participant"][1:]]}, "participant is missing"),
        ({"value": [1.0] * 90}, "does not vary"),
    ],
)
def test_bad_input_is_refused_naming_the_rule(change: dict[str, Any], message: str) -> None:
    args = _small()
    if change.get("visits") == ["W0"]:
        args["at_visit"] = "W0"
    args.update(change)
    with pytest.raises(ValueError, match=message):
        mmrm(**args)


def test_no_treated_participant_at_a_visit_is_refused() -> None:
    args = _small()
    args["value"] = [
        None if (v == "W1" and g == 1) else x
        for v, g, x in zip(args["visit"], args["group"], args["value"], strict=True)
    ]
    with pytest.raises(ValueError, match="not estimable"):
        mmrm(**args)


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_a_covariance_the_data_cannot_identify_is_refused_not_estimated(covariance: str) -> None:
    """Every participant is seen at one visit only, so no covariance between visits is identified: unstructured
    is refused up front, compound symmetry and AR(1) because REML has no proper optimum."""
    rng = np.random.default_rng(3)
    pid = np.arange(40)
    visit = np.where(pid % 2 == 0, "A", "B").tolist()
    value, baseline = rng.normal(size=40), rng.normal(size=40)
    with pytest.raises(ValueError, match=r"not estimable|did not converge"):
        mmrm(pid, visit, value, (pid // 2) % 2, baseline, ["A", "B"], "B", covariance=covariance)
