"""Walk WALK-CALM-DEL: the engine's unblinded estimates against statsmodels/scipy (argv: CSV export dir, report dir)."""

import json
import sys
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.stats.proportion import confint_proportions_2indep

warnings.filterwarnings("ignore")
D = sys.argv[1]
R = sys.argv[2]
p = pd.read_csv(f"{D}/participants.csv")
de = pd.read_csv(f"{D}/forms/delirium.csv")
ic = pd.read_csv(f"{D}/forms/icu_course.csv")
dth = pd.read_csv(f"{D}/deaths.csv")
p["rand_date"] = pd.to_datetime(p.randomized_at.str[:10])  # UTC date; site dates may differ by a day at most
p = p.merge(dth.groupby("participant_id").death_date.min().reset_index(), how="left")
p["dday"] = (pd.to_datetime(p.death_date) - p.rand_date).dt.days
p["trt"] = (p.arm == "DXZ").astype(int)
with open(f"{R}/results.json") as fh:
    res = json.load(fh)
eng = {o["outcome_id"]: o for o in res["outcomes"]}


def show(name, mine, o, idx=0):
    c = o["comparisons"][idx]
    print(
        f"{name:34s} engine est={c['estimate']:.4f} [{c['lower']:.4f},{c['upper']:.4f}] "
        f"p={c['p_value']:.4f} n={c['n']} | indep est={mine[0]:.4f} [{mine[1]:.4f},{mine[2]:.4f}] "
        f"p={mine[3]:.4f} n={mine[4]}"
    )


b = de[de.visit_id == "baseline"][["participant_id", "cam_icu7", "severity"]].rename(
    columns={"cam_icu7": "b_cam", "severity": "b_sev"}
)
d7 = de[de.visit_id == "day7"][["participant_id", "cam_icu7", "severity"]]
x = p.merge(b, how="left").merge(d7, how="left")
# continuous ANCOVA, treatment policy (death: not analysed)
c = x.dropna(subset=["cam_icu7", "b_cam"])
m = smf.ols("cam_icu7 ~ trt + b_cam + C(stratum)", c).fit()
ci = m.conf_int().loc["trt"]
show(
    "cam_icu7 ANCOVA (OLS+stratum)",
    (m.params["trt"], ci[0], ci[1], m.pvalues["trt"], [int(c.trt.sum()), int((1 - c.trt).sum())]),
    eng["cam_icu7_day7"],
)
# ordinal with composite death -> severe
order = ["none", "mild", "moderate", "severe"]
x["sev7"] = x.severity
x.loc[x.dday.notna() & (x.dday <= 7), "sev7"] = "severe"
o = x.dropna(subset=["sev7"]).copy()
print("ordinal counts", o.groupby(["arm", "sev7"]).size().unstack().to_dict("index"))
o["y"] = o.sev7.map({k: i for i, k in enumerate(order)})
# drop strata where all same outcome
g = o.groupby("stratum").y.agg(lambda v: (v == 0).all() or (v == 3).all())
keep = g[~g].index
oo = o[o.stratum.isin(keep)]
X = pd.get_dummies(oo[["trt", "stratum"]], columns=["stratum"], drop_first=True).astype(float)
mod = OrderedModel(oo.y, X, distr="logit").fit(method="bfgs", disp=False, maxiter=5000)
b_ = mod.params["trt"]
se = mod.bse["trt"]
show(
    "severity prop odds (+stratum)",
    (
        np.exp(b_),
        np.exp(b_ - 1.96 * se),
        np.exp(b_ + 1.96 * se),
        mod.pvalues["trt"],
        [int(o.trt.sum()), int((1 - o.trt).sum())],
    ),
    eng["severity_day7"],
)
# count NB composite death -> 0
y = x[["participant_id", "trt", "stratum", "dday"]].merge(
    ic[["participant_id", "delirium_free_days", "icu_discharged"]], how="left"
)
y["dfd"] = y.delirium_free_days
y.loc[y.dday.notna() & (y.dday <= 14), "dfd"] = 0
cc = y.dropna(subset=["dfd"]).copy()
g = cc.groupby("stratum").dfd.apply(lambda s: (s == 0).all())
keep = g[~g].index
c2 = cc[cc.stratum.isin(keep)]
nb = smf.negativebinomial("dfd ~ trt + C(stratum)", c2).fit(disp=False, maxiter=2000)
ci = nb.conf_int().loc["trt"]
show(
    "dfd negative binomial (+stratum)",
    (
        np.exp(nb.params["trt"]),
        np.exp(ci[0]),
        np.exp(ci[1]),
        nb.pvalues["trt"],
        [int(cc.trt.sum()), int((1 - cc.trt).sum())],
    ),
    eng["delirium_free_days"],
)
# binary icu discharge, composite death->no event, rescue -> no event
resc = (
    de[de.visit_id.isin(["baseline", "day3", "day7", "day14"])]
    .groupby("participant_id")
    .rescue_antipsychotic.max()
    .reset_index()
)
y = y.merge(resc, how="left")
y["ev"] = y.icu_discharged
y.loc[(y.rescue_antipsychotic == 1), "ev"] = 0
y.loc[y.dday.notna() & (y.dday <= 14), "ev"] = 0
bb = y.dropna(subset=["ev"])
k1 = int(bb[bb.trt == 1].ev.sum())
n1 = int((bb.trt == 1).sum())
k0 = int(bb[bb.trt == 0].ev.sum())
n0 = int((bb.trt == 0).sum())
lo, hi = confint_proportions_2indep(k1, n1, k0, n0, method="newcomb", compare="diff")
pf = stats.fisher_exact([[k1, n1 - k1], [k0, n0 - k0]])[1]
print("icu discharge k/n", k1, n1, k0, n0)
show("icu_discharge Newcombe", (k1 / n1 - k0 / n0, lo, hi, pf, [n1, n0]), eng["icu_discharge_day14"])
