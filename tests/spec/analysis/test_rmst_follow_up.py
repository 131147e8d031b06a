"""RMST's day: ``protocol check`` and the analysis agree on how far the restricted mean can reach.

The restricted mean survival time to day tau is the area under each arm's Kaplan-Meier curve up to tau, defined only
up to the smaller of the two arms' largest observed times (the analysis refuses a later tau). A time to an event a
form records at visit ``at`` is followed to the day that visit is held: an event-free participant seen on the
visit's day is censored there. So:

| estimand (time to resolution, form at day7: day 7, window 1 day either side) | decision                         |
|------------------------------------------------------------------------------|----------------------------------|
| cox with rmst sensitivity, up_to_day 8 (day 7 + its window: the check allows) | refused naming up_to_day, day 7 |
| the same with cox alone, up_to_day 8                                          | loads (cox needs no tau)        |
| up_to_day 7, visits held on day 7                                             | RMST computed, = lifelines'     |
| the up_to_day 8 text read back from a trial database, visits held on day 7    | the analysis refuses rmst (tau) |

(KIDS-ZAP, the walk that found it, declared 175 for its day-168 visit with a 7-day window.)
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from tests.spec.analysis.test_form_events import (
    EXAMPLE,
    FIELD,
    GROUPS,
    OUTCOME,
    RESOLVED_ON,
    TREATMENT,
    _on,
    _subject,
)
from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis.estimands import analyse_outcome, sets_of
from trialwright.protocol import ProtocolError, load_protocol_text

VARIABLE = {"kind": "time_to_event", "fields": [FIELD], "at": "day7"}


def _text(up_to_day: int, sensitivity: list[dict[str, str]] | None = None) -> str:
    def mutate(doc: Any) -> None:
        next(f for f in doc["forms"] if f["id"] == "symptoms")["fields"].append(RESOLVED_ON)
        estimand = {**OUTCOME["estimand"], "variable": {**VARIABLE, "up_to_day": up_to_day}}
        if sensitivity is not None:
            estimand["sensitivity"] = sensitivity
        doc["outcomes"].append({**OUTCOME, "estimand": estimand})

    return mutated_text(mutate, EXAMPLE)


def _outcome_index(text: str) -> int:
    protocol = load_protocol_text(text, stored=True).protocol
    return next(i for i, o in enumerate(protocol.outcomes) if o.id == OUTCOME["id"])


def test_protocol_check_refuses_rmst_past_the_visits_day_naming_up_to_day() -> None:
    text = _text(8)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="cap.yaml")
    path = f"outcomes[{_outcome_index(text)}].estimand.variable.up_to_day"
    (found,) = [p for p in caught.value.problems if p.path == path]
    assert found.message == (
        "rmst to day 8 is past day7's day 7: the time to the event is followed to the day day7 is held, so only "
        "participants seen late in its window reach day 8, and the restricted mean is computed only up to the "
        "smaller of the arms' largest observed times; declare up_to_day at most 7"
    )
    assert f"cap.yaml:{found.line}: {path}: " in str(caught.value)


def test_cox_alone_may_follow_to_the_windows_last_day() -> None:
    load_protocol_text(_text(8, sensitivity=[]))


def _held_on_day_7() -> tuple[list[Any], dict[str, tuple[int, int]]]:
    """Twenty participants, the visit held on day 7 for all; resolution days fixed, a blank date event-free."""
    days = [2, 3, None, 5, 7, None, 4, 6, None, 1, 6, None, 7, None, 5, None, 3, None, None, 6]
    subjects, times = [], {}
    for i, day in enumerate(days):
        s = _subject(i, i % 2, day7={FIELD: None if day is None else _on(day), "symptoms.cough": 1})
        subjects.append(s)
        times[s.participant_id] = (7, 0) if day is None else (day, 1)
    return subjects, times


def _lifelines_rmst(times: dict[str, tuple[int, int]], group: dict[str, str], tau: float) -> float:
    rows = pd.DataFrame([{"t": t, "e": e, "arm": group[p]} for p, (t, e) in times.items()])
    means = {}
    for arm, part in rows.groupby("arm"):
        km = KaplanMeierFitter().fit(part["t"], part["e"])
        means[arm] = restricted_mean_survival_time(km, t=tau)
    return float(means[TREATMENT] - means[GROUPS[0]])


def test_rmst_to_the_visits_day_is_computed_and_agrees_with_lifelines() -> None:
    protocol = load_protocol_text(_text(7)).protocol
    outcome = next(o for o in protocol.outcomes if o.id == OUTCOME["id"])
    subjects, times = _held_on_day_7()
    (result,) = analyse_outcome(protocol, outcome, sets_of(protocol, subjects, GROUPS))
    rmst = next(c for c in result.comparisons if "restricted mean" in c.method.lower())
    group = {s.participant_id: s.group for s in subjects}
    assert rmst.estimate == pytest.approx(_lifelines_rmst(times, group, 7.0), abs=1e-9)


def test_past_the_visits_day_the_analysis_refuses_rmst_which_the_check_now_says_first() -> None:
    text = _text(8)
    protocol = load_protocol_text(text, stored=True).protocol  # a stored trial keeps its follow-up
    outcome = next(o for o in protocol.outcomes if o.id == OUTCOME["id"])
    subjects, _ = _held_on_day_7()
    (result,) = analyse_outcome(protocol, outcome, sets_of(protocol, subjects, GROUPS))
    rmst = next(c for c in result.comparisons if "restricted mean" in c.method.lower())
    assert rmst.estimate is None
    assert "tau must be > 0 and at most 7" in rmst.note
