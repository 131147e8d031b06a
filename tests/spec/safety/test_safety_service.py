"""Safety through the services, on both databases: reports and follow-ups with their whole history
audited, deadlines and submissions, deaths into the hospital course, masked and by-arm tables, and the
pause that stops randomization until the DSMB decides."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest

from tests.spec.forms.conftest import NOW, TODAY
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.masking import MASKED
from trialwright.domain.roles import Role
from trialwright.domain.safety import DeadlineKind, DeadlineState, SafetyInputError
from trialwright.services import audit
from trialwright.services.forms import (
    complete_form,
    get_form,
    list_queries,
    lock_form,
    lock_trial,
    save_form,
    unlock_trial,
)
from trialwright.services.randomization import RandomizationError, generate_list, randomize
from trialwright.services.safety import (
    SafetyError,
    follow_up,
    get_event,
    list_events,
    listing_rows,
    overdue_for,
    pause,
    record_decision,
    record_submission,
    report_event,
    safety_tables,
)

ARM_WORDS = ("EXO", "PBO", "Exos", "Placebo", "hUCMSC")


def sae(**changes: Any) -> dict[str, Any]:
    """A serious, possibly related, unexpected event (a SUSAR) that began yesterday, known an hour ago."""
    return {
        "term": "Acute kidney injury",
        "onset": (TODAY - dt.timedelta(days=1)).isoformat(),
        "grade": 3,
        "serious": True,
        "seriousness_criteria": ["hospitalisation"],
        "causality": "possible",
        "action_taken": "not_applicable",
        "outcome": "not_recovered",
        "aware_at": (NOW - dt.timedelta(hours=1)).isoformat(),
        **changes,
    }


@pytest.fixture
def randomized(trial: Trial, pid: str) -> str:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    return pid


def test_an_sae_report_is_numbered_audited_and_due_to_the_sponsor_in_24_hours(trial: Trial, randomized: str) -> None:
    investigator = who(trial, Role.INVESTIGATOR)
    event = report_event(trial.engine, investigator, randomized, sae())
    assert event.ae_number == "AE-0001" and event.classification.susar and event.arm == MASKED
    due = {d.kind: d for d in event.deadlines}
    assert due[DeadlineKind.SAE_TO_SPONSOR].due_at == event.current.aware_at + dt.timedelta(hours=24)
    assert due[DeadlineKind.SAE_TO_SPONSOR].state is DeadlineState.PENDING
    assert set(due) == {DeadlineKind.SAE_TO_SPONSOR, DeadlineKind.SUSAR_INITIAL}
    entries = audit.entries(trial.engine, action_prefix="ae.reported")
    assert {e.field for e in entries} >= {"term", "grade", "serious", "seriousness_criteria", "causality"}
    assert all(e.participant == randomized and e.form == "adverse_event:AE-0001" for e in entries)
    assert not any(word in str(e) for e in entries for word in ARM_WORDS)
    sent = record_submission(trial.engine, investigator, "AE-0001", "sae_to_sponsor", NOW.isoformat())
    assert {d.kind: d.state for d in sent.deadlines}[DeadlineKind.SAE_TO_SPONSOR] is DeadlineState.MET
    with pytest.raises(SafetyError, match="recorded already"):
        record_submission(trial.engine, investigator, "AE-0001", "sae_to_sponsor", NOW.isoformat())
    assert audit.verify(trial.engine).ok


def test_a_follow_up_keeps_the_history_and_a_bad_one_loses_nothing(trial: Trial, randomized: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    report_event(trial.engine, coordinator, randomized, sae(serious=False, seriousness_criteria=[], grade=2))
    with pytest.raises(SafetyInputError) as caught:
        follow_up(trial.engine, coordinator, "AE-0001", {"grade": 7, "end": "2000-01-01", "aware_at": NOW.isoformat()})
    assert [f for f, _ in caught.value.problems] == ["end", "grade"]
    assert get_event(trial.engine, coordinator, "AE-0001").current.grade == 2  # nothing lost
    with pytest.raises(SafetyError, match=r"^initial_report: there is no adverse event AE-0099"):
        follow_up(trial.engine, coordinator, "AE-0099", {"grade": 3, "aware_at": NOW.isoformat()})
    later = follow_up(
        trial.engine,
        coordinator,
        "AE-0001",
        {"grade": 3, "serious": True, "seriousness_criteria": ["hospitalisation"], "aware_at": NOW.isoformat()},
        reason="transferred to ICU",
    )
    assert [r.kind for r in later.reports] == ["initial", "follow-up 1"]
    assert later.classification.serious and not later.reports[0].classification.serious
    # The SAE clock starts at the follow-up that made the event serious.
    assert later.deadlines[0].clock_start == later.reports[1].assessment.aware_at
    (grade,) = [e for e in audit.entries(trial.engine, action_prefix="ae.followed_up") if e.field == "grade"]
    assert (grade.old_value, grade.new_value, grade.reason) == ("2", "3", "transferred to ICU")


def test_who_may_report_and_read(trial: Trial, randomized: str) -> None:
    rule = r"^role: only an investigator or a study coordinator may report adverse events$"
    with pytest.raises(SafetyError, match=rule):
        report_event(trial.engine, who(trial, Role.MONITOR), randomized, sae())
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, sae())
    with pytest.raises(SafetyError, match="read adverse events"):
        list_events(trial.engine, who(trial, Role.OUTCOME_ASSESSOR))
    assert [v.ae_number for v in list_events(trial.engine, who(trial, Role.MONITOR))] == ["AE-0001"]


def test_a_death_ends_the_hospital_course_and_a_locked_form_gets_a_query(trial: Trial, randomized: str) -> None:
    investigator = who(trial, Role.INVESTIGATOR)
    admitted = (TODAY - dt.timedelta(days=9)).isoformat()
    save_form(trial.engine, investigator, randomized, "discharge", "hospital_course",
              {"admitted_on": admitted, "status": "in_hospital"})  # fmt: skip
    died = (TODAY - dt.timedelta(days=1)).isoformat()
    report_event(
        trial.engine, investigator, randomized,
        sae(grade=5, outcome="fatal", seriousness_criteria=["death"], death_date=died, death_cause="Septic shock"),
    )  # fmt: skip
    course = get_form(trial.engine, investigator, randomized, "discharge", "hospital_course")
    assert course is not None
    assert course.values["status"].value == "died" and course.values["ended_on"].value == died
    assert course.values["death_cause"].value == "Septic shock" and course.values["length_of_stay"].value == 8
    # A second participant whose hospital-course form is locked: the report stands, a query asks for the death.
    other = enrolled(trial)
    record_decision(trial.engine, who(trial, Role.DSMB_MEMBER), "resume", "reviewed", PASSWORD)
    randomize(trial.engine, investigator, other)
    save_form(trial.engine, investigator, other, "discharge", "hospital_course",
              {"admitted_on": TODAY.isoformat(), "status": "in_hospital"}, visit_date=TODAY)  # fmt: skip
    complete_form(trial.engine, investigator, other, "discharge", "hospital_course")
    lock_form(trial.engine, who(trial, Role.DATA_MANAGER), other, "discharge", "hospital_course")
    report_event(trial.engine, investigator, other, sae(
        onset=TODAY.isoformat(), grade=5, outcome="fatal", seriousness_criteria=["death"], death_date=TODAY.isoformat(),
        death_cause="Cardiac arrest", aware_at=NOW.isoformat()))  # fmt: skip
    (query,) = list_queries(trial.engine, who(trial, Role.MONITOR), participant_id=other)
    assert "reported in AE-0002" in query.text and "locked" in query.text and query.origin == "system"


def test_the_pause_stops_randomization_until_the_dsmb_resumes(trial: Trial, randomized: str) -> None:
    investigator, dsmb = who(trial, Role.INVESTIGATOR), who(trial, Role.DSMB_MEMBER)
    report_event(trial.engine, investigator, randomized, sae(causality="unlikely"))  # not related: no pause
    assert not pause(trial.engine).active
    report_event(trial.engine, investigator, randomized, sae(term="Pulmonary embolism"))  # related SAE
    state = pause(trial.engine)
    assert state.active and state.related_saes == 1
    second = enrolled(trial)
    with pytest.raises(RandomizationError, match="paused by the protocol's safety rule"):
        randomize(trial.engine, investigator, second)
    with pytest.raises(SafetyError, match="password"):
        record_decision(trial.engine, dsmb, "resume", "reviewed unblinded", "wrong")
    with pytest.raises(SafetyError, match="only a DSMB member may"):
        record_decision(trial.engine, investigator, "resume", "x", PASSWORD)
    reason = "reviewed unblinded; unrelated to product"
    assert not record_decision(trial.engine, dsmb, "resume", reason, PASSWORD).active
    assert randomize(trial.engine, investigator, second).number == 2
    (entry,) = audit.entries(trial.engine, action_prefix="safety.decision")
    assert entry.reason == reason and entry.actor == dsmb.username
    record_decision(trial.engine, dsmb, "stop", "futility of safety", PASSWORD)
    with pytest.raises(RandomizationError, match="stopped recruitment"):
        randomize(trial.engine, investigator, enrolled(trial))


def test_a_randomization_never_slips_past_a_stop_being_recorded(
    trial: Trial, randomized: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the DSMB's stop is being recorded, a concurrent randomization waits for it and is then refused (on
    SQLite writers queue anyway; on PostgreSQL the decision holds the randomization lock alone, a randomization
    shares it)."""
    from trialwright.services.safety import dsmb_pause as safety  # where the pause is read

    inside, go = threading.Event(), threading.Event()
    real = safety._pause

    def slow_decision(session: Any, protocol: Any) -> Any:
        state = real(session, protocol)  # read inside the decision's transaction (SQLite: its write lock is held)
        if threading.current_thread().name == "dsmb":
            inside.set()
            go.wait(10)
        return state

    monkeypatch.setattr(safety, "_pause", slow_decision)
    second = enrolled(trial)
    outcome: dict[str, object] = {}

    def decide() -> None:
        record_decision(trial.engine, who(trial, Role.DSMB_MEMBER), "stop", "harm in one arm", PASSWORD)

    def allocate() -> None:
        try:
            outcome["randomized"] = randomize(trial.engine, who(trial, Role.INVESTIGATOR), second)
        except RandomizationError as exc:
            outcome["refused"] = str(exc)

    dsmb = threading.Thread(target=decide, name="dsmb")
    dsmb.start()
    assert inside.wait(10)  # the decision holds its lock and has read the pause
    request = threading.Thread(target=allocate)
    request.start()
    request.join(1.0)
    assert request.is_alive() and not outcome  # the randomization waits for the decision
    go.set()
    dsmb.join(10)
    request.join(10)
    assert "stopped recruitment" in str(outcome.get("refused")), outcome


