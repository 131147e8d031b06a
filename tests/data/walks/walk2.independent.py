"""Independent check of WALK-TTE-PROBE's primary (cause-specific Cox, death competing) and the ANCOVA secondary.

Reads only the CSV export (`trialwright export csv --with-arms --out DIR`), computes with lifelines and statsmodels,
and compares with trialwright's results.csv (`trialwright analyse --unblinded --out REPORT`).

    python walk2.independent.py EXPORT_DIR REPORT_DIR
"""

import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import statsmodels.formula.api as smf
from lifelines import CoxPHFitter

ZONES = {"TEH": ZoneInfo("Asia/Tehran"), "LON": ZoneInfo("Europe/London")}
UP_TO_DAY = 30
exp, rep = Path(sys.argv[1]), Path(sys.argv[2])

p = pd.read_csv(exp / "participants.csv")
p = p[p["randomized_at"].notna()].copy()
# day 0 is the randomization's date at the site
p["rand_day"] = [
    pd.Timestamp(t).tz_convert(ZONES[s]).date() for t, s in zip(p["randomized_at"], p["site"], strict=True)
]
p["treat"] = (p["arm"] == "EMOB").astype(int)

mob = pd.read_csv(exp / "forms" / "mobility.csv")
mob = mob[mob["visit_id"] == "day30"].set_index("participant_id")
deaths = pd.read_csv(exp / "deaths.csv").groupby("participant_id")["death_date"].min()

rows, not_analysed = [], []
for r in p.itertuples():
    pid = r.participant_id
    death = pd.Timestamp(deaths[pid]).date() if pid in deaths.index else None
    death_day = (death - r.rand_day).days if death else None
    if pid not in mob.index:
        not_analysed.append((pid, "no day30 mobility form", death_day))
        continue
    m = mob.loc[pid]
    visit_day = (pd.Timestamp(m["visit_date"]).date() - r.rand_day).days
    walked = m["walked_on"]
    if isinstance(walked, str) and walked:
        wd = (pd.Timestamp(walked).date() - r.rand_day).days
        if death_day is not None and death_day < wd:
            rows.append((pid, r.treat, death_day, 0, "death first"))
        elif wd <= UP_TO_DAY:
            rows.append((pid, r.treat, wd, 1, "event"))
        else:
            rows.append((pid, r.treat, UP_TO_DAY, 0, "censored at end"))
    elif death_day is not None and death_day <= UP_TO_DAY:
        rows.append((pid, r.treat, death_day, 0, "death (competing), censored for the cause-specific hazard"))
    else:
        rows.append((pid, r.treat, min(visit_day, UP_TO_DAY), 0, "blank date, censored at the visit"))
tte = pd.DataFrame(rows, columns=["pid", "treat", "time", "event", "how"])
tte["time"] = tte["time"].clip(lower=0.0)
print("time to walking: n per arm", tte.groupby("treat").size().to_dict(), "events", int(tte["event"].sum()))
print("  times of events:", tte[tte.event == 1]["time"].value_counts().sort_index().to_dict())
print("  how:", tte["how"].value_counts().to_dict(), "not analysed:", not_analysed)
cph = CoxPHFitter().fit(tte[["time", "event", "treat"]], "time", "event")
hr = cph.summary.loc["treat"]
print(f"  cause-specific Cox (lifelines, Efron ties): HR {hr['exp(coef)']:.4f} "
      f"({hr['exp(coef) lower 95%']:.4f} to {hr['exp(coef) upper 95%']:.4f}) p={hr['p']:.4f}")

# ANCOVA: barthel at day30 ~ arm + baseline + stratum
f = pd.read_csv(exp / "forms" / "function.csv")
wide = f.pivot_table(index="participant_id", columns="visit_id", values="barthel", aggfunc="first")
a = p.set_index("participant_id").join(wide[["baseline", "day30"]], how="inner").dropna(subset=["baseline", "day30"])
died_by_30 = [pid for pid in a.index if pid in deaths.index]
m = smf.ols("day30 ~ treat + baseline + C(stratum)", data=a).fit()
ci = m.conf_int().loc["treat"]
print(f"ANCOVA (statsmodels): n={len(a)} ({a.treat.sum()} vs {len(a) - a.treat.sum()}), "
      f"difference {m.params['treat']:.4f} ({ci[0]:.4f} to {ci[1]:.4f}) p={m.pvalues['treat']:.4f}; "
      f"with a value though dead: {died_by_30}")

tw = pd.read_csv(rep / "results.csv")
print("\ntrialwright:")
for _, r in tw[tw["primary"] | tw["method"].str.startswith("Fine")].iterrows():
    print(f"  {r.outcome} {r.method}: {r.estimate:.4f} ({r.ci_lower:.4f} to {r.ci_upper:.4f}) p={r.p_value} "
          f"n={r.n_treatment}/{r.n_reference}")
