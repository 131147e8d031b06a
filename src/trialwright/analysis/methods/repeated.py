"""Mixed model for repeated measures (MMRM): the treatment effect at a declared visit from all post-baseline visits.

The model (Mallinckrodt et al., Drug Inf J 2008;42:303; EMA Guideline on missing data in confirmatory trials,
2010): value at post-baseline visit t ~ group x visit + baseline x visit (+ categorical stratification factors as
main effects or, with ``covariates_by_visit``, by visit); the residuals of one participant are multivariate
normal with a T x T covariance Sigma: ``unstructured`` (T(T+1)/2 parameters, the default regulators expect),
``compound_symmetry`` or ``ar1`` (rho^|s-t| over the ordered visits). Sigma is estimated by REML (Patterson &
Thompson 1971; Harville, JASA 1977;72:320) on every available observation: a participant with visits missing
contributes the visits they have, valid when data are missing at random (Rubin 1976). The treatment - reference
difference at each visit is the GLS estimate given the REML Sigma, with model-based SE and Satterthwaite (1946)
df as in SAS PROC MIXED ``ddfm=satterthwaite`` and the R package mmrm: df = 2 v^2 / (g' A g), v the variance of
the difference, g its gradient in the covariance parameters, A = 2 H^-1 (H the Hessian of -2 REML log-lik).

Own code, not statsmodels: statsmodels has no MMRM with an unstructured (or AR(1)) residual covariance for
unbalanced repeated measures (MixedLM models random effects only; GLS needs Sigma known). The -2 REML
log-likelihood, profiled over beta, is minimised with scipy.optimize (BFGS with the analytic gradient, then
Newton steps) over a Cholesky parameterisation Sigma = L L' (log diagonal), which keeps Sigma positive definite
without constraints; missing-visit patterns are processed as blocks. A fit that does not reach a proper,
identifiable REML optimum is refused with ValueError rather than reported.

Checks (tests/spec/analysis/methods/test_repeated.py): per-visit OLS ANCOVA for complete data (seemingly
unrelated regressions with identical regressors, Zellner 1962), statsmodels MixedLM for compound symmetry, SAS
PROC MIXED and R mmrm output for the mmrm package's fev_data, and MAR simulations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from trialwright.analysis.methods.base import (
    FloatArray,
    Result,
    Values,
    check_level,
    floats,
    fmt,
    fmt_p,
    fmt_pct,
    group_indicator,
    is_missing,
)

__all__ = ["COVARIANCES", "MmrmResult", "VisitEffect", "mmrm"]

COVARIANCES = ("unstructured", "compound_symmetry", "ar1")
_MAX_CONDITION = 1e6  # condition number of the REML Hessian beyond which a covariance parameter is not identified
_NEWTON_DECREMENT = 1e-8  # predicted further reduction of -2 REML log-likelihood at which the fit counts as converged


@dataclass(frozen=True, slots=True)
class VisitEffect(Result):
    """Treatment - reference difference at one visit, with Satterthwaite df, and who was observed there."""

    visit: str
    estimate: float
    se: float
    df: float
    t: float
    p_value: float
    ci_lower: float
    ci_upper: float
    n_treatment: int
    n_reference: int

    def summary(self) -> str:
        return (
            f"{self.visit}: {fmt(self.estimate)} (SE {fmt(self.se)}, df {self.df:.1f}, "
            f"CI {fmt(self.ci_lower)} to {fmt(self.ci_upper)}), {fmt_p(self.p_value)}"
        )


@dataclass(frozen=True, slots=True)
class MmrmResult(Result):
    """The MMRM treatment effect (treatment - reference) at ``at_visit`` plus the effect at every visit.

    ``df_method`` is "satterthwaite". ``covariance_matrix`` is the REML estimate of Sigma in ``visits`` order
    and ``reml_deviance`` the -2 REML log-likelihood (SAS's "-2 Res Log Like"). ``converged`` is always True:
    a fit that does not converge is refused. Counts: participants analysed per group (at least one value),
    observations used, rows with a missing value, participants with no post-baseline value, and participants
    dropped because group, baseline or a covariate was missing.
    """

    at_visit: str
    estimate: float
    se: float
    df: float
    df_method: str
    t: float
    p_value: float
    level: float
    ci_lower: float
    ci_upper: float
    visit_effects: tuple[VisitEffect, ...]
    visits: tuple[str, ...]
    covariance: str
    covariance_matrix: tuple[tuple[float, ...], ...]
    reml_deviance: float
    converged: bool
    iterations: int
    n_treatment: int
    n_reference: int
    n_observations: int
    n_missing_values: int
    n_without_outcome: int
    n_dropped: int
    baseline_adjusted: bool
    covariates: tuple[str, ...]
    covariates_dropped: tuple[str, ...]

    def summary(self) -> str:
        return (
            f"MMRM ({self.covariance}, REML, {self.df_method} df): difference at {self.at_visit} "
            f"{fmt(self.estimate)} ({fmt_pct(self.level)} CI {fmt(self.ci_lower)} to {fmt(self.ci_upper)}, "
            f"df {self.df:.1f}), {fmt_p(self.p_value)}; n={self.n_treatment} treatment, {self.n_reference} "
            f"reference, {self.n_observations} observations, {self.n_without_outcome} without outcome, "
            f"{self.n_dropped} dropped"
        )


# --- covariance structures: Sigma(theta) and dSigma/dtheta_k --------------------------------------------------


def _unstructured(theta: FloatArray, t: int) -> tuple[FloatArray, FloatArray]:
    rows, cols = np.tril_indices(t)
    values = np.where(rows == cols, np.exp(theta), theta)
    chol = np.zeros((t, t))
    chol[rows, cols] = values
    derivs = np.zeros((theta.size, t, t))
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        m = np.zeros((t, t))
        m[r, :] = values[k] * chol[:, c] if r == c else chol[:, c]  # (E_rc L')[r, :] = dL_rc * L[:, c]
        derivs[k] = m + m.T
    return chol @ chol.T, derivs


def _compound_symmetry(theta: FloatArray, t: int) -> tuple[FloatArray, FloatArray]:
    lower = -1.0 / (t - 1)  # the smallest correlation that keeps Sigma positive definite
    s = 1.0 / (1.0 + math.exp(-theta[1]))
    rho, v = lower + (1 - lower) * s, math.exp(theta[0])
    off = np.ones((t, t)) - np.eye(t)
    sigma = v * (np.eye(t) + rho * off)
    return sigma, np.stack([sigma, v * off * (1 - lower) * s * (1 - s)])


def _ar1(theta: FloatArray, t: int) -> tuple[FloatArray, FloatArray]:
    rho, v = math.tanh(theta[1]), math.exp(theta[0])
    lag = np.abs(np.subtract.outer(np.arange(t), np.arange(t)))
    sigma = v * rho**lag
    d_rho = np.where(lag > 0, lag * rho ** np.maximum(lag - 1, 0), 0.0) * v * (1 - rho**2)
    return sigma, np.stack([sigma, d_rho])


_STRUCTURES: dict[str, Callable[[FloatArray, int], tuple[FloatArray, FloatArray]]] = {
    "unstructured": _unstructured,
    "compound_symmetry": _compound_symmetry,
    "ar1": _ar1,
}


def _start(name: str, sigma: FloatArray) -> FloatArray:
    """Starting parameters from a rough covariance (pairwise residual moments), made positive definite."""
    t = sigma.shape[0]
    sd = np.sqrt(np.diag(sigma))
    corr = sigma / np.outer(sd, sd)
    if name == "unstructured":
        w, vecs = np.linalg.eigh(corr)
        corr = (vecs * np.maximum(w, 0.05 * w.max())) @ vecs.T
        corr /= np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
        chol = np.linalg.cholesky(corr * np.outer(sd, sd))
        rows, cols = np.tril_indices(t)
        values = chol[rows, cols]
        return np.where(rows == cols, np.log(np.abs(values)), values)
    v = float(np.mean(np.diag(sigma)))
    if name == "compound_symmetry":
        lower = -1.0 / (t - 1)
        rho = float(np.clip(np.mean(corr[~np.eye(t, dtype=bool)]), lower + 0.05 * (1 - lower), 0.95))
        s = (rho - lower) / (1 - lower)
        return np.array([math.log(v), math.log(s / (1 - s))])
    rho = float(np.clip(np.mean(np.diag(corr, 1)), -0.9, 0.9))
    return np.array([math.log(v), math.atanh(rho)])


# --- REML ---------------------------------------------------------------------------------------------------


class _Reml:
    """-2 REML log-likelihood of the GLS model over missing-visit patterns, with its analytic gradient."""

    def __init__(self, blocks: list[tuple[np.ndarray, FloatArray, FloatArray]], t: int, structure: str) -> None:
        self.blocks, self.t, self.structure = blocks, t, _STRUCTURES[structure]
        self.p = blocks[0][2].shape[2]
        self.n = sum(y.size for _, y, _ in blocks)

    def fit_beta(self, theta: FloatArray) -> tuple[FloatArray, FloatArray, list[tuple[FloatArray, FloatArray]], float]:
        """beta, Phi = (X'V^-1X)^-1, per-block (Sigma_o^-1, Sigma_o^-1 X), sum log|Sigma_i| + log|X'V^-1X|."""
        sigma, _ = self.structure(theta, self.t)
        xvx, xvy, logdet = np.zeros((self.p, self.p)), np.zeros(self.p), 0.0
        cache: list[tuple[FloatArray, FloatArray]] = []
        for idx, y, x in self.blocks:
            chol = np.linalg.cholesky(sigma[np.ix_(idx, idx)])
            inv = np.linalg.inv(chol)
            s_inv = inv.T @ inv
            sx = np.einsum("kl,mlp->mkp", s_inv, x)
            xvx += np.einsum("mkp,mkq->pq", x, sx)
            xvy += np.einsum("mkp,mk->p", sx, y)
            logdet += y.shape[0] * 2.0 * float(np.sum(np.log(np.diag(chol))))
            cache.append((s_inv, sx))
        chol_x = np.linalg.cholesky(xvx)
        phi = np.asarray(np.linalg.inv(xvx), dtype=np.float64)
        logdet += 2.0 * float(np.sum(np.log(np.diag(chol_x))))
        return np.asarray(phi @ xvy, dtype=np.float64), phi, cache, logdet

    def __call__(self, theta: FloatArray) -> tuple[float, FloatArray]:
        try:
            beta, phi, cache, logdet = self.fit_beta(theta)
        except np.linalg.LinAlgError:
            return math.inf, np.zeros_like(theta)
        _, derivs = self.structure(theta, self.t)
        g_sigma, rvr = np.zeros((self.t, self.t)), 0.0
        for (idx, y, x), (s_inv, sx) in zip(self.blocks, cache, strict=True):
            sr = (y - x @ beta) @ s_inv  # rows: Sigma_o^-1 r_i
            rvr += float(np.sum(sr * (y - x @ beta)))
            block = y.shape[0] * s_inv - sr.T @ sr - np.einsum("mkp,pq,mlq->kl", sx, phi, sx)
            g_sigma[np.ix_(idx, idx)] += block
        value = logdet + rvr + (self.n - self.p) * math.log(2 * math.pi)
        return value, np.einsum("kl,jkl->j", g_sigma, derivs)

    def hessian(self, theta: FloatArray) -> FloatArray:
        """Central differences of the analytic gradient, symmetrised."""
        h = np.zeros((theta.size, theta.size))
        for k in range(theta.size):
            step = 1e-4 * max(1.0, abs(theta[k]))
            up, down = theta.copy(), theta.copy()
            up[k] += step
            down[k] -= step
            h[:, k] = (self(up)[1] - self(down)[1]) / (2 * step)
        return (h + h.T) / 2

    def contrast_gradient(self, theta: FloatArray, phi: FloatArray, cache: list[Any], c: FloatArray) -> FloatArray:
        """d(c' Phi c)/d theta = sum_i w_i' dSigma_i w_i with w_i = Sigma_i^-1 X_i Phi c."""
        _, derivs = self.structure(theta, self.t)
        w_sum = np.zeros((self.t, self.t))
        for (idx, _, _), (_, sx) in zip(self.blocks, cache, strict=True):
            w = sx @ (phi @ c)
            w_sum[np.ix_(idx, idx)] += w.T @ w
        return np.asarray(np.einsum("kl,jkl->j", w_sum, derivs), dtype=np.float64)


def _optimise(reml: _Reml, theta: FloatArray) -> tuple[FloatArray, FloatArray, int]:
    """BFGS with the analytic gradient, then Newton steps; refuses when no proper optimum is reached."""
    with np.errstate(all="ignore"):
        found = optimize.minimize(reml, theta, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 1000})
    theta, iterations = np.asarray(found.x, dtype=float), int(found.nit)
    for _ in range(20):
        value, grad = reml(theta)
        hess = reml.hessian(theta)
        try:
            np.linalg.cholesky(hess)
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            raise ValueError(
                "REML did not converge: no proper minimum of the -2 REML log-likelihood (Hessian not positive "
                "definite: too few participants per visit pattern, or a correlation on the boundary)"
            ) from None
        decrement = float(grad @ step)
        if not math.isfinite(value) or decrement < _NEWTON_DECREMENT:
            break
        trial = theta - step
        if reml(trial)[0] > value + 1e-10:  # a Newton step that does not help: stop and judge where we are
            break
        theta, iterations = trial, iterations + 1
    if not math.isfinite(value) or decrement >= _NEWTON_DECREMENT:
        raise ValueError(f"REML did not converge (remaining Newton decrement {decrement:.3g}); no estimate given")
    if np.linalg.cond(hess) > _MAX_CONDITION:
        raise ValueError("REML did not converge to an identifiable optimum (the likelihood is flat in Sigma)")
    return theta, hess, iterations


# --- data ----------------------------------------------------------------------------------------------------


def _per_participant(name: str, values: Sequence[Any], rows: dict[Hashable, list[int]]) -> dict[Hashable, Any]:
    """The one value each participant carries on all their rows (None when missing); refused if it varies."""
    out: dict[Hashable, Any] = {}
    for pid, idx in rows.items():
        seen = {None if is_missing(values[i]) else values[i] for i in idx}
        if len(seen) > 1:
            raise ValueError(f"{name} must be the same on every row of a participant; participant {pid!r} has {seen}")
        out[pid] = seen.pop()
    return out


def _arms(groups: list[Any]) -> tuple[int, int]:
    return groups.count(1), groups.count(0)


def mmrm(
    participant: Values,
    visit: Values,
    value: Values,
    group: Values,
    baseline: Values | None,
    visits: Sequence[str],
    at_visit: str,
    covariates: Mapping[str, Values] | None = None,
    covariance: str = "unstructured",
    level: float = 0.95,
    *,
    covariates_by_visit: bool = False,
) -> MmrmResult:
    """MMRM of long data (one row per participant and post-baseline visit) with REML and Satterthwaite df.

    ``group`` is 1 (treatment), 0 (reference) or missing; ``baseline`` the participant's baseline value, or
    None for a model without baseline terms; ``visits`` the post-baseline visit labels in time order (every
    row's visit must be one of them; visits are compared as text). Group, baseline and covariates must be
    constant within a participant; a participant missing any of them is dropped and counted.
    """
    level = check_level(level)
    visits = tuple(str(v) for v in visits)
    if len(visits) < 2 or len(set(visits)) != len(visits):
        raise ValueError("visits must list at least two distinct post-baseline visits (for one visit use ancova)")
    if str(at_visit) not in visits:
        raise ValueError(f"at_visit {at_visit!r} is not one of visits {visits}")
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
    covariates = dict(covariates or {})
    y_all, g_all = floats(value, "value"), group_indicator(group)
    columns = [participant, visit, y_all, g_all, *covariates.values()]
    b_all = None if baseline is None else floats(baseline, "baseline")
    if b_all is not None:
        columns.append(b_all)
    if len({len(c) for c in columns}) != 1:
        raise ValueError("participant, visit, value, group, baseline and every covariate must have the same length")
    t = len(visits)
    position = {v: k for k, v in enumerate(visits)}
    unknown = sorted({str(v) for v in visit if is_missing(v) or str(v) not in position})
    if unknown:
        raise ValueError(f"visit holds labels not in visits: {unknown[:5]} (pass post-baseline visits only)")
    rows: dict[Hashable, list[int]] = {}
    for i, pid in enumerate(participant):
        if is_missing(pid):
            raise ValueError(f"participant is missing on row {i}")
        rows.setdefault(pid, []).append(i)
    for pid, idx in rows.items():
        if len({str(visit[i]) for i in idx}) != len(idx):
            raise ValueError(f"participant {pid!r} has more than one row for a visit")
    g = _per_participant("group", list(g_all), rows)
    b = _per_participant("baseline", list(b_all), rows) if b_all is not None else dict.fromkeys(rows, 0.0)
    cov = {
        name: _per_participant(name, [None if is_missing(x) else str(x) for x in vals], rows)
        for name, vals in covariates.items()
    }
    dropped = {pid for pid in rows if g[pid] is None or b[pid] is None or any(c[pid] is None for c in cov.values())}
    observed = {pid: [i for i in idx if not math.isnan(y_all[i])] for pid, idx in rows.items() if pid not in dropped}
    analysed = [pid for pid, idx in observed.items() if idx]
    if not any(g[p] == 1 for p in analysed) or not any(g[p] == 0 for p in analysed):
        raise ValueError("MMRM needs at least one participant with a post-baseline value in each group")

    used, not_used, dummies = [], [], []
    for name, per in cov.items():
        levels = sorted({per[p] for p in analysed})
        if len(levels) < 2:
            not_used.append(name)
            continue
        used.append(name)
        dummies.append({p: [float(per[p] == lv) for lv in levels[1:]] for p in analysed})
    scale = float(np.std(y_all[[i for p in analysed for i in observed[p]]]))
    if scale == 0:
        raise ValueError("value does not vary, so the MMRM has nothing to estimate")

    def design(pid: Hashable, k: int) -> list[float]:
        onehot = np.eye(t)[k]
        parts = [onehot, g[pid] * onehot] + ([float(b[pid]) * onehot] if b_all is not None else [])
        extra = np.array([x for d in dummies for x in d[pid]])
        parts.append(np.outer(onehot, extra).ravel() if covariates_by_visit else extra)
        return list(np.concatenate(parts))

    patterns: dict[tuple[int, ...], list[tuple[list[float], list[list[float]]]]] = {}
    for pid in analysed:
        obs = sorted(observed[pid], key=lambda i: position[str(visit[i])])
        ks = tuple(position[str(visit[i])] for i in obs)
        patterns.setdefault(ks, []).append(([y_all[i] / scale for i in obs], [design(pid, k) for k in ks]))
    together = np.zeros((t, t), dtype=int)
    for ks, members in patterns.items():
        together[np.ix_(ks, ks)] += len(members)
    if covariance == "unstructured" and (together == 0).any():
        r, c = np.argwhere(together == 0)[0]
        raise ValueError(
            f"no participant was observed at both {visits[r]} and {visits[c]}, so an unstructured covariance is "
            "not estimable; use compound_symmetry or ar1"
        )
    blocks = [(np.array(ks), np.array([y for y, _ in m]), np.array([x for _, x in m])) for ks, m in patterns.items()]
    stacked = np.concatenate([x.reshape(-1, x.shape[2]) for _, _, x in blocks])
    n_obs, p = stacked.shape
    if np.linalg.matrix_rank(stacked) < p or n_obs <= p:
        raise ValueError(
            f"the MMRM design is not estimable ({n_obs} observations, {p} terms): each visit needs observed "
            "participants in both groups, the baseline must vary at each visit, and covariates must not be "
            "confounded with group or visit"
        )

    # starting covariance: moments of the OLS residuals, pairwise over participants observed at both visits
    y_stacked = np.concatenate([y.ravel() for _, y, _ in blocks])
    resid = y_stacked - stacked @ np.linalg.lstsq(stacked, y_stacked, rcond=None)[0]
    wide, row, pos = np.full((len(analysed), t), np.nan), 0, 0
    for cols, y, _ in blocks:
        m, k = y.shape
        wide[np.ix_(np.arange(row, row + m), cols)] = resid[pos : pos + m * k].reshape(m, k)
        row, pos = row + m, pos + m * k
    seen_at, filled = (~np.isnan(wide)).astype(float), np.nan_to_num(wide)
    pairs = seen_at.T @ seen_at
    rough = np.where(pairs > 2, filled.T @ filled / np.maximum(pairs, 1), 0.0)
    rough[np.diag_indices(t)] = np.nanmean(wide**2, axis=0)
    reml = _Reml(blocks, t, covariance)
    theta, hess, iterations = _optimise(reml, _start(covariance, rough))
    beta, phi, cache, _ = reml.fit_beta(theta)
    h_inv = np.linalg.inv(hess)
    effects = []
    for k, name in enumerate(visits):
        c = np.zeros(p)
        c[t + k] = 1.0
        var = float(phi[t + k, t + k])
        grad = reml.contrast_gradient(theta, phi, cache, c)
        df = var**2 / float(grad @ h_inv @ grad)
        est, se = float(beta[t + k]) * scale, math.sqrt(var) * scale
        half = float(stats.t.ppf(0.5 + level / 2, df)) * se
        seen = [g[p_] for p_ in analysed if any(position[str(visit[i])] == k for i in observed[p_])]
        p_value = float(2 * stats.t.sf(abs(est / se), df))
        effects.append(VisitEffect(name, est, se, df, est / se, p_value, est - half, est + half, *_arms(seen)))
    chosen = effects[position[str(at_visit)]]
    sigma = reml.structure(theta, t)[0] * scale**2
    deviance = reml(theta)[0] + 2 * (n_obs - p) * math.log(scale)
    return MmrmResult(
        at_visit=str(at_visit),
        estimate=chosen.estimate,
        se=chosen.se,
        df=chosen.df,
        df_method="satterthwaite",
        t=chosen.t,
        p_value=chosen.p_value,
        level=level,
        ci_lower=chosen.ci_lower,
        ci_upper=chosen.ci_upper,
        visit_effects=tuple(effects),
        visits=visits,
        covariance=covariance,
        covariance_matrix=tuple(tuple(float(x) for x in line) for line in sigma),
        reml_deviance=float(deviance),
        converged=True,
        iterations=iterations,
        n_treatment=_arms([g[p_] for p_ in analysed])[0],
        n_reference=_arms([g[p_] for p_ in analysed])[1],
        n_observations=int(n_obs),
        n_missing_values=int(sum(1 for pid in rows if pid not in dropped for i in rows[pid] if math.isnan(y_all[i]))),
        n_without_outcome=len(observed) - len(analysed),
        n_dropped=len(dropped),
        baseline_adjusted=b_all is not None,
        covariates=tuple(used),
        covariates_dropped=tuple(not_used),
    )
