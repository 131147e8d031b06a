"""A form at a visit recorded as missed is refused with the same words whether or not a visit date is given: the
visit is recorded as missed, and why, on both databases (walk 6 F7: with ``--visit-date`` the refusal said the
visit "is recorded on None")."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.spec.forms.conftest import randomized_days_ago
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc

TEHRAN = ZoneInfo("Asia/Tehran")


@pytest.mark.parametrize("dated", [False, True], ids=["without a visit date", "with a visit date"])
def test_a_form_at_a_missed_visit_is_refused_naming_the_miss_and_its_reason(trial: Trial, pid: str,
                                                                            dated: bool) -> None:  # fmt: skip
    day = randomized_days_ago(trial, pid, 8).astimezone(TEHRAN).date()
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.miss_visit(trial.engine, coordinator, pid, "day1", "too unwell to be examined")
    visit_date = day + dt.timedelta(days=1) if dated else None
    with pytest.raises(svc.FormError) as refused:
        svc.save_form(trial.engine, coordinator, pid, "day1", "vitals", {}, visit_date=visit_date)
    assert str(refused.value) == "visit: day1 is recorded as missed (too unwell to be examined)"
