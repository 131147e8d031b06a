"""Competing risks: comparing the arms when another event can pre-empt the one of interest.

For length of stay, "discharged alive" is the event of interest and death in hospital competes with it: a
participant who dies can never be discharged alive. Censoring the deaths, as a plain Kaplan-Meier or log-rank
analysis would, answers a question about a world without death and overstates the chance of discharge. Each
function here compares two groups (1 = treatment, 0 = reference) from a time (>= 0) and a status code per
participant: 0 = censored, 1 and 2 = the two kinds of event, ``cause`` naming the one of interest (the other
competes). Input is refused, never repaired: a missing or unknown value raises ValueError naming the argument.

* ``gray_test`` -- Gray's K-sample test (Ann Stat 1988;16:1141) that the arms' cumulative incidence
  functions (CIF: the Aalen-Johansen curves of ``statistics.cumulative_incidence``) are equal, with weight
  (1 - F(t-))^rho at rho = 0 as R cmprsk::cuminc, optionally stratified.
* ``fine_gray`` -- the subdistribution hazard ratio (SHR) of Fine & Gray (JASA 1999;94:496). Participants who
  had the competing event stay in the risk set with inverse-probability-of-censoring weight G(t-)/G(T_i-),
  G the Kaplan-Meier curve of the censoring distribution. Breslow ties; the robust (sandwich) variance
  Omega^-1 Sigma Omega^-1 carries the term for estimating G (their section 4), as R cmprsk::crr reports.
* ``cause_specific_cox`` -- the cause-specific hazard ratio: an ordinary Cox model (lifelines, Efron ties)
  with the competing events censored. It is a rate among those still free of both events; the SHR speaks to
  the cumulative incidence. Reporting both is the usual advice (Austin, Lee & Fine, Circulation
  2016;133:601).

A fit with no finite maximum (one arm's events all before or after the other's: monotone likelihood, as small
trials often give) or whose interval overflows is refused with ValueError saying so, never reported as a number.

Checked in tests/spec/analysis/methods/test_competing.py against printed cmprsk::cuminc and crr output for
the ``bmtcrr`` data of Scrucca et al.'s tutorial (Bone Marrow Transplant 2007;40:381), the log-rank score and
the Cox model that Gray's test and Fine-Gray reduce to without censoring, a weighted Cox fit on the expanded
data of R survival::finegray, lifelines and statsmodels, and a planted-effect simulation.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError
from numpy.typing import NDArray
from scipy import stats

from trialwright.analysis.methods.base import FloatArray, Result, Values, check_level, floats, fmt, fmt_p, fmt_pct
from trialwright.analysis.statistics import CumulativeIncidence, cumulative_incidence

__all__ = ["CauseSpecificCox", "FineGrayResult", "GrayTest", "cause_specific_cox", "fine_gray", "gray_test"]

BoolArray = NDArray[np.bool_]
MAX_ITERATIONS = 50


# --- input -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Data:
    times: FloatArray
    status: FloatArray
    group: FloatArray
    interest: BoolArray
    competing: BoolArray


def _data(times: Values, status: Values, group: Values, cause: int) -> _Data:
    if isinstance(cause, bool) or cause not in (1, 2):
        raise ValueError(f"cause must be 1 or 2 (the status code of the event of interest), got {cause!r}")
    t, s, g = floats(times, "times"), floats(status, "status"), floats(group, "group")
    if not t.size == s.size == g.size:
        raise ValueError(f"times, status and group must have the same length, got {t.size}, {s.size}, {g.size}")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError("times must be present, finite and >= 0 for every participant")
    if np.isnan(s).any() or not np.isin(s, (0, 1, 2)).all():
        raise ValueError("status must be 0 (censored), 1 or 2 for every participant; found " + _odd(s, (0, 1, 2)))
    if np.isnan(g).any() or not np.isin(g, (0, 1)).all():
        raise ValueError("group must be 1 (treatment) or 0 (reference) for every participant; found " + _odd(g, (0, 1)))
    if not (g == 1).any() or not (g == 0).any():
        raise ValueError("group must hold both arms: at least one participant coded 1 and one coded 0")
    interest = s == cause
    if not interest.any():
        raise ValueError(f"status has no event of interest (code {cause}): there is nothing to compare")
    return _Data(t, s, g, interest, (s != cause) & (s != 0))


def _ratio(log_ratio: float, half: float, what: str) -> tuple[float, float, float]:
    """The ratio and its interval exp(log -/+ half); refused when any of them is not a finite number."""
    try:
        out = (math.exp(log_ratio), math.exp(log_ratio - half), math.exp(log_ratio + half))
    except OverflowError:
        out = (math.inf, math.inf, math.inf)
    if not all(math.isfinite(x) and x > 0 for x in out) or not math.isfinite(half):
        raise ValueError(
            f"group: the {what} has no finite estimate and interval (log {log_ratio:.3g} +/- {half:.3g}; separation?)"
        )
    return out


def _events_in_both_arms(data: _Data) -> None:
    for k in (0, 1):
        if not (data.interest & (data.group == k)).any():
            raise ValueError(f"status has no event of interest in group {k}: the hazard ratio is 0 or infinite")


def _odd(values: FloatArray, allowed: tuple[int, ...]) -> str:
    bad = values[~np.isin(values, allowed)]
    return ("missing values" if np.isnan(bad).any() else "") or str(sorted({float(v) for v in bad}))


def _left(curve: CumulativeIncidence, values: tuple[float, ...], at: FloatArray, default: float) -> FloatArray:
    """The step function ``values`` over ``curve.times`` just before each time in ``at``."""
    i = np.searchsorted(np.asarray(curve.times, dtype=float), at, side="left") - 1
    table = np.asarray((default, *values), dtype=float)
    return table[i + 1]


def _aalen_johansen(t: FloatArray, s: FloatArray, cause: int) -> CumulativeIncidence:
    codes = np.where(s == 0, "censored", np.where(s == cause, f"cause {cause}", f"cause {3 - cause}"))
    return cumulative_incidence(t, codes, f"cause {cause}", f"cause {3 - cause}")


def _counts(data: _Data) -> dict[str, int]:
    return {
        "n": int(data.times.size),
        "n_treatment": int(np.sum(data.group == 1)),
        "n_reference": int(np.sum(data.group == 0)),
        "n_events": int(data.interest.sum()),
        "n_competing": int(data.competing.sum()),
        "n_censored": int(np.sum(data.status == 0)),
    }


# --- Gray's test -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrayTest(Result):
    """Gray's test that the two arms' cumulative incidence of ``cause`` is the same (rho = 0).

    ``score`` is the observed minus expected number of events of interest in the treatment arm, with the
    expectation from the subdistribution risk sets; ``statistic`` = score^2 / variance on ``df`` = 1, both
    summed over ``n_strata`` strata. ``cif_treatment`` and ``cif_reference`` are each arm's Aalen-Johansen
    curves (over all strata)."""

    cause: int
    statistic: float
    df: int
    p_value: float
    score: float
    variance: float
    n: int
    n_treatment: int
    n_reference: int
    n_events: int
    n_competing: int
    n_censored: int
    n_strata: int
    cif_treatment: CumulativeIncidence
    cif_reference: CumulativeIncidence

    def summary(self) -> str:
        strata = f", {self.n_strata} strata" if self.n_strata > 1 else ""
        return (
            f"Gray's test of the cumulative incidence of cause {self.cause}: chi2={self.statistic:.3f} on "
            f"{self.df} df, {fmt_p(self.p_value)}; n={self.n_treatment} treatment, {self.n_reference} reference, "
            f"{self.n_events} events, {self.n_competing} competing, {self.n_censored} censored{strata}"
        )


def _gray_stratum(t: FloatArray, s: FloatArray, g: FloatArray, cause: int) -> tuple[float, float]:
    """Score and variance of Gray's test in one stratum, for the treatment arm.

    Own code: no Python library implements Gray's test (lifelines, statsmodels and scikit-survival have none).
    Notation of Gray (1988), at each distinct event time t and arm k: Y_k at risk, S_k the Kaplan-Meier of
    any event, F_k the CIF of the event of interest; h_k = Y_k / S_k(t-) and R_k = h_k (1 - F_k(t-)) is the
    subdistribution risk set. Score: sum_t d1_1 - d1 R_1 / sum_k R_k. The variance is that of the score's
    representation as integrals against each arm's cause-1 and cause-2 martingales under H0, the pooled CIF
    F estimated by dF = d1 / sum_k h_k; the integrand of arm k is a_1k + t4 (c_1k(inf) - c_1k(t)) for cause 1
    and t4 (c_1k(inf) - c_1k(t)) for cause 2, with a = diag(h) - h h' / sum h and c the running integral of
    a dF / (1 - F(t-)). Tied events get the hypergeometric-style factors of R cmprsk::cuminc."""
    arms = [_aalen_johansen(t[g == k], s[g == k], cause) for k in (0, 1)]
    u = np.unique(t[s > 0])
    y = np.stack([np.sum(t[g == k][None, :] >= u[:, None], axis=1) for k in (0, 1)], axis=1).astype(float)
    d1 = np.stack([np.sum((t[None, :] == u[:, None]) & (s == cause) & (g == k), axis=1) for k in (0, 1)], axis=1)
    d2 = np.stack([np.sum((t[None, :] == u[:, None]) & (s == 3 - cause) & (g == k), axis=1) for k in (0, 1)], axis=1)
    d1, d2 = d1.astype(float), d2.astype(float)
    f_left = np.stack([_left(c, c.cif, u, 0.0) for c in arms], axis=1)
    survival = [np.subtract(1.0, np.add(c.cif, c.cif_competing)) for c in arms]
    s_left = np.stack([_left(c, tuple(v), u, 1.0) for c, v in zip(arms, survival, strict=True)], axis=1)
    s_right = s_left * np.where(y > 0, 1 - (d1 + d2) / np.maximum(y, 1), 1.0)
    s_right[y == d1 + d2] = 0.0  # everyone still at risk in the arm failed: exactly 0, not rounding
    h = np.divide(y, s_left, out=np.zeros_like(y), where=y > 0)  # an arm with no one at risk drops out
    r = h * (1 - f_left)
    total_h, total_d1 = h.sum(axis=1), d1.sum(axis=1)
    score = float(np.sum(d1[:, 1] - total_d1 * r[:, 1] / r.sum(axis=1)))
    pooled = np.cumsum(total_d1 / total_h)  # F(t) under H0, right-continuous
    pooled_left = np.concatenate([[0.0], pooled[:-1]])
    a = np.stack([h[:, 1] * (k == 1) - h[:, 1] * h[:, k] / total_h for k in (0, 1)], axis=1)  # a_1k
    c = np.cumsum(a * (total_d1 / (total_h * (1 - pooled_left)))[:, None], axis=0)
    tail = c[-1] - c  # c_1k(inf) - c_1k(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        t4_cause = np.where(s_right > 0, 1 - (1 - pooled[:, None]) / s_right, 1.0)
        tie1 = np.where(total_d1[:, None] > 1, 1 - (total_d1[:, None] - 1) / (total_h[:, None] * s_left - 1), 1.0)
        weight1 = np.where(y > 0, tie1 * total_d1[:, None] / (total_h[:, None] * h), 0.0)
        t4_rival = np.where(s_right > 0, (1 - pooled[:, None]) / s_right, 0.0)
        tie2 = np.where(d2 > 1, 1 - (d2 - 1) / (y - 1), 1.0)
        weight2 = np.where((s_right > 0) & (d2 > 0), tie2 * s_left**2 * d2 / y**2, 0.0)
    variance = np.sum((a + t4_cause * tail) ** 2 * weight1) + np.sum((t4_rival * tail) ** 2 * weight2)
    return score, float(variance)


def gray_test(times: Values, status: Values, group: Values, cause: int = 1, strata: Values | None = None) -> GrayTest:
    """Gray's (1988) test of equal cumulative incidence of ``cause`` in the two arms, rho = 0 (as
    cmprsk::cuminc). With ``strata`` (one label per participant, none missing) the scores and variances of
    the strata are added before the statistic is formed."""
    data = _data(times, status, group, cause)
    labels = np.zeros(data.times.size, dtype=int)
    if strata is not None:
        if len(strata) != data.times.size:
            raise ValueError(f"strata must have one label per participant ({data.times.size}), got {len(strata)}")
        if any(v is None or v != v for v in strata):  # None or NaN (NaN != NaN)
            raise ValueError("strata must have a label for every participant (found a missing one)")
        labels = np.unique(np.asarray([str(v) for v in strata]), return_inverse=True)[1]
    score = variance = 0.0
    for k in np.unique(labels):
        keep = labels == k
        if (data.status[keep] > 0).any():
            part = _gray_stratum(data.times[keep], data.status[keep], data.group[keep], cause)
            score, variance = score + part[0], variance + part[1]
    if not variance > 0:
        raise ValueError("Gray's test has no variance: no stratum has events of interest with both arms at risk")
    statistic = score**2 / variance
    arm = {k: data.group == k for k in (0, 1)}
    return GrayTest(
        cause=cause,
        statistic=statistic,
        df=1,
        p_value=float(stats.chi2.sf(statistic, 1)),
        score=score,
        variance=variance,
        **_counts(data),
        n_strata=int(np.unique(labels).size),
        cif_treatment=_aalen_johansen(data.times[arm[1]], data.status[arm[1]], cause),
        cif_reference=_aalen_johansen(data.times[arm[0]], data.status[arm[0]], cause),
    )


# --- Fine-Gray ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FineGrayResult(Result):
    """Fine-Gray subdistribution hazard ratio of treatment vs reference for ``cause``.

    ``log_shr`` with its robust (sandwich) ``se`` as cmprsk::crr reports it, z, p and CI exp(log_shr -/+ z se);
    ``se_model`` is the model-based SE from the inverse information alone. ``covariates`` name the other
    columns of the model, with their coefficients and robust SEs in the same order."""

    cause: int
    shr: float
    log_shr: float
    se: float
    se_model: float
    z: float
    p_value: float
    level: float
    ci_lower: float
    ci_upper: float
    covariates: tuple[str, ...]
    covariate_log_shr: tuple[float, ...]
    covariate_se: tuple[float, ...]
    log_pseudo_likelihood: float
    iterations: int
    n: int
    n_treatment: int
    n_reference: int
    n_events: int
    n_competing: int
    n_censored: int

    def summary(self) -> str:
        adjusted = f", adjusted for {', '.join(self.covariates)}" if self.covariates else ""
        return (
            f"Fine-Gray subdistribution HR for cause {self.cause}: {fmt(self.shr)} ({fmt_pct(self.level)} CI "
            f"{fmt(self.ci_lower)} to {fmt(self.ci_upper)}), {fmt_p(self.p_value)}{adjusted}; n={self.n}, "
            f"{self.n_events} events, {self.n_competing} competing, {self.n_censored} censored"
        )


def _censoring_left(t: FloatArray, s: FloatArray, at: FloatArray) -> FloatArray:
    """G(at-): the Kaplan-Meier curve of the censoring distribution (censoring the event, every failure a
    censored observation, at risk at its own time) just before each time in ``at``."""
    km = cumulative_incidence(t, np.where(s == 0, "censoring", "failure"), "censoring", (), censored="failure")
    return 1 - _left(km, km.cif, at, 0.0)


def _fine_gray_fit(data: _Data, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, float, int]:
    """Own code, since no Python library fits the Fine-Gray model (lifelines, statsmodels and scikit-survival
    have none; a weighted Cox fit on expanded data gives the estimate but not crr's variance). Newton-Raphson
    with step halving on the weighted Breslow partial likelihood; returns beta, the inverse information, the
    robust variance, the log pseudo-likelihood and the iterations."""
    t, s, interest, competing = data.times, data.status, data.interest, data.competing
    fail, counts = np.unique(t[interest], return_counts=True)
    d = counts.astype(float)
    g_own, g_fail = _censoring_left(t, s, t), _censoring_left(t, s, fail)
    after = competing[None, :] & (t[None, :] < fail[:, None])  # had the competing event before t: kept, weighted
    ratio = np.where(after, g_fail[:, None] / np.where(g_own > 0, g_own, 1.0)[None, :], 0.0)
    w = np.where(t[None, :] >= fail[:, None], 1.0, ratio)  # (failure time, participant)
    xc = x - x.mean(axis=0)  # centring changes no coefficient, only guards exp() against overflow
    x_events = xc[interest].sum(axis=0)

    def moments(beta: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        wr = w * np.exp(xc @ beta)[None, :]
        s0 = wr.sum(axis=1)
        xbar = (wr @ xc) / s0[:, None]
        s2 = np.einsum("tj,jk,jl->tkl", wr, xc, xc) / s0[:, None, None]
        info = np.einsum("t,tkl->kl", d, s2 - xbar[:, :, None] * xbar[:, None, :])
        return float(x_events @ beta - d @ np.log(s0)), x_events - d @ xbar, info

    beta: FloatArray = np.zeros(x.shape[1])
    loglik, score, info = moments(beta)
    iterations, step = 0, np.ones_like(beta)
    while np.max(np.abs(step)) >= 1e-10:
        if iterations == MAX_ITERATIONS:
            raise ValueError(
                "the Fine-Gray fit did not converge (an arm or covariate level without events of interest?)"
            )
        if np.linalg.matrix_rank(info) < info.shape[0]:
            raise ValueError("the Fine-Gray information matrix is singular: a constant or collinear covariate")
        step = np.linalg.solve(info, score).astype(np.float64)
        trial = moments(beta + step)
        for _ in range(30):  # halve the step until the pseudo-likelihood does not fall
            if math.isfinite(trial[0]) and trial[0] >= loglik - 1e-12:
                break
            step = step / 2
            trial = moments(beta + step)
        beta, iterations = beta + step, iterations + 1
        loglik, score, info = trial
    inverse = np.linalg.inv(info).astype(np.float64)
    robust = inverse @ _meat(data, xc, w, beta, d, fail) @ inverse
    return beta, inverse, robust, loglik, iterations


def _meat(data: _Data, xc: FloatArray, w: FloatArray, beta: FloatArray, d: FloatArray, fail: FloatArray) -> FloatArray:
    """Sum over participants of (eta_i + psi_i)(eta_i + psi_i)' (Fine & Gray 1999, section 4).

    eta_i = sum_t (Z_i - Zbar(t)) [dN_i(t) - w_i(t) exp(b Z_i) dL(t)], dL(t) = d(t) / S0(t), the score's own
    martingale part; psi_i = sum_u q(u) / pi(u) [dNc_i(u) - I(T_i >= u) dNc(u) / pi(u)] for estimating G, at
    each censoring time u with pi(u) at risk, q(u) = sum_{t >= u} sum_{j competing, T_j < u}
    w_j(t) exp(b Z_j) (Z_j - Zbar(t)) dL(t)."""
    t, s = data.times, data.status
    risk = np.exp(xc @ beta)
    s0 = w @ risk
    xbar, hazard = (w * risk[None, :]) @ xc / s0[:, None], d / s0
    eta = -risk[:, None] * (xc * (w.T @ hazard)[:, None] - w.T @ (hazard[:, None] * xbar))
    eta[data.interest] += xc[data.interest] - xbar[np.searchsorted(fail, t[data.interest])]
    censor, n_censor = np.unique(t[s == 0], return_counts=True)
    if censor.size == 0:
        return eta.T @ eta
    pi = np.sum(t[None, :] >= censor[:, None], axis=1).astype(float)
    later = (fail[None, :] >= censor[:, None]).astype(float)  # (u, t): t >= u
    before = (data.competing[None, :] & (t[None, :] < censor[:, None])).astype(float)  # (u, j)
    m = np.where(data.competing[None, :] & (t[None, :] < fail[:, None]), w, 0.0) * risk[None, :] * hazard[:, None]
    q = ((later @ m) * before) @ xc - ((m @ before.T).T * later) @ xbar
    increments = np.cumsum(q * (n_censor / pi**2)[:, None], axis=0)
    psi = -increments[np.searchsorted(censor, t, side="right") - 1]
    psi[np.searchsorted(censor, t, side="right") == 0] = 0.0
    own = s == 0
    place = np.searchsorted(censor, t[own])
    psi[own] += q[place] / pi[place][:, None]
    u: FloatArray = eta + psi
    return u.T @ u


def fine_gray(
    times: Values,
    status: Values,
    group: Values,
    covariates: Mapping[str, Values] | None = None,
    cause: int = 1,
    level: float = 0.95,
) -> FineGrayResult:
    """Fine-Gray regression of the subdistribution hazard of ``cause`` on the arm (and on numeric
    ``covariates``, entered as given like crr's cov1: code a category as 0/1 columns yourself). One censoring
    distribution for everyone, as crr's default."""
    level = check_level(level)
    data = _data(times, status, group, cause)
    columns = [data.group]
    for name, values in (covariates or {}).items():
        column = floats(values, f"covariates[{name!r}]")
        if column.size != data.times.size or not np.isfinite(column).all():
            raise ValueError(f"covariates[{name!r}] must hold a finite number for each of the {data.times.size}")
        columns.append(column)
    _events_in_both_arms(data)
    beta, inverse, robust, loglik, iterations = _fine_gray_fit(data, np.column_stack(columns))
    se = np.sqrt(np.diag(robust))
    z = float(beta[0] / se[0])
    half = float(stats.norm.isf((1 - level) / 2)) * float(se[0])
    shr, lower, upper = _ratio(float(beta[0]), half, "subdistribution hazard ratio")
    return FineGrayResult(
        cause=cause,
        shr=shr,
        log_shr=float(beta[0]),
        se=float(se[0]),
        se_model=math.sqrt(inverse[0, 0]),
        z=z,
        p_value=float(2 * stats.norm.sf(abs(z))),
        level=level,
        ci_lower=lower,
        ci_upper=upper,
        covariates=tuple(covariates or {}),
        covariate_log_shr=tuple(float(b) for b in beta[1:]),
        covariate_se=tuple(float(v) for v in se[1:]),
        log_pseudo_likelihood=loglik,
        iterations=iterations,
        **_counts(data),
    )


# --- cause-specific Cox ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CauseSpecificCox(Result):
    """Cause-specific hazard ratio of treatment vs reference for ``cause``: Cox model on the arm with the
    competing events censored, Efron ties, model-based SE, Wald z, p and CI exp(log_hr -/+ z se)."""

    cause: int
    hr: float
    log_hr: float
    se: float
    z: float
    p_value: float
    level: float
    ci_lower: float
    ci_upper: float
    n: int
    n_treatment: int
    n_reference: int
    n_events: int
    n_competing: int
    n_censored: int

    def summary(self) -> str:
        return (
            f"Cause-specific HR for cause {self.cause} (competing events censored): {fmt(self.hr)} "
            f"({fmt_pct(self.level)} CI {fmt(self.ci_lower)} to {fmt(self.ci_upper)}), {fmt_p(self.p_value)}; "
            f"n={self.n}, {self.n_events} events, {self.n_competing} competing, {self.n_censored} censored"
        )


def cause_specific_cox(
    times: Values, status: Values, group: Values, cause: int = 1, level: float = 0.95
) -> CauseSpecificCox:
    """Cox proportional hazards model of the cause-specific hazard of ``cause`` on the arm (lifelines)."""
    level = check_level(level)
    data = _data(times, status, group, cause)
    _events_in_both_arms(data)
    frame = pd.DataFrame({"time": data.times, "event": data.interest.astype(int), "group": data.group})
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        try:
            fitter = CoxPHFitter().fit(frame, duration_col="time", event_col="event")
        except ConvergenceError as error:
            raise ValueError(f"group: the cause-specific Cox fit failed (separating?): {error}") from None
    for warning in caught:  # lifelines warns, and goes on, when the likelihood has no finite maximum
        text = str(warning.message)
        if text.startswith(("Newton-Raphson", "The log-likelihood is getting suspiciously")):
            raise ValueError(
                f"group: the cause-specific Cox fit has no finite maximum (separation?): {text.splitlines()[0]}"
            )
    log_hr, se = float(fitter.params_["group"]), float(fitter.standard_errors_["group"])
    z = log_hr / se
    half = float(stats.norm.isf((1 - level) / 2)) * se
    hr, lower, upper = _ratio(log_hr, half, "cause-specific hazard ratio")
    return CauseSpecificCox(
        cause=cause,
        hr=hr,
        log_hr=log_hr,
        se=se,
        z=z,
        p_value=float(2 * stats.norm.sf(abs(z))),
        level=level,
        ci_lower=lower,
        ci_upper=upper,
        **_counts(data),
    )
