"""Walk 7: recompute every estimate of the unblinded report from the CSV export with arms, never trialwright code.

Usage: python walk7.independent.py EXPORT_DIR RESULTS_JSON
(EXPORT_DIR from `trialwright export csv --with-arms`, RESULTS_JSON from `trialwright analyse --unblinded`).
Reads only the CSV files; uses pandas, statsmodels and scipy. Prints each estimate beside the report's.
"""
import json
import math
import sys
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

EXP, RES = sys.argv[1], sys.argv[2]
with open(RES, encoding="utf-8") as _f:
    res = json.load(_f)
P = pd.read_csv(f"{EXP}/participants.csv")
P = P[P.randomization_number.notna()].copy()
P["treat"] = (P.arm == "LUM").astype(int)
P["stratum"] = P.stratum.astype(str)
P["rand_day"] = pd.to_datetime(P.randomized_at, utc=True, format="ISO8601")


def form(name):
    return pd.read_csv(f"{EXP}/forms/{name}.csv", dtype=str)


def report(outcome, method_prefix):
    for o in res["outcomes"]:
        if o["outcome_id"] == outcome:
            for c in o["comparisons"]:
                if c["method"].startswith(method_prefix):
                    return c
    return None


rows = []


def show(outcome, method, mine, lo, hi, p):
    c = report(outcome, method)
    theirs = (c["estimate"], c["lower"], c["upper"], c["p_value"]) if c else None
    ok = theirs is not None and None not in theirs and all(
        abs(a - b) <= 1e-6 * max(1, abs(b)) for a, b in zip((mine, lo, hi, p), theirs, strict=True))
    rows.append((outcome, method, ok))
    print(f"{outcome:18s} {method:28s} mine {mine:.6f} [{lo:.6f}, {hi:.6f}] p={p:.6g}")
    print(f"{'':18s} {'':28s} them {theirs}  {'AGREE' if ok else 'DIFFER'}")


# --- the derived fatigue total, recomputed from the items by the declared rule (sum, min_present 4, prorate) ---
F = form("fatigue")
items = F[[f"item{i}" for i in range(1, 6)]].apply(pd.to_numeric)
present = items.notna().sum(axis=1)


def half_up(x, places=1):
    return float(Decimal(str(float(x))).quantize(Decimal(10) ** -places, rounding=ROUND_HALF_UP))


mine_total = [half_up(items.iloc[i].sum() * 5 / present.iloc[i]) if present.iloc[i] >= 4 else np.nan
              for i in range(len(F))]
stored = pd.to_numeric(F.total)
bad = [(F.participant_id[i], F.visit_id[i], mine_total[i], stored[i]) for i in range(len(F))
       if not ((np.isnan(mine_total[i]) and np.isnan(stored[i])) or mine_total[i] == stored[i])]
print(f"fatigue.total: {len(F)} records, {int((present == 4).sum())} pro-rated, {int((present < 4).sum())} "
      f"without a total; stored equals the rule's value in all but {len(bad)}: {bad[:5]}")

# --- the utility value set recomputed ---
Q = form("quality")
dec = {"mobility": {"1": 0, "2": 0.069, "3": 0.314}, "selfcare": {"1": 0, "2": 0.104, "3": 0.214},
       "pain": {"1": 0, "2": 0.123, "3": 0.386}}
qbad = 0
for _, r in Q.iterrows():
    if all(isinstance(r[d], str) for d in dec):
        u = Decimal(1) - sum(Decimal(str(dec[d][r[d]])) for d in dec)
        qbad += float(u) != float(r.utility)
print(f"quality.utility: {len(Q)} records, {qbad} differ from the value set")


def wide(frm, field, visit, numeric=True):
    d = form(frm)
    d = d[d.visit_id == visit][["participant_id", field, "visit_date"]].rename(
        columns={field: f"{field}_{visit}", "visit_date": f"date_{visit}"})
    if numeric:
        d[f"{field}_{visit}"] = pd.to_numeric(d[f"{field}_{visit}"], errors="coerce")
    return d


def ancova(df, y, base, log=False):
    d = df.dropna(subset=[y, base]).copy()
    if log:
        d[y], d[base] = np.log(d[y]), np.log(d[base])
    m = smf.ols(f"{y} ~ treat + {base} + C(stratum)", data=d).fit()
    est, (lo, hi), p = m.params["treat"], m.conf_int().loc["treat"], m.pvalues["treat"]
    if log:
        return math.exp(est), math.exp(lo), math.exp(hi), p, len(d)
    return est, lo, hi, p, len(d)


