"""Finding the NB2 maximum likelihood estimate: which optimizers are tried, and when a fit is accepted.

The NB2 log-likelihood (Var = mu + alpha mu^2) is maximised by statsmodels' ``NegativeBinomial``; BFGS and
Nelder-Mead work on log(alpha), Newton-Raphson on alpha itself. Where the counts are barely overdispersed, or
underdispersed, the likelihood keeps rising as alpha falls to 0: the maximum is on the boundary (the Poisson limit
of the NB2 model), Newton-Raphson steps to a negative alpha and fails, while BFGS on log(alpha) stops where the
gradient in log(alpha) has vanished, at an alpha that is essentially 0. So optimizers are tried in turn
(``OPTIMIZERS``) and the first fit that passes every check is taken, never a Poisson fit put in its place:

* the optimizer reports convergence and every parameter is finite, with alpha > 0;
* the gradient of the log-likelihood in (beta, log alpha) is ~0 (below ``GRADIENT_TOL`` per participant);
* the gradient in alpha itself is ~0 too and the observed information (minus the Hessian in beta and alpha) is
  positive definite, its inverse giving finite standard errors (an inner maximum); or, alpha at the boundary, the
  likelihood still rises as alpha falls (its derivative in alpha < 0) while the extra variance alpha mu^2 is under
  ``BOUNDARY`` of the Poisson variance mu for every participant, and the information in beta alone (alpha held
  there) is positive definite: the SEs of beta are then those with alpha fixed at its boundary value, and the
  result says so.

A fit none of them gives raises ValueError (``sentences.NB2_FAILED``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from statsmodels.discrete.discrete_model import NegativeBinomial

from trialwright.analysis import sentences as say
from trialwright.analysis.methods.base import FloatArray

__all__ = ["BOUNDARY", "GRADIENT_TOL", "OPTIMIZERS", "NB2Fit", "fit_nb2"]

#: The optimizers tried, in order: statsmodels' method names, one after the other from the first's optimum
OPTIMIZERS: tuple[tuple[str, ...], ...] = (("bfgs", "newton"), ("bfgs",), ("nm", "newton"), ("nm",))
#: The largest |gradient| of the log-likelihood in (beta, log alpha), per participant, of an accepted fit
GRADIENT_TOL = 1e-4
#: alpha is at the boundary when alpha mu_i^2 is under this share of mu_i (the Poisson variance) for every i
BOUNDARY = 1e-3
_MAXITER = {"bfgs": 1000, "newton": 100, "nm": 20000}


@dataclass(frozen=True, slots=True)
class NB2Fit:
    """An accepted NB2 fit: the coefficients and alpha (last), the coefficients' SEs, the optimizers that gave it
    (statsmodels' names, in the order run) and whether alpha is at the boundary (its SEs then hold alpha fixed)."""

    params: FloatArray
    se: FloatArray
    optimizer: tuple[str, ...]
    at_boundary: bool


def fit_nb2(y: FloatArray, design: FloatArray, exposure: FloatArray | None) -> NB2Fit:
    """The NB2 maximum likelihood fit of y on the design (offset log(exposure)) by the first of ``OPTIMIZERS``
    whose fit passes the checks of this module's docstring; ValueError when none does."""
    model = NegativeBinomial(y, design, loglike_method="nb2", exposure=exposure)
    for steps in OPTIMIZERS:
        params = _run(model, steps)
        if params is not None and (checked := _accepted(model, params, y.size)) is not None:
            se, at_boundary = checked
            return NB2Fit(params, se, steps, at_boundary)
    raise ValueError(say.NB2_FAILED)


def _run(model: NegativeBinomial, steps: tuple[str, ...]) -> FloatArray | None:
    """The parameters the optimizers reach one after the other, or None when one fails or does not converge."""
    start = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence is checked explicitly
            for method in steps:
                fit = model.fit(method=method, maxiter=_MAXITER[method], start_params=start, disp=0)
                if not fit.mle_retvals.get("converged", False):
                    return None
                start = np.asarray(fit.params, dtype=float)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        return None
    return start


def _accepted(model: NegativeBinomial, params: FloatArray, n: int) -> tuple[FloatArray, bool] | None:
    """(SEs of the coefficients, at the boundary) when ``params`` is the maximum by the checks, else None."""
    alpha = float(params[-1])
    if not (np.isfinite(params).all() and alpha > 0):
        return None
    with np.errstate(all="ignore"):
        score = np.asarray(model.score(params), dtype=float)
        information = -np.asarray(model.hessian(params), dtype=float)
        mu = np.asarray(model.predict(params), dtype=float)
    if not (np.isfinite(score).all() and np.isfinite(information).all()):
        return None
    tol = GRADIENT_TOL * n
    if float(np.abs(score[:-1]).max()) > tol or alpha * abs(float(score[-1])) > tol:  # in beta and log(alpha)
        return None
    if abs(float(score[-1])) <= tol and (se := _standard_errors(information)) is not None:  # an inner maximum
        return se[:-1], False
    if score[-1] < 0 and alpha * float(mu.max()) < BOUNDARY:  # the maximum is at alpha -> 0, where the fit stands
        se = _standard_errors(information[:-1, :-1])
        if se is not None:
            return se, True
    return None


def _standard_errors(information: FloatArray) -> FloatArray | None:
    """sqrt(diag(information^-1)) when the information is positive definite, else None."""
    try:
        np.linalg.cholesky(information)
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return None
    variances = np.diag(covariance)
    if not (np.isfinite(variances).all() and (variances > 0).all()):
        return None
    return np.sqrt(variances)
