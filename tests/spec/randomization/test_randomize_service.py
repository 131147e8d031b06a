"""Randomizing through the service, on SQLite and PostgreSQL: the sealed list, one entry per
participant, never shared, skipped or repeated under 32 concurrent requests; arms masked for the
blinded; nothing randomized before enrolment."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.trialfixtures import PASSWORD, Trial, make_trial, screener, username, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.randomization import (
    RandomizationError,
    emergency_unblind,
    generate_list,
    prepare,
    randomize,
    unblinded_participants,
    unblinding_log,
    what_to_prepare,
)
from trialwright.services.screening import NotFound, ScreeningError, enrol, record_consent, screen, withdraw
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries, notifications

TYPED = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def enrolled(trial: Trial, site: str = "RAZ") -> str:
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    s = screen(trial.engine, admin, site=site, screened_on=dt.datetime.now(dt.UTC).date(), values=TYPED)
    record_consent(
        trial.engine,
        admin,
        s.id,
        form_version="1.0",
        given_by="participant",
        obtained_by="Dr K",
        obtained_at=dt.datetime.now(dt.UTC),
    )
    participant = enrol(trial.engine, admin, s.id).participant
    assert participant is not None
    return participant.participant_id


@pytest.mark.covers("REG-7")
def test_only_the_unblinded_statistician_generates_the_list_once(trial: Trial) -> None:
    with pytest.raises(RandomizationError, match="only the unblinded statistician"):
        generate_list(trial.engine, who(trial, Role.INVESTIGATOR))
    checksum = generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=2021)
    with pytest.raises(RandomizationError, match="never regenerated"):
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=2021)
    (entry,) = audit.entries(trial.engine, action_prefix="randomization.list_generated")
    recorded = json.loads(entry.new_value or "{}")
    # How the list was made, never what it holds.
    assert recorded["checksum"] == checksum and sorted(recorded) == [
        "checksum",
        "entries",
        "generator",
        "method",
        "seed_sha256",
    ]
    assert "EXO" not in (entry.new_value or "") and "PBO" not in (entry.new_value or "")


@pytest.mark.covers("REG-8")
def test_the_same_seed_gives_the_same_list_in_the_database(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = make_trial(database_url)
    a = generate_list(first.engine, who(first, Role.UNBLINDED_STATISTICIAN), seed=99)
    second = make_trial(f"sqlite:///{tmp_path / 'other.db'}")
    b = generate_list(second.engine, who(second, Role.UNBLINDED_STATISTICIAN), seed=99)
    assert a == b
    first.engine.dispose()
    second.engine.dispose()


@pytest.mark.covers("REG-5", "REG-8")
def test_randomize_masks_the_arm_for_the_blinded_and_never_twice(trial: Trial) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    pid = enrolled(trial)
    result = randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    assert result.number == 1 and result.arm == "masked" and result.preparation_code.startswith("P-")
    with pytest.raises(RandomizationError, match="randomized already"):
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    (entry,) = audit.entries(trial.engine, action_prefix="participant.randomized")
    assert "EXO" not in (entry.new_value or "") and "PBO" not in (entry.new_value or "")


@pytest.mark.covers("REG-13")
def test_nothing_is_randomized_before_the_list_or_outside_the_rules(trial: Trial) -> None:
    pid = enrolled(trial)
    with pytest.raises(RandomizationError, match="no allocation list yet"):
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    with pytest.raises(RandomizationError, match="investigators and study coordinators"):
        randomize(trial.engine, who(trial, Role.MONITOR), pid)
    with pytest.raises(NotFound):
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), "RAZ-999")
    gol = enrolled(trial, "GOL")
    with pytest.raises(NotFound):  # the investigator works at RAZ only
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), gol)
    withdraw(
        trial.engine,
        who(trial, Role.STUDY_COORDINATOR),
        pid,
        scope="intervention",
        cause="withdrew_consent",
        reason="family",
        withdrawn_on=dt.datetime.now(dt.timezone(dt.timedelta(hours=3, minutes=30))).date(),  # the site's date
    )
    with pytest.raises(ScreeningError, match="withdrew from intervention"):
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)


@pytest.mark.covers("REG-7")
def test_32_concurrent_randomizations_take_32_distinct_consecutive_entries(trial: Trial) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    people = [enrolled(trial) for _ in range(32)]
    investigator = who(trial, Role.INVESTIGATOR)
    errors: list[BaseException] = []
    barrier = threading.Barrier(32)

    def work(pid: str) -> None:
        try:
            barrier.wait(timeout=30)
            randomize(trial.engine, investigator, pid)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(pid,)) for pid in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with session_scope(trial.engine) as session:
        used = session.execute(
            select(
                allocation_entries.c.sequence,
                allocation_entries.c.participant_id,
                allocation_entries.c.randomization_number,
            ).where(allocation_entries.c.participant_id.is_not(None), allocation_entries.c.stratum == "site=RAZ")
        ).all()
    assert sorted(r.sequence for r in used) == list(range(1, 33))  # no gap, no entry twice
    assert sorted(r.participant_id for r in used) == sorted(people)  # each participant once
    assert sorted(r.randomization_number for r in used) == list(range(1, 33))
    assert audit.verify(trial.engine).ok


def _randomized(trial: Trial) -> tuple[str, str]:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    pid = enrolled(trial)
    return pid, randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid).preparation_code


def test_the_pharmacist_sees_what_to_prepare_and_records_it_once(trial: Trial) -> None:
    pid, code = _randomized(trial)
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    instruction = what_to_prepare(trial.engine, pharmacist, code)
    assert instruction.participant_id == pid and instruction.arm in {
        "hUCMSC-Exos + standard care",
        "Placebo (PBS) + standard care",
    }
    assert instruction.volume == "2-5 mL" and instruction.identical_appearance and not instruction.prepared
    values = {"product_lot": "LOT-2021-07", "volume_ml": 3, "particles": 5e10}
    values = {a.id: values[a.id] for a in instruction.attributes}  # what this arm declares
    done = prepare(trial.engine, pharmacist, code, values)
    assert done.prepared
    with pytest.raises(RandomizationError, match="prepared already"):
        prepare(trial.engine, pharmacist, code, values)
    with pytest.raises(RandomizationError, match="only the unblinded pharmacist"):
        what_to_prepare(trial.engine, who(trial, Role.STUDY_COORDINATOR), code)
    (entry,) = audit.entries(trial.engine, action_prefix="dose.prepared")
    assert "Exos" not in (entry.new_value or "") and "Placebo" not in (entry.new_value or "")


@pytest.mark.covers("REG-6")
def test_emergency_unblinding_reveals_one_participant_to_that_investigator(trial: Trial) -> None:
    pid, _ = _randomized(trial)
    investigator = who(trial, Role.INVESTIGATOR)
    with pytest.raises(RandomizationError, match="reason"):
        emergency_unblind(trial.engine, investigator, pid, reason=" ", password=PASSWORD)
    with pytest.raises(RandomizationError, match="password"):
        emergency_unblind(trial.engine, investigator, pid, reason="anaphylaxis", password="wrong")
    with pytest.raises(RandomizationError, match="an investigator"):
        emergency_unblind(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, reason="x", password=PASSWORD)
    revealed = emergency_unblind(trial.engine, investigator, pid, reason="anaphylaxis", password=PASSWORD)
    assert revealed.arm in {"EXO", "PBO"}
    assert unblinded_participants(trial.engine, investigator.username) == {pid}
    assert unblinded_participants(trial.engine, username(Role.STUDY_COORDINATOR)) == frozenset()
    (entry,) = audit.entries(trial.engine, action_prefix="participant.unblinded")
    assert entry.reason == "anaphylaxis" and entry.participant == pid and revealed.arm not in str(entry)
    (record,) = unblinding_log(trial.engine, who(trial, Role.DSMB_MEMBER))
    assert (record.participant_id, record.unblinded_by) == (pid, investigator.username)
    with pytest.raises(RandomizationError, match="unblinded roles and the DSMB"):
        unblinding_log(trial.engine, investigator)
    with session_scope(trial.engine) as session:
        notified = {r.role for r in session.execute(select(notifications))}
    assert notified == {"unblinded_statistician", "dsmb_member"}


def test_a_request_waits_for_entries_others_hold_rather_than_call_the_stratum_exhausted(trial: Trial) -> None:
    """Every free entry held by running requests (or by keying, which locks them all): a new request waits for
    one and takes it when its holder fails, instead of answering 'exhausted' (PostgreSQL; SQLite has one writer)."""
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    pid = enrolled(trial)
    if trial.engine.dialect.name != "postgresql":
        assert randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid).number == 1
        return
    outcome: dict[str, object] = {}

    def request() -> None:
        try:
            outcome["number"] = randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid).number
        except Exception as exc:  # the spec reports whatever it was
            outcome["error"] = repr(exc)

    with trial.engine.connect() as holder:
        holder.execute(select(allocation_entries.c.id).where(allocation_entries.c.participant_id.is_(None))
                       .with_for_update()).all()  # fmt: skip
        waiting = threading.Thread(target=request)
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive() and not outcome  # it waits ...
        holder.rollback()  # ... and the holder fails
    waiting.join(10)
    assert outcome == {"number": 1}
