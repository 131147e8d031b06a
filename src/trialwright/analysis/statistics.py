"""The trial's statistical methods, as pure functions that return typed, frozen results.

This module owns the numbers in the analysis: what is estimated, how its interval is made, and what is
reported beside it. It reads nothing and writes nothing; callers pass plain sequences or numpy arrays
(None or NaN marks a missing value) and get back a frozen dataclass with a one-line ``summary()`` and an
``as_dict()`` of JSON-ready values (None where a quantity is undefined).

The methods follow shared/reference/statistics.md:

* ``describe`` -- n, missing, mean (SD), median (IQR) and range per arm and timepoint.
* ``ancova`` -- follow-up on baseline plus arm (plus stratification factors), the primary model for a
  continuous outcome (Vickers & Altman, BMJ 2001;323:1123); on the log scale exp(tau) is the ratio of
  geometric means.
* ``hodges_lehmann`` -- the sensitivity analysis: Wilcoxon rank-sum p and the Hodges-Lehmann shift with
  its distribution-free interval from the ordered pairwise differences (Hollander & Wolfe, ch. 4).
* ``wilson`` and ``newcombe_difference`` -- a binary outcome (participants with at least one SAE): risk
  difference with Newcombe's hybrid score interval (Stat Med 1998;17:873, method 10) and Fisher's exact p.
* ``cumulative_incidence`` -- length of stay with death as a competing event (Aalen-Johansen).
* ``t_test_power``, ``sample_size``, ``browne_upper_sd``, ``plan_definitive`` and ``simulate_power`` -- sizing
  the definitive trial from the pilot by the t test's power, with Browne's (Stat Med 1995;14:1933) upper
  confidence limit of the SD.

Each function is checked in tests/spec/analysis against an independent computation (statsmodels, scipy,
brute-force test inversion) or a published worked example; tests/spec/analysis/reference holds the
script that made the stored reference values.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import linalg, stats

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
    is_missing,
    plain,
    probability,
)

__all__ = [
    "AncovaResult",
    "CumulativeIncidence",
    "Description",
    "PowerSimulation",
    "Proportion",
    "RiskDifference",
    "SampleSizePlan",
    "ShiftResult",
    "ancova",
    "browne_upper_sd",
    "cumulative_incidence",
    "describe",
    "hodges_lehmann",
    "newcombe_difference",
    "plan_definitive",
    "sample_size",
    "simulate_power",
    "t_test_power",
    "wilson",
]

EXACT_LIMIT = 50  # exact rank-sum distribution when both samples are smaller than this and untied (as R does)


# --- shared plumbing (trialwright.analysis.methods.base) ----------------------------------------------

_plain = plain
_Result = Result
_num = fmt
_p = fmt_p
_pct = fmt_pct
_is_missing = is_missing
_floats = floats
_check_level = check_level


# --- description -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Description(_Result):
    """n, missing count, mean (SD, ddof=1), median with quartiles (numpy's linear rule), range."""

    n: int
    missing: int
    mean: float | None
    sd: float | None
    median: float | None
    q1: float | None
    q3: float | None
    min: float | None
    max: float | None

    def summary(self) -> str:
        if self.n == 0:
            return f"n=0 (missing {self.missing})"
        return (
            f"n={self.n} (missing {self.missing}): mean {_num(self.mean)} (SD {_num(self.sd)}), "
            f"median {_num(self.median)} (IQR {_num(self.q1)} to {_num(self.q3)}), "
            f"range {_num(self.min)} to {_num(self.max)}"
        )


def describe(values: Values) -> Description:
    """Describe one arm at one timepoint; None or NaN counts as missing."""
    arr = _floats(values, "values")
    present = arr[~np.isnan(arr)]
    n, missing = int(present.size), int(arr.size - present.size)
    if n == 0:
        return Description(0, missing, None, None, None, None, None, None, None)
    q1, median, q3 = (float(q) for q in np.quantile(present, [0.25, 0.5, 0.75]))
    return Description(
        n=n,
        missing=missing,
        mean=float(np.mean(present)),
        sd=float(np.std(present, ddof=1)) if n > 1 else None,
        median=median,
        q1=q1,
        q3=q3,
        min=float(np.min(present)),
        max=float(np.max(present)),
    )


# --- ANCOVA ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AncovaResult(_Result):
    """Adjusted difference tau (treatment minus reference) from follow-up ~ baseline + arm (+ factors).

    With ``log=True`` tau, its SE and CI are on the natural-log scale and ``ratio`` = exp(tau) is the ratio
    of geometric means (treatment / reference) with CI exp(tau -/+ t * SE); otherwise the ratio fields are
    None. ``correlation`` is the pooled Pearson correlation of baseline and follow-up (on the analysis
    scale) over the rows used.
    """

    estimate: float
    se: float
    df: int
    t: float
    p_value: float
    level: float
    ci_lower: float
    ci_upper: float
    baseline_slope: float
    residual_sd: float
    correlation: float | None
    n_treatment: int
    n_reference: int
    n_dropped: int
    covariates: tuple[str, ...]
    covariates_dropped: tuple[str, ...]
    log: bool
    ratio: float | None
    ratio_lower: float | None
    ratio_upper: float | None

    def summary(self) -> str:
        counts = f"n={self.n_treatment} treatment, {self.n_reference} reference, {self.n_dropped} dropped"
        ci = _pct(self.level) + " CI"
        if self.log:
            return (
                f"ANCOVA on log scale: ratio of geometric means {_num(self.ratio)} "
                f"({ci} {_num(self.ratio_lower)} to {_num(self.ratio_upper)}), {_p(self.p_value)}; {counts}"
            )
        return (
            f"ANCOVA: adjusted difference {_num(self.estimate)} "
            f"({ci} {_num(self.ci_lower)} to {_num(self.ci_upper)}), {_p(self.p_value)}; {counts}"
        )


_group_indicator = group_indicator
_dummies = dummies


def ancova(
    followup: Values,
    baseline: Values,
    group: Values,
    covariates: Mapping[str, Values] | None = None,
    *,
    log: bool = False,
    level: float = 0.95,
) -> AncovaResult:
    """OLS of follow-up on baseline, the arm indicator (1 = treatment, 0 = reference) and optional
    categorical covariates (dummy coded, first sorted level as reference; one-level covariates left out).

    Rows with any missing value are dropped and counted. With ``log=True`` every present baseline and
    follow-up value must be positive: values below the LLOQ must already have been replaced by the stated
    rule (e.g. LLOQ/sqrt(2)).
    """
    level = _check_level(level)
    y, x, g = _floats(followup, "followup"), _floats(baseline, "baseline"), _group_indicator(group)
    covariates = dict(covariates or {})
    lengths = {len(y), len(x), len(g), *(len(v) for v in covariates.values())}
    if len(lengths) != 1:
        raise ValueError("followup, baseline, group and every covariate must have the same length")
    if log:
        both = np.concatenate([y, x])
        nonpositive = int(np.sum(both[~np.isnan(both)] <= 0))
        if nonpositive:
            raise ValueError(
                f"log=True needs every baseline and follow-up value > 0, found {nonpositive} value(s) <= 0: "
                "apply the protocol's LLOQ rule (e.g. LLOQ/sqrt(2)) before the analysis"
            )
        y, x = np.log(y), np.log(x)
    keep = ~(np.isnan(y) | np.isnan(x) | np.isnan(g))
    for values in covariates.values():
        keep &= np.array([not _is_missing(v) for v in values], dtype=bool)
    y, x, g = y[keep], x[keep], g[keep]
    n_treatment, n_reference = int(np.sum(g == 1)), int(np.sum(g == 0))
    if n_treatment == 0 or n_reference == 0:
        raise ValueError("ANCOVA needs at least one complete row in each group")

    columns = [np.ones_like(y), x, g]
    used: list[str] = []
    dropped: list[str] = []
    for name, values in covariates.items():
        coded = _dummies(values, keep)
        if coded is None:
            dropped.append(name)
        else:
            columns.extend(coded.T)
            used.append(name)
    design = np.column_stack(columns)
    n, p = design.shape
    df = n - p
    if df < 1:
        raise ValueError(f"ANCOVA needs more complete rows ({n}) than model terms ({p})")
    q, r = np.linalg.qr(design)
    diagonal = np.abs(np.diag(r))
    if diagonal.min() <= max(n, p) * np.finfo(float).eps * diagonal.max():
        raise ValueError(
            "the ANCOVA design is rank deficient (a constant baseline, or a covariate that is "
            "confounded with the arm or with another covariate)"
        )
    beta = linalg.solve_triangular(r, q.T @ y)
    residuals = y - design @ beta
    sigma2 = float(residuals @ residuals) / df
    r_inverse = linalg.solve_triangular(r, np.eye(p))
    se = math.sqrt(sigma2 * float(r_inverse[2] @ r_inverse[2]))  # (X'X)^-1 = R^-1 R^-T
    if se == 0:
        raise ValueError("the ANCOVA model fits the data exactly, so tau has no standard error")
    tau = float(beta[2])
    t_stat = tau / se
    p_value = float(2 * stats.t.sf(abs(t_stat), df))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    correlation = None
    if np.std(x) > 0 and np.std(y) > 0:
        correlation = float(np.corrcoef(x, y)[0, 1])
    lower, upper = tau - half, tau + half
    return AncovaResult(
        estimate=tau,
        se=se,
        df=int(df),
        t=float(t_stat),
        p_value=p_value,
        level=level,
        ci_lower=lower,
        ci_upper=upper,
        baseline_slope=float(beta[1]),
        residual_sd=math.sqrt(sigma2),
        correlation=correlation,
        n_treatment=n_treatment,
        n_reference=n_reference,
        n_dropped=int(keep.size - keep.sum()),
        covariates=tuple(used),
        covariates_dropped=tuple(dropped),
        log=log,
        ratio=math.exp(tau) if log else None,
        ratio_lower=math.exp(lower) if log else None,
        ratio_upper=math.exp(upper) if log else None,
    )


# --- Wilcoxon rank-sum and Hodges-Lehmann ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShiftResult(_Result):
    """Hodges-Lehmann shift x - y (median of all pairwise differences) with its distribution-free CI
    [D_(k), D_(mn+1-k)] from the ordered differences, and the two-sided Wilcoxon rank-sum (Mann-Whitney)
    test. ``method`` is "exact" (null distribution counted; no ties, both samples < 50) or "normal"
    (normal approximation with tie-corrected variance and continuity correction); the p-value uses the same
    method. ``achieved_level`` is the interval's coverage, 1 - 2 P(U <= k - 1), counted exactly or by the
    same normal approximation; it falls below ``level`` only when the samples are too small for any
    interval at that level, in which case the widest bounded interval, [D_(1), D_(mn)], is given (the
    accepted set of shifts is then the whole line)."""

    shift: float
    ci_lower: float
    ci_upper: float
    level: float
    achieved_level: float
    method: str
    u_statistic: float
    p_value: float
    n_x: int
    n_y: int
    n_missing: int

    def summary(self) -> str:
        short = self.achieved_level < self.level
        caveat = (
            f"; too few values for a {_pct(self.level)} interval, coverage {self.achieved_level:.3f}" if short else ""
        )
        return (
            f"Hodges-Lehmann shift {_num(self.shift)} ({_pct(self.level)} CI {_num(self.ci_lower)} to "
            f"{_num(self.ci_upper)}, {self.method}); Wilcoxon rank-sum U={_num(self.u_statistic, 6)}, "
            f"{_p(self.p_value)}; n={self.n_x} vs {self.n_y}{caveat}"
        )


@lru_cache(maxsize=64)
def _rank_sum_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m+n, m) equally likely arrangements give U = 0, 1, ..., mn: the coefficients of
    the Gaussian binomial coefficient prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), in exact integers."""
    size = m * n + 1
    c = [0] * size
    c[0] = 1
    for i in range(1, m + 1):
        for k in range(size - 1, n + i - 1, -1):  # times (1 - q^(n+i)); terms past degree mn are never needed
            c[k] -= c[k - n - i]
        for k in range(i, size):  # divided by (1 - q^i)
            c[k] += c[k - i]
    return tuple(c)


def _tie_term(values: FloatArray) -> float:
    _, counts = np.unique(values, return_counts=True)
    return float(np.sum(counts.astype(float) ** 3 - counts))


def hodges_lehmann(x: Values, y: Values, level: float = 0.95) -> ShiftResult:
    """Shift of x relative to y: Hodges-Lehmann estimate, its Bauer (1972) / Hollander & Wolfe interval,
    and the two-sided Wilcoxon rank-sum p. Missing values are dropped and counted.

    The interval is the set of shifts d for which the rank-sum test of x - d against y does not reject at
    1 - level; k is the smallest U the test accepts (exactly counted, or from the normal approximation whose
    variance carries the within-sample ties, which are the only ties at a shift between two differences).
    """
    level = _check_level(level)
    xa, ya = _floats(x, "x"), _floats(y, "y")
    n_missing = int(np.isnan(xa).sum() + np.isnan(ya).sum())
    xa, ya = xa[~np.isnan(xa)], ya[~np.isnan(ya)]
    m, n = xa.size, ya.size
    if m == 0 or n == 0:
        raise ValueError("hodges_lehmann needs at least one value in each sample")
    alpha = 1 - level
    differences = np.sort(np.subtract.outer(xa, ya).ravel())
    mn = m * n
    pooled = np.concatenate([xa, ya])
    exact = m < EXACT_LIMIT and n < EXACT_LIMIT and np.unique(pooled).size == pooled.size
    if exact:
        counts = _rank_sum_counts(min(m, n), max(m, n))  # the U distribution is symmetric in m and n
        total = math.comb(m + n, m)
        cumulative, k = 0, 0  # k = 1 + largest c with P(U <= c) <= alpha / 2
        for count in counts:
            if 2 * (cumulative + count) > alpha * total:
                break
            cumulative += count
            k += 1
        k = max(k, 1)
        achieved = 1 - 2 * sum(counts[:k]) / total  # 1 - 2 P(U <= k - 1)
    else:
        n_all = m + n
        ties = _tie_term(xa) + _tie_term(ya)
        sigma = math.sqrt(mn / 12 * ((n_all + 1) - ties / (n_all * (n_all - 1))))
        z = float(stats.norm.isf(alpha / 2))
        k = max(math.floor(mn / 2 - 0.5 - z * sigma) + 1, 1)
        achieved = 1 - 2 * float(stats.norm.cdf((k - 1 - mn / 2 + 0.5) / sigma)) if sigma > 0 else 0.0
    test = stats.mannwhitneyu(xa, ya, alternative="two-sided", method="exact" if exact else "asymptotic")
    return ShiftResult(
        shift=float(np.median(differences)),
        ci_lower=float(differences[k - 1]),
        ci_upper=float(differences[mn - k]),
        level=level,
        achieved_level=achieved,
        method="exact" if exact else "normal",
        u_statistic=float(test.statistic),
        p_value=float(test.pvalue),
        n_x=int(m),
        n_y=int(n),
        n_missing=n_missing,
    )


# --- proportions -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proportion(_Result):
    """k of n with the Wilson score interval."""

    k: int
    n: int
    estimate: float
    lower: float
    upper: float
    level: float

    def summary(self) -> str:
        return (
            f"{self.k}/{self.n} = {self.estimate:.3f} "
            f"({_pct(self.level)} Wilson CI {self.lower:.3f} to {self.upper:.3f})"
        )


@dataclass(frozen=True, slots=True)
class RiskDifference(_Result):
    """p1 - p2 with Newcombe's hybrid score interval (1998, method 10), built from each group's Wilson
    interval, and Fisher's exact two-sided p for the 2x2 table."""

    k1: int
    n1: int
    k2: int
    n2: int
    p1: float
    p2: float
    difference: float
    lower: float
    upper: float
    level: float
    fisher_p: float
    group1: Proportion
    group2: Proportion

    def summary(self) -> str:
        return (
            f"{self.k1}/{self.n1} vs {self.k2}/{self.n2}: risk difference {self.difference:.3f} "
            f"({_pct(self.level)} Newcombe CI {self.lower:.3f} to {self.upper:.3f}), "
            f"Fisher exact {_p(self.fisher_p)}"
        )


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def wilson(k: int, n: int, level: float = 0.95) -> Proportion:
    """Wilson score interval: [p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)] / (1 + z^2/n)."""
    level = _check_level(level)
    k, n = _count(k, "k"), _count(n, "n")
    if n == 0 or k > n:
        raise ValueError(f"wilson needs 0 <= k <= n and n >= 1, got k={k}, n={n}")
    p = k / n
    z = float(stats.norm.isf((1 - level) / 2))
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    lower = 0.0 if k == 0 else centre - half  # the formula gives exactly 0 and 1 at the edges, bar rounding
    upper = 1.0 if k == n else centre + half
    return Proportion(k=k, n=n, estimate=p, lower=lower, upper=upper, level=level)


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, level: float = 0.95) -> RiskDifference:
    """Risk difference D = p1 - p2 with L = D - sqrt((p1 - l1)^2 + (u2 - p2)^2) and
    U = D + sqrt((u1 - p1)^2 + (p2 - l2)^2), (l_i, u_i) the Wilson limits; plus Fisher's exact p."""
    first, second = wilson(k1, n1, level), wilson(k2, n2, level)
    p1, p2 = first.estimate, second.estimate
    d = p1 - p2
    lower = d - math.hypot(p1 - first.lower, second.upper - p2)
    upper = d + math.hypot(first.upper - p1, p2 - second.lower)
    fisher = stats.fisher_exact([[first.k, first.n - first.k], [second.k, second.n - second.k]])
    return RiskDifference(
        k1=first.k,
        n1=first.n,
        k2=second.k,
        n2=second.n,
        p1=p1,
        p2=p2,
        difference=d,
        lower=max(lower, -1.0),
        upper=min(upper, 1.0),
        level=first.level,
        fisher_p=float(fisher.pvalue),
        group1=first,
        group2=second,
    )


