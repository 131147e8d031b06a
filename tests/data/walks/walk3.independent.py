"""walk3: the primary (responder, two estimands) and the ANCOVA computed from the CSV export with arms alone.

usage: python walk3.independent.py EXPORT_DIR   (trialwright export csv --with-arms --as ustat --out EXPORT_DIR)
Each comparison is fitted on the two arms' rows only, as docs/analysis.md says (later arm against the first
comparator, PBO). Rules read from docs/analysis.md, not the code:
- responder at week8 (itch.responder == 1); death on or before the participant's planned day 56 (from
  randomization, site date) counts as no_event (composite); rescue (rescue.rescue_given == 1 at week4 or week8
  held on or before week8) counts as no_event in the composite estimand and is ignored in treatment policy;
  no value at week8 otherwise: not analysed.
- ANCOVA: itch_total at week8 ~ arm + baseline itch_total + C(stratum), OLS, t interval.
"""

import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy.stats import fisher_exact
from statsmodels.stats.proportion import confint_proportions_2indep

D = sys.argv[1]
TZ = {"SHZ": ZoneInfo("Asia/Tehran"), "TOR": ZoneInfo("America/Toronto")}
rnd = pd.read_csv(f"{D}/randomization.csv")
itch = pd.read_csv(f"{D}/forms/itch.csv")
rescue = pd.read_csv(f"{D}/forms/rescue.csv")
deaths = pd.read_csv(f"{D}/deaths.csv")
rnd["rand_day"] = [
    datetime.fromisoformat(t).astimezone(TZ[s]).date() for t, s in zip(rnd.randomized_at, rnd.site, strict=True)
]
death_day = {
    r.participant_id: (
        date.fromisoformat(r.death_date) - rnd.set_index("participant_id").rand_day[r.participant_id]
    ).days
    for r in deaths.itertuples()
}
w8 = itch[itch.visit_id == "week8"].set_index("participant_id")
base = itch[itch.visit_id == "baseline"].set_index("participant_id")
resc = rescue[rescue.visit_id.isin(["week4", "week8"])].groupby("participant_id").rescue_given.max()


def responder(pid, composite):
    if pid in death_day and death_day[pid] <= 56:
        return 0
    if composite and resc.get(pid, 0) == 1:
        return 0
    if pid in w8.index and not pd.isna(w8.responder.get(pid)):
        return int(w8.responder[pid])
    return None


ARMS = ["PBO", "N10", "N20"]
for composite in (True, False):
    name = "responder_composite" if composite else "responder_tp"
    y = {r.participant_id: responder(r.participant_id, composite) for r in rnd.itertuples()}
    df = rnd.assign(y=rnd.participant_id.map(y)).dropna(subset=["y"])
    ref = df[df.arm == "PBO"]
    for arm in ARMS[1:]:
        t = df[df.arm == arm]
        k1, n1, k0, n0 = int(t.y.sum()), len(t), int(ref.y.sum()), len(ref)
        lo, hi = confint_proportions_2indep(k1, n1, k0, n0, method="newcomb", compare="diff")
        p = fisher_exact([[k1, n1 - k1], [k0, n0 - k0]])[1]
        print(
            f"{name} {arm} vs PBO: RD {k1 / n1 - k0 / n0:.4f} ({lo:.4f} to {hi:.4f}) Fisher p={p:.4f}",
            f"n={n1}/{n0} events {k1}/{k0}",
        )
        if composite:
            two = pd.concat([t, ref]).assign(treat=lambda x, arm=arm: (x.arm == arm).astype(int))
            m = smf.logit("y ~ treat + C(stratum)", two).fit(disp=0)
            ci = np.exp(m.conf_int().loc["treat"])
            print(f"  logistic OR {np.exp(m.params.treat):.4f} ({ci[0]:.4f} to {ci[1]:.4f}) p={m.pvalues.treat:.4f}")

a = (
    rnd.set_index("participant_id")
    .join(w8.itch_total.rename("y"))
    .join(base.itch_total.rename("b"))
    .dropna(subset=["y", "b"])
)
for arm in ARMS[1:]:
    two = a[a.arm.isin([arm, "PBO"])].assign(treat=lambda x, arm=arm: (x.arm == arm).astype(int))
    m = smf.ols("y ~ treat + b + C(stratum)", two).fit()
    lo, hi = m.conf_int().loc["treat"]
    print(
        f"itch_score ANCOVA {arm} vs PBO: {m.params.treat:.4f} ({lo:.4f} to {hi:.4f}) p={m.pvalues.treat:.4f}",
        f"n={int(two.treat.sum())}/{int((1 - two.treat).sum())}",
    )
