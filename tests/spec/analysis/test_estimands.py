"""Any trial's estimands, analysed as declared: a trial nobody here wrote code for (the fictional three-arm example,
with four outcomes added the way docs/analysis.md tells a protocol author) is simulated, locked and analysed
unblinded, on SQLite and PostgreSQL.

Each outcome's numbers are checked against the data read straight from the tables, not through the analysis
data set: the participants with the event per arm (a yes/no field at day 7, with deaths before it counted as the
event: the composite strategy), the deaths and follow-up of a time to death (Cox model fitted again with lifelines
on times built here), and the ordinal counts per category. The methods themselves are checked against published
output in tests/spec/analysis/methods.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from lifelines import CoxPHFitter
from sqlalchemy import Engine, select
from statsmodels.stats.proportion import confint_proportions_2indep

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import PASSWORD
from trialwright.analysis.consort import NOT_RECORDED
from trialwright.analysis.engine import AnalysisReport, declared_sets
from trialwright.analysis.methods import repeated
from trialwright.analysis.methods.binary import negative_binomial
from trialwright.analysis.results import OutcomeResult
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services.analysis import run_analysis
from trialwright.services.forms import lock_trial
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user, reset_password
from trialwright.store.auth_tables import users
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.safety_tables import adverse_events, ae_reports
from trialwright.store.screening_tables import participants, withdrawals

EXAMPLE = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
ORDER = ["alert", "new_confusion", "voice", "pain", "unresponsive"]
ADDED = [
    {
        "id": "death_28", "kind": "secondary", "description": "Death by day 28", "registry_timepoint": "Day 28",
        "method_of_measurement": "Fatal adverse events",
        "estimand": {
            "population": "itt", "variable": {"kind": "time_to_event", "adverse_event": "death", "up_to_day": 28},
            "intercurrent_events": [{"event": "withdrawal", "strategy": "hypothetical"}],
            "summary": "hazard_ratio", "estimator": "cox", "sensitivity": [{"estimator": "rmst"}],
        },
    },
    {
        "id": "oxygen_day7", "kind": "secondary", "description": "On oxygen on day 7", "registry_timepoint": "Day 7",
        "method_of_measurement": "Vital signs",
        "estimand": {
            "population": "itt",
            "variable": {"kind": "binary", "fields": ["vitals.on_oxygen"], "at": "day7", "event_values": ["True"]},
            "intercurrent_events": [{"event": "death", "strategy": "composite", "value": "event"}],
            "summary": "risk_difference", "estimator": "newcombe",
            "sensitivity": [{"estimator": "mantel_haenszel"}, {"estimator": "katz"}],
        },
    },
    {
        "id": "consciousness_day7", "kind": "secondary", "description": "Consciousness on day 7",
        "registry_timepoint": "Day 7", "method_of_measurement": "Vital signs",
        "estimand": {
            "population": "itt",
            "variable": {"kind": "ordinal", "fields": ["vitals.consciousness"], "at": "day7", "order": ORDER,
                         "baseline": "baseline"},
            "intercurrent_events": [{"event": "death", "strategy": "composite", "value": "unresponsive"}],
            "summary": "common_odds_ratio", "estimator": "proportional_odds",
        },
    },
    {
        "id": "news2_repeated", "kind": "secondary", "description": "NEWS2 over the first week",
        "registry_timepoint": "Days 3 and 7", "method_of_measurement": "NEWS2 from the vital signs.",
        "estimand": {
            "population": "itt",
            "variable": {"kind": "continuous", "fields": ["vitals.news2"], "at": "day7", "visits": ["day3", "day7"],
                         "baseline": "baseline"},
            "intercurrent_events": [{"event": "death", "strategy": "hypothetical"},
                                    {"event": "withdrawal", "strategy": "hypothetical"}],
            "summary": "difference_in_means", "estimator": "mmrm", "covariance": "compound_symmetry",
        },
    },
    {
        "id": "resp_rate_day7", "kind": "secondary", "description": "Respiration rate on day 7",
        "registry_timepoint": "Day 7", "method_of_measurement": "Vital signs",
        "estimand": {
            "population": "itt",
            "variable": {"kind": "count", "fields": ["vitals.resp_rate"], "at": "day7"},
            "intercurrent_events": [{"event": "death", "strategy": "composite", "value": 60}],
            "summary": "rate_ratio", "estimator": "negative_binomial",
            "sensitivity": [{"estimator": "wilcoxon_hodges_lehmann"}, {"estimator": "proportional_odds"}],
        },
    },
]  # fmt: skip


@dataclass(frozen=True)
class _Trial:
    engine: Engine


@pytest.fixture(scope="module")
def report(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, AnalysisReport]]:
    folder = tmp_path_factory.mktemp("unseen")
    path = folder / EXAMPLE.name
    path.write_text(mutated_text(lambda doc: doc["outcomes"].extend(ADDED), EXAMPLE), encoding="utf-8")
    shutil.copy(EXAMPLE.with_name("EXAMPLE-CAP-3ARM.simulation.yaml"), folder)
    engine = make_engine(module_database_url)
    init_trial(engine, load_protocol(path))
    simulate(engine, path, 90, 4)  # creates one simulated account per role
    with session_scope(engine) as session:
        account = {row.role: row.username for row in session.execute(select(users.c.username, users.c.role))}
    manager = get_user(engine, account[Role.DATA_MANAGER.value])
    statistician = get_user(engine, account[Role.UNBLINDED_STATISTICIAN.value])
    assert manager is not None and statistician is not None
    reset_password(engine, manager.username, PASSWORD, actor="test")  # the simulation leaves blockers: override
    lock_trial(engine, manager, "final analysis", password=PASSWORD)
    yield _Trial(engine), run_analysis(engine, statistician, unblinded=True).report


def _result(report: AnalysisReport, outcome: str) -> OutcomeResult:
    return next(o for o in report.outcomes if o.outcome_id == outcome)


def _direct(trial: Any) -> dict[str, dict[str, Any]]:
    """Per randomized participant, straight from the tables: arm, randomization date (site's zone), day-7 vitals,
    death date from a fatal adverse event, withdrawal date."""
    protocol = load_protocol(EXAMPLE).protocol
    out: dict[str, dict[str, Any]] = {}
    with session_scope(trial.engine) as session:
        sites = dict(session.execute(select(participants.c.participant_id, participants.c.site)).all())
        for a in session.execute(select(allocation_entries).where(allocation_entries.c.participant_id.is_not(None))):
            tz = ZoneInfo(protocol.site(sites[a.participant_id]).timezone)
            out[a.participant_id] = {"arm": a.arm, "randomized": a.randomized_at.astimezone(tz).date()}
        for pid, raw in session.execute(
            select(visit_records.c.participant_id, form_records.c.form_values)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .where(form_records.c.form_id == "vitals", visit_records.c.visit_id == "day7")
        ):
            values = json.loads(raw)
            out[pid]["on_oxygen"] = (values.get("on_oxygen") or {}).get("value")
            out[pid]["consciousness"] = (values.get("consciousness") or {}).get("value")
        reports = session.execute(
            select(adverse_events.c.participant_id, ae_reports.c.assessment)
            .join(ae_reports, ae_reports.c.event_id == adverse_events.c.id)
        ).all()
        for pid, assessment in reports:
            body = json.loads(assessment)
            if body.get("outcome") == "fatal" and pid in out:
                out[pid]["died"] = dt.date.fromisoformat(body["death_date"])
        for w in session.execute(select(withdrawals).where(withdrawals.c.scope == "follow_up")):
            out[w.participant_id]["left"] = w.withdrawn_on
            out[w.participant_id]["left_because"] = w.cause
    return out


def test_every_added_estimand_is_analysed_for_every_pair_of_arms(report: tuple[Any, AnalysisReport]) -> None:
    _, r = report
    assert len(r.groups) == 3
    per_outcome = (("death_28", 2), ("oxygen_day7", 3), ("consciousness_day7", 1), ("news2_repeated", 1),
                   ("resp_rate_day7", 3))  # fmt: skip
    for outcome, per_pair in per_outcome:
        result = _result(r, outcome)
        assert len(result.comparisons) == per_pair * 2, outcome
        assert sum(c.primary for c in result.comparisons) == 2, outcome


def test_a_binary_field_with_death_as_composite_counts_as_the_tables_say(report: tuple[Any, AnalysisReport]) -> None:
    trial, r = report
    rows = _direct(trial)
    day7 = load_protocol(EXAMPLE).protocol.visit("day7").day
    names = {a.code: a.name for a in load_protocol(EXAMPLE).protocol.arms}
    counts: dict[str, list[int]] = {name: [0, 0] for name in names.values()}
    not_known = set()
    for pid, row in rows.items():
        died = row.get("died")
        if died is not None and (died - row["randomized"]).days <= day7:
            event = 1  # the composite strategy: a death before the visit is the event
        elif row.get("on_oxygen") is None:
            not_known.add(pid)
            continue
        else:
            event = int(row["on_oxygen"] is True)
        counts[names[row["arm"]]][0] += event
        counts[names[row["arm"]]][1] += 1
    result = _result(r, "oxygen_day7")
    assert {g: [v["k"], v["n"]] for g, v in result.extra["participants_with_event"].items()} == counts
    assert {x.participant_id for x in result.excluded} == not_known
    reference = r.groups[0]
    for c in (c for c in result.comparisons if c.primary):
        treat = c.label.split(" vs ")[0]
        (k1, n1), (k0, n0) = counts[treat], counts[reference]
        lo, hi = confint_proportions_2indep(k1, n1, k0, n0, method="newcomb", compare="diff")
        assert c.estimate == pytest.approx(k1 / n1 - k0 / n0, abs=1e-12)
        assert (c.lower, c.upper) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))


def test_time_to_death_is_censored_at_day_28_or_withdrawal_and_the_cox_fit_is_lifelines(
    report: tuple[Any, AnalysisReport],
) -> None:
    trial, r = report
    rows = _direct(trial)
    protocol = load_protocol(EXAMPLE).protocol
    names = {a.code: a.name for a in protocol.arms}
    with session_scope(trial.engine) as session:
        strata = dict(session.execute(select(allocation_entries.c.participant_id, allocation_entries.c.stratum)
                                      .where(allocation_entries.c.participant_id.is_not(None))).all())  # fmt: skip
    built = []
    for pid, row in rows.items():
        end = 28
        if row.get("left") is not None:
            end = min(end, (row["left"] - row["randomized"]).days)
        died = row.get("died")
        death = (died - row["randomized"]).days if died is not None else None
        if death is not None and death <= end:
            built.append((names[row["arm"]], float(max(death, 0)), 1, strata[pid]))
        else:
            built.append((names[row["arm"]], float(end), 0, strata[pid]))
    result = _result(r, "death_28")
    events = {g: sum(e for arm, _, e, _ in built if arm == g) for g in r.groups}
    assert {g: c["events"] if c else 0 for g, c in result.extra["kaplan_meier"].items()} == events
    reference = r.groups[0]
    for c in (c for c in result.comparisons if c.primary):
        treat = c.label.split(" vs ")[0]

        frame = pd.DataFrame(
            [{"t": t, "e": e, "g": int(arm == treat), "s": s} for arm, t, e, s in built if arm in (treat, reference)]
        )
        if c.estimate is None:
            assert c.note, "a Cox model that cannot be fitted says why"
            continue
        fit = CoxPHFitter().fit(frame, "t", "e", strata=["s"])
        assert c.estimate == pytest.approx(float(fit.hazard_ratios_["g"]), rel=1e-4)


def test_an_ordinal_field_with_death_as_the_worst_category_counts_as_the_tables_say(
    report: tuple[Any, AnalysisReport],
) -> None:
    trial, r = report
    rows = _direct(trial)
    protocol = load_protocol(EXAMPLE).protocol
    names = {a.code: a.name for a in protocol.arms}
    day7 = protocol.visit("day7").day
    counts = {g: dict.fromkeys(ORDER, 0) for g in r.groups}
    for row in rows.values():
        died = row.get("died")
        dead = died is not None and (died - row["randomized"]).days <= day7
        code = "unresponsive" if dead else row.get("consciousness")
        if code is not None:
            counts[names[row["arm"]]][code] += 1
    result = _result(r, "consciousness_day7")
    assert result.extra["by_category"] == counts
    # The shift tables hold every participant of each group once, and their columns are the counts above.
    for g, shift in result.extra["shift"].items():
        table = shift["table"]
        assert sum(map(sum, table)) == sum(1 for row in rows.values() if names[row["arm"]] == g)
        assert [sum(row[j] for row in table) for j in range(len(ORDER))] == [counts[g][c] for c in ORDER]


def test_repeated_measures_use_every_observed_visit_read_from_the_tables(report: tuple[Any, AnalysisReport]) -> None:
    """The MMRM's data are the NEWS2 values at days 3 and 7 and at baseline, straight from the vitals forms; the
    report's estimate is the model fitted on exactly those (the model itself is checked against per-visit ANCOVA
    and statsmodels MixedLM in tests/spec/analysis/methods/test_repeated.py)."""
    trial, r = report
    protocol = load_protocol(EXAMPLE).protocol
    names = {a.code: a.name for a in protocol.arms}
    with session_scope(trial.engine) as session:
        arm = dict(session.execute(select(allocation_entries.c.participant_id, allocation_entries.c.arm)
                                   .where(allocation_entries.c.participant_id.is_not(None))).all())  # fmt: skip
        stratum = dict(session.execute(select(allocation_entries.c.participant_id, allocation_entries.c.stratum)
                                       .where(allocation_entries.c.participant_id.is_not(None))).all())  # fmt: skip
        rows = session.execute(
            select(visit_records.c.participant_id, visit_records.c.visit_id, form_records.c.form_values)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .where(form_records.c.form_id == "vitals")
        ).all()
    news2: dict[tuple[str, str], float] = {}
    for pid, visit, raw in rows:
        value = (json.loads(raw).get("news2") or {}).get("value")
        if value is not None and pid in arm:
            news2[(pid, visit)] = float(value)
    reference = r.groups[0]
    result = _result(r, "news2_repeated")
    for c in (c for c in result.comparisons if c.primary):
        treat = c.label.split(" vs ")[0]
        long = [
            (pid, visit, news2[(pid, visit)])
            for pid in sorted(arm)
            for visit in ("day3", "day7")
            if names[arm[pid]] in (treat, reference) and (pid, visit) in news2 and (pid, "baseline") in news2
        ]
        group = [int(names[arm[p]] == treat) for p, _, _ in long]
        baseline = [news2[(p, "baseline")] for p, _, _ in long]
        strata = {"stratum": [stratum[p] for p, _, _ in long]}
        fit = repeated.mmrm([p for p, _, _ in long], [v for _, v, _ in long], [y for _, _, y in long], group,
                            baseline, ["day3", "day7"], "day7", strata, covariance="compound_symmetry")  # fmt: skip
        assert c.estimate == pytest.approx(fit.estimate, rel=1e-6)
        assert (c.lower, c.upper) == (pytest.approx(fit.ci_lower, rel=1e-6), pytest.approx(fit.ci_upper, rel=1e-6))


def test_the_consort_diagram_counts_each_arms_deaths_and_accounts_for_everyone(
    report: tuple[Any, AnalysisReport],
) -> None:
    """Deaths per arm in the follow-up stage are the fatal adverse events read from the tables up to the last
    scheduled visit's day (a death after it is no loss), and the living who left follow-up by that day are counted
    by the cause recorded with the withdrawal (withdrew consent, lost to follow-up; a withdrawal after it is no loss);
    analysed plus the listed exclusions (by cause) make up each arm (validate() checks every CONSORT sum)."""
    trial, r = report
    rows = _direct(trial)
    names = {a.code: a.name for a in load_protocol(EXAMPLE).protocol.arms}
    r.consort.validate()
    words = {"withdrew_consent": "Withdrew consent", "lost_to_follow_up": "Lost to follow-up"}
    left_seen = 0
    last = max(v.day for v in load_protocol(EXAMPLE).protocol.visits if v.kind == "scheduled")  # follow-up ends

    def within(row: dict[str, Any], key: str) -> bool:
        return row.get(key) is not None and (row[key] - row["randomized"]).days <= last

    for arm in r.consort.arms:
        mine = [row for row in rows.values() if names[row["arm"]] == arm.label]
        lost = {x.label: x.count for x in arm.lost}
        assert lost.get("Died", 0) == sum(1 for row in mine if within(row, "died"))
        for cause, label in words.items():
            left = sum(1 for row in mine if row.get("left_because") == cause and within(row, "left")
                       and not within(row, "died"))  # fmt: skip
            assert lost.get(label, 0) == left, (arm.label, cause)
            left_seen += left
        assert set(lost) <= {"Died", *words.values()}
        assert arm.analysed + sum(x.count for x in arm.excluded_from_analysis) == arm.allocated
    assert left_seen, "the simulated trial has withdrawals from follow-up to count"


def test_a_count_with_death_as_its_worst_value_reads_the_tables(report: tuple[Any, AnalysisReport]) -> None:
    """The respiration rate at day 7 as a count, a death on or before day 7 counting as 60 breaths a minute: the
    values per arm are the vitals forms' (or 60), and the negative binomial fit of exactly those values is the
    report's (the model itself is checked against statsmodels in tests/spec/analysis/methods/test_binary.py)."""
    trial, r = report
    protocol = load_protocol(EXAMPLE).protocol
    names = {a.code: a.name for a in protocol.arms}
    day7 = protocol.visit("day7").day
    with session_scope(trial.engine) as session:
        stratum = dict(session.execute(select(allocation_entries.c.participant_id, allocation_entries.c.stratum)
                                       .where(allocation_entries.c.participant_id.is_not(None))).all())  # fmt: skip
        rows = session.execute(
            select(visit_records.c.participant_id, form_records.c.form_values)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .where(form_records.c.form_id == "vitals", visit_records.c.visit_id == "day7")
        ).all()
    observed = {pid: (json.loads(raw).get("resp_rate") or {}).get("value") for pid, raw in rows}
    values: dict[str, int] = {}
    for pid, row in _direct(trial).items():
        died = row.get("died")
        if died is not None and (died - row["randomized"]).days <= day7:
            values[pid] = 60
        elif observed.get(pid) is not None:
            values[pid] = int(observed[pid])
    arm = {pid: names[row["arm"]] for pid, row in _direct(trial).items()}
    result = _result(r, "resp_rate_day7")
    assert result.analysed == {g: sum(1 for pid in values if arm[pid] == g) for g in r.groups}
    reference = r.groups[0]
    for c in (c for c in result.comparisons if c.primary):
        treat = c.label.split(" vs ")[0]
        kept = sorted(pid for pid in values if arm[pid] in (treat, reference))
        fit = negative_binomial([values[p] for p in kept], [int(arm[p] == treat) for p in kept],
                                covariates={"stratum": [stratum[p] for p in kept]})  # fmt: skip
        assert c.estimate == pytest.approx(fit.estimate, rel=1e-8)


