"""A time to an event a form records: the estimand reads the event's date from a form field (blank while the event
has not happened), counts days from randomization, and censors or lists everyone else by a stated rule.

The rule, for the form recorded at visit ``at`` and follow-up to ``up_to_day``:

* a date on or before the end of follow-up (or the data cut-off, or withdrawal) is the event on that day; a later
  date is censored at the end of follow-up;
* with death composite, a death first is the event on the day of death;
* a blank date on a saved form means the event had not happened by the day the visit was held: censored there (or
  at the end of follow-up, if the visit was held later);
* a date before randomization, a date marked not done, a visit not held or a form not saved cannot say whether or
  when the event happened: the participant is listed with the reason, never censored at a guessed day.

The hazard ratio is checked against lifelines' CoxPHFitter fitted on the times computed here by hand from the same
dates, and the Kaplan-Meier curve against lifelines' KaplanMeierFitter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis.dataset import Subject
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.protocol import ProtocolError, load_protocol_text

EXAMPLE = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
REFERENCE, TREATMENT = "Placebo inhaler + standard care", "ILX 100 micrograms + standard care"
GROUPS = (REFERENCE, TREATMENT)
FIELD = "symptoms.resolved_on"
DAY0 = dt.date(2025, 3, 1)

RESOLVED_ON = {"id": "resolved_on", "label": "Date the symptoms resolved", "type": "date", "required": False}
OUTCOME: dict[str, Any] = {
    "id": "time_to_resolution", "kind": "secondary", "description": "Time to resolution of symptoms",
    "registry_timepoint": "Day 7", "method_of_measurement": "Symptoms form",
    "estimand": {
        "population": "itt",
        "variable": {"kind": "time_to_event", "fields": [FIELD], "at": "day7", "up_to_day": 7},
        "intercurrent_events": [{"event": "death", "strategy": "composite", "value": "event"},
                                {"event": "withdrawal", "strategy": "hypothetical"}],
        "summary": "hazard_ratio", "estimator": "cox", "sensitivity": [{"estimator": "rmst"}],
    },
}  # fmt: skip


def _protocol_text(variable: dict[str, Any] | None = None) -> str:
    def mutate(doc: Any) -> None:
        next(f for f in doc["forms"] if f["id"] == "symptoms")["fields"].append(RESOLVED_ON)
        estimand = dict(OUTCOME["estimand"])
        estimand["variable"] = variable or estimand["variable"]
        outcome = {**OUTCOME, "estimand": estimand}
        doc["outcomes"].append(outcome)

    return mutated_text(mutate, EXAMPLE)


PROTOCOL = load_protocol_text(_protocol_text()).protocol
OUT = next(o for o in PROTOCOL.outcomes if o.id == "time_to_resolution")


def _subject(
    i: int,
    arm: int,
    *,
    day7: dict[str, Any] | None,
    held: int | None = 7,
    died: int | None = None,
    withdrawn: int | None = None,
) -> Subject:
    return Subject(
        participant_id=f"P-{i:03d}", site="NTH", stratum=f"S{i // 2 % 2 + 1}", group=GROUPS[arm], treated=True,
        treated_group=GROUPS[arm], per_protocol=True, not_per_protocol=(),
        withdrawn=("follow_up",) if withdrawn is not None else (), emergency_unblinded=False,
        values={"day7": day7} if day7 is not None else {}, death_day=died, followed_days=60,
        withdrawn_day=withdrawn, withdrawn_cause="withdrew_consent" if withdrawn is not None else None,
        visit_days={"day7": held} if held is not None else {}, randomized_on=DAY0,
    )  # fmt: skip


def _on(day: int) -> str:
    return (DAY0 + dt.timedelta(days=day)).isoformat()


def _trial() -> tuple[list[Subject], dict[str, tuple[int, int]], dict[str, str]]:
    """Forty participants with dates drawn at random (the treatment arm resolving sooner), and one of each special
    case; with each one's (days, event) or why they cannot be timed, worked out here from the rule."""
    rng = np.random.default_rng(20261203)
    subjects: list[Subject] = []
    times: dict[str, tuple[int, int]] = {}
    for i in range(40):
        arm = i % 2
        day = int(rng.integers(1, 12 if arm == 0 else 9))  # a date after day 7 is censored at day 7
        s = _subject(i, arm, day7={FIELD: _on(day), "symptoms.cough": 1})
        subjects.append(s)
        times[s.participant_id] = (day, 1) if day <= 7 else (7, 0)
    blank = _subject(40, 0, day7={FIELD: None, "symptoms.cough": 2})  # saved form, no date: event-free to day 7
    blank_late = _subject(41, 1, day7={"symptoms.cough": 0}, held=8)  # visit held late: still censored at day 7
    blank_early = _subject(42, 0, day7={"symptoms.cough": 1}, held=6)  # held on day 6: event-free to day 6
    died = _subject(43, 1, day7=None, held=None, died=3)  # death is composite: the event on day 3
    died_first = _subject(44, 0, day7={FIELD: _on(6), "symptoms.cough": 1}, died=4)  # died on day 4, before the date
    subjects += [blank, blank_late, blank_early, died, died_first]
    times |= {"P-040": (7, 0), "P-041": (7, 0), "P-042": (6, 0), "P-043": (3, 1), "P-044": (4, 1)}
    listed = {
        "P-045": "no symptoms.resolved_on at day7: the visit was not held, so whether the event happened is not known",
        "P-046": f"symptoms.resolved_on at day7 is {_on(-2)}, before randomization: not used",
        "P-047": "symptoms.resolved_on at day7 is marked not done: whether the event happened is not known",
        "P-048": "no symptoms form at day7: whether the event happened is not known",
    }
    subjects += [
        _subject(45, 1, day7=None, held=None, withdrawn=4),  # withdrew before day 7: nothing says what happened
        _subject(46, 0, day7={FIELD: _on(-2), "symptoms.cough": 1}),
        _subject(47, 1, day7={FIELD: "not_done", "symptoms.cough": 1}),
        _subject(48, 0, day7={"vitals.resp_rate": 20.0}),  # the visit was held, the symptoms form never saved
    ]
    return subjects, times, listed