# --- competing risks ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CumulativeIncidence(_Result):
    """Aalen-Johansen cumulative incidence of one event with the others competing.

    ``times`` are the distinct times at which an event of interest or a competing event happened; ``cif``
    and ``cif_competing`` are the right-continuous step values at those times, ``n_at_risk`` the number
    still at risk just before each. ``at(t)`` reads the step function (0 before the first event).
    """

    event_of_interest: str
    competing: tuple[str, ...]
    times: tuple[float, ...]
    cif: tuple[float, ...]
    cif_competing: tuple[float, ...]
    n_at_risk: tuple[int, ...]
    n: int
    n_events: int
    n_competing: int
    n_censored: int

    def _step(self, values: tuple[float, ...], t: float) -> float:
        i = bisect.bisect_right(self.times, t)
        return 0.0 if i == 0 else values[i - 1]

    def at(self, t: float) -> float:
        """Cumulative incidence of the event of interest by time t (inclusive)."""
        return self._step(self.cif, t)

    def competing_at(self, t: float) -> float:
        """Cumulative incidence of the competing events by time t (inclusive)."""
        return self._step(self.cif_competing, t)

    def summary(self) -> str:
        last = self.times[-1] if self.times else 0.0
        return (
            f"Cumulative incidence of {self.event_of_interest} (competing: {', '.join(self.competing)}): "
            f"{self.at(last):.3f} by t={_num(last, 6)}; n={self.n}, {self.n_events} {self.event_of_interest}, "
            f"{self.n_competing} competing, {self.n_censored} censored"
        )


