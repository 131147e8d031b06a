"""Walk 4: the primary and secondary numbers recomputed from the CSV export alone (statsmodels, scipy).

Usage: python walk4.independent.py EXPORT_CSV_DIR [results.json]
Reads participants.csv (arm, stratum) and forms/acq.csv, forms/adherence.csv, forms/exacerbation.csv of
`trialwright export csv --with-arms`; prints the ANCOVA of the week-12 asthma control score on arm, baseline score
and stratum (ITT), the same in the per-protocol set as the docs define it (analysis.md: treated, never
adherence.poor_adherence = yes, week12 held in its window), a mixed model with a random intercept (compound
symmetry, for orientation against the unstructured MMRM), and the Newcombe/Fisher binary secondary; and, given
results.json, trialwright's numbers beside them.
"""

import json
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import optimize, stats

d = Path(sys.argv[1])
parts = pd.read_csv(d / "participants.csv", dtype=str)
acq = pd.read_csv(d / "forms/acq.csv", dtype=str)
acq["score"] = pd.to_numeric(acq["score"])
wide = acq.pivot_table(index="participant_id", columns="visit_id", values="score", aggfunc="first")
visit_dates = acq.pivot_table(index="participant_id", columns="visit_id", values="visit_date", aggfunc="first")
df = parts.set_index("participant_id")[["arm", "stratum", "randomized_at"]].join(wide)
df["treat"] = (df["arm"] == "ONCE").astype(int)


def ancova(frame, label):
    f = frame.dropna(subset=["baseline", "week12"])
    m = smf.ols("week12 ~ treat + baseline + C(stratum)", data=f).fit()
    lo, hi = m.conf_int().loc["treat"]
    n = f.groupby("arm").size().to_dict()
    print(
        f"{label}: ANCOVA ONCE-BID {m.params['treat']:.6f} (95% CI {lo:.6f} to {hi:.6f}), "
        f"p {m.pvalues['treat']:.6f}, n {n}"
    )
    return m.params["treat"], lo, hi


itt = ancova(df, "ITT")

# per protocol (docs/analysis.md): treated with the allocated arm (everyone here: first_dose given), none of
# exclude_when at any visit, and week12 held inside its window (day 84, 4 before, 4 after) counted from the
# randomization's date at the site.
adh = pd.read_csv(d / "forms/adherence.csv", dtype=str)
poor = set(adh.loc[adh["poor_adherence"] == "1", "participant_id"])
tz = {"CHI": "America/Chicago", "DEL": "Asia/Kolkata"}
site = parts.set_index("participant_id")["site"]


def in_window(pid):
    vd = visit_dates.get("week12", pd.Series(dtype=str)).get(pid)
    if not isinstance(vd, str):
        return False
    r = pd.Timestamp(df.loc[pid, "randomized_at"]).tz_convert(tz[site[pid]]).date()
    day = (date.fromisoformat(vd) - r).days
    return 80 <= day <= 88


pp_ids = [p for p in df.index if p not in poor and in_window(p)]
pp = ancova(df.loc[pp_ids], "Per protocol")

# mixed model, random intercept (compound symmetry), change not modelled: value ~ visit*treat + baseline + stratum
long = (
    df.reset_index()
    .melt(
        id_vars=["participant_id", "treat", "stratum", "baseline"],
        value_vars=["week4", "week8", "week12"],
        var_name="visit",
        value_name="y",
    )
    .dropna()
)
long["visit"] = pd.Categorical(long["visit"], ["week12", "week4", "week8"])
mm = smf.mixedlm("y ~ treat * C(visit) + baseline * C(visit) + C(stratum)", long, groups=long["participant_id"]).fit(
    reml=True
)
print(
    f"Mixed model (random intercept, CS; effect at week12): {mm.params['treat']:.6f} "
    f"(95% CI {mm.conf_int().loc['treat', 0]:.6f} to {mm.conf_int().loc['treat', 1]:.6f})"
)

# MMRM, unstructured covariance, REML, fitted here by hand (statsmodels has no unstructured residual covariance):
# visit intercepts, arm by visit, baseline by visit and stratum, as the report's effects by visit match.
df_mm = df.dropna(subset=["baseline"]).copy()
V = ["week4", "week8", "week12"]
strata = sorted(df_mm.stratum.unique())


def design(row, j, inter_base):
    x = [1.0 * (j == k) for k in range(3)]  # visit intercepts
    x += [1.0 * (j == k) * (row.arm == "ONCE") for k in range(3)]  # treat by visit
    x += [row.baseline * (j == k) for k in range(3)] if inter_base else [row.baseline]
    x += [1.0 * (row.stratum == s) for s in strata[1:]]
    return x


