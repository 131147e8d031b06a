"""Lock readiness: what blocks the database lock, per site and participant (forms short of the lock policy, open
queries, SAEs without a final follow-up, visits neither done nor missed, stored coherence breaches); the lock
refused while anything blocks it, unless the data manager overrides with a reason and their password."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from tests.spec.forms.conftest import NOW, TODAY
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.forms import FormState
from trialwright.domain.roles import Role
from trialwright.domain.safety import EventOutcome
from trialwright.protocol.lock import AE_OUTCOMES, LockPolicy
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.lock import LockBlocked, lock_state, lock_trial, unlock_trial
from trialwright.services.readiness import BlockerKind, lock_readiness, meets_policy
from trialwright.services.safety import follow_up, report_event
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import consents, participants

SAE = {
    "term": "Acute kidney injury", "onset": (TODAY - dt.timedelta(days=1)).isoformat(), "grade": 3, "serious": True,
    "seriousness_criteria": ["hospitalisation"], "causality": "possible", "action_taken": "not_applicable",
    "outcome": "recovering", "aware_at": (NOW - dt.timedelta(hours=1)).isoformat(),
}  # fmt: skip
FINALS = "recovered, recovered_with_sequelae, fatal"  # the default lock_policy.sae_final_outcomes


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


@pytest.fixture
def blocked(trial: Trial, pid: str) -> str:
    """The participant infused seven days ago: the infusion's vitals a draft (its administration form never
    started), a query open on SpO2, an SAE still recovering, and the consent later moved to after the vitals."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.record_visit(trial.engine, coordinator, pid, "infusion", day(-7))
    vitals = {"assessed_at": f"{day(-7).isoformat()}T08:00+03:30", "spo2": 95}
    svc.save_form(trial.engine, coordinator, pid, "infusion", "vitals", vitals)
    svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "please check SpO2", visit_id="infusion",
                    form_id="vitals", field_id="spo2")  # fmt: skip
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, SAE)
    with session_scope(trial.engine) as session:  # a consent time corrected later, after data were stored
        screening = select(participants.c.screening_id).where(participants.c.participant_id == pid)
        session.execute(update(consents).where(consents.c.screening_id == screening.scalar_subquery())
                        .values(obtained_at=NOW - dt.timedelta(days=5)))  # fmt: skip
    return pid


def test_the_report_lists_each_blocker_by_kind_per_participant(trial: Trial, blocked: str) -> None:
    report = lock_readiness(trial.engine, who(trial, Role.DATA_MANAGER))
    (query,) = svc.list_queries(trial.engine, who(trial, Role.MONITOR))
    assert not report.ready and report.participants == 1 and report.forms_policy == "signed"
    assert [(b.kind, b.site, b.participant_id, b.where, b.detail) for b in report.blockers] == [
        (BlockerKind.FORM, "RAZ", blocked, "infusion administration", "not started; the lock policy needs signed"),
        (BlockerKind.FORM, "RAZ", blocked, "infusion vitals", "draft; the lock policy needs signed"),
        (BlockerKind.QUERY, "RAZ", blocked, f"query {query.id}", "open on spo2: please check SpO2"),
        (BlockerKind.SAE, "RAZ", blocked, "AE-0001",
         f"last report (initial) records the outcome recovering; a final follow-up records one of {FINALS}"),
        # The visits are due from the infusion (day 0): baseline -1..0, day1 1, day3 2..4, day7 6..8.
        (BlockerKind.VISIT, "RAZ", blocked, "visit baseline",
         f"overdue: neither done nor recorded as missed (window closed until {day(-7)})"),
        (BlockerKind.VISIT, "RAZ", blocked, "visit day1",
         f"overdue: neither done nor recorded as missed (window closed until {day(-6)})"),
        (BlockerKind.VISIT, "RAZ", blocked, "visit day3",
         f"overdue: neither done nor recorded as missed (window closed until {day(-3)})"),
        (BlockerKind.VISIT, "RAZ", blocked, "visit day7",
         f"due: neither done nor recorded as missed (window open until {day(1)})"),
        (BlockerKind.COHERENCE, "RAZ", blocked, "infusion vitals.assessed_at",
         f"vitals.assessed_at: {day(-7)} 08:00 is before the consent "
         f"({(NOW - dt.timedelta(days=5)).astimezone(dt.timezone(dt.timedelta(hours=3, minutes=30))):%Y-%m-%d %H:%M}); "
         "nothing is recorded about a participant before they consent (built-in rule)"),
    ]  # fmt: skip
    assert report.counts() == {BlockerKind.FORM: 2, BlockerKind.LOG: 0, BlockerKind.QUERY: 1, BlockerKind.SAE: 1,
                               BlockerKind.VISIT: 4, BlockerKind.COHERENCE: 1}  # fmt: skip
    assert report.by_site() == {"RAZ": report.counts()}
    assert report.headline() == (
        "9 blockers (2 forms not ready, 1 open query, 1 SAE without a final follow-up, "
        "4 visits neither done nor missed, 1 coherence breach)"
    )
    assert lock_readiness(trial.engine, who(trial, Role.DATA_MANAGER), site="GOL").ready  # another site: nothing
    assert lock_readiness(trial.engine, who(trial, Role.MONITOR)).blockers == report.blockers  # the monitor's site
    with pytest.raises(svc.FormError, match=r"^site: GOL is not one of your sites"):
        lock_readiness(trial.engine, who(trial, Role.MONITOR), site="GOL")
    with pytest.raises(svc.FormError, match="only a data manager or a monitor may read the lock readiness"):
        lock_readiness(trial.engine, who(trial, Role.STUDY_COORDINATOR))