def _codes(value: str | Collection[str]) -> frozenset[str]:
    return frozenset([value] if isinstance(value, str) else value)


def cumulative_incidence(
    times: Values,
    events: Sequence[str] | NDArray[Any],
    event_of_interest: str,
    competing: str | Collection[str],
    *,
    censored: str | Collection[str] = "censored",
) -> CumulativeIncidence:
    """Aalen-Johansen estimator: at each event time t_j with n_j at risk, d1_j events of interest and d2_j
    competing events, CIF1 += S(t_j-) d1_j / n_j, CIF2 += S(t_j-) d2_j / n_j and
    S(t_j) = S(t_j-) (1 - (d1_j + d2_j) / n_j). Censoring at t_j counts as still at risk at t_j. The sums
    can exceed 1 by rounding (everyone left has an event at the last time): such noise is clamped to [0, 1]
    (``methods.base.probability``).
    Every event code must be the event of interest, a competing code or a censoring code."""
    t = _floats(times, "times")
    if t.size != len(events):
        raise ValueError("times and events must have the same length")
    if np.isnan(t).any() or (t < 0).any():
        raise ValueError("times must be present and >= 0")
    rivals, censoring = _codes(competing), _codes(censored)
    known = {event_of_interest} | rivals | censoring
    if event_of_interest in rivals | censoring or rivals & censoring:
        raise ValueError("the event of interest, competing and censoring codes must not overlap")
    unknown = sorted({str(e) for e in events} - known)
    if unknown:
        raise ValueError(f"unknown event code(s) {unknown}; expected one of {sorted(known)}")
    kind = np.array([1 if e == event_of_interest else 2 if e in rivals else 0 for e in events], dtype=int)
    order = np.argsort(t, kind="stable")
    t, kind = t[order], kind[order]
    event_times = np.unique(t[kind > 0])
    survival, f1, f2 = 1.0, 0.0, 0.0
    cif: list[float] = []
    cif_competing: list[float] = []
    at_risk: list[int] = []
    for time in event_times:
        first = int(np.searchsorted(t, time, side="left"))
        last = int(np.searchsorted(t, time, side="right"))
        n_j = t.size - first
        d1 = int(np.sum(kind[first:last] == 1))
        d2 = int(np.sum(kind[first:last] == 2))
        f1 += survival * d1 / n_j
        f2 += survival * d2 / n_j
        survival *= 1 - (d1 + d2) / n_j
        cif.append(probability(f1, f"the cumulative incidence of {event_of_interest} at {time}"))
        cif_competing.append(probability(f2, f"the cumulative incidence of the competing events at {time}"))
        at_risk.append(n_j)
    return CumulativeIncidence(
        event_of_interest=event_of_interest,
        competing=tuple(sorted(rivals)),
        times=tuple(float(v) for v in event_times),
        cif=tuple(cif),
        cif_competing=tuple(cif_competing),
        n_at_risk=tuple(at_risk),
        n=int(t.size),
        n_events=int(np.sum(kind == 1)),
        n_competing=int(np.sum(kind == 2)),
        n_censored=int(np.sum(kind == 0)),
    )


