"""An intercurrent event the protocol names (here rescue antibiotics, a yes/no field on the symptoms form) with the
composite strategy: once the field says yes at the outcome's visit or at a visit held on or before it, the outcome
takes the declared value (a white cell count of 30, or "on oxygen"); a death on or before the visit takes the
death's value first (where the estimand makes death composite; where it does not, a rescue recorded before the
death still made the outcome the event); a yes recorded only after the visit, or a no, leaves the participant's own
value.

The values are worked out here by hand from that rule; the ANCOVA estimate is statsmodels' OLS on them and the
risk difference's counts are the hand count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import statsmodels.formula.api as smf
from pandas import DataFrame

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis.dataset import Subject
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.protocol import load_protocol_text

EXAMPLE = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
REFERENCE, TREATMENT = "Placebo inhaler + standard care", "ILX 100 micrograms + standard care"
GROUPS = (REFERENCE, TREATMENT)
RESCUE = "symptoms.rescue_antibiotic"
WBC, OXYGEN = "labs.wbc", "vitals.on_oxygen"
RESCUE_FIELD = {"id": "rescue_antibiotic", "label": "Rescue antibiotics since the last visit", "type": "boolean",
                "required": False}  # fmt: skip
RESCUED = {"event": "rescue", "strategy": "composite", "field": RESCUE}
OUTCOMES = [
    {
        "id": "wbc_rescue", "kind": "secondary", "description": "White cells on day 7, rescue as failure",
        "registry_timepoint": "Day 7", "method_of_measurement": "Full blood count",
        "estimand": {
            "population": "itt",
            "variable": {"kind": "continuous", "fields": [WBC], "at": "day7", "baseline": "baseline"},
            "intercurrent_events": [{"event": "death", "strategy": "composite", "value": 40}, {**RESCUED, "value": 30}],
            "summary": "difference_in_means", "estimator": "ancova",
        },
    },
    {
        "id": "oxygen_rescue", "kind": "secondary", "description": "On oxygen on day 7, rescue as failure",
        "registry_timepoint": "Day 7", "method_of_measurement": "Vital signs",
        "estimand": {
            "population": "itt",
            "variable": {"kind": "binary", "fields": [OXYGEN], "at": "day7", "event_values": ["True"]},
            "intercurrent_events": [{**RESCUED, "value": "event"}],
            "summary": "risk_difference", "estimator": "newcombe",
        },
    },
]  # fmt: skip


def _text() -> str:
    def mutate(doc: Any) -> None:
        next(f for f in doc["forms"] if f["id"] == "symptoms")["fields"].append(RESCUE_FIELD)
        doc["outcomes"].extend(OUTCOMES)

    return mutated_text(mutate, EXAMPLE)


PROTOCOL = load_protocol_text(_text()).protocol


def _subject(i: int, values: dict[str, dict[str, Any]], days: dict[str, int], died: int | None = None) -> Subject:
    arm = i % 2
    return Subject(
        participant_id=f"P-{i:03d}", site="NTH", stratum=f"S{i // 2 % 2 + 1}", group=GROUPS[arm], treated=True,
        treated_group=GROUPS[arm], per_protocol=True, not_per_protocol=(), withdrawn=(), emergency_unblinded=False,
        values=values, death_day=died, visit_days=days,
    )  # fmt: skip


def _trial() -> tuple[list[Subject], dict[str, tuple[float, float]], dict[str, int]]:
    """Thirty-two participants: (baseline, day-7 value) and on-oxygen (0/1) each, worked out from the rule."""
    rng = np.random.default_rng(7)
    subjects, wbc, oxygen = [], {}, {}
    for i in range(32):
        base, follow = float(rng.normal(12, 3)), float(rng.normal(11 - i % 2, 3))
        on_o2 = bool(rng.random() < 0.4)
        kind = i % 8
        values: dict[str, dict[str, Any]] = {
            "baseline": {WBC: base, "symptoms.cough": 1},
            "day3": {"symptoms.cough": 1, RESCUE: "True" if kind == 1 else "False"},
            "day7": {WBC: follow, OXYGEN: str(on_o2), "symptoms.cough": 0, RESCUE: "True" if kind == 2 else None},
        }
        days = {"baseline": 0, "day3": 3, "day7": 7}
        died = None
        if kind == 3:  # rescue recorded only at an extra visit held after day 7: not by the visit
            values["unscheduled-1"] = {RESCUE: "True"}
            days["unscheduled-1"] = 9
        if kind == 4:  # died on day 5, after rescue on day 3: the death's value comes first
            values["day3"][RESCUE] = "True"
            del values["day7"]
            died = 5
        subjects.append(_subject(i, values, days, died))
        pid = subjects[-1].participant_id
        rescued = kind in (1, 2, 4)
        wbc[pid] = (base, 40.0 if kind == 4 else 30.0 if rescued else follow)
        # The yes/no outcome declares no death strategy, but the rescue on day 3 came before the death: the event.
        oxygen[pid] = 1 if rescued else int(on_o2)
    return subjects, wbc, oxygen


def test_a_named_composite_event_takes_its_value_on_or_before_the_visit_and_the_ancova_is_statsmodels() -> None:
    subjects, wbc, _ = _trial()
    outcome = next(o for o in PROTOCOL.outcomes if o.id == "wbc_rescue")
    (result,) = analyse_outcome(PROTOCOL, outcome, sets_of(PROTOCOL, subjects, GROUPS))
    assert not result.excluded
    group = {s.participant_id: s.group for s in subjects}
    stratum = {s.participant_id: s.stratum for s in subjects}
    frame = DataFrame(
        [{"y": f, "b": b, "t": int(group[p] == TREATMENT), "s": stratum[p]} for p, (b, f) in sorted(wbc.items())]
    )
    fit = smf.ols("y ~ t + b + C(s)", data=frame).fit()
    ancova = next(c for c in result.comparisons if c.primary)
    assert ancova.estimate == pytest.approx(float(fit.params["t"]), rel=1e-9)
    low, high = fit.conf_int().loc["t"]
    assert (ancova.lower, ancova.upper) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def test_a_named_composite_event_counts_as_the_event_of_a_yes_no_outcome() -> None:
    subjects, _, oxygen = _trial()
    outcome = next(o for o in PROTOCOL.outcomes if o.id == "oxygen_rescue")
    (result,) = analyse_outcome(PROTOCOL, outcome, sets_of(PROTOCOL, subjects, GROUPS))
    group = {s.participant_id: s.group for s in subjects}
    expected = {g: [sum(y for p, y in oxygen.items() if group[p] == g), sum(1 for p in oxygen if group[p] == g)]
                for g in GROUPS}  # fmt: skip
    counts = result.extra["participants_with_event"]
    assert {g: [counts[g]["k"], counts[g]["n"]] for g in GROUPS} == expected
    assert not result.excluded
