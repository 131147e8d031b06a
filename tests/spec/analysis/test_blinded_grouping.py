"""Blinded analyses never compare the arms' efficacy: in a protocol that lets the blinded team see safety in
unnamed groups, safety outcomes are by group while every efficacy outcome is pooled, with no comparison."""

from __future__ import annotations

import datetime as dt

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.analysis.dataset import AnalysisData, Event, Grouping, Screened, Subject
from trialwright.analysis.engine import POOLED, analyse
from trialwright.protocol import load_protocol

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol


def _subject(i: int, group: str) -> Subject:
    values = {"baseline": {"labs.crp": 100.0 + i, "labs.il6": 40.0}, "day7": {"labs.crp": 50.0 + 3 * i,
              "labs.il6": 20.0 + i}}  # fmt: skip
    events = (Event(2, 3, True, False, None, False),) if i % 3 == 0 else ()
    return Subject(f"P{i:02d}", "RAZ", "site=RAZ", group, True, group, True, (), (), False, values, events)


def test_unnamed_groups_show_safety_by_group_and_pool_efficacy() -> None:
    subjects = tuple(_subject(i, "Group A" if i % 2 else "Group B") for i in range(12))
    data = AnalysisData("T", "1", Grouping.UNNAMED_GROUPS, ("Group A", "Group B"), subjects,
                        Screened(12, 12, 0, 0, {}, 12, 0, 12, 1.0), dt.datetime(2021, 9, 1, tzinfo=dt.UTC), 0,
                        "limit_over_sqrt2")  # fmt: skip
    report = analyse(PROTOCOL, data, software_version="test", unblinded=False)
    for outcome in report.outcomes:
        if outcome.outcome_id == "sae":
            assert set(outcome.in_set) == {"Group A", "Group B"} and outcome.comparisons  # safety by group
        else:
            assert set(outcome.in_set) == {POOLED} and not outcome.comparisons, outcome.outcome_id
    assert any("efficacy outcomes pooled" in note for note in report.notes)
