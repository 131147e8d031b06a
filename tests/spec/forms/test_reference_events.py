"""Visits count their day from any event the protocol names: screening, enrolment and randomization are dated by
their records; any other event (surgery, first dose, discharge) by an event visit held on it (``kind: event``,
``day: 0``, ``reference:`` the event). A visit counted from an event nothing dates is refused by ``protocol check``,
naming the line."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.spec.protocol.conftest import mutated_text
from trialwright.domain.visits import VisitStatus, schedule
from trialwright.protocol import ProtocolError, load_protocol_text

EXAMPLE = ROOT / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
SURGERY = {"id": "surgery", "name": "Day of surgery", "reference": "surgery", "day": 0, "kind": "event",
           "forms": ["symptoms"]}  # fmt: skip


WOUND = {"id": "wound_check", "name": "Wound check", "reference": "surgery", "day": 3,
         "window": {"before": 1, "after": 1}, "forms": ["symptoms"]}  # fmt: skip


def _counted_from_surgery(doc: Any) -> None:
    doc["visits"] += [SURGERY, WOUND]


def test_a_visit_counts_from_the_day_its_event_visit_is_held() -> None:
    visits = load_protocol_text(mutated_text(_counted_from_surgery, EXAMPLE)).protocol.visits
    operated = dt.date(2025, 5, 10)
    found = {v.visit_id: v for v in schedule(visits, {"surgery": operated}, {}, dt.date(2025, 5, 11))}
    assert found["wound_check"].target == dt.date(2025, 5, 13)  # three days after the surgery
    assert found["wound_check"].status is VisitStatus.UPCOMING  # day 1: the window opens on day 2
    assert found["surgery"].status is VisitStatus.OPEN
    before = {v.visit_id: v for v in schedule(visits, {}, {}, dt.date(2025, 5, 12))}
    assert before["wound_check"].status is VisitStatus.AWAITING  # until the surgery is recorded, no date is guessed


def test_a_visit_counted_from_an_event_nothing_dates_is_refused() -> None:
    def mutate(doc: Any) -> None:
        doc["visits"].append(WOUND)  # counted from a surgery no event visit records

    text = mutated_text(mutate, EXAMPLE)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    (problem,) = [p for p in caught.value.problems if p.path.endswith(".reference")]
    assert "nothing dates 'surgery'" in problem.message
    assert problem.line is not None and "surgery" in text.splitlines()[problem.line - 1]
