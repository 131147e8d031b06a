"""A form's date-time carries minutes; an event (the consent, the randomization, the dose's preparation) carries
seconds. They are compared at the minute both carry: a walk's dose given at 17:02:49 (stored 17:02) after its
preparation at 17:02:01 was refused "17:02 is before the dose was prepared (17:02)". The same minute is not
before; an earlier minute is refused, and the message's two times then differ.

| treatment started at (form) | prepared at (event) | decision                                              |
|-----------------------------|---------------------|-------------------------------------------------------|
| 17:02 (typed 17:02:49)      | 17:02:01            | accepted (same minute)                                |
| 17:02                       | 17:02:59            | accepted (same minute)                                |
| 17:03                       | 17:02:01            | accepted                                              |
| 17:01                       | 17:02:01            | refused: "17:01 is before the dose was prepared (17:02)" |
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.trialfixtures import first_protocol
from trialwright.domain.coherence import ParticipantFacts, hard_breaches
from trialwright.domain.forms import StoredValue

UTC = ZoneInfo("UTC")
DAY = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def _at(hh: int, mm: int, ss: int = 0) -> dt.datetime:
    return DAY.replace(hour=hh, minute=mm, second=ss)


def _started(moment: dt.datetime) -> dict[str, dict[str, StoredValue]]:
    # stored as a form stores a date-time: UTC, to the minute (domain.forms)
    return {"administration": {"started_at": StoredValue(moment.astimezone(dt.UTC).isoformat(timespec="minutes"))}}


@pytest.mark.parametrize(
    ("typed", "prepared", "refusal"),
    [
        (_at(17, 2, 49), _at(17, 2, 1), None),
        (_at(17, 2), _at(17, 2, 59), None),
        (_at(17, 3), _at(17, 2, 1), None),
        (_at(17, 1), _at(17, 2, 1), "administration.started_at: 2026-12-06 17:01 is before the dose was prepared "
                                    "(2026-12-06 17:02)"),
    ],
)
def test_a_dose_is_compared_with_its_preparation_at_the_minute(
    typed: dt.datetime, prepared: dt.datetime, refusal: str | None
) -> None:
    facts = ParticipantFacts(UTC, consented_at=_at(9, 0, 30), randomized_at=_at(10, 0, 30), prepared_at=prepared)
    found = [b.message for b in hard_breaches(first_protocol().protocol, "administration", _started(typed), facts)]
    assert [m.split(";")[0] for m in found] == ([refusal] if refusal else [])


def test_a_treatment_in_the_minute_of_the_randomization_is_not_before_it() -> None:
    facts = ParticipantFacts(UTC, consented_at=_at(9, 0, 30), randomized_at=_at(17, 2, 30))
    assert hard_breaches(first_protocol().protocol, "administration", _started(_at(17, 2, 10)), facts) == []
    (refused,) = hard_breaches(first_protocol().protocol, "administration", _started(_at(17, 1, 59)), facts)
    assert refused.rule == "treatment_before_randomization"
