"""The while-on-treatment strategy for treatment discontinuation (ICH E9(R1) A.3.1): only what happened up to the
day the intervention stopped counts. A serious adverse event after that day is not counted (a yes/no from the
adverse events) and a time to an event is censored there; a participant never treated has no time on treatment
and is listed, never counted as event-free. A yes/no read at a visit has no such period and is refused.

The counts are worked out here by hand from the rule and the Newcombe interval compared with statsmodels'.
"""

from __future__ import annotations

from typing import Any

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis.dataset import Event, Subject
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.protocol import ProtocolError, load_protocol_text

GROUPS = ("Placebo (PBS) + standard care", "hUCMSC-derived exosomes + standard care")
WHILE = [{"event": "treatment_discontinuation", "strategy": "while_on_treatment"}]


def _protocol(mutate: Any) -> Any:
    return load_protocol_text(mutated_text(mutate)).protocol


def _sae_while_on_treatment(doc: Any) -> None:
    """The first trial's SAE outcome (to day 7, in the safety set) asked while on treatment, in the ITT set."""
    estimand = doc["outcomes"][2]["estimand"]
    estimand["intercurrent_events"] = WHILE
    estimand["population"] = "itt"


def _sae(day: int) -> Event:
    return Event(onset_day=day, grade=3, serious=True, related=False, expected_event=None, fatal=False)


def _subject(
    i: int, arm: int, events: tuple[Event, ...], *, stopped: int | None = None, treated: bool = True
) -> Subject:
    return Subject(
        participant_id=f"P-{i:03d}", site="RAZ", stratum="site=RAZ", group=GROUPS[arm], treated=treated,
        treated_group=GROUPS[arm] if treated else None, per_protocol=treated, not_per_protocol=(),
        withdrawn=("intervention",) if stopped is not None else (), emergency_unblinded=False, values={},
        events=events, treatment_day=1, stopped_day=stopped,
    )  # fmt: skip


def test_a_serious_event_after_the_intervention_stopped_is_not_counted() -> None:
    protocol = _protocol(_sae_while_on_treatment)
    outcome = protocol.outcomes[2]
    people = [
        _subject(0, 0, (_sae(2),)),  # on treatment throughout: counted
        _subject(1, 0, (_sae(5),), stopped=4),  # stopped on day 4 from randomization (day 3 of treatment): not
        _subject(2, 0, (_sae(3),), stopped=4),  # day 3 of treatment = the stop day: counted
        _subject(3, 0, ()),
        _subject(4, 1, (_sae(6),)),  # counted
        _subject(5, 1, (_sae(6),), stopped=2),  # after the stop: not counted
        _subject(6, 1, ()),
        _subject(7, 1, (_sae(1),), treated=False),  # never treated: listed
    ]
    (result,) = analyse_outcome(protocol, outcome, sets_of(protocol, people, GROUPS))
    counts = result.extra["participants_with_event"]
    assert [counts[g]["k"] for g in GROUPS] == [2, 1]
    assert [counts[g]["n"] for g in GROUPS] == [4, 3]
    assert [(x.participant_id, x.cause) for x in result.excluded] == [("P-007", "untreated")]
    (rd,) = result.comparisons
    low, high = confint_proportions_2indep(1, 3, 2, 4, method="newcomb", compare="diff")
    assert rd.estimate == pytest.approx(1 / 3 - 2 / 4)
    assert (rd.lower, rd.upper) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))


def test_while_on_treatment_for_a_yes_no_read_at_a_visit_is_refused() -> None:
    def mutate(doc: Any) -> None:
        doc["outcomes"].append({
            "id": "oxygen_day7", "kind": "secondary", "description": "On oxygen on day 7",
            "registry_timepoint": "Day 7", "method_of_measurement": "Vital signs",
            "estimand": {"population": "itt",
                         "variable": {"kind": "binary", "fields": ["vitals.on_oxygen"], "at": "day7",
                                      "event_values": ["True"]},
                         "intercurrent_events": WHILE, "summary": "risk_difference", "estimator": "newcombe"},
        })  # fmt: skip

    with pytest.raises(ProtocolError, match="a yes/no read at a visit has no such period"):
        load_protocol_text(mutated_text(mutate))
