"""A responder computed at analysis from a numeric field's stored values (walk 3 finding F2), checked against the CSV
export by pandas and statsmodels.

The first protocol with three yes/no outcomes on C-reactive protein (``labs.crp``, hard limits 0-600 mg/L), each
declared as a responder rule, never a typed field:

| outcome            | rule at day 7, from baseline                              | a baseline of 0          |
|--------------------|-----------------------------------------------------------|--------------------------|
| crp_halved         | percent_change <= -50 or change <= -20 (any)               | exclude: listed          |
| crp_halved_refused | percent_change <= -50                                      | refuse: no estimate      |
| crp_low            | value < 40 (no baseline)                                   | (none read)              |

A simulated trial of 40 on SQLite and PostgreSQL, in which one participant's baseline CRP is made 0 and another's
is made "not done" in the stored rows. The data set is read back from the CSV export with arms (``participants.csv``
for the arm, ``forms/labs.csv`` for the values), the flags worked out with pandas from the rule as written, and the
risk difference's counts, Newcombe interval (statsmodels) and Fisher's exact p (scipy) equal the report's; the
participants not analysed are exactly those without a value, without a baseline, or with a baseline of 0, each with
its reason. Nobody is made a non-responder for a missing value.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import text
from statsmodels.stats.proportion import confint_proportions_2indep

from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, who
from trialwright.analysis.results import OutcomeResult
from trialwright.domain.roles import Role
from trialwright.exports.tabular import CsvExporter
from trialwright.protocol import load_protocol_text
from trialwright.services.analysis import run_analysis
from trialwright.services.exports import export_source
from trialwright.services.forms import lock_trial
from trialwright.services.simulation import SimulationError, field_specs, simulate, simulation_file_for

CRP = "labs.crp"


def _outcome(id_: str, responder: dict[str, Any], baseline: bool = True) -> dict[str, Any]:
    variable: dict[str, Any] = {"kind": "binary", "fields": [CRP], "at": "day7", "responder": responder}
    if baseline:
        variable["baseline"] = "baseline"
    return {
        "id": id_, "kind": "secondary", "description": f"CRP responder ({id_})", "registry_timepoint": "Day 7",
        "method_of_measurement": "CRP", "description_translations": {"fa": "پاسخ CRP"},
        "registry_timepoint_translations": {"fa": "روز ۷"}, "method_of_measurement_translations": {"fa": "CRP"},
        "estimand": {
            "population": "itt", "variable": variable,
            "intercurrent_events": [{"event": "death", "strategy": "treatment_policy"}],
            "summary": "risk_difference", "estimator": "newcombe",
        },
    }  # fmt: skip


HALVED = {"criteria": [{"measure": "percent_change", "operator": "<=", "threshold": -50},
                       {"measure": "change", "operator": "<=", "threshold": -20}],
          "combine": "any", "zero_baseline": "exclude"}  # fmt: skip
REFUSED = {"criteria": [{"measure": "percent_change", "operator": "<=", "threshold": -50}], "zero_baseline": "refuse"}
LOW = {"criteria": [{"measure": "value", "operator": "<", "threshold": 40}]}
OUTCOMES = [_outcome("crp_halved", HALVED), _outcome("crp_halved_refused", REFUSED), _outcome("crp_low", LOW, False)]


def _text() -> str:
    return mutated_text(lambda doc: doc["outcomes"].extend(OUTCOMES))


@pytest.fixture(scope="module")
def trial(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Trial, Path, dict]]:
    protocol_text = _text()
    path = tmp_path_factory.mktemp("protocol") / "protocol.yaml"
    path.write_text(protocol_text, encoding="utf-8")
    shutil.copyfile(simulation_file_for(FIRST_PROTOCOL), simulation_file_for(path))  # nothing to draw for a rule
    t = make_trial(module_database_url, load_protocol_text(protocol_text))
    simulate(t.engine, path, 40, seed=5)
    changed = _zero_and_missing_baselines(t)
    lock_trial(t.engine, who(t, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    folder = tmp_path_factory.mktemp("csv")
    CsvExporter().write(export_source(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), with_arms=True), folder)
    yield t, folder, changed
    t.engine.dispose()


def _zero_and_missing_baselines(trial: Trial) -> dict[str, str]:
    """The baseline CRP of the first participant with a day-7 CRP made 0, and the second's made not done."""
    with trial.engine.begin() as c:
        rows = c.execute(text(
            "SELECT r.id, r.participant_id, r.form_values FROM form_records r JOIN visit_records v ON "
            "v.id = r.visit_record_id WHERE r.form_id = 'labs' AND v.visit_id = 'baseline' AND r.participant_id IN "
            "(SELECT f.participant_id FROM form_records f JOIN visit_records w ON w.id = f.visit_record_id WHERE "
            "f.form_id = 'labs' AND w.visit_id = 'day7') ORDER BY r.participant_id"
        )).all()  # fmt: skip
        changed = {}
        for row, (how, value) in zip(rows, (("zero", {"status": "value", "value": 0.0, "entered": 0}),
                                            ("missing", {"status": "not_done", "reason": "sample lost"})),
                                     strict=False):  # fmt: skip
            stored = {**json.loads(row.form_values), "crp": value}
            c.execute(text("UPDATE form_records SET form_values = :v WHERE id = :id"),
                      {"v": json.dumps(stored), "id": row.id})  # fmt: skip
            changed[row.participant_id] = how
    assert sorted(changed.values()) == ["missing", "zero"]
    return changed