# --- primary: fatigue total at week 12, ANCOVA on baseline and stratum (ITT) ---
D = P.merge(wide("fatigue", "total", "baseline"), how="left").merge(wide("fatigue", "total", "week12"), how="left")
e = ancova(D, "total_week12", "total_baseline")
show("fatigue_w12", "ANCOVA", *e[:4])
by_arm = D.dropna(subset=["total_week12", "total_baseline"]).groupby("arm").size().to_dict()
print("   n analysed:", e[4], "by arm:", by_arm)
d = D.dropna(subset=["total_week12"])
a, b = d[d.treat == 1].total_week12, d[d.treat == 0].total_week12
t = stats.ttest_ind(a, b, equal_var=True)
ci = t.confidence_interval()
show("fatigue_w12", "t-test", a.mean() - b.mean(), ci.low, ci.high, t.pvalue)
d = D.dropna(subset=["total_week12", "total_baseline"])
ch = d.total_week12 - d.total_baseline
ca, cb = ch[d.treat == 1], ch[d.treat == 0]
hl = float(np.median(np.subtract.outer(ca.values, cb.values)))
mw = stats.mannwhitneyu(ca, cb, alternative="two-sided", method="asymptotic", use_continuity=True)
print(f"fatigue_w12        HL shift on the change mine {hl} (Mann-Whitney p={mw.pvalue:.6g}, "
      f"no continuity {stats.mannwhitneyu(ca, cb, method='asymptotic', use_continuity=False).pvalue:.6g});"
      f" them {report('fatigue_w12', 'Wilcoxon')['estimate']} p={report('fatigue_w12', 'Wilcoxon')['p_value']}")

# per protocol: treated with own code, not stopped early, week 12 held in its window (day 84, -5/+5)
FD = form("first_dose")
AD = form("adherence")
stopped = set(AD[AD.stopped_early.isin(["1", "True", "true"])].participant_id)
treated = set(FD[FD.given_at.notna()].participant_id)
W = wide("fatigue", "total", "week12")
W = W.merge(P[["participant_id", "rand_day"]])
W["day"] = (pd.to_datetime(W.date_week12).dt.date - W.rand_day.dt.tz_convert(None).dt.date).apply(lambda x: x.days)
# the randomization date at the site: both sites are at most UTC+3:30 / +1, randomized in working hours
inwin = set(W[(W.day >= 79) & (W.day <= 89)].participant_id)
pp = P[P.participant_id.isin(treated - stopped) & P.participant_id.isin(inwin)]
print("per protocol:", len(pp), "of", len(P), "(report:", res["analysis_sets"]["per_protocol"], ")")
e = ancova(D[D.participant_id.isin(pp.participant_id)], "total_week12", "total_baseline")
c = [c for o in res["outcomes"] if o["outcome_id"] == "fatigue_w12"
     for c in o["comparisons"] if c["method"] == "ANCOVA"]
print(f"fatigue_w12        ANCOVA per protocol mine {e[0]:.6f} [{e[1]:.6f}, {e[2]:.6f}] p={e[3]:.6g}; "
      f"them {c[1]['estimate']:.6f} [{c[1]['lower']:.6f}, {c[1]['upper']:.6f}] p={c[1]['p_value']:.6g}")

# --- responder: change <= -4 (rounded to 9 decimals), Katz risk ratio and logistic OR adjusted for stratum ---
d = D.dropna(subset=["total_week12", "total_baseline"]).copy()
d["resp"] = ((d.total_week12 - d.total_baseline).round(9) <= -4).astype(int)
k1, n1 = d[d.treat == 1].resp.sum(), (d.treat == 1).sum()
k0, n0 = d[d.treat == 0].resp.sum(), (d.treat == 0).sum()
rr = (k1 / n1) / (k0 / n0)
se = math.sqrt(1 / k1 - 1 / n1 + 1 / k0 - 1 / n0)
z = math.log(rr) / se
show("fatigue_responder", "Risk ratio", rr, rr * math.exp(-1.959963984540054 * se),
     rr * math.exp(1.959963984540054 * se), 2 * stats.norm.sf(abs(z)))
print(f"   responders LUM {k1}/{n1}, PBO {k0}/{n0}")
m = smf.logit("resp ~ treat + C(stratum)", data=d).fit(disp=0)
show("fatigue_responder", "Logistic", math.exp(m.params.treat), *np.exp(m.conf_int().loc["treat"]), m.pvalues.treat)

# --- utility, ANCOVA ---
D2 = P.merge(wide("quality", "utility", "baseline"), how="left").merge(wide("quality", "utility", "week12"), how="left")
show("utility_w12", "ANCOVA", *ancova(D2, "utility_week12", "utility_baseline")[:4])

# --- NfL on the log scale, below the LLOQ at half the limit ---
N = form("nfl")
N["v"] = pd.to_numeric(N.nfl, errors="coerce")
N.loc[N.nfl_flag == "<LLOQ", "v"] = N.loc[N.nfl_flag == "<LLOQ", "v"] / 2
print("nfl below LLOQ:", N[N.nfl_flag == "<LLOQ"][["participant_id", "visit_id", "nfl"]].values.tolist())
nb = N[N.visit_id == "baseline"][["participant_id", "v"]].rename(columns={"v": "nfl_b"})
n12 = N[N.visit_id == "week12"][["participant_id", "v"]].rename(columns={"v": "nfl_12"})
D3 = P.merge(nb, how="left").merge(n12, how="left")
show("nfl_w12", "ANCOVA (log", *ancova(D3, "nfl_12", "nfl_b", log=True)[:4])

