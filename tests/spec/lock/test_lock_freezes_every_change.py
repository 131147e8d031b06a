"""After the database lock no change of any kind is stored (docs/lock.md: "after that no page, API call, import or
command changes data"), not only form saves: screening a new patient, changing a screening, recording a consent or a
reason for not enrolling, enrolling, randomizing, withdrawing, preparing a dose, generating or extending the
allocation list are each refused in the lock's words (a decision on a dissent goes through the same check,
``require_unlocked``; not set up here), and nothing is written (no row, no audit entry, no randomization number
taken). A soft lock of a site refuses the same at that site, a new screening there included; another site's soft
lock leaves it going on.

An unseen trial's walk found the lock letting a patient be screened, consented, enrolled and randomized, and the
unblinded analysis of the locked database then counted one participant more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.spec.randomization.test_preparation import EXOSOMES, PLACEBO
from tests.spec.randomization.test_randomize_service import TYPED
from tests.trialfixtures import PASSWORD, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.lock import lock_trial, soft_lock, unlock_trial
from trialwright.services.randomization import (
    RandomizationError,
    extend_list,
    generate_list,
    prepare,
    randomize,
    what_to_prepare,
)
from trialwright.services.screening import (
    NonEnrolmentReason,
    ScreeningError,
    enrol,
    record_consent,
    screen,
    set_non_enrolment,
    update_screening,
    withdraw,
)
from trialwright.store.engine import read_scope
from trialwright.store.randomization_tables import allocation_entries, preparations
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals

LOCKED = r"^trial: the database is locked \(since .* UTC, by .*\); the data manager unlocks it with a reason$"


def _consent(trial: Trial, screening_id: int) -> None:
    record_consent(trial.engine, who(trial, Role.STUDY_COORDINATOR), screening_id, form_version="1.0",
                   given_by="participant", obtained_by="Dr K", obtained_at=dt.datetime.now(dt.UTC))  # fmt: skip


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=2021)
    yield t
    t.engine.dispose()


def _patients(trial: Trial) -> dict[str, Any]:
    """At RAZ (the study coordinator's site): a patient screened only, one consented (not enrolled), one enrolled
    (not randomized) and one randomized; the randomized one's preparation code."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    today = dt.datetime.now(dt.UTC).date()
    made = [screen(trial.engine, coordinator, site="RAZ", screened_on=today, values=TYPED).id for _ in range(4)]
    for screening_id in made[1:]:
        _consent(trial, screening_id)
    enrolled = [enrol(trial.engine, coordinator, s).participant for s in made[2:]]
    waiting, randomized = (p.participant_id for p in enrolled if p is not None)
    code = randomize(trial.engine, coordinator, randomized).preparation_code
    return {"screened": made[0], "consented": made[1], "waiting": waiting, "randomized": randomized, "code": code}


def _counts(trial: Trial) -> tuple[int, ...]:
    """Rows of every table these changes write, and the audit trail's entries."""
    claimed = allocation_entries.c.participant_id.is_not(None)
    with read_scope(trial.engine) as session:
        rows = tuple(
            session.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
            for table, where in (
                (screenings, ()),
                (consents, ()),
                (participants, ()),
                (allocation_entries, (claimed,)),
                (withdrawals, ()),
                (preparations, ()),
            )
        )
    return (*rows, len(audit.entries(trial.engine)))


def _changes(trial: Trial, p: dict[str, Any]) -> dict[str, tuple[type[Exception], Callable[[], object]]]:
    """Each change a site makes outside a form, by name: the error it is refused with, and the call."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    today = dt.datetime.now(dt.UTC).date()
    arm = what_to_prepare(trial.engine, pharmacist, p["code"]).arm
    values = EXOSOMES if arm.startswith("hUCMSC-Exos") else PLACEBO
    return {
        "screen a new patient": (ScreeningError, lambda: screen(trial.engine, coordinator, site="RAZ",
                                                                 screened_on=today, values=TYPED)),
        "change a screening": (ScreeningError, lambda: update_screening(trial.engine, coordinator, p["screened"],
                                                                       values={**TYPED, "age": 61}, reason="typo")),
        "record a consent": (ScreeningError, lambda: _consent(trial, p["screened"])),
        "record why not enrolled": (ScreeningError, lambda: set_non_enrolment(
            trial.engine, coordinator, p["screened"], reason=NonEnrolmentReason.DECLINED.value)),
        "enrol": (ScreeningError, lambda: enrol(trial.engine, coordinator, p["consented"])),
        "randomize": (RandomizationError, lambda: randomize(trial.engine, coordinator, p["waiting"])),
        "withdraw": (ScreeningError, lambda: withdraw(trial.engine, coordinator, p["randomized"],
                                                      scope="follow_up", cause="lost_to_follow_up",
                                                      reason="moved away", withdrawn_on=None)),
        "prepare a dose": (RandomizationError, lambda: prepare(trial.engine, pharmacist, p["code"], values)),
    }  # fmt: skip


def test_after_the_lock_every_change_is_refused_and_nothing_is_written(trial: Trial) -> None:
    p = _patients(trial)
    manager = who(trial, Role.DATA_MANAGER)
    lock_trial(trial.engine, manager, "final analysis", password=PASSWORD)
    before = _counts(trial)
    refused = {}
    for name, (error, change) in _changes(trial, p).items():
        with pytest.raises(error, match=LOCKED) as caught:
            change()
        refused[name] = type(caught.value)
    assert _counts(trial) == before
    assert refused == {name: error for name, (error, _) in _changes(trial, p).items()}
    # Unlocked with a reason, the same changes are stored again; the randomization number the refusal did not take
    # is the next one (no gap on PostgreSQL, whose sequence the refused randomization never touched).
    unlock_trial(trial.engine, manager, "a late consent form found")
    assert randomize(trial.engine, who(trial, Role.STUDY_COORDINATOR), p["waiting"]).number == 2
    assert _counts(trial)[3] == before[3] + 1


def test_a_site_soft_lock_refuses_screening_and_randomizing_there_only(trial: Trial) -> None:
    p = _patients(trial)
    manager, coordinator = who(trial, Role.DATA_MANAGER), who(trial, Role.STUDY_COORDINATOR)  # at RAZ
    today = dt.datetime.now(dt.UTC).date()
    # Another site's soft lock leaves RAZ going on.
    soft_lock(trial.engine, manager, "monitoring visit at GOL", site="GOL")
    assert screen(trial.engine, coordinator, site="RAZ", screened_on=today, values=TYPED).site == "RAZ"
    soft_lock(trial.engine, manager, "monitoring visit at RAZ", site="RAZ")
    soft = r"^site: RAZ is soft-locked \(since .*: monitoring visit at RAZ\); nothing there can be changed"
    with pytest.raises(ScreeningError, match=soft):
        screen(trial.engine, coordinator, site="RAZ", screened_on=today, values=TYPED)
    with pytest.raises(RandomizationError, match=soft):
        randomize(trial.engine, coordinator, p["waiting"])
    with pytest.raises(ScreeningError, match=soft):
        enrol(trial.engine, coordinator, p["consented"])


def test_the_allocation_list_is_frozen_by_the_lock(database_url: str) -> None:
    t = make_trial(database_url)
    statistician = who(t, Role.UNBLINDED_STATISTICIAN)
    lock_trial(t.engine, who(t, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    with pytest.raises(RandomizationError, match=LOCKED):
        generate_list(t.engine, statistician, seed=2021)
    unlock_trial(t.engine, who(t, Role.DATA_MANAGER), "the list was never made")
    generate_list(t.engine, statistician, seed=2021)
    lock_trial(t.engine, who(t, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    with pytest.raises(RandomizationError, match=LOCKED):
        extend_list(t.engine, statistician, "site=RAZ", entries=4, reason="more patients")
    t.engine.dispose()


def test_a_participant_soft_lock_refuses_their_randomization(trial: Trial) -> None:
    p = _patients(trial)
    soft_lock(trial.engine, who(trial, Role.DATA_MANAGER), "source check", participant_id=p["waiting"])
    with pytest.raises(RandomizationError, match=rf"^participant: {p['waiting']} is soft-locked"):
        randomize(trial.engine, who(trial, Role.STUDY_COORDINATOR), p["waiting"])
