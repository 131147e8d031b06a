"""Walk 6: recompute trialwright's unblinded numbers from the CSV export alone (statsmodels, scipy, lifelines).

Usage: python walk6.independent.py EXPORT_DIR RESULTS_CSV
  EXPORT_DIR: `trialwright export csv --with-arms` (the unblinded statistician, after the lock)
  RESULTS_CSV: results.csv of `trialwright analyse --unblinded`
Prints each estimate beside trialwright's, MATCH or DIFFERS. Nothing here imports trialwright.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time
from scipy import optimize, stats
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.stats.contingency_tables import StratifiedTable

Z = 1.959963984540054
ex = Path(sys.argv[1])
tw = pd.read_csv(sys.argv[2], dtype=str)

p = pd.read_csv(ex / "participants.csv", dtype=str)
p["rand"] = pd.to_datetime(p["randomized_at"])
# day counts are on the site's calendar (AKL Pacific/Auckland, SCL America/Santiago)
tz = {"AKL": "Pacific/Auckland", "SCL": "America/Santiago"}
p["rand_date"] = [r.tz_convert(tz[s]).date() for r, s in zip(p["rand"], p["site"], strict=True)]
p["treat"] = (p["arm"] == "NSX").astype(int)
deaths = pd.read_csv(ex / "deaths.csv", dtype=str)
p = p.merge(deaths[["participant_id", "death_date"]], on="participant_id", how="left")


def day_of(dates: pd.Series) -> list[float]:
    return [
        (pd.Timestamp(d).date() - r).days if isinstance(d, str) else np.nan
        for d, r in zip(dates, p["rand_date"], strict=True)
    ]


p["death_day"] = day_of(p["death_date"])
p["withdrawn_day"] = day_of(p["withdrawn_on"])
strata = sorted(p["stratum"].unique())
for s in strata[1:]:
    p["s_" + s] = (p["stratum"] == s).astype(float)
scols = ["s_" + s for s in strata[1:]]


def form(name: str) -> pd.DataFrame:
    return pd.read_csv(ex / "forms" / f"{name}.csv", dtype=str)


def tw_row(outcome: str, method_start: str) -> pd.Series:
    rows = tw[
        (tw["outcome"] == outcome) & tw["method"].str.startswith(method_start) & tw["comparison"].str.contains(" vs ")
    ]
    assert len(rows) == 1, (outcome, method_start, len(rows))
    return rows.iloc[0]


def show(label: str, mine: tuple[float, float, float, float], theirs: pd.Series) -> None:
    t = tuple(float(theirs[c]) for c in ("estimate", "ci_lower", "ci_upper", "p_value"))
    ok = all(abs(a - b) <= 1e-3 * max(1, abs(b)) for a, b in zip(mine, t, strict=True))
    print(f"{label:44s} mine {mine[0]:.4f} ({mine[1]:.4f} to {mine[2]:.4f}) p={mine[3]:.4g}")
    print(f"{'':44s} tw   {t[0]:.4f} ({t[1]:.4f} to {t[2]:.4f}) p={t[3]:.4g}  {'MATCH' if ok else 'DIFFERS'}")


def po_fit(codes: pd.Series, d: pd.DataFrame) -> tuple[float, float, float, float]:
    y = pd.Categorical(codes.astype(int), ordered=True)  # the categories observed, lowest first
    m = OrderedModel(y, d[["treat", *scols]], distr="logit").fit(method="bfgs", disp=False, maxiter=5000)
    b, se = m.params["treat"], m.bse["treat"]
    return np.exp(b), np.exp(b - Z * se), np.exp(b + Z * se), m.pvalues["treat"]


# ---- primary: ventilator-free days at day 28, a death on or before day 28 = 0, proportional odds ---------------
o28 = form("outcome28")
o28 = o28[o28["visit_id"] == "day28"][["participant_id", "vfd"]]
d = p.merge(o28, on="participant_id", how="left")
d["vfd"] = pd.to_numeric(d["vfd"])
dead28 = d["death_day"] <= 28
d.loc[dead28, "vfd"] = 0
d = d[d["vfd"].notna()].copy()
print("vfd28 analysed by arm:", d.groupby("arm").size().to_dict(), " deaths by day 28 set to 0:", int(dead28.sum()))
show("vfd28 proportional odds OR", po_fit(d["vfd"], d), tw_row("vfd28", "Proportional odds"))

# Hodges-Lehmann shift, its distribution-free interval, and the Wilcoxon rank-sum p (normal, ties corrected)
xt = d.loc[d["treat"] == 1, "vfd"].to_numpy()
xc = d.loc[d["treat"] == 0, "vfd"].to_numpy()
diffs = np.sort((xt[:, None] - xc[None, :]).ravel())
mw = stats.mannwhitneyu(xt, xc, alternative="two-sided", method="asymptotic", use_continuity=True)
n1, n2 = len(xt), len(xc)
_, ties = np.unique(np.concatenate([xt, xc]), return_counts=True)
var_u = n1 * n2 / 12 * ((n1 + n2 + 1) - (ties**3 - ties).sum() / ((n1 + n2) * (n1 + n2 - 1)))
k = int(np.floor(n1 * n2 / 2 - Z * np.sqrt(var_u)))
show("vfd28 Hodges-Lehmann shift", (float(np.median(diffs)), diffs[k - 1], diffs[n1 * n2 - k], mw.pvalue),
     tw_row("vfd28", "Wilcoxon"))  # fmt: skip

# ---- WHO scale at day 14 (a death on or before day 14 = 7), proportional odds ------------------------------------
w = form("who_scale")
w = w[w["visit_id"] == "day14"][["participant_id", "who_category"]]
d = p.merge(w, on="participant_id", how="left")
d.loc[d["death_day"] <= 14, "who_category"] = "7"
d = d[d["who_category"].notna()].copy()
show("who_day14 proportional odds OR", po_fit(d["who_category"], d), tw_row("who_day14", "Proportional odds"))

# ---- 28-day mortality: stratified Cox, RMST ---------------------------------------------------------------------
d = p.copy()
cut = 28.0
d["time"] = np.where(d["death_day"] <= cut, d["death_day"], np.fmin(cut, d["withdrawn_day"].fillna(cut)))
d["event"] = (d["death_day"] <= cut).astype(int)  # a withdrawal censors (hypothetical); none here died after one
cph = CoxPHFitter().fit(d[["time", "event", "treat", "stratum"]], "time", "event", strata=["stratum"])
s = cph.summary.loc["treat"]
show("mortality28 stratified Cox HR", (s["exp(coef)"], s["exp(coef) lower 95%"], s["exp(coef) upper 95%"], s["p"]),
     tw_row("mortality28", "Cox"))  # fmt: skip
rm = {}
for a in (0, 1):
    g = d[d["treat"] == a]
    km = KaplanMeierFitter().fit(g["time"], g["event"])
    mean = restricted_mean_survival_time(km, t=cut)
    # the estimator's variance (Greenwood; Klein & Moeschberger 4.5): the sum over event times t_i < tau of
    # A_i^2 d_i / (n_i (n_i - d_i)), A_i the area under the curve from t_i to tau
    tab = km.event_table
    times = tab.index.to_numpy()
    var = 0.0
    for i, t_i in enumerate(times):
        di, ni = tab["observed"].iloc[i], tab["at_risk"].iloc[i]
        if di == 0 or t_i >= cut:
            continue
        grid = np.concatenate([[t_i], times[(times > t_i) & (times < cut)], [cut]])
        area = sum(
            km.survival_function_at_times(grid[j]).iloc[0] * (grid[j + 1] - grid[j]) for j in range(len(grid) - 1)
        )
        var += area**2 * di / (ni * (ni - di))
    rm[a] = (mean, var)
diff = rm[1][0] - rm[0][0]
sed = np.sqrt(rm[1][1] + rm[0][1])
p_rmst = 2 * stats.norm.sf(abs(diff / sed))
show("mortality28 RMST difference (Greenwood)", (diff, diff - Z * sed, diff + Z * sed, p_rmst),
     tw_row("mortality28", "Restricted mean"))  # fmt: skip

# ---- still ventilated at day 7 (a death on or before day 7 = event): Mantel-Haenszel risk ratio ----------------
v = form("ventilation")
v = v[v["visit_id"] == "day7"][["participant_id", "still_ventilated"]]
d = p.merge(v, on="participant_id", how="left")
d["ev"] = pd.to_numeric(d["still_ventilated"])
d.loc[d["death_day"] <= 7, "ev"] = 1
d = d[d["ev"].notna()]
num = den = gr = 0.0
tables = []
for _, g in d.groupby("stratum"):
    a_, n1_ = g.loc[g.treat == 1, "ev"].sum(), (g.treat == 1).sum()
    c_, n0_ = g.loc[g.treat == 0, "ev"].sum(), (g.treat == 0).sum()
    n = n1_ + n0_
    num += a_ * n0_ / n
    den += c_ * n1_ / n
    gr += (n1_ * n0_ * (a_ + c_) - a_ * c_ * n) / n**2  # Greenland-Robins
    tables.append(np.array([[a_, n1_ - a_], [c_, n0_ - c_]]))
rr = num / den
se = np.sqrt(gr / (num * den))
cmh = StratifiedTable(tables).test_null_odds(correction=False)
wald_p = 2 * stats.norm.sf(abs(np.log(rr) / se))
print(f"ventilated_day7: CMH test (uncorrected) p={cmh.pvalue:.4g}; Wald p of the GR log RR {wald_p:.4g}")
# trialwright's p is the CMH test's (walk 6 F5: the report does not say so), not the Wald p of the GR interval
show("ventilated_day7 MH risk ratio (GR), CMH p", (rr, rr * np.exp(-Z * se), rr * np.exp(Z * se), cmh.pvalue),
     tw_row("ventilated_day7", "Mantel-Haenszel"))  # fmt: skip
a_, n1_ = d.loc[d.treat == 1, "ev"].sum(), (d.treat == 1).sum()
c_, n0_ = d.loc[d.treat == 0, "ev"].sum(), (d.treat == 0).sum()
rr = (a_ / n1_) / (c_ / n0_)
se = np.sqrt(1 / a_ - 1 / n1_ + 1 / c_ - 1 / n0_)
katz_p = 2 * stats.norm.sf(abs(np.log(rr) / se))
show("ventilated_day7 Katz RR", (rr, rr * np.exp(-Z * se), rr * np.exp(Z * se), katz_p),
     tw_row("ventilated_day7", "Risk ratio"))  # fmt: skip

# ---- PaO2/FiO2 MMRM, AR(1), REML, Satterthwaite df (written out: statsmodels has no AR(1) REML with Satterthwaite) -
# terms as docs/analysis.md says: a mean per visit, treatment by visit, baseline by visit, the stratum
r = form("respiratory")
r["pf"] = pd.to_numeric(r["pf_ratio"])
base = r[r.visit_id == "baseline"][["participant_id", "pf"]].rename(columns={"pf": "base"})
visits = ["day3", "day7", "day14"]
long = r[r.visit_id.isin(visits)][["participant_id", "visit_id", "pf"]].merge(base, on="participant_id")
long = long.merge(p[["participant_id", "treat", "stratum", *scols]], on="participant_id")
long = long[long.pf.notna() & long.base.notna()].copy()
long["t"] = long["visit_id"].map({v: i for i, v in enumerate(visits)})
cols = []
for i, v in enumerate(visits):
    long[f"v_{v}"] = (long.t == i).astype(float)
    cols.append(f"v_{v}")
for v in visits:
    long[f"tr_{v}"] = long[f"v_{v}"] * long.treat
    long[f"b_{v}"] = long[f"v_{v}"] * long.base
    cols += [f"tr_{v}", f"b_{v}"]
cols += scols
groups = [(g[cols].to_numpy(), g["pf"].to_numpy(), g["t"].to_numpy()) for _, g in long.groupby("participant_id")]


def covs(s2: float, rho: float) -> list[np.ndarray]:
    return [s2 * rho ** np.abs(t[:, None] - t[None, :]) for _, _, t in groups]


def gls(s2: float, rho: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    xvx, xvy, logdet, vinv = 0.0, 0.0, 0.0, []
    for (xg, yg, _), vg in zip(groups, covs(s2, rho), strict=True):
        vi = np.linalg.inv(vg)
        vinv.append(vi)
        xvx = xvx + xg.T @ vi @ xg
        xvy = xvy + xg.T @ vi @ yg
        logdet += np.linalg.slogdet(vg)[1]
    beta = np.linalg.solve(xvx, xvy)
    rss = sum((yg - xg @ beta) @ vi @ (yg - xg @ beta) for (xg, yg, _), vi in zip(groups, vinv, strict=True))
    return beta, xvx, logdet, rss


def reml(s2: float, rho: float) -> float:  # minus the REML log-likelihood, up to a constant
    _, xvx, logdet, rss = gls(s2, rho)
    return 0.5 * (logdet + np.linalg.slogdet(xvx)[1] + rss)


opt = optimize.minimize(
    lambda th: reml(np.exp(th[0]), np.tanh(th[1])),
    x0=[np.log(long.pf.var()), 0.3],
    method="Nelder-Mead",
    options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
)
theta = np.array([np.exp(opt.x[0]), np.tanh(opt.x[1])])
beta, xvx, _, _ = gls(*theta)
c = np.zeros(len(cols))
c[cols.index("tr_day14")] = 1
var = c @ np.linalg.inv(xvx) @ c
# Satterthwaite: df = 2 (c'Phi c)^2 / (g' A g), A the inverse of the REML's observed information in (s2, rho)
h = np.array([theta[0] * 1e-4, 1e-5])
eye = np.eye(2)
hess = np.zeros((2, 2))
for i in range(2):
    for j in range(2):
        ei, ej = eye[i] * h[i], eye[j] * h[j]
        hess[i, j] = (
            reml(*(theta + ei + ej)) - reml(*(theta + ei - ej)) - reml(*(theta - ei + ej)) + reml(*(theta - ei - ej))
        ) / (4 * h[i] * h[j])
grad = np.array([
    (c @ np.linalg.inv(gls(*(theta + eye[i] * h[i]))[1]) @ c - c @ np.linalg.inv(gls(*(theta - eye[i] * h[i]))[1]) @ c)
    / (2 * h[i])
    for i in range(2)
])  # fmt: skip
df = 2 * var**2 / (grad @ np.linalg.inv(hess) @ grad)
est, se = beta[cols.index("tr_day14")], np.sqrt(var)
tq = stats.t.ppf(0.975, df)
print(f"pf_mmrm AR(1) REML: sigma2={theta[0]:.2f} rho={theta[1]:.4f} Satterthwaite df={df:.1f}")
show("pf_mmrm MMRM AR(1) effect at day 14", (est, est - tq * se, est + tq * se, 2 * stats.t.sf(abs(est / se), df)),
     tw_row("pf_mmrm", "MMRM"))  # fmt: skip