def _from_csv(folder: Path) -> pd.DataFrame:
    """One row per randomized participant: arm, baseline and day-7 CRP (NaN where none), from the CSV alone."""
    people = pd.read_csv(folder / "participants.csv", dtype={"participant_id": str})
    people = people[people["arm"].notna()][["participant_id", "arm"]]
    labs = pd.read_csv(folder / "forms" / "labs.csv", dtype={"participant_id": str})
    wide = labs.pivot_table(index="participant_id", columns="visit_id", values="crp", aggfunc="first")
    out = people.set_index("participant_id").join(wide[["baseline", "day7"]], how="left")
    return out.rename(columns={"baseline": "b", "day7": "f"})


def _flags(data: pd.DataFrame, rule: str) -> pd.Series:
    """1, 0, or NaN (not known) per participant, from the rule as the protocol states it."""
    b, f = data["b"], data["f"]
    if rule == "crp_low":
        return (f < 40).astype(float).where(f.notna())
    pct = (100 * (f - b) / b).where(b > 0).round(9)
    change = (f - b).round(9)
    if rule == "crp_halved_refused":
        return (pct <= -50).astype(float).where(pct.notna())
    met = (pct <= -50) | (change <= -20)
    known = met | (pct.notna() & change.notna())
    return met.astype(float).where(known)


def _report(trial: Trial) -> dict[str, OutcomeResult]:
    r = run_analysis(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), unblinded=True).report
    return {o.outcome_id: o for o in r.outcomes}


@pytest.fixture(scope="module")
def report(trial: tuple[Trial, Path, dict]) -> dict[str, OutcomeResult]:
    return _report(trial[0])


@pytest.mark.parametrize("outcome", ["crp_halved", "crp_low"])
def test_the_responder_s_counts_interval_and_p_equal_pandas_statsmodels_and_scipy_on_the_csv(
    trial: tuple[Trial, Path, dict], report: dict[str, OutcomeResult], outcome: str
) -> None:
    _, folder, _ = trial
    data = _from_csv(folder)
    data["y"] = _flags(data, outcome)
    names = {a.code: a.name for a in load_protocol_text(_text()).protocol.arms}
    result = report[outcome]
    known = data[data["y"].notna()]
    k = {names[a]: int(known[known["arm"] == a]["y"].sum()) for a in names}
    n = {names[a]: int((known["arm"] == a).sum()) for a in names}
    counts = result.extra["participants_with_event"]
    assert {g: (c["k"], c["n"]) for g, c in counts.items()} == {g: (k[g], n[g]) for g in k}
    assert 0 < sum(k.values()) < sum(n.values()), "both responders and non-responders in the simulated trial"
    assert {x.participant_id for x in result.excluded} == set(data.index[data["y"].isna()])
    treat, ref = (names[c] for c in ("EXO", "PBO"))
    rd = next(c for c in result.comparisons if c.primary)
    assert rd.n == (n[treat], n[ref])
    lo, hi = confint_proportions_2indep(k[treat], n[treat], k[ref], n[ref], method="newcomb", compare="diff")
    assert rd.estimate == pytest.approx(k[treat] / n[treat] - k[ref] / n[ref], abs=1e-12)
    assert (rd.lower, rd.upper) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))
    table = np.array([[k[treat], n[treat] - k[treat]], [k[ref], n[ref] - k[ref]]])
    assert rd.p_value == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9)


def test_a_missing_or_zero_baseline_is_listed_with_its_reason_never_a_non_responder(
    trial: tuple[Trial, Path, dict], report: dict[str, OutcomeResult]
) -> None:
    _, folder, changed = trial
    data = _from_csv(folder)
    zero = next(p for p, how in changed.items() if how == "zero")
    missing = next(p for p, how in changed.items() if how == "missing")
    assert data.loc[zero, "b"] == 0 and np.isnan(data.loc[missing, "b"])
    why = {x.participant_id: x.reason for x in report["crp_halved"].excluded}
    assert data.loc[zero, "f"] > -20  # from 0 no fall of 20 mg/L (the other criterion) can decide instead
    assert why[zero] == "labs.crp at baseline is 0: a percent change from it is undefined (zero_baseline: exclude)"
    assert why[missing] == "no labs.crp at baseline"
    assert missing not in {x.participant_id for x in report["crp_low"].excluded}  # crp_low reads no baseline


def test_under_zero_baseline_refuse_nothing_is_estimated_and_the_participants_are_named(
    trial: tuple[Trial, Path, dict], report: dict[str, OutcomeResult]
) -> None:
    _, _, changed = trial
    zero = next(p for p, how in changed.items() if how == "zero")
    (rd,) = report["crp_halved_refused"].comparisons
    assert (rd.estimate, rd.lower, rd.upper, rd.p_value) == (None, None, None, None)
    assert rd.note == (
        f"a percent change from a baseline of 0 or below is undefined for {zero} (zero_baseline: refuse): not estimated"
    )


@pytest.mark.parametrize("key", ["crp_halved", "labs.crp_halved"])
def test_a_simulation_file_that_draws_for_a_computed_responder_is_refused(key: str) -> None:
    plan = {"fields": {key: {"choice": {"True": 0.5, "False": 0.5}}}}
    with pytest.raises(SimulationError) as refused:
        field_specs(load_protocol_text(_text()).protocol, plan)
    assert str(refused.value) == (
        f"simulation file: fields.{key}: crp_halved is a responder computed at analysis from labs.crp's values: "
        "nothing is drawn for it (draw labs.crp, with --effect to plant one)"
    )
