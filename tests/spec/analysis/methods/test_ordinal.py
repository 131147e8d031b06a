"""Checks of trialwright.analysis.methods.ordinal against independent computations and a published example:

* the wine bitterness example published with the R package ordinal (R. H. B. Christensen, "A Tutorial on fitting
  Cumulative Link Models with the ordinal Package", 2018, Table 1 and sections 2-3; data from Randall,
  Biometrical Journal 1989): clm(rating ~ temp + contact) and the nominal-effects (partial proportional odds)
  likelihood-ratio test for contact;
* a direct maximum-likelihood fit of the cumulative logit model written here with scipy.optimize (1e-5);
* with two categories the model is logistic regression (statsmodels Logit), to 1e-6;
* without covariates the partial proportional odds model is saturated per arm, so its log-likelihood is
  sum n_gj log(n_gj / n_g) in closed form;
* shift-table counts against pandas.crosstab.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special
from statsmodels.discrete.discrete_model import Logit
from statsmodels.miscmodels.ordinal_model import OrderedModel

from trialwright.analysis.methods.ordinal import DIRECTION, PO_TEST, proportional_odds, shift_table

# Christensen's Table 1: temperature, contact, bottle, then the rating (1 = least, 5 = most bitter) by judges 1-9.
WINE = """\
cold no 1 2 1 2 3 2 3 1 2 1
cold no 2 3 2 3 2 3 2 1 2 2
cold yes 3 3 1 3 3 4 3 2 2 3
cold yes 4 4 3 2 2 3 2 2 3 2
warm no 5 4 2 5 3 3 2 2 3 3
warm no 6 4 3 5 2 3 4 3 3 2
warm yes 7 5 5 4 5 3 5 2 3 4
warm yes 8 5 4 4 3 3 4 3 4 4
"""
RATINGS = ["1", "2", "3", "4", "5"]


def _wine() -> tuple[list[str], list[int], list[str]]:
    rating, contact, temp = [], [], []
    for line in WINE.splitlines():
        t, c, _, *judges = line.split()
        for r in judges:
            rating.append(r)
            contact.append(int(c == "yes"))
            temp.append(t)
    return rating, contact, temp


def _json_roundtrip(result: Any) -> dict[str, Any]:
    as_dict: dict[str, Any] = result.as_dict()
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
    assert isinstance(result.summary(), str) and "\n" not in result.summary()
    return as_dict


def _simulated(seed: int, n: int = 300, k: int = 4, shift: float = 0.8) -> tuple[list[str], np.ndarray, list[str]]:
    """Latent logistic outcome cut at k - 1 points: treatment shifts it up by ``shift``, stratum b by 0.5."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    stratum = rng.choice(["a", "b", "c"], n)
    latent = shift * group + 0.5 * (stratum == "b") - 0.3 * (stratum == "c") + rng.logistic(size=n)
    cuts = np.linspace(-1.5, 1.5, k - 1)
    codes = [f"c{int(np.searchsorted(cuts, x))}" for x in latent]
    return codes, group, stratum.tolist()


# --- published example -------------------------------------------------------------------------------------------


def test_wine_example_from_the_r_package_ordinal() -> None:
    """clm(rating ~ temp + contact): contactyes 1.5278 (SE 0.4766, z 3.205, p 0.00135), Wald interval
    0.5936345 to 2.461961, thresholds -1.3444, 1.2508, 3.4669, 5.0064, logLik -86.49; with nominal = ~contact
    logLik -86.209 and the likelihood-ratio test of proportional odds for contact LR 0.5667 on 3 df, p 0.904."""
    rating, contact, temp = _wine()
    r = proportional_odds(rating, contact, RATINGS, covariates={"temp": temp})
    assert r.log_odds_ratio == pytest.approx(1.5278, abs=5e-5)
    assert r.se == pytest.approx(0.4766, abs=5e-5)
    assert r.z == pytest.approx(3.205, abs=5e-4)
    assert r.p_value == pytest.approx(0.00135, abs=5e-6)
    assert math.log(r.ci_lower) == pytest.approx(0.5936345, abs=5e-7)
    assert math.log(r.ci_upper) == pytest.approx(2.461961, abs=5e-7)
    assert r.odds_ratio == pytest.approx(math.exp(r.log_odds_ratio))
    assert r.thresholds == pytest.approx((-1.3444, 1.2508, 3.4669, 5.0064), abs=5e-5)
    assert r.log_likelihood == pytest.approx(-86.492, abs=5e-4)
    assert (r.po_df, r.po_test) == (3, PO_TEST)
    assert r.po_statistic == pytest.approx(0.5667, abs=5e-5)
    assert r.po_p_value == pytest.approx(0.904, abs=5e-4)
    assert r.po_statistic is not None
    assert r.log_likelihood + r.po_statistic / 2 == pytest.approx(-86.209, abs=5e-4)
    assert (r.n_treatment, r.n_reference, r.n_dropped, r.covariates) == (36, 36, 0, ("temp",))
    assert r.counts_treatment == (1, 8, 13, 9, 5) and r.counts_reference == (4, 14, 13, 3, 2)
    assert r.direction == DIRECTION and r.odds_ratio > 1  # contact makes the wine more bitter
    _json_roundtrip(r)