def test_without_a_treatment_record_no_one_is_claimed_to_have_received_the_intervention(
    report: tuple[Any, AnalysisReport],
) -> None:
    """This protocol declares no record of the intervention given (no ``analysis_plan.treatment``): the CONSORT
    allocation box says so instead of a count, the report says how its safety set was formed, and only the analysis
    sets the protocol declares are reported, in its order."""
    _, r = report
    assert r.consort.arms and all(arm.received is None and not arm.not_received for arm in r.consort.arms)
    text = r.consort.summary()
    assert NOT_RECORDED in text and "Received allocated intervention (n=" not in text
    r.consort.validate()  # consistent: no count claimed, none contradicted
    assert list(r.analysis_sets) == [a.id for a in load_protocol(EXAMPLE).protocol.analysis_sets]
    said = "No treatment record is declared (analysis_plan.treatment): the safety set"
    assert any(n.startswith(said) for n in r.notes)


def test_a_declared_analysis_set_trialwright_cannot_count_is_said_never_left_out_unsaid() -> None:
    protocol = load_protocol(EXAMPLE).protocol
    extra = protocol.analysis_sets[0].model_copy(update={"id": "mitt_covid", "name": "mITT (confirmed COVID-19)"})
    declared = protocol.model_copy(update={"analysis_sets": [*protocol.analysis_sets, extra]})
    counted = {"itt": {"A": 3}, "safety": {"A": 2}, "per_protocol": {"A": 1}, "modified_itt": {"A": 2}}
    sets, notes = declared_sets(declared, counted)
    assert list(sets) == [a.id for a in protocol.analysis_sets]  # in the protocol's order, its own sets only
    assert notes == [
        "Analysis set mitt_covid (mITT (confirmed COVID-19)) is declared but not one trialwright counts (itt, safety, "
        "per_protocol, modified_itt): no count is reported for it"
    ]
