"""Screening, consent and enrolment through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.trialfixtures import Trial, make_trial, screener, who
from trialwright.domain.eligibility import Decision, ScreeningValueError
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.screening import (
    NotFound,
    ScreeningError,
    count_enrolled,
    enrol,
    get_screening,
    list_screenings,
    record_consent,
    require_scope,
    screen,
    set_non_enrolment,
    update_screening,
    withdraw,
)

NOW = dt.datetime.now(dt.UTC)
# The first trial's sites keep Tehran's date: between 20:30 and midnight UTC it is already the next day there.
TODAY = NOW.astimezone(ZoneInfo("Asia/Tehran")).date()
TYPED = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def lar_consent(trial: Trial, screening_id: int, **changes: Any):  # type: ignore[no-untyped-def]
    args: dict[str, Any] = dict(
        form_version="1.0",
        given_by="representative",
        representative_name="Maryam Ahmadi",
        representative_relationship="daughter",
        witness="Nurse Karimi",
        obtained_by="Dr Khedri",
        obtained_at=NOW - dt.timedelta(minutes=5),
    )
    args.update(changes)
    return record_consent(trial.engine, who(trial, Role.INVESTIGATOR), screening_id, **args)


def test_an_eligible_patient_is_enrolled_after_consent_by_a_representative(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    s = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=TYPED)
    assert s.label == "RAZ-S0001" and s.decision is Decision.INCOMPLETE and s.missing == ("informed_consent",)
    with pytest.raises(ScreeningError, match=r"no recorded consent|only an eligible patient"):
        enrol(trial.engine, coordinator, s.id)
    consented = lar_consent(trial, s.id)
    assert consented.decision is Decision.ELIGIBLE and consented.consented
    assert consented.consents[0].representative_relationship == "daughter"
    enrolled = enrol(trial.engine, coordinator, s.id)
    assert enrolled.participant is not None and enrolled.participant.participant_id == "RAZ-001"
    assert count_enrolled(trial.engine) == 1
    with pytest.raises(ScreeningError, match="already enrolled"):
        enrol(trial.engine, coordinator, s.id)
    actions = [e.action for e in reversed(audit.entries(trial.engine, action_prefix="", limit=1000))]
    assert actions[-4:] == ["screening.created", "consent.consent", "screening.changed", "participant.enrolled"]
    assert audit.verify(trial.engine).ok


@pytest.mark.covers("REG-13")
def test_an_ineligible_patient_is_never_enrolled_and_the_reason_is_coded(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    s = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values={**TYPED, "age": 70})
    assert s.decision is Decision.NOT_ELIGIBLE and [f["id"] for f in s.failed] == ["I1"]
    assert s.failed[0]["values"] == {"age": 70}
    lar_consent(trial, s.id)
    with pytest.raises(ScreeningError, match="not eligible; only an eligible patient is enrolled"):
        enrol(trial.engine, coordinator, s.id)
    coded = set_non_enrolment(trial.engine, coordinator, s.id, reason="not_eligible")
    assert coded.non_enrolment_reason == "not_eligible"


@pytest.mark.parametrize(
    ("reason", "text", "words"),
    [
        ("declined", None, None),
        ("consent_not_obtainable", None, None),
        ("other_trial", None, None),
        ("other", "transferred to another city", None),
        ("other", None, "'other' needs a description"),
        ("not_eligible", None, "is incomplete, not 'not eligible'"),
        ("busy", None, "reason: must be one of"),
    ],
)
def test_non_enrolment_reasons(trial: Trial, reason: str, text: str | None, words: str | None) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    s = screen(trial.engine, coordinator, site="GOL" if False else "RAZ", screened_on=TODAY, values={"age": 40})
    if words is None:
        assert (
            set_non_enrolment(trial.engine, coordinator, s.id, reason=reason, text_=text).non_enrolment_reason == reason
        )
    else:
        with pytest.raises(ScreeningError, match=words):
            set_non_enrolment(trial.engine, coordinator, s.id, reason=reason, text_=text)


@pytest.mark.covers("REG-2")
def test_the_decision_is_re_evaluated_on_every_change_and_needs_a_reason(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    s = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values={"age": 40})
    assert s.decision is Decision.INCOMPLETE
    s = update_screening(trial.engine, coordinator, s.id, values={"dialysis": True})  # new value: no reason needed
    assert s.decision is Decision.NOT_ELIGIBLE
    with pytest.raises(ScreeningError, match="reason: changing saved values \\(dialysis\\) needs a reason"):
        update_screening(trial.engine, coordinator, s.id, values={"dialysis": False})
    s = update_screening(trial.engine, coordinator, s.id, values={"dialysis": False}, reason="misread the chart")
    assert s.decision is Decision.INCOMPLETE
    change = audit.entries(trial.engine, action_prefix="screening.changed")[0]
    assert change.reason == "misread the chart"
    assert change.old_value == '{"decision":"not_eligible","values":{"dialysis":true}}'
    assert change.new_value == '{"decision":"incomplete","values":{"dialysis":false}}'


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"fio2": {"value": 150, "unit": "%"}}, "fio2: 150 % is outside"),
        ({"age": 300}, "age: 300 is outside"),
        ({"pao2_mmhg": -1}, "pao2_mmhg: -1 is outside"),
        ({"informed_consent": True}, "set from the consent record"),
    ],
)
def test_implausible_values_are_refused_and_nothing_saved_is_lost(
    trial: Trial, values: dict[str, Any], words: str
) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    s = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values={"age": 40})
    with pytest.raises((ScreeningValueError, ScreeningError), match=words):
        update_screening(trial.engine, coordinator, s.id, values=values, reason="x")
    assert get_screening(trial.engine, coordinator, s.id).values == {"age": 40}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"obtained_at": NOW + dt.timedelta(days=1)}, "obtained_at: cannot be in the future"),
        ({"obtained_at": NOW - dt.timedelta(days=10)}, "obtained_at: .* at the site is before the screening date"),
        ({"representative_name": ""}, "representative_name: needed"),
        ({"representative_relationship": None}, "representative_relationship: needed"),
        ({"form_version": "9.9"}, "unknown consent form version '9.9'"),
        ({"given_by": "neighbour"}, "given_by: must be participant or representative"),
    ],
)
def test_bad_consents_are_refused(trial: Trial, changes: dict[str, Any], words: str) -> None:
    s = screen(trial.engine, who(trial, Role.STUDY_COORDINATOR), site="RAZ", screened_on=TODAY, values=TYPED)
    with pytest.raises(ScreeningError, match=words):
        lar_consent(trial, s.id, **changes)
    assert get_screening(trial.engine, who(trial, Role.STUDY_COORDINATOR), s.id).consents == ()


def test_a_participant_who_regains_capacity_decides_and_may_withdraw(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    s = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=TYPED)
    lar_consent(trial, s.id)
    enrol(trial.engine, coordinator, s.id)
    own = record_consent(
        trial.engine,
        who(trial, Role.INVESTIGATOR),
        s.id,
        form_version="1.0",
        given_by="participant",
        obtained_by="Dr Khedri",
        obtained_at=NOW,
        kind="regained_capacity",
        decision="withdraw",
    )
    assert own.participant is not None
    assert own.participant.withdrawn_scopes == ("data_use", "follow_up", "intervention")
    with pytest.raises(ScreeningError, match="RAZ-001 withdrew from follow up"):
        require_scope(trial.engine, "RAZ-001", "follow_up")


def test_withdrawal_of_one_scope(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    s = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=TYPED)
    lar_consent(trial, s.id)
    enrol(trial.engine, coordinator, s.id)
    p = withdraw(
        trial.engine,
        coordinator,
        "RAZ-001",
        scope="intervention",
        cause="withdrew_consent",
        reason="family request",
        withdrawn_on=TODAY,
    )
    assert p.withdrawn_scopes == ("intervention",)
    for role in (Role.DATA_MANAGER, Role.MONITOR, Role.DSMB_MEMBER, Role.ADMINISTRATOR):
        with pytest.raises(ScreeningError, match="role: the investigator or the study coordinator records"):
            withdraw(trial.engine, who(trial, role), "RAZ-001", scope="follow_up", cause="other", reason="x",
                     withdrawn_on=TODAY)  # fmt: skip
    require_scope(trial.engine, "RAZ-001", "follow_up")  # follow-up continues
    with pytest.raises(ScreeningError, match="intervention"):
        require_scope(trial.engine, "RAZ-001", "intervention")
    with pytest.raises(ScreeningError, match="already withdrawn"):
        withdraw(
            trial.engine,
            coordinator,
            "RAZ-001",
            scope="intervention",
            cause="other",
            reason="again",
            withdrawn_on=TODAY,
        )


@pytest.mark.covers("REG-4")
def test_site_scope_hides_other_sites(trial: Trial) -> None:
    admin = who(trial, Role.ADMINISTRATOR)
    gol = screen(trial.engine, screener(trial.engine), site="GOL", screened_on=TODAY, values={"age": 30})
    raz_user = who(trial, Role.STUDY_COORDINATOR)  # works at RAZ only
    with pytest.raises(NotFound, match="no such screening"):
        get_screening(trial.engine, raz_user, gol.id)
    with pytest.raises(ScreeningError, match="site: you screen at RAZ, not at GOL"):  # sites are public
        screen(trial.engine, raz_user, site="GOL", screened_on=TODAY, values={})
    assert [s.site for s in list_screenings(trial.engine, raz_user)] == []
    assert [s.label for s in list_screenings(trial.engine, admin)] == ["GOL-S0001"]


def test_screening_numbers_are_per_site_and_never_collide(trial: Trial) -> None:
    admin, coordinator = who(trial, Role.ADMINISTRATOR), screener(trial.engine)  # made before the threads start
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values={})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    labels = sorted(s.label for s in list_screenings(trial.engine, admin))
    assert labels == [f"RAZ-S{n:04d}" for n in range(1, 19)]


def test_a_new_consent_version_flags_who_must_re_consent(database_url: str) -> None:
    from tests.spec.protocol.conftest import mutated_text
    from trialwright.protocol import load_protocol_text
    from trialwright.services.screening import reconsent_needed
    from trialwright.services.trial import init_trial

    t = make_trial(database_url)
    coordinator = who(t, Role.STUDY_COORDINATOR)
    s = screen(t.engine, coordinator, site="RAZ", screened_on=TODAY, values=TYPED)
    lar_consent(t, s.id)
    enrol(t.engine, coordinator, s.id)
    assert reconsent_needed(t.engine, coordinator) == []

    def amend(doc):  # type: ignore[no-untyped-def]
        doc["version"] = {"number": "3.0", "date": TODAY.isoformat()}
        doc["amendments"].append(
            {
                "number": 2,
                "date": TODAY.isoformat(),
                "version": "3.0",
                "reason": "New safety information in the consent form.",
            }
        )
        doc["consent_versions"].append(
            {"version": "2.0", "effective_from": (TODAY + dt.timedelta(days=1)).isoformat(), "reconsent_required": True}
        )

    init_trial(t.engine, load_protocol_text(mutated_text(amend)))
    (due,) = reconsent_needed(t.engine, coordinator)
    assert (due.participant_id, due.consented_on_version, due.required_version) == ("RAZ-001", "1.0", "2.0")
    t.engine.dispose()