def test_each_blocker_goes_when_it_is_resolved(trial: Trial, blocked: str) -> None:
    manager, monitor = who(trial, Role.DATA_MANAGER), who(trial, Role.MONITOR)
    (query,) = svc.list_queries(trial.engine, monitor)
    svc.close_query(trial.engine, monitor, query.id, "checked against the source")
    follow_up(trial.engine, who(trial, Role.INVESTIGATOR), "AE-0001",
              {"outcome": "recovered", "end": TODAY.isoformat(), "aware_at": NOW.isoformat()})  # fmt: skip
    for visit in ("baseline", "day1", "day3", "day7"):
        svc.miss_visit(trial.engine, who(trial, Role.STUDY_COORDINATOR), blocked, visit, "participant unwell")
    left = lock_readiness(trial.engine, manager).counts()
    assert left == {BlockerKind.FORM: 2, BlockerKind.LOG: 0, BlockerKind.QUERY: 0, BlockerKind.SAE: 0,
                    BlockerKind.VISIT: 0, BlockerKind.COHERENCE: 1}  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "state", "verified", "meets"),
    [
        ("complete", FormState.DRAFT, False, False),
        ("complete", FormState.COMPLETE, False, True),
        ("verified", FormState.COMPLETE, False, False),
        ("verified", FormState.VERIFIED, True, True),
        ("verified", FormState.SIGNED, False, False),  # signed without source data verification
        ("verified", FormState.SIGNED, True, True),
        ("signed", FormState.VERIFIED, True, False),
        ("signed", FormState.SIGNED, False, True),
        ("signed", FormState.LOCKED, False, True),  # the data manager locked it: meets every level
    ],
)
def test_the_lock_policy_per_form_state(policy: str, state: FormState, verified: bool, meets: bool) -> None:
    assert meets_policy(policy, state, verified) is meets


def test_the_policy_names_the_outcomes_a_report_records() -> None:
    assert tuple(o.value for o in EventOutcome) == AE_OUTCOMES
    assert LockPolicy().forms == "signed" and LockPolicy().sae_final_outcomes == FINALS.split(", ")


def test_nothing_due_nothing_blocks(trial: Trial, pid: str) -> None:
    report = lock_readiness(trial.engine, who(trial, Role.DATA_MANAGER))
    assert report.ready and report.participants == 1 and report.headline() == "nothing blocks the lock"
    assert lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis").open_blockers is None
    assert lock_state(trial.engine).banner is None


@pytest.mark.covers("REG-12")
def test_the_lock_is_refused_while_anything_blocks_unless_overridden(trial: Trial, blocked: str) -> None:
    manager = who(trial, Role.DATA_MANAGER)
    with pytest.raises(LockBlocked) as refused:
        lock_trial(trial.engine, manager, "final analysis")
    message = str(refused.value)
    assert message.startswith("trial: 9 blockers (2 forms not ready, 1 open query, ")
    assert "override with a reason and your password" in message
    assert f"First: {blocked} infusion administration: not started; the lock policy needs signed; " in message
    assert message.endswith("; and 4 more.")  # five shown, four counted
    assert not lock_state(trial.engine).locked and not audit.entries(trial.engine, action_prefix="trial.locked")
    with pytest.raises(svc.FormError, match=r"^password: wrong password"):
        lock_trial(trial.engine, manager, "final analysis", password="not-it")
    assert not lock_state(trial.engine).locked
    with pytest.raises(svc.FormError, match=r"^reason: say why"):
        lock_trial(trial.engine, manager, " ", password=PASSWORD)
    state = lock_trial(trial.engine, manager, "DSMB asked for the final analysis now", password=PASSWORD)
    assert state.locked and state.open_blockers == 9 and state.by == manager.username
    assert state.banner == (
        f"Locked with 9 open blockers by {manager.username} on {state.at:%Y-%m-%d %H:%M} UTC: "
        "DSMB asked for the final analysis now"
    )
    (entry,) = audit.entries(trial.engine, action_prefix="trial.locked")
    assert entry.reason == "DSMB asked for the final analysis now"
    assert json.loads(entry.detail or "{}") == {"override": True, "open_blockers": 9}
    assert not unlock_trial(trial.engine, manager, "late corrections").locked
    assert lock_state(trial.engine).banner is None
