"""Make reference.json: the values test_statistics.py checks trialwright.analysis.statistics against.

Nothing here imports trialwright. Each value comes from an independent computation:

* ANCOVA -- statsmodels' formula OLS (``followup ~ baseline + group + C(site) + C(sex)``) after dropping
  incomplete rows, on the log scale for the skewed data set;
* Wilson intervals -- statsmodels ``proportion_confint(method="wilson")``;
* Hodges-Lehmann -- the estimate as the median of the n1*n2 differences (Python's ``statistics.median``)
  and the interval by brute-force inversion of scipy's Mann-Whitney test: every midpoint between two
  neighbouring distinct pairwise differences is tested, and the interval runs between the differences
  that bound the run of midpoints the test does not reject;
* cumulative incidence -- statsmodels ``CumIncidenceRight`` (Aalen-Johansen).

The data sets are drawn from fixed seeds, rounded, and stored beside the results, so the tests never depend
on a random generator. Run from the repository root:

    .venv/bin/python tests/spec/analysis/reference/make_reference.py
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy
import statsmodels
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.duration.survfunc import CumIncidenceRight
from statsmodels.stats.proportion import proportion_confint

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "reference.json"
EXACT_LIMIT = 50  # the rule under test: exact when untied and both samples are smaller than this


def _none_for_nan(values: list[Any]) -> list[Any]:
    return [None if isinstance(v, float) and np.isnan(v) else v for v in values]


def ancova_data() -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(20240611)
    n = 30
    group = np.repeat([1, 0], n // 2)
    baseline = np.round(rng.normal(50, 10, n), 2)
    followup = np.round(10 + 0.6 * baseline - 5 * group + rng.normal(0, 6, n), 2)
    plain = {"followup": followup.tolist(), "baseline": baseline.tolist(), "group": group.tolist()}

    n = 48
    group = rng.permutation(np.repeat([1, 0], n // 2))
    site = rng.choice(["RAZ", "GOL", "IMA"], n).astype(object)
    sex = rng.choice(["F", "M"], n).astype(object)
    baseline = np.round(rng.normal(120, 25, n), 1)
    followup = np.round(
        20 + 0.7 * baseline - 8 * group + 6 * (site == "GOL") - 4 * (sex == "M") + rng.normal(0, 12, n), 1
    )
    followup[[3, 17]] = np.nan
    baseline[[9]] = np.nan
    site[[22, 40]] = None
    covariates = {
        "followup": _none_for_nan(followup.tolist()),
        "baseline": _none_for_nan(baseline.tolist()),
        "group": group.tolist(),
        "site": site.tolist(),
        "sex": sex.tolist(),
        "country": ["IR"] * n,
    }

    n = 36
    group = np.repeat([1, 0], n // 2)
    z = rng.normal(0, 1, n)
    baseline = np.round(np.exp(1.5 + 0.9 * z), 3)
    followup = np.round(np.exp(1.2 + 0.6 * 0.9 * z - 0.4 * group + rng.normal(0, 0.7, n)), 3)
    skewed = {"followup": followup.tolist(), "baseline": baseline.tolist(), "group": group.tolist()}
    return {"plain": plain, "covariates_and_missing": covariates, "log": skewed}


def ancova_reference(data: dict[str, Any], factors: list[str], log: bool) -> dict[str, Any]:
    frame = pd.DataFrame({key: data[key] for key in ("followup", "baseline", "group", *factors)})
    n_all = len(frame)
    frame = frame.dropna()
    if log:
        frame["followup"] = np.log(frame["followup"])
        frame["baseline"] = np.log(frame["baseline"])
    terms = ["baseline", "group", *(f"C({f})" for f in factors if frame[f].nunique() > 1)]
    fit = smf.ols("followup ~ " + " + ".join(terms), data=frame).fit()
    lower, upper = fit.conf_int(alpha=0.05).loc["group"]
    return {
        "estimate": fit.params["group"],
        "se": fit.bse["group"],
        "df": int(fit.df_resid),
        "t": fit.tvalues["group"],
        "p_value": fit.pvalues["group"],
        "ci_lower": lower,
        "ci_upper": upper,
        "baseline_slope": fit.params["baseline"],
        "residual_sd": float(np.sqrt(fit.scale)),
        "correlation": float(frame["baseline"].corr(frame["followup"])),
        "n_treatment": int((frame["group"] == 1).sum()),
        "n_reference": int((frame["group"] == 0).sum()),
        "n_dropped": n_all - len(frame),
    }


def hl_data() -> dict[str, dict[str, list[float]]]:
    rng = np.random.default_rng(19720601)
    while True:
        x, y = np.round(rng.normal(1.0, 1, 8), 2), np.round(rng.normal(0, 1, 7), 2)
        if np.unique(np.concatenate([x, y])).size == 15:
            break
    tied_x, tied_y = rng.integers(0, 8, 12) + 2, rng.integers(0, 8, 10)
    large_x, large_y = rng.normal(0.5, 1, 60), rng.normal(0, 1, 55)
    return {
        "exact_untied": {"x": x.tolist(), "y": y.tolist()},
        "normal_tied": {"x": tied_x.astype(float).tolist(), "y": tied_y.astype(float).tolist()},
        "normal_large": {"x": large_x.tolist(), "y": large_y.tolist()},
    }


def hl_by_inversion(x: list[float], y: list[float], level: float = 0.95) -> dict[str, Any]:
    xa, ya = np.asarray(x), np.asarray(y)
    pooled = np.concatenate([xa, ya])
    exact = len(x) < EXACT_LIMIT and len(y) < EXACT_LIMIT and np.unique(pooled).size == pooled.size
    method = "exact" if exact else "asymptotic"
    differences = sorted({xi - yj for xi in x for yj in y})
    probes = [differences[0] - 1.0]
    probes += [(a + b) / 2 for a, b in itertools.pairwise(differences)]
    probes += [differences[-1] + 1.0]
    accepted = [
        i
        for i, d in enumerate(probes)
        if stats.mannwhitneyu(xa - d, ya, alternative="two-sided", method=method).pvalue > 1 - level
    ]
    assert accepted == list(range(accepted[0], accepted[-1] + 1)), "the accepted shifts must be one run"
    # probe i lies between differences[i - 1] and differences[i]
    lower = None if accepted[0] == 0 else differences[accepted[0] - 1]
    upper = None if accepted[-1] == len(probes) - 1 else differences[accepted[-1]]
    test = stats.mannwhitneyu(xa, ya, alternative="two-sided", method=method)
    return {
        "shift": statistics.median([xi - yj for xi in x for yj in y]),
        "ci_lower": lower,
        "ci_upper": upper,
        "method": "exact" if exact else "normal",
        "u_statistic": float(test.statistic),
        "p_value": float(test.pvalue),
    }


def wilson_reference() -> list[dict[str, Any]]:
    rows = []
    for n in (1, 7, 20, 85, 400):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for level in (0.9, 0.95, 0.99):
                lower, upper = proportion_confint(k, n, alpha=1 - level, method="wilson")
                rows.append({"k": k, "n": n, "level": level, "lower": float(lower), "upper": float(upper)})
    return rows


def cif_reference() -> dict[str, Any]:
    rng = np.random.default_rng(2011)
    n = 40
    days = rng.integers(1, 29, n)
    events = rng.choice(["discharged", "died", "censored"], n, p=[0.65, 0.15, 0.2])
    code = {"censored": 0, "discharged": 1, "died": 2}
    with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels' standard errors divide by zero at the end
        fit = CumIncidenceRight(days.astype(float), np.array([code[e] for e in events]))
    return {
        "times": days.tolist(),
        "events": events.tolist(),
        "check_times": fit.times.tolist(),
        "cif_discharged": fit.cinc[0].tolist(),
        "cif_died": fit.cinc[1].tolist(),
    }


def build() -> dict[str, Any]:
    data = ancova_data()
    hl = hl_data()
    return {
        "made_by": "tests/spec/analysis/reference/make_reference.py",
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
            "pandas": pd.__version__,
        },
        "ancova": {
            name: {
                "data": data[name],
                "factors": factors,
                "log": log,
                "result": ancova_reference(data[name], factors, log),
            }
            for name, factors, log in (
                ("plain", [], False),
                ("covariates_and_missing", ["site", "sex", "country"], False),
                ("log", [], True),
            )
        },
        "hodges_lehmann": {name: {"data": d, "result": hl_by_inversion(d["x"], d["y"])} for name, d in hl.items()},
        "wilson": wilson_reference(),
        "cumulative_incidence": cif_reference(),
    }


def main() -> None:
    reference = build()
    OUTPUT.write_text(json.dumps(reference, indent=1, default=float) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