def fit(inter_base):
    Xs, ys, idx = [], [], []
    for _pid, row in df_mm.iterrows():
        obs = [j for j, v in enumerate(V) if not np.isnan(row[v])]
        if not obs:
            continue
        Xs.append(np.array([design(row, j, inter_base) for j in obs]))
        ys.append(np.array([row[V[j]] for j in obs]))
        idx.append(obs)
    p = Xs[0].shape[1]

    def unpack(th):
        L = np.zeros((3, 3))
        L[np.tril_indices(3)] = th
        return L @ L.T

    def gls(S):
        A = np.zeros((p, p))
        b = np.zeros(p)
        ld = 0.0
        for X, y, o in zip(Xs, ys, idx, strict=True):
            Si = np.linalg.inv(S[np.ix_(o, o)])
            A += X.T @ Si @ X
            b += X.T @ Si @ y
            ld += np.linalg.slogdet(S[np.ix_(o, o)])[1]
        beta = np.linalg.solve(A, b)
        return beta, A, ld

    def nll(th):
        S = unpack(th) + 1e-9 * np.eye(3)
        beta, A, ld = gls(S)
        q = sum(
            (y - X @ beta) @ np.linalg.inv(S[np.ix_(o, o)]) @ (y - X @ beta)
            for X, y, o in zip(Xs, ys, idx, strict=True)
        )
        return 0.5 * (ld + q + np.linalg.slogdet(A)[1])

    r = optimize.minimize(nll, np.array([0.7, 0.3, 0.7, 0.3, 0.3, 0.7]), method="BFGS")
    S = unpack(r.x)
    beta, A, _ = gls(S)
    cov = np.linalg.inv(A)
    n = {
        a: int(sum(1 for (_pid, row) in df_mm.iterrows() if row.arm == a and any(not np.isnan(row[v]) for v in V)))
        for a in ("ONCE", "BID")
    }
    print(
        f"MMRM unstructured REML (baseline{' by visit' if inter_base else ''}): "
        f"effect at week12 {beta[5]:.6f} SE {np.sqrt(cov[5, 5]):.6f}; "
        f"week4 {beta[3]:.6f} week8 {beta[4]:.6f}; n {n}"
    )


fit(True)
fit(False)


# binary secondary: Newcombe hybrid score interval (method 10) and Fisher's exact
ex = pd.read_csv(d / "forms/exacerbation.csv", dtype=str)
ex = ex[ex["visit_id"] == "week12"].dropna(subset=["any_exacerbation"]).set_index("participant_id")
ex = ex.join(parts.set_index("participant_id")["arm"])


def wilson(k, n, z=1.959963984540054):
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


k1 = int((ex.loc[ex.arm == "ONCE", "any_exacerbation"] == "1").sum())
n1 = int((ex.arm == "ONCE").sum())
k0 = int((ex.loc[ex.arm == "BID", "any_exacerbation"] == "1").sum())
n0 = int((ex.arm == "BID").sum())
p1, p0 = k1 / n1, k0 / n0
l1, u1 = wilson(k1, n1)
l0, u0 = wilson(k0, n0)
rd = p1 - p0
lo = rd - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
hi = rd + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
fp = stats.fisher_exact([[k1, n1 - k1], [k0, n0 - k0]])[1]
print(
    f"Exacerbation by week 12: ONCE {k1}/{n1}, BID {k0}/{n0}; RD {rd:.6f} "
    f"(Newcombe {lo:.6f} to {hi:.6f}), Fisher p {fp:.6f}"
)

MARGIN = 0.5
print(
    f"Non-inferiority (margin {MARGIN}, upper 95% bound of ONCE-BID below it): ITT {itt[2]:.4f} -> "
    f"{'non-inferior' if itt[2] < MARGIN else 'not shown'}; "
    f"PP {pp[2]:.4f} -> {'non-inferior' if pp[2] < MARGIN else 'not shown'}"
)

if len(sys.argv) > 2:
    res = json.loads(Path(sys.argv[2]).read_text())
    for o in res["outcomes"]:
        for c in o["comparisons"]:
            print(
                f"trialwright {o['outcome_id']}: {c['method']} [{c['analysis_set']}] {c['estimate']:.6f} "
                f"({c['lower']:.6f} to {c['upper']:.6f}) p {c['p_value']:.6f} n {c['n']}"
            )
