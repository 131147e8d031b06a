"""A data check the protocol declares with ``severity: refuse`` refuses the save that would break it, naming
its fields, its message and its id, and stores nothing; with the default ``severity: query`` the same data is
saved and a query opened, as before. A ``not_before`` across two forms of a visit holds whichever form is
saved. On both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago, randomized_days_ago
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.services import forms as svc

ADMITTED, ENDED = (TODAY - dt.timedelta(days=2)).isoformat(), (TODAY - dt.timedelta(days=5)).isoformat()


def _refusing(doc: Any) -> None:
    """The shipped check made refusing; the infusion's vital signs are assessed no earlier than its start."""
    check = next(c for c in doc["data_checks"] if c["id"] == "end_after_admission")
    check["severity"] = "refuse"
    vitals = next(f for f in doc["forms"] if f["id"] == "vitals")
    next(f for f in vitals["fields"] if f["id"] == "assessed_at")["not_before"] = ["administration.started_at"]


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url, load_protocol_text(mutated_text(_refusing)))
    yield t
    t.engine.dispose()


def test_a_refusing_check_refuses_the_save_by_name(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    values = {"admitted_on": ADMITTED, "status": "discharged", "ended_on": ENDED}  # ended before admission
    with pytest.raises(svc.FormError) as refused:
        svc.save_form(trial.engine, coordinator, pid, "discharge", "hospital_course", values)
    assert str(refused.value) == (
        "hospital_course.ended_on, hospital_course.admitted_on: The date of discharge, transfer or death is before "
        "the date of admission. (data check end_after_admission)"
    )
    assert svc.get_form(trial.engine, coordinator, pid, "discharge", "hospital_course") is None
    assert list(svc.list_queries(trial.engine, who(trial, Role.DATA_MANAGER))) == []


def test_the_same_check_as_a_query_saves_and_asks(database_url: str) -> None:
    """The shipped protocol declares it with the default severity: the values are kept and a query is opened."""
    t = make_trial(database_url)
    try:
        pid = enrolled_ten_days_ago(t)
        coordinator = who(t, Role.STUDY_COORDINATOR)
        values = {"admitted_on": ADMITTED, "status": "discharged", "ended_on": ENDED}
        saved = svc.save_form(t.engine, coordinator, pid, "discharge", "hospital_course", values)
        assert saved.values["ended_on"].value == ENDED
        found = svc.list_queries(t.engine, who(t, Role.DATA_MANAGER))
        assert sorted(q.field or "" for q in found) == ["admitted_on", "ended_on"]  # a query on each field concerned
        assert all(q.check_id == "end_after_admission" and q.text.startswith("The date of discharge") for q in found)
    finally:
        t.engine.dispose()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"field": "hospital_course.ended_on"}, "field is for an in_window check"),
        ({"severity": "refused"}, "Input should be 'query' or 'refuse'"),
    ],
)
def test_a_check_with_a_key_of_another_kind_is_refused_at_load(extra: dict[str, Any], words: str) -> None:
    def mutate(doc: Any) -> None:
        next(c for c in doc["data_checks"] if c["id"] == "end_after_admission").update(extra)

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate))
    assert any(words in p.message and p.line for p in caught.value.problems), caught.value


def test_a_not_before_across_forms_holds_when_the_other_form_changes(trial: Trial, pid: str) -> None:
    """Vital signs assessed at 10:30 after an infusion started at 10:00: moving the start to 11:00 on the
    administration form is refused, naming the vital signs' time."""
    at = randomized_days_ago(trial, pid, 2)
    nurse = who(trial, Role.STUDY_COORDINATOR)
    tz = ZoneInfo("Asia/Tehran")
    start = (at + dt.timedelta(hours=1)).astimezone(tz).replace(second=0, microsecond=0)
    day = start.date()
    svc.save_form(trial.engine, nurse, pid, "infusion", "administration",
                  {"started_at": start.isoformat()}, visit_date=day)  # fmt: skip
    svc.save_form(trial.engine, nurse, pid, "infusion", "vitals",
                  {"assessed_at": (start + dt.timedelta(minutes=30)).isoformat()}, visit_date=day)  # fmt: skip
    with pytest.raises(svc.RefusedValues) as refused:
        svc.save_form(trial.engine, nurse, pid, "infusion", "administration",
                      {"started_at": (start + dt.timedelta(hours=1)).isoformat()}, visit_date=day)  # fmt: skip
    assert [p.split(":", 1)[0] for p in refused.value.problems] == ["vitals.assessed_at"]
    assert "is before administration.started_at" in refused.value.problems[0]