# --- relapses: negative binomial (NB2) rate ratio adjusted for stratum ---
R = wide("relapses", "relapse_count", "week12")
D4 = P.merge(R, how="inner").dropna(subset=["relapse_count_week12"])
print("relapse counts by arm:", D4.groupby("arm").relapse_count_week12.agg(["count", "sum", "mean", "var"]).to_dict())
X = pd.get_dummies(D4[["treat", "stratum"]], columns=["stratum"], drop_first=True, dtype=float)
X = sm.add_constant(X)
y = D4.relapse_count_week12.astype(float)
for how in ("newton", "bfgs", "nm"):
    try:
        f = sm.NegativeBinomial(y, X, loglike_method="nb2").fit(method=how, maxiter=5000, disp=0)
        ci = f.conf_int().loc["treat"]
        print(f"relapses_w12 NB2 ({how}): RR {math.exp(f.params.treat):.6f} [{math.exp(ci[0]):.6f}, "
              f"{math.exp(ci[1]):.6f}] p={f.pvalues.treat:.6g} alpha={f.params.alpha:.4g} converged="
              f"{f.mle_retvals.get('converged')}")
    except Exception as exc:
        print(f"relapses_w12 NB2 ({how}): {exc}")
pois = sm.GLM(y, X, family=sm.families.Poisson()).fit()
print(f"relapses_w12 Poisson (for comparison only): RR {math.exp(pois.params.treat):.6f}, Pearson dispersion "
      f"{pois.pearson_chi2 / pois.df_resid:.3f}")
print("   them:", report("relapses_w12", "Negative"))

# --- SAE by day 84 from the first dose (safety set, as treated = as randomized here) ---
AE = pd.read_csv(f"{EXP}/adverse_events.csv", dtype=str)
FD["start"] = pd.to_datetime(FD.given_at, utc=True, format="ISO8601")
S = P.merge(FD[["participant_id", "start", "site"]], on="participant_id", how="inner")
sae = AE[AE.serious == "1"].merge(S[["participant_id", "start"]], on="participant_id")
tz = {"TBZ": "Asia/Tehran", "LIS": "Europe/Lisbon"}
sae["day"] = [(pd.Timestamp(o).date() - s.tz_convert(tz[pid[:3]]).date()).days
              for o, s, pid in zip(sae.onset, sae.start, sae.participant_id, strict=True)]
with_sae = set(sae[(sae.day >= 0) & (sae.day <= 84)].participant_id)
S["e"] = S.participant_id.isin(with_sae).astype(int)
k1, n1 = S[S.treat == 1].e.sum(), (S.treat == 1).sum()
k0, n0 = S[S.treat == 0].e.sum(), (S.treat == 0).sum()


def wilson(k, n, z=1.959963984540054):
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


l1, u1 = wilson(k1, n1)
l0, u0 = wilson(k0, n0)
d_ = k1 / n1 - k0 / n0
lo = d_ - math.sqrt((k1 / n1 - l1) ** 2 + (u0 - k0 / n0) ** 2)
hi = d_ + math.sqrt((u1 - k1 / n1) ** 2 + (k0 / n0 - l0) ** 2)
show("sae_w12", "Newcombe", d_, lo, hi, stats.fisher_exact([[k1, n1 - k1], [k0, n0 - k0]])[1])
print(f"   SAE LUM {k1}/{n1}, PBO {k0}/{n0}")
print("\nSUMMARY:", sum(ok for *_, ok in rows), "of", len(rows), "agree;", [r[:2] for r in rows if not r[2]])

# --- Table 1 cells for two rows: NfL (below the LLOQ at half the limit?) and screening.edss (3 significant digits),
# the screening values read from GET /api/v1/screenings (the CSV export leaves them out, as its README says) ---
if len(sys.argv) > 3:
    import statistics
    with open(sys.argv[3], encoding="utf-8") as _f:
        screenings = json.load(_f)["items"]
    scr = {s["participant_id"]: s["values"] for s in screenings if s["participant_id"]}
    for arm in ("PBO", "LUM"):
        ids = P[P.arm == arm].participant_id
        e = [scr[i]["edss"] for i in ids]
        print(f"Table 1 edss {arm}: mean {statistics.mean(e):.6g} sd {statistics.stdev(e):.6g} median "
              f"{statistics.median(e)} q {np.percentile(e, [25, 75], method='linear')} n={len(e)}")
        nb_ = N[(N.visit_id == "baseline") & N.participant_id.isin(ids)]
        for rule, vals in (("half limit", nb_.v), ("limit", pd.to_numeric(nb_.nfl))):
            print(f"Table 1 nfl {arm} ({rule}): mean {vals.mean():.4f} sd {vals.std():.4f} n={vals.notna().sum()}")
    rows1 = [(r["variable"], r["cells"]) for r in res["table_one"] if r["variable"] in ("nfl.nfl", "screening.edss")]
    print("report:", rows1)