# --- independent computations ---------------------------------------------------------------------------------------


def _direct_fit(y: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, float, np.ndarray]:
    """ML of P(Y <= j) = expit(theta_j - x'b), written out: thresholds as first value plus exp(increments);
    returns (b, theta), the log-likelihood and SEs of (b, theta) from a central-difference Hessian."""
    p = x.shape[1]

    def unpack(par: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.cumsum(np.concatenate([par[p : p + 1], np.exp(par[p + 1 :])]))
        return par[:p], np.concatenate([[-np.inf], theta, [np.inf]])

    def loglik_natural(b: np.ndarray, theta: np.ndarray) -> float:
        c = np.concatenate([[-np.inf], theta, [np.inf]])
        eta = x @ b
        return float(np.sum(np.log(special.expit(c[y + 1] - eta) - special.expit(c[y] - eta))))

    def negloglik(par: np.ndarray) -> float:
        b, c = unpack(par)
        return -loglik_natural(b, c[1:-1])

    start = np.concatenate([np.zeros(p), [-1.0], np.zeros(k - 2)])
    found = optimize.minimize(negloglik, start, method="BFGS", options={"gtol": 1e-10})
    b, c = unpack(found.x)
    natural = np.concatenate([b, c[1:-1]])
    h, m = 1e-4, natural.size
    hess = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            total = 0.0
            for si, sj, sign in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                q = natural.copy()
                q[i] += si * h
                q[j] += sj * h
                total += sign * loglik_natural(q[:p], q[p:])
            hess[i, j] = total / (4 * h * h)
    return natural, -float(found.fun), np.sqrt(np.diag(np.linalg.inv(-hess)))


def test_ordered_model_fit_equals_a_direct_maximum_likelihood_fit() -> None:
    """Arm and a three-level stratum, four categories: log OR, thresholds and log-likelihood to 1e-5, SE to
    1e-4 relative (this test's own finite-difference Hessian)."""
    codes, group, stratum = _simulated(11)
    r = proportional_odds(codes, group, ["c0", "c1", "c2", "c3"], covariates={"stratum": stratum})
    y = np.array([int(c[1]) for c in codes])
    x = np.column_stack([group, np.array(stratum) == "b", np.array(stratum) == "c"]).astype(float)
    natural, loglik, se = _direct_fit(y, x, 4)
    assert r.log_odds_ratio == pytest.approx(natural[0], abs=1e-5)
    assert r.thresholds == pytest.approx(tuple(natural[3:]), abs=1e-5)
    assert r.log_likelihood == pytest.approx(loglik, abs=1e-5)
    assert r.se == pytest.approx(se[0], rel=1e-4)


def test_two_categories_is_logistic_regression() -> None:
    """With two categories logit P(Y > 0) = -theta + b x: the same b and SE as statsmodels Logit (1e-6); the
    proportional odds test needs three categories and says so."""
    codes, group, stratum = _simulated(5, k=2)
    r = proportional_odds(codes, group, ["c0", "c1"], covariates={"stratum": stratum})
    levels = np.array(stratum)
    design = np.column_stack([np.ones(len(codes)), group, levels == "b", levels == "c"]).astype(float)
    logit = Logit(np.array([c == "c1" for c in codes], dtype=float), design).fit(disp=False, tol=1e-12)
    assert r.log_odds_ratio == pytest.approx(logit.params[1], abs=1e-6)
    assert r.se == pytest.approx(logit.bse[1], abs=1e-6)
    assert r.p_value == pytest.approx(logit.pvalues[1], abs=1e-6)
    assert r.thresholds == pytest.approx((-logit.params[0],), abs=1e-6)
    assert (r.po_statistic, r.po_df, r.po_p_value) == (None, None, None)
    assert r.po_note is not None and "three" in r.po_note


def test_proportional_odds_test_without_covariates_uses_the_saturated_likelihood() -> None:
    """Without covariates the partial model gives each arm its own multinomial, so its maximum log-likelihood is
    sum n_gj log(n_gj / n_g): the LR statistic is checked against that closed form (Agresti's 1991 GSS
    ideology-by-party counts as data: Democrats as treatment)."""
    republican, democrat = [30, 46, 148, 84, 99], [80, 81, 171, 41, 55]
    codes = [str(j) for j, n in enumerate(republican) for _ in range(n)] + [
        str(j) for j, n in enumerate(democrat) for _ in range(n)
    ]
    group = [0] * sum(republican) + [1] * sum(democrat)
    r = proportional_odds(codes, group, ["0", "1", "2", "3", "4"])
    saturated = sum(n * math.log(n / sum(arm)) for arm in (republican, democrat) for n in arm)
    assert r.po_statistic == pytest.approx(2 * (saturated - r.log_likelihood), abs=1e-6)
    assert r.po_df == 3
    assert r.odds_ratio < 1  # Democrats less likely to be in the more conservative categories
    assert r.counts_treatment == tuple(democrat) and r.counts_reference == tuple(republican)


def test_a_non_proportional_effect_is_detected() -> None:
    """Treatment spreads the outcome (more of both extremes) rather than shifting it: the odds ratios at the
    low and high cut-points go in opposite directions and the test rejects."""
    rng = np.random.default_rng(2)
    n = 600
    group = rng.integers(0, 2, n)
    latent = rng.logistic(size=n) * np.where(group == 1, 2.5, 1.0)
    codes = [f"c{int(np.searchsorted([-2.0, 0.0, 2.0], x))}" for x in latent]
    r = proportional_odds(codes, group, ["c0", "c1", "c2", "c3"])
    assert r.po_p_value is not None and r.po_p_value < 1e-3


# --- categories, missing values and refusals ----------------------------------------------------------------------


def test_an_empty_category_is_reported_not_merged() -> None:
    """A category nobody has keeps its place (count 0) and is listed; the fit is that over the observed
    categories (the empty category's threshold would coincide with its neighbour's)."""
    codes, group, _ = _simulated(4)
    with_empty = proportional_odds(codes, group, ["c0", "c1", "cX", "c2", "c3"])
    without = proportional_odds(codes, group, ["c0", "c1", "c2", "c3"])
    assert with_empty.empty_categories == ("cX",)
    assert with_empty.counts_treatment[2] == 0 and with_empty.counts_reference[2] == 0
    assert with_empty.log_odds_ratio == pytest.approx(without.log_odds_ratio, abs=1e-9)
    assert len(with_empty.thresholds) == 3
    assert "no observations in cX" in with_empty.summary()


def test_missing_outcome_group_or_covariate_rows_are_dropped_and_counted() -> None:
    codes, group, stratum = _simulated(6, n=100)
    codes_m: list[Any] = list(codes)
    group_m: list[Any] = list(group)
    stratum_m: list[Any] = list(stratum)
    codes_m[0], group_m[1], stratum_m[2] = None, None, None
    codes_m[3] = float("nan")
    r = proportional_odds(codes_m, group_m, ["c0", "c1", "c2", "c3"], covariates={"stratum": stratum_m})
    assert r.n_dropped == 4 and r.n_treatment + r.n_reference == 96
    assert sum(r.counts_treatment) + sum(r.counts_reference) == 96


def test_a_category_missing_from_one_arm_leaves_the_test_uncomputed_with_a_note() -> None:
    codes = ["a", "b", "c", "a", "b", "b", "c", "c", "c", "b", "a", "b"]
    group = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    codes[10] = "b"  # no treated participant in category a
    r = proportional_odds(codes, group, ["a", "b", "c"])
    assert r.po_p_value is None and r.po_note is not None and "category a" in r.po_note


def _ordered_model(codes: list[str], group: np.ndarray, stratum: list[str], maxiter: int = 200) -> Any:
    """statsmodels' OrderedModel (logit) of the category on the arm and stratum dummies (a the reference):
    BFGS, then Newton from there."""
    levels = sorted(set(stratum))
    exog = pd.DataFrame({"group": group.astype(float)})
    for level in levels[1:]:
        exog[level] = (np.array(stratum) == level).astype(float)
    y = pd.Series(pd.Categorical(codes, categories=sorted(set(codes)), ordered=True))
    model = OrderedModel(y, exog, distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rough = model.fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-10)
        return model.fit(method="newton", start_params=rough.params, disp=False, maxiter=maxiter)


@pytest.mark.parametrize(("seed", "end"), [(21, "c0"), (22, "c0"), (23, "c3")])
def test_a_stratum_all_in_the_lowest_or_the_highest_category_is_left_out(seed: int, end: str) -> None:
    """Every participant of stratum c is in the lowest category (the last row: the highest): stratum c's coefficient
    has no finite value (the likelihood rises as it runs off to -/+ infinity, where its rows' probabilities reach 1)
    but the common OR does. At that limit its rows add nothing: the OR, SE, interval and p are statsmodels'
    OrderedModel of the other rows (to 1e-6), stratum c is listed, and the counts still cover every row.
    statsmodels' fit of all the rows runs stratum c's coefficient off and gives the same OR within 1e-3."""
    codes, group, stratum = _simulated(seed, n=240)
    codes = [end if s == "c" else c for c, s in zip(codes, stratum, strict=True)]
    r = proportional_odds(codes, group, ["c0", "c1", "c2", "c3"], covariates={"stratum": stratum})
    kept = [i for i, s in enumerate(stratum) if s != "c"]
    fit = _ordered_model([codes[i] for i in kept], group[kept], [stratum[i] for i in kept])
    whole = _ordered_model(codes, group, stratum, maxiter=50)
    assert fit.mle_retvals["converged"]
    assert r.log_odds_ratio == pytest.approx(fit.params["group"], rel=1e-6)
    assert r.se == pytest.approx(fit.bse["group"], rel=1e-6)
    assert r.p_value == pytest.approx(fit.pvalues["group"], rel=1e-6)
    lower, upper = np.exp(fit.conf_int().loc["group"])
    assert (r.ci_lower, r.ci_upper) == pytest.approx((lower, upper), rel=1e-6)
    assert r.odds_ratio == pytest.approx(math.exp(whole.params["group"]), rel=1e-3)
    assert whole.params["c"] * (1 if end == "c3" else -1) > 10  # running off to -/+ infinity
    assert r.levels_left_out == ("stratum=c",)
    assert sum(r.counts_treatment) + sum(r.counts_reference) == len(codes)
    assert r.counts_treatment[int(end[1])] == sum(1 for c, g in zip(codes, group, strict=True) if g and c == end)
    assert r.summary().endswith("; left out: stratum=c")
    _json_roundtrip(r)


def test_a_stratum_spread_over_categories_is_kept() -> None:
    """A stratum whose participants are all in one middle category is not separated (its coefficient cannot
    carry them all to probability 1 without moving the thresholds every other row shares), nor is one spread over
    two categories: nothing is left out."""
    codes, group, stratum = _simulated(24, n=240)
    middle = [("c1" if s == "c" else c) for c, s in zip(codes, stratum, strict=True)]
    assert proportional_odds(middle, group, ["c0", "c1", "c2", "c3"], {"stratum": stratum}).levels_left_out == ()
    two = [("c0" if c in ("c0", "c1") else "c1") if s == "c" else c for c, s in zip(codes, stratum, strict=True)]
    assert proportional_odds(two, group, ["c0", "c1", "c2", "c3"], {"stratum": stratum}).levels_left_out == ()


@pytest.mark.parametrize(
    ("codes", "group", "order", "message"),
    [
        (["1", "2", "9"], [0, 1, 1], ["1", "2", "3"], "codes not in order"),
        (["1", "2", "3"], [0, 1, 1], ["1", "1", "2"], "distinct"),
        (["1", "2", "3"], [0, 1], ["1", "2", "3"], "same length"),
        (["1", "1", "1", "1"], [0, 1, 0, 1], ["1", "2"], "single category"),
        (["1", "1", "2", "2"], [0, 0, 1, 1], ["1", "2"], "separation"),
        (["1", "2", "1", "2"], [1, 1, 1, 1], ["1", "2"], "each group"),
        (["1", "2", "1", "2"], [0, 1, 2, 1], ["1", "2"], "group must be 1"),
    ],
)
def test_bad_input_is_refused(codes: list[str], group: list[int], order: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        proportional_odds(codes, group, order)


# --- shift table -----------------------------------------------------------------------------------------------------


def test_shift_table_counts_equal_pandas_crosstab_with_missing_counted_separately() -> None:
    rng = np.random.default_rng(9)
    order = ["none", "mild", "moderate", "severe"]
    n = 150
    baseline = [None if rng.random() < 0.1 else order[i] for i in rng.integers(0, 4, n)]
    followup = [float("nan") if rng.random() < 0.15 else order[i] for i in rng.integers(0, 4, n)]
    group: list[Any] = list(rng.integers(0, 2, n))
    group[0] = None
    r = shift_table(baseline, followup, group, order)
    labels = [*order, "missing"]
    frame = pd.DataFrame({"b": baseline, "f": followup, "g": group}).fillna({"b": "missing", "f": "missing"})
    for arm, table in ((1, r.treatment), (0, r.reference)):
        part = frame[frame.g == arm]
        expected = pd.crosstab(part.b, part.f).reindex(index=labels, columns=labels, fill_value=0)
        assert np.array_equal(np.array(table), expected.to_numpy()), arm
    assert r.labels == tuple(labels) and r.n_group_missing == 1
    assert r.n_treatment + r.n_reference == n - 1
    _json_roundtrip(r)


def test_shift_table_refuses_codes_outside_order() -> None:
    with pytest.raises(ValueError, match="followup_codes holds codes not in order"):
        shift_table(["a", "b"], ["a", "z"], [0, 1], ["a", "b"])