# --- sizing the definitive trial ---------------------------------------------------------------------


def _check_design(sd: float, delta: float, alpha: float, power: float, rho: float) -> None:
    if not sd > 0:
        raise ValueError(f"sd must be > 0, got {sd}")
    if delta == 0 or not math.isfinite(delta):
        raise ValueError(f"delta must be a non-zero difference, got {delta}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must lie strictly between 0 and 1, got {alpha} and {power}")
    if not -1 < rho < 1:
        raise ValueError(f"rho must lie strictly between -1 and 1, got {rho}")


def t_test_power(n_per_arm: int, sd: float, delta: float, alpha: float = 0.05, rho: float = 0.0) -> float:
    """Power of the two-sided two-sample t test with n_per_arm per arm (1:1) for a true difference delta: from
    the noncentral t with df = 2n - 2 and noncentrality delta / (sd sqrt(2/n)). With rho != 0 it is the ANCOVA
    t test: residual SD sd sqrt(1 - rho^2) and one more degree of freedom spent on the baseline slope
    (df = 2n - 3)."""
    _check_design(sd, delta, alpha, 0.5, rho)
    if n_per_arm < 2:
        raise ValueError(f"n_per_arm must be >= 2, got {n_per_arm}")
    df = 2 * n_per_arm - (3 if rho else 2)
    ncp = abs(delta) / (sd * math.sqrt(1 - rho**2) * math.sqrt(2 / n_per_arm))
    critical = float(stats.t.ppf(1 - alpha / 2, df))
    return float(stats.nct.sf(critical, df, ncp) + stats.nct.cdf(-critical, df, ncp))


