"""Binary and count outcomes for two groups (1 = treatment, 0 = reference), and the two-sample t test.

Ratios are treatment over reference, differences treatment minus reference. Where an effect is not estimable
from the data (a zero cell, separation) the estimate and interval are None and ``note`` says why, instead of
a continuity-corrected or diverging number: such data are legitimate, so this is a result, not an error. Bad
input (codes other than 0/1, negative or fractional counts, unequal lengths) raises ValueError naming the
argument. Missing values (None/NaN) in participant-level data are dropped and counted.

* ``risk_ratio`` -- p1/p0 with the Katz log interval, SE(log RR) = sqrt(1/k1 - 1/n1 + 1/k0 - 1/n0) (Katz,
  Baptista, Azen & Pike, Biometrics 1978;34:469), and the Wald p from the same z. With no events in a group
  log RR has no finite value or SE. No 0.5 is added to the cells (the answer would hinge on that arbitrary
  constant); the risk difference stays defined, and ``statistics.newcombe_difference`` gives it with
  Fisher's exact p, which is why no separate ``fisher_exact`` lives here.
* ``odds_ratio`` -- logistic regression (statsmodels ``Logit``) of the outcome on the arm plus dummy-coded
  categorical covariates; OR = exp(beta) with Wald interval and p. The ML estimate exists only when the
  outcome is not (quasi-)completely separated by the design (Albert & Anderson, Biometrika 1984;71:1),
  which is checked before fitting with Konis's linear program (Konis, DPhil thesis, Oxford 2007; R's
  safeBinaryRegression). A covariate level whose rows all have the same outcome is left out of the fit
  and listed (``separated_levels``): the OR is the limit the full likelihood tends to. Separation involving
  the arm, including no events or only events in an arm, gives a None OR.
* ``mantel_haenszel`` -- pooled effect over strata: OR with the Robins-Breslow-Greenland variance
  (Biometrics 1986;42:311), RR with the Greenland-Robins variance (Biometrics 1985;41:55), RD with Sato's
  variance (Biometrics 1989;45:1323; as SAS PROC FREQ and epiR), which stays valid with many sparse
  strata; and the Cochran-Mantel-Haenszel test (Mantel & Haenszel, JNCI 1959;22:719) without continuity
  correction. Strata that carry no information for the chosen measure are left out and listed by index.
* ``negative_binomial`` -- NB2 regression (Var = mu + alpha mu^2, alpha by maximum likelihood; Cameron &
  Trivedi, Regression Analysis of Count Data, ch. 3) of counts on arm and covariates with offset
  log(exposure); rate ratio exp(beta), Wald interval. The optimizers are tried in turn and a fit accepted only
  when it is the maximum (``methods.nb2_fit``); alpha at the boundary (essentially 0) is said. A fit none gives
  raises: Poisson is never substituted.
* ``t_test`` -- difference in means with Student's pooled or Welch's (Biometrika 1947;34:28) interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats
from statsmodels.discrete.discrete_model import Logit
from statsmodels.stats.contingency_tables import StratifiedTable

from trialwright.analysis.methods.base import (
    FloatArray,
    Result,
    Values,
    check_level,
    dummies,
    floats,
    fmt,
    fmt_p,
    fmt_pct,
    group_indicator,
    in_levels,
    is_missing,
    levels_at_an_end,
)
from trialwright.analysis.methods.nb2_fit import fit_nb2

__all__ = [
    "MantelHaenszel",
    "MeanDifference",
    "Measure",
    "OddsRatio",
    "RateRatio",
    "RiskRatio",
    "mantel_haenszel",
    "negative_binomial",
    "odds_ratio",
    "risk_ratio",
    "t_test",
]

Measure = Literal["risk_difference", "risk_ratio", "odds_ratio"]
MEASURES: tuple[Measure, ...] = ("risk_difference", "risk_ratio", "odds_ratio")
_UNESTIMATED = ("estimate", "log_estimate", "se", "ci_lower", "ci_upper", "p_value")


def _unset(*names: str) -> dict[str, Any]:
    return dict.fromkeys(names)


def _z(level: float) -> float:
    return float(stats.norm.isf((1 - level) / 2))


def _line(head: str, result: Any, p: float | None, tail: str) -> str:
    """'<head> (95% CI l to u), p=...; <tail> [<note>]', leaving out what is None."""
    if result.ci_lower is not None and result.ci_upper is not None:
        head += f" ({fmt_pct(result.level)} CI {fmt(result.ci_lower)} to {fmt(result.ci_upper)})"
    if p is not None:
        head += f", {fmt_p(p)}"
    note = getattr(result, "note", None)
    return f"{head}; {tail}" + (f" [{note}]" if note else "")


def _whole(value: Any, name: str) -> int:
    """A count: a whole number >= 0 (bools, missing values and fractions are refused)."""
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)
    if not number or not math.isfinite(value) or value < 0 or value != int(value):
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def _same_length(covariates: Mapping[str, Values] | None = None, **columns: Values | None) -> None:
    lengths = {name: len(v) for name, v in columns.items() if v is not None}
    lengths |= {f"covariate {k!r}": len(v) for k, v in (covariates or {}).items()}
    if len(set(lengths.values())) > 1:
        got = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise ValueError(f"{', '.join(lengths)} must have the same length; got {got}")


# --- risk ratio --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RiskRatio(Result):
    """p1 / p0 with the Katz interval exp(log RR -/+ z SE) and Wald p; None where undefined (see note)."""

    k1: int
    n1: int
    k0: int
    n0: int
    p1: float
    p0: float
    estimate: float | None
    se_log: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    level: float
    note: str | None

    def summary(self) -> str:
        tail = f"{self.k1}/{self.n1} vs {self.k0}/{self.n0}"
        return _line(f"Risk ratio {fmt(self.estimate)}", self, self.p_value, tail)


def risk_ratio(k1: int, n1: int, k0: int, n0: int, level: float = 0.95) -> RiskRatio:
    """Risk ratio of k1/n1 (treatment) over k0/n0 (reference), Katz log-scale interval and Wald p."""
    level = check_level(level)
    k1, n1, k0, n0 = _whole(k1, "k1"), _whole(n1, "n1"), _whole(k0, "k0"), _whole(n0, "n0")
    for k, n, k_name, n_name in ((k1, n1, "k1", "n1"), (k0, n0, "k0", "n0")):
        if n == 0 or k > n:
            raise ValueError(f"need {n_name} >= 1 and {k_name} <= {n_name}, got {k_name}={k}, {n_name}={n}")
    p1, p0 = k1 / n1, k0 / n0
    given: dict[str, Any] = {"k1": k1, "n1": n1, "k0": k0, "n0": n0, "p1": p1, "p0": p0, "level": level}
    none = _unset("ci_lower", "ci_upper", "p_value")
    if k1 == 0 or k0 == 0:
        arms = " and ".join(arm for arm, k in (("treatment", k1), ("reference", k0)) if k == 0)
        note = f"no events in the {arms} group: log RR is undefined and no continuity correction is added"
        return RiskRatio(**given, **none, estimate=None, se_log=None, note=note)
    se = math.sqrt(1 / k1 - 1 / n1 + 1 / k0 - 1 / n0)
    if se == 0:  # k1 == n1 and k0 == n0
        note = "every participant in both groups had the event: RR = 1 with zero SE, so no interval or p"
        return RiskRatio(**given, **none, estimate=1.0, se_log=0.0, note=note)
    log_rr, half = math.log(p1 / p0), _z(level) * se
    return RiskRatio(
        **given,
        estimate=p1 / p0,
        se_log=se,
        ci_lower=math.exp(log_rr - half),
        ci_upper=math.exp(log_rr + half),
        p_value=float(2 * stats.norm.sf(abs(log_rr) / se)),
        note=None,
    )


# --- regression ratios: logistic odds ratio and negative binomial rate ratio ---------------------------


@dataclass(frozen=True, slots=True)
class _ModelRatio(Result):
    """exp(beta) of the group indicator from a regression on group plus covariates, Wald CI and p. ``events``
    are participants with the event (logistic) or summed counts (negative binomial) over the rows used."""

    estimate: float | None
    log_estimate: float | None
    se: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    level: float
    n_treatment: int
    n_reference: int
    events_treatment: int
    events_reference: int
    n_dropped: int
    covariates: tuple[str, ...]
    covariates_dropped: tuple[str, ...]
    note: str | None

    def _line(self, name: str) -> str:
        tail = (
            f"{self.events_treatment} events in {self.n_treatment} vs {self.events_reference} in "
            f"{self.n_reference}, {self.n_dropped} rows dropped"
        )
        return _line(f"{name} {fmt(self.estimate)}", self, self.p_value, tail)


@dataclass(frozen=True, slots=True)
class OddsRatio(_ModelRatio):
    """Logistic-regression odds ratio; None (with note) when the outcome is separated by the arm."""

    #: the covariate levels whose rows all had the same outcome ("covariate=level"), left out of the fit
    separated_levels: tuple[str, ...] = ()

    def summary(self) -> str:
        line = self._line("Adjusted odds ratio" if self.covariates else "Odds ratio")
        return line + (f"; left out: {', '.join(self.separated_levels)}" if self.separated_levels else "")


@dataclass(frozen=True, slots=True)
class RateRatio(_ModelRatio):
    """NB2 rate ratio; ``alpha`` is the dispersion (Var = mu + alpha mu^2). Exposure totals are None when no
    exposure was given (every row then counts as exposure 1)."""

    alpha: float | None
    exposure_treatment: float | None
    exposure_reference: float | None
    #: the covariate levels whose rows all count 0 ("covariate=level"), left out of the fit
    without_events: tuple[str, ...] = ()
    #: the optimizers that gave the fit, in the order run (statsmodels' names joined by "+", e.g. "bfgs+newton")
    optimizer: str | None = None
    #: alpha is at the boundary (essentially 0: no overdispersion); the interval holds alpha there
    alpha_at_boundary: bool = False

    def summary(self) -> str:
        alpha = f"alpha={fmt(self.alpha)}" + (", at the boundary" if self.alpha_at_boundary else "")
        by = f"; by {self.optimizer}" if self.optimizer else ""
        return self._line(f"Negative binomial ({alpha}) rate ratio") + by


def _prepare(
    y: FloatArray, g: FloatArray, covariates: dict[str, Values], extra: FloatArray | None, what: str
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray | None, dict[str, Any]]:
    """Drop rows with any missing value; the design [1, group, dummies...] (one-level covariates left out)
    plus the kept y, group and extra column, and the count fields of the result."""
    keep = ~(np.isnan(y) | np.isnan(g))
    if extra is not None:
        keep &= ~np.isnan(extra)
    for values in covariates.values():
        keep &= np.array([not is_missing(v) for v in values], dtype=bool)
    columns = [np.ones(int(keep.sum())), g[keep]]
    used: list[str] = []
    dropped: list[str] = []
    for name, values in covariates.items():
        coded = dummies(values, keep)
        (dropped if coded is None else used).append(name)
        columns.extend([] if coded is None else list(coded.T))
    y_kept, g_kept = y[keep], g[keep]
    n1, n0 = int(np.sum(g_kept == 1)), int(np.sum(g_kept == 0))
    if n1 == 0 or n0 == 0:
        raise ValueError(f"{what} needs at least one complete row in each group")
    fields: dict[str, Any] = {
        "n_treatment": n1,
        "n_reference": n0,
        "events_treatment": int(y_kept[g_kept == 1].sum()),
        "events_reference": int(y_kept[g_kept == 0].sum()),
        "n_dropped": int(keep.size - keep.sum()),
        "covariates": tuple(used),
        "covariates_dropped": tuple(dropped),
    }
    return np.column_stack(columns), y_kept, g_kept, None if extra is None else extra[keep], fields


def _wald_ratio(beta: float, se: float, level: float) -> dict[str, Any]:
    """exp(beta) with the Wald interval exp(beta -/+ z se) and two-sided p from z = beta / se."""
    half = _z(level) * se
    return {
        "estimate": math.exp(beta),
        "log_estimate": beta,
        "se": se,
        "ci_lower": math.exp(beta - half),
        "ci_upper": math.exp(beta + half),
        "p_value": float(2 * stats.norm.sf(abs(beta) / se)),
        "note": None,
    }


def _check_rank(design: FloatArray) -> None:
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise ValueError(
            "covariates: the design is rank deficient (a covariate confounded with group or with another "
            "covariate, or fewer complete rows than model terms)"
        )


def _separated(design: FloatArray, y: FloatArray) -> bool:
    """Konis's LP. With s = 2y - 1 and a full-rank design, the logistic MLE exists iff no b != 0 has
    s_i x_i'b >= 0 for every row; the maximum of sum_i s_i x_i'b over that cone within |b_j| <= 1 is 0
    exactly when none does. Own code: statsmodels only warns once fitted probabilities reach 0 or 1, which
    misses quasi-complete separation."""
    signed = design * (2 * y - 1)[:, None]
    bounds = [(-1.0, 1.0)] * design.shape[1]
    lp = optimize.linprog(-signed.sum(axis=0), A_ub=-signed, b_ub=np.zeros(y.size), bounds=bounds, method="highs")
    if lp.status != 0:
        raise ValueError(f"the separation check (a linear program) failed: {lp.message}")
    return bool(-lp.fun > 1e-7 * max(1.0, float(np.abs(signed).sum())))


def odds_ratio(
    outcome: Values, group: Values, covariates: Mapping[str, Values] | None = None, level: float = 0.95
) -> OddsRatio:
    """Logistic regression of outcome (1 = event, 0 = none) on group and categorical covariates (first sorted
    level as reference; one-level covariates left out and listed). Rows with a missing value are dropped.

    A covariate level whose rows all have the same outcome (all 0 or all 1; e.g. a stratum without events) is
    separated on its own: its indicator is a column of the design (or a sum of them), and moving its coefficient
    to minus (plus) infinity sends every one of its rows' probabilities to the outcome they had, so their
    likelihood factors rise to 1 while no other row's linear predictor changes. The full likelihood therefore has
    no maximum, but its supremum over the other coefficients is the likelihood of the other rows: the OR, SE,
    interval and p it tends to are those of the fit without that level's rows. Such levels are left out of the
    fit (repeatedly, as leaving one out can leave another level with one outcome) and listed in
    ``separated_levels``; the counts of the result still cover every complete row. What remains separated then
    involves the arm (Konis's check on the rows kept), and no OR is reported."""
    level = check_level(level)
    y, g, covs = floats(outcome, "outcome"), group_indicator(group), dict(covariates or {})
    _same_length(covs, outcome=y, group=g)
    bad = ~np.isnan(y) & (y != 0) & (y != 1)
    if bad.any():
        raise ValueError(f"outcome must be 1 (event), 0 (no event) or missing; found {sorted(set(y[bad]))}")
    all_y, all_g = y, g
    design, y, g, _, fields = _prepare(y, g, covs, None, "odds_ratio")
    fields["level"] = level
    for arm in ("treatment", "reference"):
        events, n = fields[f"events_{arm}"], fields[f"n_{arm}"]
        if events in (0, n):
            which = "no" if events == 0 else "every"
            note = f"{which} {arm} participant had the event, so the OR is 0 or infinite: not estimable"
            return OddsRatio(**fields, **_unset(*_UNESTIMATED), note=note)
    separated = levels_at_an_end(all_y, covs, _complete(all_y, all_g, None, covs))
    left_out = tuple(f"{name}={value}" for name, value in separated)
    if separated:
        kept = ~in_levels(covs, separated)
        if not ((all_g[kept] == 1).any() and (all_g[kept] == 0).any()):
            note = "the outcome is separated by group and covariates: no maximum-likelihood OR exists"
            return OddsRatio(**fields, **_unset(*_UNESTIMATED), note=note, separated_levels=left_out)
        rest: dict[str, Values] = {n: [v for v, k in zip(vs, kept, strict=True) if k] for n, vs in covs.items()}
        design, y, _, _, fitted = _prepare(all_y[kept], all_g[kept], rest, None, "odds_ratio")
        fields |= {k: fitted[k] for k in ("covariates", "covariates_dropped")}  # those of the fit
    _check_rank(design)
    if _separated(design, y):
        note = "the outcome is separated by group and covariates: no maximum-likelihood OR exists"
        return OddsRatio(**fields, **_unset(*_UNESTIMATED), note=note, separated_levels=left_out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is checked explicitly below
        fit = Logit(y, design).fit(method="newton", maxiter=100, disp=0)
    beta, se = float(fit.params[1]), float(fit.bse[1])
    if not fit.mle_retvals.get("converged", False) or not (math.isfinite(beta) and math.isfinite(se)):
        raise ValueError("the logistic regression did not converge; no odds ratio is reported")
    return OddsRatio(**fields, **_wald_ratio(beta, se, level), separated_levels=left_out)


def negative_binomial(
    counts: Values,
    group: Values,
    exposure: Values | None = None,
    covariates: Mapping[str, Values] | None = None,
    level: float = 0.95,
) -> RateRatio:
    """NB2 regression of counts on group and categorical covariates with offset log(exposure); rows with a
    missing value are dropped. Raises ValueError when no optimizer gives the maximum (no Poisson fallback).

    A covariate level in which every count is 0 (e.g. a stratum of one participant without events) has no finite
    coefficient: the likelihood rises as it goes to minus infinity, where that level's rows add nothing, so no
    fit converges. Its rows are left out of the fit and the level listed in ``without_events``: the rate ratio,
    interval and alpha are those the full likelihood tends to (the fit of the other rows), and the counts of the
    result still cover every complete row."""
    level = check_level(level)
    y, g, covs = floats(counts, "counts"), group_indicator(group), dict(covariates or {})
    t = None if exposure is None else floats(exposure, "exposure")
    _same_length(covs, counts=y, group=g, exposure=t)
    present = y[~np.isnan(y)]
    if ((present < 0) | (present != np.round(present)) | ~np.isfinite(present)).any():
        raise ValueError("counts must be whole numbers >= 0 (None or NaN for missing)")
    if t is not None and not all(np.isfinite(v) and v > 0 for v in t[~np.isnan(t)]):
        raise ValueError("exposure must be finite and > 0 (None or NaN for missing)")
    design, y, g, t, fields = _prepare(y, g, covs, t, "negative_binomial")
    fields |= {
        "level": level,
        "exposure_treatment": None if t is None else float(t[g == 1].sum()),
        "exposure_reference": None if t is None else float(t[g == 0].sum()),
    }
    if fields["events_treatment"] == 0 or fields["events_reference"] == 0:
        arm = "treatment" if fields["events_treatment"] == 0 else "reference"
        note = f"no events in the {arm} group, so the rate ratio is 0 or infinite: not estimable"
        return RateRatio(**fields, **_unset(*_UNESTIMATED), alpha=None, note=note)
    without_events = levels_at_an_end(floats(counts, "counts"), covs, _complete(counts, group, exposure, covs), floor=0)
    if without_events:
        kept = ~in_levels(covs, without_events)
        design, y, _, t, _ = _prepare(
            floats(counts, "counts")[kept], group_indicator(group)[kept],
            {name: [v for v, k in zip(values, kept, strict=True) if k] for name, values in covs.items()},
            None if exposure is None else floats(exposure, "exposure")[kept], "negative_binomial",
        )  # fmt: skip
    _check_rank(design)
    fit = fit_nb2(y, design, t)
    ratio = _wald_ratio(float(fit.params[1]), float(fit.se[1]), level)
    left_out = tuple(f"{name}={value}" for name, value in without_events)
    return RateRatio(**fields, **ratio, alpha=float(fit.params[-1]), without_events=left_out,
                     optimizer="+".join(fit.optimizer), alpha_at_boundary=fit.at_boundary)  # fmt: skip


def _complete(
    counts: Values, group: Values, exposure: Values | None, covariates: Mapping[str, Values]
) -> NDArray[np.bool_]:
    """The rows ``_prepare`` keeps: none of count, group, exposure or a covariate missing."""
    keep = ~(np.isnan(floats(counts, "counts")) | np.isnan(group_indicator(group)))
    if exposure is not None:
        keep &= ~np.isnan(floats(exposure, "exposure"))
    for values in covariates.values():
        keep &= np.array([not is_missing(v) for v in values], dtype=bool)
    return keep


# --- Mantel-Haenszel ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MantelHaenszel(Result):
    """Pooled MH estimate over strata with its CI (for the ratios ``se`` is SE(log estimate) and the CI is
    exp(log estimate -/+ z se)), and the CMH test of no association (chi-square, 1 df, uncorrected)."""

    measure: str
    estimate: float | None
    se: float | None
    ci_lower: float | None
    ci_upper: float | None
    level: float
    cmh_statistic: float | None
    cmh_p_value: float | None
    n_strata: int
    strata_used: tuple[int, ...]
    strata_dropped: tuple[int, ...]
    note: str | None

    def summary(self) -> str:
        head = f"Mantel-Haenszel {self.measure.replace('_', ' ')} {fmt(self.estimate)}"
        tail = f"{len(self.strata_used)} of {self.n_strata} strata used"
        if self.cmh_p_value is not None:
            tail += f", CMH test {fmt_p(self.cmh_p_value)}"
        return _line(head, self, None, tail)


def mantel_haenszel(
    events1: Values, n1: Values, events0: Values, n0: Values, measure: Measure, level: float = 0.95
) -> MantelHaenszel:
    """Mantel-Haenszel pooled risk difference, risk ratio or odds ratio from per-stratum counts (events and
    participants in treatment and reference). A stratum table has no missing cells: every count must be a
    whole number. A stratum is dropped when it adds nothing to the estimator: an empty arm (all measures), no
    events (the ratios) or only events (odds ratio). The CMH test uses the strata with both arms and both
    outcomes; the others add zero to its numerator and its variance."""
    level = check_level(level)
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {list(MEASURES)}, got {measure!r}")
    named = {"events1": events1, "n1": n1, "events0": events0, "n0": n0}
    a, m, c, k = (np.array([_whole(v, f"every {nm} value") for v in vs], dtype=float) for nm, vs in named.items())
    _same_length(events1=a, n1=m, events0=c, n0=k)
    if a.size == 0:
        raise ValueError("events1, n1, events0 and n0 need at least one stratum")
    for ev, n, ev_name, n_name in ((a, m, "events1", "n1"), (c, k, "events0", "n0")):
        if (ev > n).any():
            raise ValueError(f"{ev_name} exceeds {n_name} in stratum {int(np.argmax(ev > n))}")
    b, d = m - a, k - c
    both = (m > 0) & (k > 0)
    mixed = both & (a + c > 0) & (b + d > 0)
    use = {"risk_difference": both, "risk_ratio": both & (a + c > 0), "odds_ratio": mixed}[measure]
    fields: dict[str, Any] = {
        "measure": measure,
        "level": level,
        "n_strata": int(a.size),
        "strata_used": tuple(int(i) for i in np.flatnonzero(use)),
        "strata_dropped": tuple(int(i) for i in np.flatnonzero(~use)),
        "cmh_statistic": None,
        "cmh_p_value": None,
    }
    if mixed.any():
        test = StratifiedTable(np.array([[a, b], [c, d]])[:, :, mixed]).test_null_odds(correction=False)
        fields["cmh_statistic"] = float(test.statistic)
        fields["cmh_p_value"] = float(stats.chi2.sf(test.statistic, 1))  # statsmodels' 1 - cdf underflows to 0
    none = _unset("estimate", "se", "ci_lower", "ci_upper")
    if not use.any():
        return MantelHaenszel(**fields, **none, note=f"no stratum carries information for the {measure}")
    a, b, c, d, m, k = (x[use] for x in (a, b, c, d, m, k))
    total = m + k
    table = StratifiedTable(np.array([[a, b], [c, d]]))
    if measure == "risk_difference":  # statsmodels has no MH risk difference: Cochran weights, Sato variance
        w = float(np.sum(m * k / total))
        estimate = float(np.sum((a * k - c * m) / total)) / w
        p_sum = float(np.sum((m**2 * c - k**2 * a + m * k * (k - m) / 2) / total**2))
        q_sum = float(np.sum((a * (k - c) + c * (m - a)) / (2 * total)))
        se = math.sqrt(max((estimate * p_sum + q_sum) / w**2, 0.0))
    else:
        odds = measure == "odds_ratio"
        r = float(np.sum(a * d / total)) if odds else float(np.sum(a * k / total))
        s = float(np.sum(b * c / total)) if odds else float(np.sum(c * m / total))
        if r == 0 or s == 0:
            note = f"the pooled {measure.replace('_', ' ')} is 0 or infinite (the same zero cell in every used stratum)"
            return MantelHaenszel(**fields, **none, note=note)
        if odds:
            estimate, se = float(table.oddsratio_pooled), float(table.logodds_pooled_se)  # RBG variance
        else:  # statsmodels pools the RR but gives no SE: Greenland-Robins variance of log RR_MH
            estimate = float(table.riskratio_pooled)
            se = math.sqrt(float(np.sum((m * k * (a + c) - a * c * total) / total**2)) / (r * s))
    if not se > 0:
        note = "the variance estimate is not positive, so no interval"
        return MantelHaenszel(**fields, estimate=estimate, se=se, ci_lower=None, ci_upper=None, note=note)
    half = _z(level) * se
    if measure == "risk_difference":
        lower, upper = estimate - half, estimate + half
    else:
        lower, upper = estimate * math.exp(-half), estimate * math.exp(half)
    return MantelHaenszel(**fields, estimate=estimate, se=se, ci_lower=lower, ci_upper=upper, note=None)


# --- t test -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeanDifference(Result):
    """mean(treatment) - mean(reference) with t interval and two-sided p: pooled variance on n1 + n0 - 2 df
    (``equal_var``) or Welch's SE with Satterthwaite df (not a whole number)."""

    estimate: float
    se: float
    df: float
    t: float
    p_value: float
    ci_lower: float
    ci_upper: float
    level: float
    equal_var: bool
    mean_treatment: float
    mean_reference: float
    sd_treatment: float
    sd_reference: float
    n_treatment: int
    n_reference: int
    n_missing: int

    def summary(self) -> str:
        head = f"{'Student' if self.equal_var else 'Welch'} t: difference in means {fmt(self.estimate)}"
        tail = f"t={fmt(self.t)}, df={fmt(self.df)}; n={self.n_treatment} vs {self.n_reference}"
        tail += f", {self.n_missing} missing"
        return _line(head, self, self.p_value, tail)


def t_test(x_treatment: Values, x_reference: Values, equal_var: bool, level: float = 0.95) -> MeanDifference:
    """Two-sample t test and interval for the difference in means (scipy ``ttest_ind``); missing dropped."""
    level = check_level(level)
    if not isinstance(equal_var, bool):
        raise ValueError(f"equal_var must be True (Student) or False (Welch), got {equal_var!r}")
    x, y = floats(x_treatment, "x_treatment"), floats(x_reference, "x_reference")
    n_missing = int(np.isnan(x).sum() + np.isnan(y).sum())
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    for name, values in (("x_treatment", x), ("x_reference", y)):
        if values.size < 2:
            raise ValueError(f"{name} needs at least 2 present values, got {values.size}")
    n1, n0 = x.size, y.size
    v1, v0 = float(np.var(x, ddof=1)), float(np.var(y, ddof=1))
    pooled = ((n1 - 1) * v1 + (n0 - 1) * v0) / (n1 + n0 - 2)
    se = math.sqrt(pooled * (1 / n1 + 1 / n0)) if equal_var else math.sqrt(v1 / n1 + v0 / n0)
    if se == 0:
        raise ValueError("x_treatment and x_reference have no variation (all values equal within each group)")
    test = stats.ttest_ind(x, y, equal_var=equal_var)
    ci = test.confidence_interval(confidence_level=level)
    return MeanDifference(
        estimate=float(np.mean(x) - np.mean(y)),
        se=se,
        df=float(test.df),
        t=float(test.statistic),
        p_value=float(test.pvalue),
        ci_lower=float(ci.low),
        ci_upper=float(ci.high),
        level=level,
        equal_var=equal_var,
        mean_treatment=float(np.mean(x)),
        mean_reference=float(np.mean(y)),
        sd_treatment=math.sqrt(v1),
        sd_reference=math.sqrt(v0),
        n_treatment=int(n1),
        n_reference=int(n0),
        n_missing=n_missing,
    )
