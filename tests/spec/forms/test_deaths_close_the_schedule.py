"""A death closes the participant's schedule, on both databases: scheduled visits whose day falls after the
death are "not done: died", the visit that records the death stays open, and a form at a visit held after the
death is refused without a reason (post-mortem results are entered with one). The death may come from the
protocol's death record or from a fatal adverse event; the earliest date any record gives is the death
(``trialwright.domain.deaths``)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import FIRST_PROTOCOL
from tests.spec.forms.conftest import randomized_days_ago
from tests.trialfixtures import Trial, who
from trialwright.domain.deaths import Death, earliest_death
from trialwright.domain.roles import Role
from trialwright.domain.visits import VisitStatus
from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services import forms as svc

TEHRAN = ZoneInfo("Asia/Tehran")


@pytest.fixture
def infused(trial: Trial, pid: str) -> tuple[str, dt.date]:
    """The participant, randomized and infused eight days ago."""
    at = randomized_days_ago(trial, pid, 8)
    day = at.astimezone(TEHRAN).date()
    started = (at + dt.timedelta(hours=1)).astimezone(TEHRAN).isoformat(timespec="minutes")
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "infusion", "administration",
                  {"started_at": started}, visit_date=day)  # fmt: skip
    return pid, day


def test_a_recorded_death_closes_the_visits_after_it(trial: Trial, infused: tuple[str, dt.date]) -> None:
    pid, infusion = infused
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    died = infusion + dt.timedelta(days=2)
    svc.save_form(trial.engine, coordinator, pid, "discharge", "hospital_course",
                  {"admitted_on": (infusion - dt.timedelta(days=3)).isoformat(), "status": "died",
                   "ended_on": died.isoformat()}, visit_date=died)  # fmt: skip
    status = {v.visit_id: v.status for v in svc.participant_schedule(trial.engine, coordinator, pid).visits}
    assert status["day3"] is status["day7"] is VisitStatus.DIED
    assert status["day1"] is VisitStatus.OVERDUE  # its day came before the death: still owed (or missed)
    assert status["discharge"] is VisitStatus.DONE and status["infusion"] is VisitStatus.DONE

    day3 = infusion + dt.timedelta(days=3)
    with pytest.raises(svc.FormError) as refused:
        svc.save_form(trial.engine, coordinator, pid, "day3", "performance", {"status": "3"}, visit_date=day3)
    assert str(refused.value) == (
        f"visit_date: day3 on {day3.isoformat()} is after the participant's death on {died.isoformat()} "
        "(hospital_course.status at discharge); a form after death needs a reason"
    )
    why = "Post-mortem: the day-3 chest film was read after death"
    svc.save_form(trial.engine, coordinator, pid, "day3", "chest_xray", {"zone_a": 1}, visit_date=day3, reason=why)
    entered = audit.entries(trial.engine, action_prefix="form.value_entered", participant=pid)
    assert any(e.form == "chest_xray" and e.reason == why for e in entered)


def test_the_earliest_record_of_a_death_is_the_death() -> None:
    """A fatal adverse event and the death record disagree by a day: the earlier date is the death, named by its
    record; a death record at another visit than the protocol's is not read."""
    protocol = load_protocol(FIRST_PROTOCOL).protocol
    record = {"hospital_course.status": "died", "hospital_course.ended_on": "2021-06-03"}
    ae = Death(dt.date(2021, 6, 2), "adverse event AE-0001")
    assert earliest_death(protocol, {"discharge": record}, [ae]) == ae
    assert earliest_death(protocol, {"discharge": record}) == Death(dt.date(2021, 6, 3),
                                                                    "hospital_course.status at discharge")  # fmt: skip
    assert earliest_death(protocol, {"day7": record}) is None
    alive = {"hospital_course.status": "discharged", "hospital_course.ended_on": "2021-06-03"}
    assert earliest_death(protocol, {"discharge": alive}) is None