def sample_size(sd: float, delta: float, alpha: float = 0.05, power: float = 0.9, rho: float = 0.0) -> int:
    """Participants per arm: the smallest n whose two-sided t test (``t_test_power``; with rho, the ANCOVA t
    test on the residual SD sd sqrt(1 - rho^2)) reaches ``power``, for two arms 1:1. Never below 2.

    The normal approximation n = 2 sd^2 (z_{1-alpha/2} + z_{power})^2 (1 - rho^2) / delta^2 starts the search;
    it is always a little too small (85 per arm where the t test needs 86 for delta/sd = 0.5, 90% power), so
    the t test's own power decides."""
    _check_design(sd, delta, alpha, power, rho)
    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    n = max(math.ceil(2 * sd**2 * z**2 / delta**2 * (1 - rho**2) * (1 - 1e-12)) - 1, 2)
    while t_test_power(n, sd, delta, alpha, rho) < power:
        n += 1
    while n > 2 and t_test_power(n - 1, sd, delta, alpha, rho) >= power:
        n -= 1
    return n


def browne_upper_sd(sd: float, df: int, gamma: float = 0.2) -> float:
    """Browne's 100(1 - gamma)% upper confidence limit of the SD from a pilot with df degrees of freedom:
    sd * sqrt(df / chi2_{gamma, df}), chi2_{gamma, df} the lower gamma quantile."""
    if not sd > 0 or df < 1 or not 0 < gamma < 1:
        raise ValueError(f"need sd > 0, df >= 1 and 0 < gamma < 1, got {sd}, {df}, {gamma}")
    return float(sd * math.sqrt(df / stats.chi2.ppf(gamma, df)))


