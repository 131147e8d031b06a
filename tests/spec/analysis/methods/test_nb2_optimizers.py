"""The negative binomial (NB2) rate ratio when the counts are barely overdispersed: the maximum is found by the first
optimizer that reaches it (BFGS then Newton-Raphson; BFGS; Nelder-Mead then Newton-Raphson; Nelder-Mead), accepted
only when the optimizer converged, the gradient is ~0 and the information gives finite SEs; alpha at the boundary
(essentially 0) is said; no optimizer reaching a maximum is still a refusal, never a Poisson fit put in its place.

Walk 7 (F5): relapses at week 12, 11 in 36 (LUM) vs 3 in 34 (PBO), adjusted for stratum, were refused as "did not
converge" while statsmodels' NB2 by BFGS converges at alpha 1.4e-5 with a rate ratio of 3.4956."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.discrete.discrete_model import NegativeBinomial

from trialwright.analysis import sentences
from trialwright.analysis.estimands import counts
from trialwright.analysis.methods.binary import negative_binomial
from trialwright.protocol.estimands import Estimator
from trialwright.web.i18n import translations

#: The walk's relapse counts at week 12 by arm and stratum (site, EDSS band), as its CSV export with arms holds them
WALK7 = {
    ("LUM", "LIS <4"): [0] * 9 + [1],
    ("LUM", "LIS >=4"): [0] * 4 + [1, 1],
    ("LUM", "TBZ <4"): [0] * 7 + [1, 1, 1, 2],
    ("LUM", "TBZ >=4"): [0] * 6 + [1, 1, 1],
    ("PBO", "LIS <4"): [0] * 8 + [1],
    ("PBO", "LIS >=4"): [0] * 5 + [1],
    ("PBO", "TBZ <4"): [0] * 11,
    ("PBO", "TBZ >=4"): [0] * 7 + [1],
}


def _walk7() -> pd.DataFrame:
    rows = [(arm == "LUM", stratum, y) for (arm, stratum), ys in WALK7.items() for y in ys]
    return pd.DataFrame(rows, columns=["treat", "stratum", "y"]).astype({"treat": int, "y": float})


def _design(frame: pd.DataFrame) -> pd.DataFrame:
    design = pd.get_dummies(frame[["treat", "stratum"]], columns=["stratum"], drop_first=True, dtype=float)
    return sm.add_constant(design)


def test_the_walks_relapses_get_the_nb2_rate_ratio_at_the_boundary() -> None:
    frame = _walk7()
    assert (frame.groupby("treat").y.sum().tolist(), frame.groupby("treat").size().tolist()) == ([3, 11], [34, 36])
    result = negative_binomial(frame.y.tolist(), frame.treat.tolist(), covariates={"stratum": frame.stratum.tolist()})

    # statsmodels' NB2 by BFGS, fitted here on its own design (pandas dummies, the walk's script)
    design = _design(frame)
    model = NegativeBinomial(frame.y, design, loglike_method="nb2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(method="bfgs", maxiter=5000, disp=0)
    assert fit.mle_retvals["converged"]
    assert result.estimate == pytest.approx(math.exp(fit.params["treat"]), rel=1e-6)
    assert result.estimate == pytest.approx(3.4956, abs=5e-5)  # the walk's figure
    assert result.alpha == pytest.approx(fit.params["alpha"], rel=1e-3) and result.alpha < 1e-4
    assert result.alpha_at_boundary and result.optimizer == "bfgs"
    # the likelihood still rises as alpha falls: the maximum is at the boundary, and the SE holds alpha there
    params = fit.params.to_numpy()
    assert model.score(params)[-1] < 0
    information = -model.hessian(params)
    se = math.sqrt(np.linalg.inv(information[:-1, :-1])[1, 1])
    assert result.se == pytest.approx(se, rel=1e-6)
    z = stats.norm.isf(0.025)
    assert result.ci_lower == pytest.approx(math.exp(fit.params["treat"] - z * se), rel=1e-6)
    assert result.ci_upper == pytest.approx(math.exp(fit.params["treat"] + z * se), rel=1e-6)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(fit.params["treat"]) / se), rel=1e-6)

    # at alpha -> 0 the NB2 model is the Poisson model: a Poisson GLM gives the near-equal rate ratio (a sanity check
    # only; the result is the NB2 fit's)
    poisson = sm.GLM(frame.y, design, family=sm.families.Poisson()).fit()
    assert result.estimate == pytest.approx(math.exp(poisson.params["treat"]), rel=1e-4)
    assert result.estimate != math.exp(poisson.params["treat"])
    assert result.se == pytest.approx(poisson.bse["treat"], rel=1e-4)
    assert result.p_value == pytest.approx(poisson.pvalues["treat"], rel=1e-3)
    assert (result.ci_lower, result.ci_upper) == pytest.approx((0.9749, 12.534), abs=1e-3)


def test_the_count_estimand_says_the_optimizer_and_the_boundary() -> None:
    frame = _walk7()
    rows: list[tuple[Any, int]] = [
        (SimpleNamespace(group="LUM" if t else "PBO", stratum=s), int(y))
        for t, s, y in frame.itertuples(index=False)
    ]
    comparison = counts._compared(Estimator.NEGATIVE_BINOMIAL, rows, "LUM", "PBO", "Full analysis set", True)  # type: ignore[arg-type]
    assert comparison.estimate == pytest.approx(3.4956, abs=5e-5)
    assert comparison.note == (
        "dispersion alpha=1.38e-05, at the boundary (essentially 0: no overdispersion): the interval holds alpha "
        "there; NB2 maximum likelihood by BFGS (Newton-Raphson from its optimum failed)"
    )
    # said again in Persian from the catalog, piece by piece
    fa = translations("fa").gettext
    said = sentences.again(comparison.note, fa, lambda name, english: english)
    assert said == fa("; ").join([
        fa(sentences.NB2_BOUNDARY) % {"p": "1.38e-05"},
        fa(sentences.NB2_BY["bfgs"]),
    ])  # fmt: skip
    assert said != comparison.note


def test_an_overdispersed_count_keeps_the_inner_maximum_by_bfgs_then_newton() -> None:
    rng = np.random.default_rng(5)
    group = np.arange(200) % 2
    counts_ = rng.negative_binomial(1.0, 1.0 / (1.0 + np.exp(0.5 + 0.4 * group))).astype(float)
    result = negative_binomial(counts_, group)
    model = NegativeBinomial(counts_, sm.add_constant(group.astype(float)), loglike_method="nb2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(method="newton", start_params=model.fit(method="bfgs", disp=0).params, disp=0)
    assert result.optimizer == "bfgs+newton" and not result.alpha_at_boundary
    assert result.alpha == pytest.approx(fit.params[-1], rel=1e-6) and result.alpha > 0.5
    assert result.se == pytest.approx(fit.bse[1], rel=1e-6)


def test_no_optimizer_reaching_a_maximum_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _walk7()
    args = (frame.y.tolist(), frame.treat.tolist(), None, {"stratum": frame.stratum.tolist()})
    tried: list[str] = []

    def unconverged(self: NegativeBinomial, method: str = "", **_: Any) -> SimpleNamespace:
        tried.append(method)
        return SimpleNamespace(params=np.full(self.exog.shape[1] + 1, 0.5), mle_retvals={"converged": False})

    monkeypatch.setattr(NegativeBinomial, "fit", unconverged)
    with pytest.raises(ValueError, match=r"did not reach a maximum by any optimizer.*no Poisson model is substituted"):
        negative_binomial(*args)
    assert tried == ["bfgs", "bfgs", "nm", "nm"]  # each first step, none converging

    def far_from_the_maximum(self: NegativeBinomial, method: str = "", **_: Any) -> SimpleNamespace:
        return SimpleNamespace(params=np.full(self.exog.shape[1] + 1, 0.5), mle_retvals={"converged": True})

    monkeypatch.setattr(NegativeBinomial, "fit", far_from_the_maximum)  # "converged" where the gradient is not 0
    with pytest.raises(ValueError, match="did not reach a maximum by any optimizer"):
        negative_binomial(*args)
