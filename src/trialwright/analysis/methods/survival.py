"""Time-to-event outcomes: Kaplan-Meier curves, the log-rank test, the Cox model and the restricted mean.

A participant is followed from randomisation until the event (``events`` = 1) or until follow-up ends without
it (``events`` = 0, right-censored): we then know only that the event time exceeds the recorded time. Each
function takes ``times`` (>= 0) and ``events``, and the comparisons a ``group`` (1 = treatment, 0 =
reference). Input is refused, never repaired: a missing or negative time, a code other than 0/1, lengths that
differ or an arm with no participants raise ValueError naming the argument.

* ``kaplan_meier`` -- the product-limit estimate S(t) = prod_{t_i <= t} (1 - d_i / n_i) (Kaplan & Meier, JASA
  1958;53:457), from lifelines' KaplanMeierFitter, with Greenwood's standard error and the pointwise
  "exponential Greenwood" (log(-log)) interval lifelines reports: S^exp(+-z se_L), se_L^2 =
  sum d/(n(n-d)) / log(S)^2 (the log-transformed interval of Klein & Moeschberger, "Survival Analysis", 2nd
  ed. 2003, section 4.3). The median is the first time with S <= 1/2; its interval runs from the first time
  the pointwise lower bound reaches 1/2 to the first time the upper bound does (Brookmeyer & Crowley,
  Biometrics 1982;38:29, on the log(-log) scale).
* ``log_rank`` -- the log-rank test (Mantel, Cancer Chemother Rep 1966;50:163; Peto & Peto, JRSS A
  1972;135:185): at each event time the treatment arm's observed events are compared with their expectation
  d n_1 / n given everyone at risk, with the hypergeometric variance d (n_1/n)(1 - n_1/n)(n - d)/(n - 1). With
  ``strata`` the observed-minus-expected and the variances are summed over strata before the statistic
  (O - E)^2 / V is formed (the stratified test of Klein & Moeschberger 2003, section 7.5).
* ``cox`` -- the Cox model (JRSS B 1972;34:187) from lifelines' CoxPHFitter, Efron's ties, model-based SE,
  optional numeric covariates and strata (a separate baseline hazard per stratum). The proportional-hazards
  check for the arm is lifelines' ``proportional_hazard_test``: its approximation of the Grambsch & Therneau
  (Biometrika 1994;81:515) score test on scaled Schoenfeld residuals, against the rank of the event time.
* ``rmst_difference`` -- the restricted mean survival time mu(tau) = integral_0^tau S(t) dt (the area under
  each arm's Kaplan-Meier step function; Klein & Moeschberger 2003, eq. 4.5.1) with variance
  sum_{t_i <= tau} [integral_{t_i}^tau S(t) dt]^2 d_i / (n_i (n_i - d_i)) (their eq. 4.5.2), the difference
  treatment minus reference, its Wald interval and p (Royston & Parmar, BMC Med Res Methodol 2013;13:152).

Checked in tests/spec/analysis/methods/test_survival.py against statsmodels (SurvfuncRight, survdiff, PHReg),
lifelines, a numerical delta-method variance, a simulation, and the 6-MP remission data printed in Kleinbaum &
Klein's "Survival Analysis: A Self-Learning Text".
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import proportional_hazard_test
from lifelines.utils import median_survival_times
from numpy.typing import NDArray
from scipy import stats

from trialwright.analysis.methods.base import (
    FloatArray,
    Result,
    Values,
    check_level,
    floats,
    fmt,
    fmt_p,
    fmt_pct,
    probability,
)

__all__ = [
    "CoxResult",
    "KaplanMeier",
    "LogRank",
    "RmstDifference",
    "cox",
    "kaplan_meier",
    "log_rank",
    "rmst_difference",
]

# --- input -------------------------------------------------------------------------------------------


def _times(times: Values) -> FloatArray:
    t = floats(times, "times")
    if t.size == 0:
        raise ValueError("times must hold at least one participant")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError("times must be present, finite and >= 0 for every participant")
    return t


def _codes(values: Values, name: str, meaning: str, n: int) -> FloatArray:
    v = floats(values, name)
    if v.size != n:
        raise ValueError(f"{name} must have the same length as times ({n}), got {v.size}")
    if np.isnan(v).any() or not np.isin(v, (0, 1)).all():
        bad = "missing values" if np.isnan(v).any() else str(sorted({float(x) for x in v[~np.isin(v, (0, 1))]}))
        raise ValueError(f"{name} must be {meaning} for every participant; found {bad}")
    return v


def _two_arms(times: Values, events: Values, group: Values) -> tuple[FloatArray, FloatArray, FloatArray]:
    t = _times(times)
    e = _codes(events, "events", "1 (event) or 0 (censored)", t.size)
    g = _codes(group, "group", "1 (treatment) or 0 (reference)", t.size)
    if not (g == 1).any() or not (g == 0).any():
        raise ValueError("group must hold both arms: at least one participant coded 1 and one coded 0")
    return t, e, g


def _strata(strata: Values | None, n: int) -> NDArray[np.int64]:
    if strata is None:
        return np.zeros(n, dtype=np.int64)
    if len(strata) != n:
        raise ValueError(f"strata must have one label per participant ({n}), got {len(strata)}")
    if any(v is None or v != v for v in strata):  # None or NaN (NaN != NaN)
        raise ValueError("strata must have a label for every participant (found a missing one)")
    return np.unique(np.asarray([str(v) for v in strata]), return_inverse=True)[1].astype(np.int64)


@contextlib.contextmanager
def _quiet() -> Iterator[list[warnings.WarningMessage]]:
    """Keep lifelines' printing and warnings inside; the caught warnings are handed back for inspection."""
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        yield caught