@dataclass(frozen=True, slots=True)
class SampleSizePlan(_Result):
    """Per-arm sizes for the definitive trial from the pilot SD and from its Browne upper limit, for an
    unadjusted comparison and for ANCOVA with baseline correlation rho."""

    sd: float
    df: int
    delta: float
    alpha: float
    power: float
    rho: float
    gamma: float
    upper_sd: float
    n_per_arm: int
    n_per_arm_ancova: int
    n_per_arm_upper_sd: int
    n_per_arm_upper_sd_ancova: int

    def summary(self) -> str:
        return (
            f"Per arm for delta={_num(self.delta)}, alpha={self.alpha:g}, power={self.power:g}: "
            f"{self.n_per_arm} from pilot SD {_num(self.sd)} ({self.n_per_arm_ancova} with ANCOVA, "
            f"rho={self.rho:g}); {self.n_per_arm_upper_sd} from its {_pct(1 - self.gamma)} upper limit "
            f"{_num(self.upper_sd)} ({self.n_per_arm_upper_sd_ancova} with ANCOVA)"
        )


def plan_definitive(
    sd: float,
    df: int,
    delta: float,
    alpha: float = 0.05,
    power: float = 0.9,
    rho: float = 0.0,
    gamma: float = 0.2,
) -> SampleSizePlan:
    """Size the definitive trial from the pilot SD (with df degrees of freedom), Browne-style."""
    upper = browne_upper_sd(sd, df, gamma)
    return SampleSizePlan(
        sd=float(sd),
        df=int(df),
        delta=float(delta),
        alpha=float(alpha),
        power=float(power),
        rho=float(rho),
        gamma=float(gamma),
        upper_sd=upper,
        n_per_arm=sample_size(sd, delta, alpha, power),
        n_per_arm_ancova=sample_size(sd, delta, alpha, power, rho),
        n_per_arm_upper_sd=sample_size(upper, delta, alpha, power),
        n_per_arm_upper_sd_ancova=sample_size(upper, delta, alpha, power, rho),
    )


