"""The CONSORT flow's follow-up box counts a death as a loss only when it came before follow-up ended (the last
scheduled visit's day), as it counts a withdrawal: a participant who died after it completed follow-up (walk 6 F3:
a death on day 34, after the day-28 visit, was listed under lost to follow-up)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from tests.spec.analysis.test_blinded_grouping import PROTOCOL, _subject
from trialwright.analysis.dataset import AnalysisData, Grouping, Screened
from trialwright.analysis.engine import analyse


def test_a_death_after_the_last_scheduled_visit_is_no_loss_to_follow_up() -> None:
    last = max(v.day for v in PROTOCOL.visits if v.kind == "scheduled")
    people = [_subject(i, "Exosomes" if i % 2 else "Placebo") for i in range(12)]
    people[1] = dataclasses.replace(people[1], death_day=3)  # died during follow-up: counted
    people[3] = dataclasses.replace(people[3], death_day=last)  # on the last visit's day: counted
    people[5] = dataclasses.replace(people[5], death_day=last + 6)  # after follow-up ended: no loss
    people[7] = dataclasses.replace(people[7], withdrawn=("follow_up",), withdrawn_day=2,
                                    withdrawn_cause="lost_to_follow_up", death_day=last + 20)  # fmt: skip
    data = AnalysisData("T", "1", Grouping.BY_ARM, ("Exosomes", "Placebo"), tuple(people),
                        Screened(12, 12, 0, 0, {}, 12, 0, 12, 1.0), dt.datetime(2021, 9, 1, tzinfo=dt.UTC), 0,
                        "limit_over_sqrt2")  # fmt: skip
    flow = analyse(PROTOCOL, data, software_version="test", unblinded=True).consort
    flow.validate()
    (exosomes,) = [a for a in flow.arms if a.label == "Exosomes"]
    assert {r.label: r.count for r in exosomes.lost} == {"Died": 2, "Lost to follow-up": 1}
    (placebo,) = [a for a in flow.arms if a.label == "Placebo"]
    assert placebo.lost == ()
