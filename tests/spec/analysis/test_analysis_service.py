"""Running the protocol's analysis on a simulated trial, on both databases: the blinded analysis reports all
outcomes pooled and names no arm; the unblinded one waits for the database lock and the unblinded
statistician; its estimates equal statsmodels' on the same data read straight from the database; Table 1,
the analysis sets and the CONSORT diagram count the same people; the pilot sizes the definitive trial."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from sqlalchemy import select
from statsmodels.stats.proportion import confint_proportions_2indep

from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, who
from trialwright.analysis.methods.competing import fine_gray
from trialwright.analysis.report import render_html, results_json, svgs_for
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services.analysis import AnalysisError, plan_definitive_trial, run_analysis
from trialwright.services.forms import lock_state, lock_trial, unlock_trial
from trialwright.services.simulation import simulate
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.safety_tables import adverse_events, ae_reports
from trialwright.store.screening_tables import screenings

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
ARMS = {a.code: a.name for a in PROTOCOL.arms}
TEHRAN = ZoneInfo("Asia/Tehran")  # both sites of the first trial
PLANTED = 400.0  # cells/uL added to CD4 at follow-up in the experimental arm


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 44, seed=11, effects={"labs.cd4_abs": PLANTED})
    yield t
    t.engine.dispose()


def _leaks(text: str) -> list[str]:
    found = [name for name in ARMS.values() if name in text]
    found += [code for code in ARMS if re.search(rf"\b{re.escape(code)}\b", text)]
    found += [a.description.strip()[:60] for a in PROTOCOL.arms if a.description.strip()[:60] in text]
    return found


def test_the_blinded_analysis_reports_every_outcome_pooled_and_names_no_arm(trial: Trial) -> None:
    run = run_analysis(trial.engine, who(trial, Role.BLINDED_STATISTICIAN))
    r = run.report
    assert r.groups == ("All participants",) and not r.unblinded
    assert r.outcome_ids == tuple(o.id for o in PROTOCOL.outcomes) and len(r.outcome_ids) == 9
    assert all(not o.comparisons for o in r.outcomes)  # pooled: nothing compares arms
    assert r.table_one and r.consort.randomized == sum(r.analysis_sets["itt"].values()) > 0
    text = render_html(r, svgs_for(r)) + json.dumps(results_json(r))
    assert _leaks(text) == []


@pytest.mark.parametrize(
    ("role", "unblinded", "rule"),
    [
        (Role.INVESTIGATOR, False, "role: only the blinded and the unblinded statistician"),
        (Role.DSMB_MEMBER, False, "role: only the blinded and the unblinded statistician"),
        (Role.BLINDED_STATISTICIAN, True, "unblinded: a blinded statistician is masked in this trial"),
        (Role.UNBLINDED_STATISTICIAN, True, "unblinded: the unblinded analysis runs only after the database lock"),
    ],
)
def test_who_may_run_which_analysis(trial: Trial, role: Role, unblinded: bool, rule: str) -> None:
    assert not lock_state(trial.engine).locked  # the test that locks unlocks again
    with pytest.raises(AnalysisError, match=re.escape(rule)):
        run_analysis(trial.engine, who(trial, role), unblinded=unblinded)


def _direct(trial: Trial, variable: str, base: str, follow: str) -> list[dict[str, object]]:
    """Baseline and follow-up values, arm and stratum read straight from the tables (not via the service)."""
    form_id, _, field_id = variable.partition(".")
    with session_scope(trial.engine) as session:
        arms = {r.participant_id: (r.arm, r.stratum) for r in session.execute(
            select(allocation_entries).where(allocation_entries.c.participant_id.is_not(None)))}  # fmt: skip
        rows = session.execute(
            select(visit_records.c.participant_id, visit_records.c.visit_id, form_records.c.form_values)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .where(form_records.c.form_id == form_id)
        ).all()
    values: dict[str, dict[str, float]] = {}
    for pid, visit, raw in rows:
        stored = json.loads(raw).get(field_id)
        if stored and stored.get("status", "value") == "value" and stored.get("value") is not None:
            values.setdefault(pid, {})[visit] = float(stored["value"])
    out = []
    for pid, (arm, stratum) in arms.items():
        v = values.get(pid, {})
        if base in v and follow in v:
            out.append({"b": v[base], "f": v[follow], "exp": int(arm == "EXO"), "stratum": stratum})
    return out


def _stays(trial: Trial) -> dict[str, tuple[float, int, str]]:
    """Participant -> (length of stay, 1 discharged alive or 2 died, arm), from the hospital-course forms."""
    with session_scope(trial.engine) as session:
        arms = dict(session.execute(select(allocation_entries.c.participant_id, allocation_entries.c.arm)
                                    .where(allocation_entries.c.participant_id.is_not(None))).all())  # fmt: skip
        rows = session.execute(
            select(visit_records.c.participant_id, form_records.c.form_values)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .where(form_records.c.form_id == "hospital_course")
        ).all()
    out = {}
    for pid, raw in rows:
        values = {k: (v or {}).get("value") for k, v in json.loads(raw).items()}
        code = {"discharged": 1, "transferred": 1, "died": 2}.get(values.get("status"))
        if pid in arms and code is not None and values.get("length_of_stay") is not None:
            out[pid] = (float(values["length_of_stay"]), code, arms[pid])
    return out


def test_the_unblinded_estimates_equal_statsmodels_on_the_same_data(trial: Trial) -> None:
    manager = who(trial, Role.DATA_MANAGER)
    lock_trial(trial.engine, manager, "final analysis", password=PASSWORD)  # the simulation leaves blockers
    try:
        _unblinded_checks(trial)
    finally:
        unlock_trial(trial.engine, manager, "the other specs of this module go on")


def _unblinded_checks(trial: Trial) -> None:
    r = run_analysis(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), unblinded=True).report
    # Locked over the simulation's open blockers: the report says so first, in text and on the HTML's first lines.
    state = lock_state(trial.engine)
    assert state.open_blockers and r.lock_banner == state.banner and state.at is not None
    assert r.lock_banner == (
        f"Locked with {state.open_blockers} open blockers by data-manager on {state.at:%Y-%m-%d %H:%M} UTC: "
        "final analysis"
    )
    assert r.summary().splitlines()[0] == r.lock_banner
    html = render_html(r, {"consort": ""})
    assert html.index(r.lock_banner) < html.index("<h1>")
    assert set(r.groups) == set(ARMS.values()) and r.groups[0] == ARMS["PBO"]  # the comparator first
    by = {(o.outcome_id, o.variable): o for o in r.outcomes}

    for variable, outcome, log in (("labs.cd4_abs", "lymphocyte_subsets", False), ("labs.il6", "il6", True)):
        rows = _direct(trial, variable, "baseline", "day7")
        data = pd.DataFrame(rows)
        if log:
            data["b"], data["f"] = np.log(data["b"]), np.log(data["f"])
        fit = smf.ols("f ~ b + exp + C(stratum)", data=data).fit()
        lo, hi = fit.conf_int().loc["exp"]
        est = fit.params["exp"]
        if log:
            est, lo, hi = math.exp(est), math.exp(lo), math.exp(hi)
        primary = next(c for c in by[(outcome, variable)].comparisons if c.primary)
        assert primary.n == (int(data["exp"].sum()), int(len(rows) - data["exp"].sum()))
        assert primary.estimate == pytest.approx(est, rel=1e-8)
        assert (primary.lower, primary.upper) == (pytest.approx(lo, rel=1e-8), pytest.approx(hi, rel=1e-8))
        assert primary.p_value == pytest.approx(fit.pvalues["exp"], rel=1e-6)

    # The planted CD4 effect is found: its interval excludes no effect, and holds the planted value.
    cd4 = next(c for c in by[("lymphocyte_subsets", "labs.cd4_abs")].comparisons if c.primary)
    assert cd4.lower is not None and cd4.upper is not None and cd4.lower > 0
    assert cd4.lower < PLANTED < cd4.upper

    # Participants with an SAE from the infusion (day 0) to day 7, counted straight from the tables; the risk
    # difference and Newcombe's interval against statsmodels.
    sae = by[("sae", "sae")]
    with session_scope(trial.engine) as session:
        randomized = {r.participant_id: (r.arm, r.randomized_at.astimezone(TEHRAN).date()) for r in session.execute(
            select(allocation_entries).where(allocation_entries.c.participant_id.is_not(None)))}  # fmt: skip
        infused = dict(session.execute(select(visit_records.c.participant_id, visit_records.c.visit_date)
                                       .where(visit_records.c.visit_id == "infusion")).all())  # fmt: skip
        events = session.execute(select(adverse_events.c.participant_id, ae_reports.c.assessment, ae_reports.c.serious)
                                 .join(ae_reports, ae_reports.c.event_id == adverse_events.c.id)).all()  # fmt: skip
    with_sae: set[str] = set()
    for pid, assessment, serious in events:
        onset = json.loads(assessment)["onset"]
        day0 = infused.get(pid) or randomized[pid][1]
        if serious and 0 <= (np.datetime64(onset) - np.datetime64(day0)).astype(int) <= 7:
            with_sae.add(pid)
    k = {code: sum(1 for p in with_sae if randomized[p][0] == code) for code in ARMS}
    n = {code: sum(1 for p in randomized.values() if p[0] == code) for code in ARMS}
    counts = sae.extra["participants_with_event"]
    assert {ARMS[c]: (k[c], n[c]) for c in ARMS} == {g: (v["k"], v["n"]) for g, v in counts.items()}
    rd = sae.comparisons[0]
    lo, hi = confint_proportions_2indep(k["EXO"], n["EXO"], k["PBO"], n["PBO"], method="newcomb", compare="diff")
    assert rd.estimate == pytest.approx(k["EXO"] / n["EXO"] - k["PBO"] / n["PBO"], abs=1e-12)
    assert (rd.lower, rd.upper) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))

    # Length of stay: discharge alive against death as a competing event, between the arms. The stays read
    # straight from the hospital-course forms; the Fine-Gray fit (itself checked against cmprsk's published output
    # in tests/spec/analysis/methods) on them equals the report's, and every death is in it.
    stays = _stays(trial)
    los = by[("length_of_stay", "hospital_course.length_of_stay")]
    deaths = sum(1 for _, status, _ in stays.values() if status == 2)
    assert deaths > 0, "the simulated trial has deaths"
    fg = fine_gray([d for d, _, _ in stays.values()], [st for _, st, _ in stays.values()],
                   [int(arm == "EXO") for _, _, arm in stays.values()])  # fmt: skip
    compared = los.comparisons[0]
    assert compared.primary and compared.scale == "subdistribution hazard ratio of discharge alive"
    assert compared.estimate == pytest.approx(fg.shr, rel=1e-10)
    assert (compared.lower, compared.upper) == (pytest.approx(fg.ci_lower, rel=1e-10), pytest.approx(fg.ci_upper))
    assert sum(compared.n) == len(stays) and f"{deaths} died" in compared.note
    curves = los.extra["cumulative_incidence"]
    assert sum(c["died"] for c in curves.values() if c) == deaths
    assert {x.participant_id for x in los.excluded} == set(randomized) - set(stays)

    # After the lock the unblinded statistician plans from the SD pooled within arms on n - 2 df (Browne 1995):
    # the residual SD of a one-way fit by arm (statsmodels) on every day-7 value, and Browne's limit on its df.
    plan = plan_definitive_trial(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), "il6", 0.7, n_sim=50,
                                 unblinded=True)  # fmt: skip
    day7 = pd.DataFrame(_direct(trial, "labs.il6", "day7", "day7"))
    one_way = smf.ols("np.log(f) ~ C(exp)", data=day7).fit()
    assert plan.n_pilot == len(day7)
    assert plan.sd == pytest.approx(math.sqrt(one_way.mse_resid), rel=1e-10)
    assert plan.plan.df == int(one_way.df_resid) == len(day7) - 2
    assert plan.plan.upper_sd == pytest.approx(plan.sd * math.sqrt(plan.plan.df / stats.chi2.ppf(0.2, plan.plan.df)))
    assert "pooled within the 2 arms" in plan.note


def test_table_one_the_analysis_sets_and_consort_count_the_same_people(trial: Trial) -> None:
    r = run_analysis(trial.engine, who(trial, Role.BLINDED_STATISTICIAN)).report
    with session_scope(trial.engine) as session:
        assessed = len(session.execute(select(screenings.c.id)).all())
        randomized = len(session.execute(select(allocation_entries.c.id).where(
            allocation_entries.c.participant_id.is_not(None))).all())  # fmt: skip
    c = r.consort
    assert c.assessed == assessed and c.randomized == randomized
    assert sum(x.count for x in c.excluded) == assessed - randomized
    assert sum(a.allocated for a in c.arms) == randomized == int(r.table_one[0].cells["All participants"])
    assert r.analysis_sets["per_protocol"]["All participants"] <= randomized
    c.validate()


def test_the_pilot_sizes_the_definitive_trial_from_its_sd_and_browne_s_upper_limit(trial: Trial) -> None:
    plan = plan_definitive_trial(trial.engine, who(trial, Role.BLINDED_STATISTICIAN), "il6", 0.7, power=0.9,
                                 n_sim=400)  # fmt: skip
    rows = _direct(trial, "labs.il6", "baseline", "day7")
    follow = np.log([row["f"] for row in rows])
    # Every day-7 value counts towards the SD, also of participants without a baseline value.
    assert plan.n_pilot >= len(rows) and plan.scale == "log"
    if plan.n_pilot == len(rows):
        assert plan.sd == pytest.approx(float(np.std(follow, ddof=1)), rel=1e-12)
    assert plan.plan.df == plan.n_pilot - 1  # blinded: one group, whatever the arms
    with pytest.raises(AnalysisError, match="unblinded: a blinded statistician is masked in this trial"):
        plan_definitive_trial(trial.engine, who(trial, Role.BLINDED_STATISTICIAN), "il6", 0.7, unblinded=True)
    p = plan.plan
    assert p.delta == pytest.approx(abs(math.log(0.7)))
    assert p.n_per_arm_upper_sd >= p.n_per_arm >= p.n_per_arm_ancova
    assert p.n_per_arm_upper_sd_ancova >= p.n_per_arm_ancova
    # The design's simulated power is near the power asked for (Monte Carlo error and rounding up of n).
    assert abs(plan.power_at_n.power - 0.9) < 4 * plan.power_at_n.mc_se + 0.02
    assert "Browne" in plan.summary()


@pytest.mark.parametrize(
    ("outcome", "effect", "rule"),
    [
        ("no_such", 1.0, "outcome: 'no_such' is not an outcome"),
        ("sae", 0.1, "outcome: sae is not a continuous outcome"),
        ("il6", 1.0, "effect: on a log-scale outcome give the ratio"),
        ("priest", 0.0, "effect: must not be 0"),
    ],
)
def test_planning_refuses_what_it_cannot_size(trial: Trial, outcome: str, effect: float, rule: str) -> None:
    with pytest.raises(AnalysisError, match=re.escape(rule)):
        plan_definitive_trial(trial.engine, who(trial, Role.BLINDED_STATISTICIAN), outcome, effect)