@dataclass(frozen=True, slots=True)
class PowerSimulation(_Result):
    """Monte-Carlo power of the ANCOVA t-test (two-sided, level alpha) for n_per_arm per arm, baseline and
    follow-up bivariate normal with common SD sd and correlation rho, and true difference delta."""

    sd: float
    delta: float
    n_per_arm: int
    alpha: float
    rho: float
    n_sim: int
    seed: int
    rejections: int
    power: float
    mc_se: float

    def summary(self) -> str:
        return (
            f"Simulated ANCOVA power {self.power:.3f} (Monte-Carlo SE {self.mc_se:.3f}) with {self.n_per_arm} "
            f"per arm, delta={_num(self.delta)}, sd={_num(self.sd)}, rho={self.rho:g}, alpha={self.alpha:g}; "
            f"{self.n_sim} simulations, seed {self.seed}"
        )


def simulate_power(
    sd: float,
    delta: float,
    n_per_arm: int,
    alpha: float = 0.05,
    rho: float = 0.0,
    n_sim: int = 2000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> PowerSimulation:
    """Simulate the ANCOVA analysis n_sim times and count rejections.

    Each chunk of simulations is fitted at once in closed form: with centred baseline x, arm g and
    follow-up y, tau = (Sxx Sgy - Sxg Sxy) / (Sxx Sgg - Sxg^2) and Var(tau) = s^2 Sxx / (Sxx Sgg - Sxg^2),
    s^2 the residual mean square on 2n - 3 df. ``progress(done, total)`` is called after each chunk.
    """
    _check_design(sd, delta or 1.0, alpha, 0.5, rho)  # delta = 0 is allowed here: it measures the type I error
    if n_per_arm < 2 or n_sim < 1:
        raise ValueError(f"need n_per_arm >= 2 and n_sim >= 1, got {n_per_arm} and {n_sim}")
    rng = np.random.default_rng(seed)
    size = 2 * n_per_arm
    arm = np.repeat([1.0, 0.0], n_per_arm)
    arm_c = arm - arm.mean()
    s_gg = float(arm_c @ arm_c)
    critical = float(stats.t.ppf(1 - alpha / 2, size - 3))
    chunk = max(1, min(n_sim, 1_000_000 // size))
    rejections, done = 0, 0
    while done < n_sim:
        b = min(chunk, n_sim - done)
        z1 = rng.standard_normal((b, size))
        z2 = rng.standard_normal((b, size))
        x = sd * z1
        y = sd * (rho * z1 + math.sqrt(1 - rho**2) * z2) + delta * arm
        x -= x.mean(axis=1, keepdims=True)
        y -= y.mean(axis=1, keepdims=True)
        s_xx = np.einsum("ij,ij->i", x, x)
        s_xg = x @ arm_c
        s_xy = np.einsum("ij,ij->i", x, y)
        s_gy = y @ arm_c
        s_yy = np.einsum("ij,ij->i", y, y)
        det = s_xx * s_gg - s_xg**2
        tau = (s_xx * s_gy - s_xg * s_xy) / det
        slope = (s_gg * s_xy - s_xg * s_gy) / det
        rss = s_yy - slope * s_xy - tau * s_gy
        se = np.sqrt(rss / (size - 3) * s_xx / det)
        rejections += int(np.sum(np.abs(tau / se) > critical))
        done += b
        if progress is not None:
            progress(done, n_sim)
    power = rejections / n_sim
    return PowerSimulation(
        sd=float(sd),
        delta=float(delta),
        n_per_arm=int(n_per_arm),
        alpha=float(alpha),
        rho=float(rho),
        n_sim=int(n_sim),
        seed=int(seed),
        rejections=rejections,
        power=power,
        mc_se=math.sqrt(power * (1 - power) / n_sim),
    )