def test_tables_are_pooled_for_the_team_and_by_arm_for_the_dsmb(trial: Trial, randomized: str) -> None:
    investigator = who(trial, Role.INVESTIGATOR)
    report_event(trial.engine, investigator, randomized, sae())
    team = safety_tables(trial.engine, investigator)
    assert team.grouping == "pooled" and team.groups == ("All participants",)
    rows = {r.label: r for r in team.rows}
    assert rows["Any serious adverse event"].cell("All participants") == "1 (100%)"
    dsmb = safety_tables(trial.engine, who(trial, Role.DSMB_MEMBER))
    assert dsmb.grouping == "by_arm" and set(dsmb.groups) == {"hUCMSC-Exos + standard care",
                                                               "Placebo (PBS) + standard care"}  # fmt: skip
    assert sum({r.label: r for r in dsmb.rows}["Any serious adverse event"].counts.values()) == 1
    for role in (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER):
        listing = listing_rows(trial.engine, who(trial, role))
        assert "arm" not in listing[0] and not any(w in str(listing) for w in ARM_WORDS)
    assert listing_rows(trial.engine, who(trial, Role.DSMB_MEMBER))[0]["arm"] in {"EXO", "PBO"}


def test_an_overdue_report_reaches_the_responsible_home_pages(trial: Trial, randomized: str) -> None:
    known = sae(aware_at=(NOW - dt.timedelta(hours=30)).isoformat(), onset=(TODAY - dt.timedelta(days=2)).isoformat())
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, known)
    for role in (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER):
        (item,) = overdue_for(trial.engine, who(trial, role))
        assert (item.ae_number, item.kind) == ("AE-0001", DeadlineKind.SAE_TO_SPONSOR)
    assert overdue_for(trial.engine, who(trial, Role.ADMINISTRATOR)) == []
    (listed,) = list_events(trial.engine, who(trial, Role.MONITOR), overdue_only=True)
    assert listed.overdue[0].kind is DeadlineKind.SAE_TO_SPONSOR