def test_days_to_the_recorded_date_follow_the_rule_and_the_hazard_ratio_is_lifelines() -> None:
    subjects, times, listed = _trial()
    (result,) = analyse_outcome(PROTOCOL, OUT, sets_of(PROTOCOL, subjects, GROUPS))
    assert {x.participant_id: x.reason for x in result.excluded} == listed
    causes = {x.participant_id: x.cause for x in result.excluded}
    assert causes == {"P-045": "withdrew_consent", "P-046": "unusable", "P-047": "missing", "P-048": "missing"}
    group = {s.participant_id: s.group for s in subjects}
    assert result.analysed == {g: sum(1 for p in times if group[p] == g) for g in GROUPS}

    stratum = {s.participant_id: s.stratum for s in subjects}
    rows = pd.DataFrame(
        [
            {"t": t, "e": e, "arm": int(group[p] == TREATMENT), "stratum": stratum[p]}
            for p, (t, e) in sorted(times.items())
        ]
    )
    fit = CoxPHFitter(strata=["stratum"]).fit(rows, duration_col="t", event_col="e")
    cox = next(c for c in result.comparisons if c.primary)
    assert cox.label == f"{TREATMENT} vs {REFERENCE}"
    assert cox.estimate == pytest.approx(float(np.exp(fit.params_["arm"])), rel=1e-6)
    low, high = np.exp(fit.confidence_intervals_.loc["arm"].to_numpy())
    assert (cox.lower, cox.upper) == (pytest.approx(low, rel=1e-6), pytest.approx(high, rel=1e-6))

    for g in GROUPS:
        mine = rows[rows["arm"] == int(g == TREATMENT)]
        km = KaplanMeierFitter().fit(mine["t"], mine["e"])
        curve = result.extra["kaplan_meier"][g]
        assert curve["events"] == int(mine["e"].sum())
        assert curve["survival"] == pytest.approx(list(km.survival_function_.iloc[1:, 0]), abs=1e-12)


def test_the_estimand_reads_in_words_with_the_field_and_the_visit() -> None:
    from trialwright.analysis.estimands.words import in_words

    words = dict(in_words(PROTOCOL, OUT))
    assert words["Variable"] == (
        "days from randomization to the date recorded in symptoms.resolved_on ('Date the symptoms resolved', at "
        "Day 7; blank while the event has not happened), followed to day 7"
    )


@pytest.mark.parametrize(
    ("variable", "words"),
    [
        ({"kind": "time_to_event", "fields": ["symptoms.cough"], "at": "day7", "up_to_day": 7},
         "symptoms.cough is an integer field; a time to an event a form records reads the event's date"),
        ({"kind": "time_to_event", "fields": [FIELD], "up_to_day": 7},
         "says the visit whose form records it (at)"),
        ({"kind": "time_to_event", "fields": [FIELD], "at": "day7", "adverse_event": "sae", "up_to_day": 7},
         "either an adverse_event (sae or death) or the date one form field records"),
        # day3 collects symptoms (followed to its own day: the outcome's RMST sensitivity refuses a day past it,
        # tests/spec/analysis/test_rmst_follow_up.py)
        ({"kind": "time_to_event", "fields": [FIELD], "at": "day3", "up_to_day": 3}, ""),
        ({"kind": "time_to_event", "fields": [FIELD], "at": "day3", "up_to_day": 7},
         "rmst to day 7 is past day3's day 3"),
        ({"kind": "time_to_event", "fields": ["study_drug.inhaler_returned"], "at": "day3", "up_to_day": 7},
         "visit 'day3' does not collect form 'study_drug'"),
    ],
)  # fmt: skip
def test_protocol_check_refuses_a_form_event_it_cannot_time(variable: dict[str, Any], words: str) -> None:
    text = _protocol_text(variable)
    if not words:
        load_protocol_text(text)  # loads: nothing to refuse
        return
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    assert any(words in p.message for p in caught.value.problems), str(caught.value)