def _none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


# --- Kaplan-Meier ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KaplanMeier(Result):
    """Kaplan-Meier curve at each distinct observed time (event or censoring), ascending.

    ``survival[i]`` is S just after ``times[i]`` (right-continuous), ``se`` Greenwood's standard error (None
    where S = 0), ``lower``/``upper`` the pointwise log(-log) interval at ``level``; ``n_at_risk[i]`` counts
    those with time >= times[i], of whom ``events_at[i]`` had the event and ``censored_at[i]`` were censored
    there. ``median`` and its interval are None when the curve (or the interval's bound) never reaches 1/2."""

    n: int
    n_events: int
    level: float
    times: tuple[float, ...]
    survival: tuple[float, ...]
    se: tuple[float | None, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    n_at_risk: tuple[int, ...]
    events_at: tuple[int, ...]
    censored_at: tuple[int, ...]
    median: float | None
    median_lower: float | None
    median_upper: float | None

    def at(self, t: float) -> float | None:
        """S(t): 1 before the first observed time; None beyond the last one unless the curve reached 0."""
        if not t >= 0:
            raise ValueError(f"t must be a time >= 0, got {t}")
        i = bisect_right(self.times, t)
        if i == 0:
            return 1.0
        if t > self.times[-1] and self.survival[-1] > 0:
            return None
        return self.survival[i - 1]

    def summary(self) -> str:
        interval = f" ({fmt_pct(self.level)} CI {fmt(self.median_lower)} to {fmt(self.median_upper)})"
        return f"Kaplan-Meier: n={self.n}, {self.n_events} events, median {fmt(self.median)}{interval}"


def kaplan_meier(times: Values, events: Values, level: float = 0.95) -> KaplanMeier:
    """The Kaplan-Meier curve of one group (lifelines), with Greenwood SE and log(-log) pointwise interval."""
    level = check_level(level)
    t = _times(times)
    e = _codes(events, "events", "1 (event) or 0 (censored)", t.size)
    with _quiet():
        fitter = KaplanMeierFitter(alpha=1 - level).fit(t, e)
        median_ci = median_survival_times(fitter.confidence_interval_)
    table = fitter.event_table
    table = table[table["removed"] > 0]
    at = table.index.to_numpy(dtype=float)
    survival = fitter.survival_function_.iloc[:, 0].loc[at].to_numpy(dtype=float)
    band = fitter.confidence_interval_.loc[at]
    d, n = table["observed"].to_numpy(dtype=float), table["at_risk"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(np.where(d > 0, d / (n * (n - d)), 0.0))
    se = [float(s * math.sqrt(g)) if s > 0 else None for s, g in zip(survival, greenwood, strict=True)]
    return KaplanMeier(
        n=int(t.size),
        n_events=int(e.sum()),
        level=level,
        times=tuple(float(x) for x in at),
        survival=tuple(probability(float(x), "the Kaplan-Meier survival") for x in survival),
        se=tuple(se),
        lower=tuple(probability(float(x), "the Kaplan-Meier lower bound") for x in band.iloc[:, 0]),
        upper=tuple(probability(float(x), "the Kaplan-Meier upper bound") for x in band.iloc[:, 1]),
        n_at_risk=tuple(int(x) for x in table["at_risk"]),
        events_at=tuple(int(x) for x in table["observed"]),
        censored_at=tuple(int(x) for x in table["censored"]),
        median=_none(float(fitter.median_survival_time_)),
        median_lower=_none(float(median_ci.iloc[0, 0])),
        median_upper=_none(float(median_ci.iloc[0, 1])),
    )


# --- log-rank ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogRank(Result):
    """Log-rank test of equal survival in the two arms: chisq = (O - E)^2 / V for the treatment arm on ``df`` = 1,
    O, E and V summed over ``n_strata`` strata; observed and expected events per arm (E_1 + E_0 = O_1 + O_0)."""

    chisq: float
    df: int
    p_value: float
    observed_treatment: int
    observed_reference: int
    expected_treatment: float
    expected_reference: float
    variance: float
    n_treatment: int
    n_reference: int
    n_strata: int

    def summary(self) -> str:
        strata = f", {self.n_strata} strata" if self.n_strata > 1 else ""
        return (
            f"Log-rank test: chi2={self.chisq:.3f} on {self.df} df, {fmt_p(self.p_value)}; events observed/expected "
            f"{self.observed_treatment}/{self.expected_treatment:.1f} treatment, "
            f"{self.observed_reference}/{self.expected_reference:.1f} reference{strata}"
        )


def _log_rank_stratum(t: FloatArray, e: FloatArray, g: FloatArray) -> tuple[float, float]:
    """Expected treatment-arm events and the variance of O - E in one stratum (sums over event times)."""
    u = np.unique(t[e == 1])
    if u.size == 0:
        return 0.0, 0.0
    n = (t.size - np.searchsorted(np.sort(t), u, side="left")).astype(float)
    n1 = (np.sum(g == 1) - np.searchsorted(np.sort(t[g == 1]), u, side="left")).astype(float)
    d = np.bincount(np.searchsorted(u, t[e == 1]), minlength=u.size).astype(float)
    share = n1 / n
    variance = np.where(n > 1, d * share * (1 - share) * (n - d) / np.maximum(n - 1, 1), 0.0)
    return float(np.sum(d * share)), float(np.sum(variance))


def log_rank(times: Values, events: Values, group: Values, strata: Values | None = None) -> LogRank:
    """The (optionally stratified) log-rank test of treatment vs reference; own code from the formulas above."""
    t, e, g = _two_arms(times, events, group)
    labels = _strata(strata, t.size)
    expected = variance = 0.0
    for k in np.unique(labels):
        keep = labels == k
        part = _log_rank_stratum(t[keep], e[keep], g[keep])
        expected, variance = expected + part[0], variance + part[1]
    if not variance > 0:
        raise ValueError("events: the log-rank test has no variance (no event with both arms at risk)")
    observed = int(np.sum(e[g == 1]))
    total = int(e.sum())
    chisq = (observed - expected) ** 2 / variance
    return LogRank(
        chisq=chisq,
        df=1,
        p_value=float(stats.chi2.sf(chisq, 1)),
        observed_treatment=observed,
        observed_reference=total - observed,
        expected_treatment=expected,
        expected_reference=total - expected,
        variance=variance,
        n_treatment=int(np.sum(g == 1)),
        n_reference=int(np.sum(g == 0)),
        n_strata=int(np.unique(labels).size),
    )


# --- Cox ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoxResult(Result):
    """Cox hazard ratio of treatment vs reference: ``log_hr`` with model-based ``se``, Wald z, p and CI
    exp(log_hr -/+ z se); Efron ties; ``covariates`` in the model with their log HRs and SEs in order.
    ``ph_statistic``/``ph_p_value`` test proportional hazards for the arm (chi-square, 1 df) against the
    time transform ``ph_transform``."""

    hr: float
    log_hr: float
    se: float
    z: float
    p_value: float
    level: float
    ci_lower: float
    ci_upper: float
    covariates: tuple[str, ...]
    covariate_log_hr: tuple[float, ...]
    covariate_se: tuple[float, ...]
    n_strata: int
    log_likelihood: float
    ph_statistic: float
    ph_p_value: float
    ph_transform: str
    n: int
    n_treatment: int
    n_reference: int
    n_events: int

    def summary(self) -> str:
        adjusted = f", adjusted for {', '.join(self.covariates)}" if self.covariates else ""
        strata = f", {self.n_strata} strata" if self.n_strata > 1 else ""
        return (
            f"Cox HR {fmt(self.hr)} ({fmt_pct(self.level)} CI {fmt(self.ci_lower)} to {fmt(self.ci_upper)}), "
            f"{fmt_p(self.p_value)}{adjusted}{strata}; n={self.n}, {self.n_events} events; "
            f"PH test for the arm ({self.ph_transform}) {fmt_p(self.ph_p_value)}"
        )


def _event_rank(durations: pd.Series, events: pd.Series, weights: pd.Series) -> pd.Series:
    """Each event's rank in time among all events (1, 2, ...; ties in the order lifelines sorted them).

    Unstratified this equals lifelines' "rank" transform (a running count of events over the sorted data).
    With strata lifelines sorts by stratum first, so its running count would not be a time order; ranking the
    event times over all strata keeps the Grambsch-Therneau alternative a trend in time."""
    observed = events.to_numpy(dtype=bool)
    rank = np.zeros(observed.size)
    rank[observed] = stats.rankdata(durations.to_numpy(dtype=float)[observed], method="ordinal")
    return pd.Series(rank, index=durations.index)


def cox(
    times: Values,
    events: Values,
    group: Values,
    covariates: Mapping[str, Values] | None = None,
    strata: Values | None = None,
    level: float = 0.95,
) -> CoxResult:
    """Cox regression of the hazard on the arm (lifelines, Efron ties), adjusted for numeric ``covariates``
    entered as given (code a category as 0/1 columns yourself) and stratified by ``strata`` labels."""
    level = check_level(level)
    t, e, g = _two_arms(times, events, group)
    labels = _strata(strata, t.size)
    frame = pd.DataFrame({"time": t, "event": e, "group": g})
    names = tuple(covariates or {})
    for i, name in enumerate(names):
        column = floats((covariates or {})[name], f"covariates[{name!r}]")
        if column.size != t.size or not np.isfinite(column).all():
            raise ValueError(f"covariates[{name!r}] must hold a finite number for each of the {t.size} participants")
        frame[f"x{i}"] = column
    design = frame.drop(columns=["time", "event"]).to_numpy(dtype=float)
    if np.linalg.matrix_rank(design - design.mean(axis=0)) < design.shape[1]:
        raise ValueError("covariates must vary and must not be collinear with each other or with group")
    for k in (0, 1):
        if not (e[g == k] == 1).any():
            raise ValueError(f"events: group {k} has no events, so the hazard ratio is 0 or infinite")
    if strata is not None:
        frame["stratum"] = labels
    fitter = CoxPHFitter(strata=["stratum"] if strata is not None else None)
    with _quiet() as caught:
        try:
            fitter.fit(frame, "time", "event", fit_options={"precision": 1e-12, "r_precision": 1e-14})
        except ConvergenceError as error:
            raise ValueError(f"covariates or group: the Cox fit failed (collinear, or separating?): {error}") from None
        transform = "rank" if strata is None else _event_rank
        ph = proportional_hazard_test(fitter, frame, time_transform=transform).summary.loc["group"]
    for warning in caught:
        text = str(warning.message)
        if text.startswith(("Newton-Raphson", "The log-likelihood is getting suspiciously")):
            raise ValueError(
                f"covariates or group: the Cox fit has no finite maximum (separation?): {text.splitlines()[0]}"
            )
    log_hr, se = float(fitter.params_["group"]), float(fitter.standard_errors_["group"])
    z = log_hr / se
    half = float(stats.norm.isf((1 - level) / 2)) * se
    return CoxResult(
        hr=math.exp(log_hr),
        log_hr=log_hr,
        se=se,
        z=z,
        p_value=float(2 * stats.norm.sf(abs(z))),
        level=level,
        ci_lower=math.exp(log_hr - half),
        ci_upper=math.exp(log_hr + half),
        covariates=names,
        covariate_log_hr=tuple(float(fitter.params_[f"x{i}"]) for i in range(len(names))),
        covariate_se=tuple(float(fitter.standard_errors_[f"x{i}"]) for i in range(len(names))),
        n_strata=int(np.unique(labels).size),
        log_likelihood=float(fitter.log_likelihood_),
        ph_statistic=float(ph["test_statistic"]),
        ph_p_value=float(ph["p"]),
        ph_transform="rank of event time" + (" over all strata" if strata is not None else ""),
        n=int(t.size),
        n_treatment=int(np.sum(g == 1)),
        n_reference=int(np.sum(g == 0)),
        n_events=int(e.sum()),
    )


# --- restricted mean survival time -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RmstDifference(Result):
    """Restricted mean survival time up to ``tau`` in each arm (area under its Kaplan-Meier curve) with its
    Greenwood-type SE; ``difference`` = treatment - reference, se = sqrt(se_t^2 + se_r^2), Wald z, p and CI."""

    tau: float
    rmst_treatment: float
    se_treatment: float
    rmst_reference: float
    se_reference: float
    difference: float
    se: float
    z: float | None
    p_value: float | None
    level: float
    ci_lower: float
    ci_upper: float
    n_treatment: int
    n_reference: int
    events_treatment: int
    events_reference: int

    def summary(self) -> str:
        p = "p=NA" if self.p_value is None else fmt_p(self.p_value)
        return (
            f"RMST to {fmt(self.tau)}: {fmt(self.rmst_treatment)} treatment vs {fmt(self.rmst_reference)} reference, "
            f"difference {fmt(self.difference)} ({fmt_pct(self.level)} CI {fmt(self.ci_lower)} to "
            f"{fmt(self.ci_upper)}), {p}"
        )


def _rmst(t: FloatArray, e: FloatArray, tau: float) -> tuple[float, float]:
    """Area under the Kaplan-Meier step function on [0, tau] and its variance (K&M eq. 4.5.1-4.5.2)."""
    u = np.unique(t[(e == 1) & (t <= tau)])
    n = (t.size - np.searchsorted(np.sort(t), u, side="left")).astype(float)
    d = np.bincount(np.searchsorted(u, t[(e == 1) & (t <= tau)]), minlength=u.size).astype(float)
    survival = np.cumprod(1 - d / n)  # S on [u_i, u_{i+1})
    widths = np.diff(np.concatenate([[0.0], u, [tau]]))  # [0, u_1), [u_1, u_2), ..., [u_k, tau]
    pieces = np.concatenate([[1.0], survival]) * widths
    tail = np.cumsum(pieces[::-1])[::-1][1:]  # integral from u_i to tau of S
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n > d, tail**2 * d / (n * (n - d)), 0.0)  # n = d: S is 0 from u_i on, tail 0
    return float(pieces.sum()), float(terms.sum())


def rmst_difference(times: Values, events: Values, group: Values, tau: float, level: float = 0.95) -> RmstDifference:
    """Difference in restricted mean survival time to ``tau`` (treatment - reference). ``tau`` must be
    positive and no later than the smaller of the two arms' largest observed (event or censoring) times, where
    both curves are still estimated."""
    level = check_level(level)
    t, e, g = _two_arms(times, events, group)
    limit = min(float(t[g == 1].max()), float(t[g == 0].max()))
    if isinstance(tau, bool) or not isinstance(tau, int | float | np.number) or not 0 < tau <= limit:
        raise ValueError(
            f"tau must be > 0 and at most {limit:g}, the smaller of the two arms' largest observed times; got {tau}"
        )
    rmst_t, var_t = _rmst(t[g == 1], e[g == 1], tau)
    rmst_r, var_r = _rmst(t[g == 0], e[g == 0], tau)
    difference, se = rmst_t - rmst_r, math.sqrt(var_t + var_r)
    half = float(stats.norm.isf((1 - level) / 2)) * se
    z = difference / se if se > 0 else None
    return RmstDifference(
        tau=float(tau),
        rmst_treatment=rmst_t,
        se_treatment=math.sqrt(var_t),
        rmst_reference=rmst_r,
        se_reference=math.sqrt(var_r),
        difference=difference,
        se=se,
        z=z,
        p_value=None if z is None else float(2 * stats.norm.sf(abs(z))),
        level=level,
        ci_lower=difference - half,
        ci_upper=difference + half,
        n_treatment=int(np.sum(g == 1)),
        n_reference=int(np.sum(g == 0)),
        events_treatment=int(np.sum(e[g == 1])),
        events_reference=int(np.sum(e[g == 0])),
    )