@pytest.mark.covers("REG-12")
def test_the_database_lock_refuses_reports(trial: Trial, randomized: str) -> None:
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis")
    with pytest.raises(SafetyError, match="database is locked"):
        report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, sae())
    unlock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "late SAE")
    assert report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, sae()).ae_number == "AE-0001"


def test_a_server_in_another_zone_reads_a_page_s_site_times_on_the_sites_clock(
    trial: Trial, randomized: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        aware = (NOW - dt.timedelta(hours=2)).astimezone(dt.timezone(dt.timedelta(hours=3, minutes=30)))
        typed = sae(aware_at=aware.replace(tzinfo=None).isoformat(timespec="minutes"))  # as the page sends it
        with pytest.raises(SafetyInputError, match="aware_at"):  # no offset: refused, never guessed
            report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, typed)
        event = report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, typed, typed_on_site_clock=True)
        assert event.current.aware_at == aware.replace(second=0, microsecond=0).astimezone(dt.UTC)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_dsmb_member_s_home_counts_the_saes_to_review_since_the_last_decision(trial: Trial, randomized: str) -> None:
    """The DSMB's review work: adverse events serious now and first reported serious after the DSMB's last decision
    (every one before any decision); a non-serious event is not one; a decision clears the count and only events
    reported serious after it count again. A count only, for the DSMB member alone."""
    from trialwright.services.worklist import work_list

    dsmb, investigator = who(trial, Role.DSMB_MEMBER), who(trial, Role.INVESTIGATOR)
    assert work_list(trial.engine, dsmb).saes_to_review == 0
    report_event(trial.engine, investigator, randomized, sae(term="Pulmonary embolism"))
    report_event(trial.engine, investigator, randomized, sae(term="Headache", serious=False, seriousness_criteria=[],
                                                             grade=1))  # fmt: skip
    waiting = work_list(trial.engine, dsmb)
    assert waiting.saes_to_review == 1 and waiting.total == 2  # and the decision the pause awaits
    report_event(trial.engine, investigator, randomized, sae(term="Stroke", causality="not_related"))
    assert work_list(trial.engine, dsmb).saes_to_review == 2
    assert work_list(trial.engine, investigator).saes_to_review is None
    record_decision(trial.engine, dsmb, "resume", "reviewed", PASSWORD)
    assert work_list(trial.engine, dsmb).saes_to_review == 0
    report_event(trial.engine, investigator, randomized, sae(term="Sepsis", causality="not_related"))
    assert work_list(trial.engine, dsmb).saes_to_review == 1


def test_a_dsmb_member_s_home_counts_the_decision_the_pause_awaits(trial: Trial, randomized: str) -> None:
    """The DSMB member's work list holds the decision the safety pause awaits (read from the pause itself: the
    protocol's related-SAE threshold reached since the last decision), linking to the DSMB page; no other role's."""
    from trialwright.services.worklist import work_list

    dsmb = who(trial, Role.DSMB_MEMBER)
    assert work_list(trial.engine, dsmb).decision_pending is False and work_list(trial.engine, dsmb).total == 0
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, sae(term="Pulmonary embolism"))
    assert pause(trial.engine).active  # one related SAE reaches the first protocol's threshold
    waiting = work_list(trial.engine, dsmb)
    assert waiting.decision_pending is True and waiting.total == 2  # the decision, and the SAE to review
    assert work_list(trial.engine, who(trial, Role.INVESTIGATOR)).decision_pending is None
    record_decision(trial.engine, dsmb, "resume", "reviewed", PASSWORD)
    assert work_list(trial.engine, dsmb).decision_pending is False
