"""Coherent data across forms and events, refused on save on both databases (``trialwright.domain.coherence``):

- nothing is recorded about a participant before their consent, except a date the protocol says may precede
  enrolment (an admission date);
- no treatment is recorded before the randomization;
- a field's declared ``not_before`` holds (the first trial's infusion stops no earlier than it started);
- a derived value stays within its hard limits (an age of 221 from a mistyped birth date, or a negative age
  from a birth date after enrolment).

Each refusal names the field, its value and the rule, and nothing of the refused save is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from tests.spec.forms.conftest import CONSENTED_AT, ENROLLED_AT, NOW, randomized_days_ago
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.services import forms as svc
from trialwright.services.randomization import (
    allocation_of,
    preparation_queue,
    prepare,
)
from trialwright.services.trial import current_protocol
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import preparations

TEHRAN = ZoneInfo("Asia/Tehran")


def _at(moment: dt.datetime) -> str:
    return moment.astimezone(TEHRAN).isoformat(timespec="minutes")


def _day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(TEHRAN).date()


@pytest.mark.covers("REG-13")
def test_a_sample_before_the_consent_is_refused_and_nothing_is_stored(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    before = CONSENTED_AT - dt.timedelta(minutes=30)  # on the enrolment day, half an hour before the consent
    with pytest.raises(svc.FormError) as refused:
        svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas",
                      {"sampled_at": _at(before), "pao2": 60}, visit_date=_day(NOW - dt.timedelta(days=9)))  # fmt: skip
    message = str(refused.value)
    assert message.startswith(f"blood_gas.sampled_at: {before.astimezone(TEHRAN):%Y-%m-%d %H:%M} is before the consent")
    assert "(built-in rule)" in message
    assert svc.get_form(trial.engine, coordinator, pid, "baseline", "blood_gas") is None


def test_a_date_that_may_precede_enrolment_is_accepted_before_the_consent(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    admitted = (NOW - dt.timedelta(days=14)).date()
    view = svc.save_form(trial.engine, coordinator, pid, "discharge", "hospital_course",
                         {"admitted_on": admitted.isoformat(), "status": "in_hospital"})  # fmt: skip
    assert view.values["admitted_on"].value == admitted.isoformat()


@pytest.fixture
def randomized(trial: Trial, pid: str) -> tuple[str, dt.datetime]:
    """The participant, randomized two days ago."""
    at = randomized_days_ago(trial, pid, 2)
    return pid, at


@pytest.mark.covers("REG-13")
def test_no_treatment_before_randomization_and_no_stop_before_start(
    trial: Trial, randomized: tuple[str, dt.datetime]
) -> None:
    pid, at = randomized
    nurse = who(trial, Role.STUDY_COORDINATOR)
    day = _day(at)

    def administer(**values: Any) -> svc.FormView:
        return svc.save_form(trial.engine, nurse, pid, "infusion", "administration", values, visit_date=day)

    early = at - dt.timedelta(hours=3)
    with pytest.raises(svc.RefusedValues) as both:  # two rules broken: two problems, each naming its field
        administer(started_at=_at(early + dt.timedelta(hours=1)), stopped_at=_at(early))
    assert [p.split(":", 1)[0] for p in both.value.problems] == [
        "administration.started_at", "administration.stopped_at", "administration.stopped_at"]  # fmt: skip
    with pytest.raises(svc.FormError, match=r"administration.started_at: .* is before the randomization .*no "
                                            r"treatment is given before randomization \(built-in rule\)"):  # fmt: skip
        administer(started_at=_at(early))
    start = at + dt.timedelta(hours=1)
    with pytest.raises(svc.FormError) as refused:
        administer(started_at=_at(start), stopped_at=_at(start - dt.timedelta(minutes=30)))
    assert str(refused.value) == (
        f"administration.stopped_at: {_at(start - dt.timedelta(minutes=30))[:16].replace('T', ' ')} is before "
        f"administration.started_at ({_at(start)[:16].replace('T', ' ')}); the protocol says it is not before "
        "started_at (not_before)"
    )
    assert svc.get_form(trial.engine, nurse, pid, "infusion", "administration") is None
    saved = administer(started_at=_at(start), stopped_at=_at(start + dt.timedelta(minutes=20)))
    assert saved.values["stopped_at"].value is not None
    with pytest.raises(svc.FormError, match=r"administration\.stopped_at: .* is before administration\.started_at"):
        administer(started_at=_at(start + dt.timedelta(hours=1)))  # moving the start past the stop: refused too
    assert svc.get_form(trial.engine, nurse, pid, "infusion", "administration").values[  # type: ignore[union-attr]
        "started_at"].value == saved.values["started_at"].value  # fmt: skip


def test_no_treatment_before_the_dose_is_prepared(trial: Trial, randomized: tuple[str, dt.datetime]) -> None:
    """The pharmacist recorded the dose as prepared a day after the randomization: an infusion recorded before
    that is refused; one after it is saved."""
    pid, at = randomized
    code = next(r.preparation_code for r in preparation_queue(trial.engine, who(trial, Role.UNBLINDED_PHARMACIST))
                if r.participant_id == pid)  # fmt: skip
    arm = allocation_of(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), pid).arm  # type: ignore[union-attr]
    protocol = current_protocol(trial.engine).protocol
    declared = [a.id for a in protocol.arm_by_code(arm).preparation().attributes]  # type: ignore[union-attr]
    values = {"product_lot": "L1", "volume_ml": 3, "particles": 5e10}
    prepare(trial.engine, who(trial, Role.UNBLINDED_PHARMACIST), code, {k: values[k] for k in declared})
    prepared = at + dt.timedelta(days=1)
    with session_scope(trial.engine) as session:
        session.execute(update(preparations).where(preparations.c.preparation_code == code)
                        .values(prepared_at=prepared))  # fmt: skip
    nurse = who(trial, Role.STUDY_COORDINATOR)
    early = at + dt.timedelta(hours=2)
    with pytest.raises(svc.FormError, match=r"administration\.started_at: .* is before the dose was prepared"):
        svc.save_form(trial.engine, nurse, pid, "infusion", "administration", {"started_at": _at(early)},
                      visit_date=_day(early))  # fmt: skip
    late = prepared + dt.timedelta(minutes=30)
    saved = svc.save_form(trial.engine, nurse, pid, "infusion", "administration", {"started_at": _at(late)},
                          visit_date=_day(late))  # fmt: skip
    assert saved.values["started_at"].value is not None


@pytest.mark.parametrize(
    ("birth", "words"),
    [
        (dt.date(1800, 1, 1), "demographics.age_at_enrolment: 2"),  # 220-odd years
        ((NOW - dt.timedelta(days=5)).date(), "demographics.age_at_enrolment, derived from"),
    ],
)
def test_a_derived_age_outside_its_hard_limits_refuses_the_birth_date(
    trial: Trial, pid: str, birth: dt.date, words: str
) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    enrolled_on = _day(ENROLLED_AT).isoformat()
    with pytest.raises(svc.FormError) as refused:
        svc.save_form(trial.engine, coordinator, pid, "baseline", "demographics",
                      {"birth_date": birth.isoformat(), "enrolled_on": enrolled_on, "sex": "male"},
                      visit_date=_day(NOW - dt.timedelta(days=9)))  # fmt: skip
    message = str(refused.value)
    assert message.startswith(words) and "derived from demographics.birth_date, demographics.enrolled_on" in message
    assert "hard limits 0-120 years" in message and "correct the values it is derived from" in message


def _not_before(refs: list[str], field: str = "stopped_at") -> Any:
    def mutate(doc: Any) -> None:
        form = next(f for f in doc["forms"] if f["id"] == "administration")
        next(f for f in form["fields"] if f["id"] == field)["not_before"] = refs

    return mutate


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (_not_before(["ended_at"]), "form 'administration' has no field 'ended_at'"),
        (_not_before(["participant.discharged_at"]), "unknown participant event 'discharged_at'"),
        (_not_before(["interrupted"]), "administration.interrupted is a boolean field; this needs date or datetime"),
        (_not_before(["stopped_at"]), "a field cannot be not_before itself"),
        (_not_before(["started_at"], field="volume"), "not_before is only for date and datetime fields"),
    ],
)
def test_protocol_check_refuses_a_not_before_it_cannot_hold(mutate: Any, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate))
    assert any(words in p.message and p.line for p in caught.value.problems), caught.value
