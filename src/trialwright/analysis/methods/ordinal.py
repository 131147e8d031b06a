"""Ordinal outcomes: the proportional odds model for two groups, and baseline-by-follow-up shift tables.

* ``proportional_odds`` -- the cumulative logit model logit P(Y <= j) = theta_j - beta * treated - gamma'z
  (McCullagh, JRSS B 1980;42:109; Agresti, Categorical Data Analysis, 3rd ed., ch. 8), fitted by maximum
  likelihood with statsmodels ``OrderedModel`` (logit link) with the arm and dummy-coded categorical covariates.
  The common odds ratio exp(beta) compares treatment with reference: OR > 1 means that at every cut-point j the
  odds of a category above j rather than at or below it are higher under treatment, i.e. higher categories are
  more likely under treatment. Wald interval and p. The proportional odds assumption for the arm is tested by a
  likelihood-ratio test against the partial proportional odds model of Peterson & Harrell (Appl Stat
  1990;39:205) in which the arm has its own effect at every cut-point (equivalently, each arm has its own
  ordered thresholds; R ``ordinal::clm(..., nominal = ~ arm)``); the two models are nested and the statistic is
  chi-square on K - 2 df. (The comparison with separate binary logits is not nested and is not used.) Codes
  outside ``order`` are refused; a category in ``order`` that nobody has is listed in ``empty_categories`` and
  carries no threshold (the fit is the same as the limit in which its threshold coincides with its
  neighbour's) -- it is never merged silently. A covariate level whose rows all lie in the lowest observed
  category, or all in the highest, is separated on its own and left out of the fit (``levels_left_out``), as
  in ``binary.odds_ratio``: its coefficient has no finite value, and the common OR is the limit the full
  likelihood tends to.
* ``shift_table`` -- counts of baseline category by follow-up category in each arm, with a separate
  "missing" row and column.

Checks (tests/spec/analysis/methods/test_ordinal.py): a direct likelihood maximisation, statsmodels Logit for
two categories, closed-form saturated likelihoods, pandas.crosstab, and the wine example published with the R
package ordinal (Christensen, clm tutorial, 2018: Randall's wine bitterness data).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats
from statsmodels.miscmodels.ordinal_model import OrderedModel

from trialwright.analysis import sentences as say
from trialwright.analysis.methods.base import (
    FloatArray,
    Result,
    Values,
    check_level,
    dummies,
    fmt,
    fmt_p,
    fmt_pct,
    group_indicator,
    in_levels,
    is_missing,
    levels_at_an_end,
)

__all__ = ["PO_TEST", "ProportionalOdds", "ShiftTable", "proportional_odds", "shift_table"]

PO_TEST = "likelihood-ratio test against partial proportional odds for the arm (Peterson & Harrell 1990)"
DIRECTION = say.PO_DIRECTION


@dataclass(frozen=True, slots=True)
class ProportionalOdds(Result):
    """Common odds ratio (treatment vs reference) of a higher category, with Wald CI and p, and the test of the
    proportional odds assumption for the arm (``po_*``; None with ``po_note`` when it cannot be computed).

    ``thresholds`` are the fitted cut-points theta_j between consecutive observed categories (reference arm,
    covariates at their reference levels, logit scale). Counts are per category of ``categories`` (= order).
    """

    odds_ratio: float
    ci_lower: float
    ci_upper: float
    log_odds_ratio: float
    se: float
    z: float
    p_value: float
    level: float
    direction: str
    categories: tuple[str, ...]
    counts_treatment: tuple[int, ...]
    counts_reference: tuple[int, ...]
    empty_categories: tuple[str, ...]
    thresholds: tuple[float, ...]
    log_likelihood: float
    po_test: str
    po_statistic: float | None
    po_df: int | None
    po_p_value: float | None
    po_note: str | None
    n_treatment: int
    n_reference: int
    n_dropped: int
    covariates: tuple[str, ...]
    covariates_dropped: tuple[str, ...]
    #: covariate levels ("covariate=level") whose rows all lie in the lowest or all in the highest category,
    #: left out of the fit (the counts still cover them)
    levels_left_out: tuple[str, ...] = ()

    def summary(self) -> str:
        po = f"PO test {fmt_p(self.po_p_value)}" if self.po_p_value is not None else f"PO test: {self.po_note}"
        empty = f"; no observations in {', '.join(self.empty_categories)}" if self.empty_categories else ""
        left = f"; left out: {', '.join(self.levels_left_out)}" if self.levels_left_out else ""
        return (
            f"Proportional odds: common OR {fmt(self.odds_ratio)} ({fmt_pct(self.level)} CI {fmt(self.ci_lower)} to "
            f"{fmt(self.ci_upper)}), {fmt_p(self.p_value)} ({DIRECTION}); {po}; n={self.n_treatment} treatment, "
            f"{self.n_reference} reference, {self.n_dropped} dropped{empty}{left}"
        )


@dataclass(frozen=True, slots=True)
class ShiftTable(Result):
    """Counts of baseline (rows) by follow-up (columns) category per arm; ``labels`` = categories + "missing",
    so the last row holds participants without a baseline category and the last column those without a
    follow-up category."""

    categories: tuple[str, ...]
    labels: tuple[str, ...]
    treatment: tuple[tuple[int, ...], ...]
    reference: tuple[tuple[int, ...], ...]
    n_treatment: int
    n_reference: int
    n_group_missing: int

    def summary(self) -> str:
        def missing(table: tuple[tuple[int, ...], ...]) -> str:
            return f"{sum(table[-1])} without baseline, {sum(row[-1] for row in table)} without follow-up"

        return (
            f"Shift table over {len(self.categories)} categories: treatment n={self.n_treatment} "
            f"({missing(self.treatment)}), reference n={self.n_reference} ({missing(self.reference)}); "
            f"{self.n_group_missing} without group"
        )


def _codes(values: Values, name: str, order: tuple[str, ...]) -> list[int | None]:
    """Category positions in ``order`` (None for missing); a code outside ``order`` is refused."""
    position = {c: k for k, c in enumerate(order)}
    out = [None if is_missing(v) else position.get(str(v), -1) for v in values]
    bad = sorted({str(v) for v, k in zip(values, out, strict=True) if k == -1})
    if bad:
        raise ValueError(f"{name} holds codes not in order {order}: {bad[:10]}")
    return out


def _order(order: Sequence[str]) -> tuple[str, ...]:
    ordered = tuple(str(c) for c in order)
    if len(ordered) < 2 or len(set(ordered)) != len(ordered):
        raise ValueError(f"order must list at least two distinct categories, got {ordered}")
    return ordered


def _fit_ordered(y: np.ndarray, exog: FloatArray) -> tuple[FloatArray, FloatArray, float, FloatArray]:
    """OrderedModel (logit) ML fit: parameters (exog effects, then threshold parameters), their SEs, the
    log-likelihood and the cut-points."""
    model = OrderedModel(y, exog, distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence and overflow chatter; judged below
        fit = model.fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-10)
        if not fit.mle_retvals.get("converged", False):
            fit = model.fit(start_params=fit.params, method="newton", disp=False, maxiter=200)
    bse = np.asarray(fit.bse, dtype=float)
    if not fit.mle_retvals.get("converged", False) or not np.all(np.isfinite(bse)):
        raise ValueError("the proportional odds fit did not converge (separation or too few observations)")
    params = np.asarray(fit.params, dtype=float)
    thresholds = model.transform_threshold_params(params)[1:-1]
    return params, bse, float(fit.llf), np.asarray(thresholds, dtype=float)


def _ppo_loglik(
    y: np.ndarray, g: FloatArray, z: FloatArray, k: int, start: FloatArray
) -> tuple[float | None, str | None]:
    """Maximum log-likelihood of the partial proportional odds model: each arm its own increasing thresholds
    (first cut-point, then log increments), common covariate effects."""
    q = z.shape[1]

    def cuts(par: FloatArray) -> FloatArray:
        return np.concatenate([[-np.inf], np.cumsum(np.concatenate([par[:1], np.exp(par[1:])])), [np.inf]])

    def negloglik(par: FloatArray) -> float:
        eta = z @ par[2 * (k - 1) :] if q else np.zeros(y.size)
        total = 0.0
        for arm, lo in ((0.0, 0), (1.0, k - 1)):
            c, rows = cuts(par[lo : lo + k - 1]), g == arm
            upper = special.expit(c[y[rows] + 1] - eta[rows])
            lower = special.expit(c[y[rows]] - eta[rows])
            total += float(np.sum(np.log(np.maximum(upper - lower, 1e-300))))
        return -total

    with np.errstate(all="ignore"):
        found = optimize.minimize(negloglik, start, method="BFGS", options={"gtol": 1e-8, "maxiter": 5000})
    if not found.success and np.max(np.abs(found.jac)) > 1e-4:
        return None, say.PPO_FAILED
    return -float(found.fun), None


def proportional_odds(
    outcome_codes: Values,
    group: Values,
    order: Sequence[str],
    covariates: Mapping[str, Values] | None = None,
    level: float = 0.95,
) -> ProportionalOdds:
    """Cumulative logit (proportional odds) model of the outcome category on the arm (1 = treatment,
    0 = reference) plus categorical covariates (dummy coded, first sorted level as reference). Codes are
    compared as text with ``order`` (lowest category first). Rows with a missing outcome, group or covariate
    are dropped and counted.

    A covariate level whose rows all lie in the lowest category observed, or all in the highest, has no finite
    coefficient: as it goes to minus (plus) infinity, P(Y <= lowest) (P(Y = highest)) of each of its rows goes
    to 1 while no other row's linear predictor moves, so the likelihood has no maximum; its supremum over the
    other parameters is the likelihood of the other rows (a category only that level had then carries no
    threshold, as an empty one). The common OR, SE, interval, p and the proportional odds test are those of
    the fit without that level's rows; the level is listed in ``levels_left_out`` (found again among the rows
    left until none is) and the category counts still cover every complete row."""
    level = check_level(level)
    order = _order(order)
    covariates = dict(covariates or {})
    codes, g_all = _codes(outcome_codes, "outcome_codes", order), group_indicator(group)
    if len({len(codes), len(g_all), *(len(v) for v in covariates.values())}) != 1:
        raise ValueError("outcome_codes, group and every covariate must have the same length")
    keep = np.array([c is not None for c in codes], dtype=bool) & ~np.isnan(g_all)
    for values in covariates.values():
        keep &= np.array([not is_missing(v) for v in values], dtype=bool)
    cat = np.array([c for c, k in zip(codes, keep, strict=True) if k], dtype=int)
    g = g_all[keep]
    if not (g == 1).any() or not (g == 0).any():
        raise ValueError("proportional_odds needs at least one complete row in each group")
    counts_t = tuple(int(np.sum((cat == j) & (g == 1))) for j in range(len(order)))
    counts_r = tuple(int(np.sum((cat == j) & (g == 0))) for j in range(len(order)))
    empty = tuple(order[j] for j in range(len(order)) if counts_t[j] + counts_r[j] == 0)
    if len(order) - len(empty) < 2:
        raise ValueError("the outcome takes a single category among complete rows, so there is no odds ratio")
    separated = levels_at_an_end(np.array([-1 if c is None else c for c in codes]), covariates, keep)
    fit_rows = keep & ~in_levels(covariates, separated) if separated else keep  # see the docstring
    cat = np.array([c for c, k in zip(codes, fit_rows, strict=True) if k], dtype=int)
    g = g_all[fit_rows]
    if not (g == 1).any() or not (g == 0).any():
        raise ValueError("the groups do not overlap in category (separation): the odds ratio is not finite")
    fit_t = [int(np.sum((cat == j) & (g == 1))) for j in range(len(order))]
    fit_r = [int(np.sum((cat == j) & (g == 0))) for j in range(len(order))]
    present = [j for j in range(len(order)) if fit_t[j] + fit_r[j] > 0]
    y = np.searchsorted(present, cat)  # positions among observed categories
    k = len(present)
    if y[g == 1].max() <= y[g == 0].min() or y[g == 0].max() <= y[g == 1].min():
        raise ValueError("the groups do not overlap in category (separation): the odds ratio is not finite")

    used: list[str] = []
    not_used: list[str] = []
    columns = [g]
    for name, values in covariates.items():
        coded = dummies(values, fit_rows)
        if coded is None:
            not_used.append(name)
        else:
            columns.extend(coded.T)
            used.append(name)
    exog = np.column_stack(columns)
    if np.linalg.matrix_rank(np.column_stack([np.ones(g.size), exog])) < exog.shape[1] + 1:
        raise ValueError("the design is rank deficient (a covariate confounded with the arm or another covariate)")
    params, bse, llf, thresholds = _fit_ordered(y, exog)
    beta, se = float(params[0]), float(bse[0])
    half = float(stats.norm.isf((1 - level) / 2)) * se

    po_stat: float | None = None
    po_df: int | None = None
    po_p: float | None = None
    note: str | None = None
    if k < 3:
        note = say.PPO_FEW
    else:
        missing_in_arm = [order[j] for j in present if fit_t[j] == 0 or fit_r[j] == 0]
        if missing_in_arm:
            note = say.PPO_BOUNDARY % {"category": missing_in_arm[0]}
        else:
            steps = np.log(np.diff(thresholds))
            start = np.concatenate([[thresholds[0]], steps, [thresholds[0] - beta], steps, params[1 : exog.shape[1]]])
            ll_ppo, note = _ppo_loglik(y, g, exog[:, 1:], k, start)
            if ll_ppo is not None and ll_ppo < llf - 1e-6:  # the larger model cannot fit worse: optimiser failed
                ll_ppo, note = None, say.PPO_FAILED
            if ll_ppo is not None:
                po_stat, po_df = max(0.0, 2 * (ll_ppo - llf)), k - 2
                po_p = float(stats.chi2.sf(po_stat, po_df))
    return ProportionalOdds(
        odds_ratio=math.exp(beta),
        ci_lower=math.exp(beta - half),
        ci_upper=math.exp(beta + half),
        log_odds_ratio=beta,
        se=se,
        z=beta / se,
        p_value=float(2 * stats.norm.sf(abs(beta / se))),
        level=level,
        direction=DIRECTION,
        categories=order,
        counts_treatment=counts_t,
        counts_reference=counts_r,
        empty_categories=empty,
        thresholds=tuple(float(x) for x in thresholds),
        log_likelihood=llf,
        po_test=PO_TEST,
        po_statistic=po_stat,
        po_df=po_df,
        po_p_value=po_p,
        po_note=note,
        n_treatment=int(np.sum(g_all[keep] == 1)),
        n_reference=int(np.sum(g_all[keep] == 0)),
        n_dropped=int(keep.size - keep.sum()),
        covariates=tuple(used),
        covariates_dropped=tuple(not_used),
        levels_left_out=tuple(f"{name}={value}" for name, value in separated),
    )


def shift_table(baseline_codes: Values, followup_codes: Values, group: Values, order: Sequence[str]) -> ShiftTable:
    """Baseline x follow-up category counts per arm (1 = treatment, 0 = reference), missing codes counted in a
    separate row/column; rows with a missing group are left out and counted."""
    order = _order(order)
    base, follow = _codes(baseline_codes, "baseline_codes", order), _codes(followup_codes, "followup_codes", order)
    g = group_indicator(group)
    if len({len(base), len(follow), len(g)}) != 1:
        raise ValueError("baseline_codes, followup_codes and group must have the same length")
    size = len(order) + 1
    tables = {arm: np.zeros((size, size), dtype=int) for arm in (0.0, 1.0)}
    for b, f, arm in zip(base, follow, g, strict=True):
        if not math.isnan(arm):
            tables[float(arm)][len(order) if b is None else b, len(order) if f is None else f] += 1
    return ShiftTable(
        categories=order,
        labels=(*order, "missing"),
        treatment=tuple(tuple(int(x) for x in row) for row in tables[1.0]),
        reference=tuple(tuple(int(x) for x in row) for row in tables[0.0]),
        n_treatment=int(tables[1.0].sum()),
        n_reference=int(tables[0.0].sum()),
        n_group_missing=int(np.isnan(g).sum()),
    )
