"""The tables by arm verify only the allocation entries added or changed since their last load; a change made in the
database after it is still refused, naming the participant.

A load of the safety tables by arm (the DSMB's) checks every claimed entry against its keyed digest the first time,
then remembers them (``verified_allocations``) under a keyed checkpoint: the next load checks only the entries that
differ from their copy (the new randomizations), plus a sweep of ``SWEEP`` entries (here 2) whatever their copy
says, and sends as many statements whatever the size of the list. An arm flipped, an entry moved to another
participant, put back unclaimed or deleted after the checkpoint is refused, naming the participant; a forged
checkpoint is not trusted (the whole list is checked again). Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services import allocation_checkpoints, audit_keys
from trialwright.services.audit_keys import AllocationsAltered, AllocationsMissing
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.safety import safety_tables
from trialwright.store.randomization_tables import allocation_checkpoints as allocation_checkpoints_table
from trialwright.store.randomization_tables import allocation_entries

FLIP = "UPDATE allocation_entries SET arm = CASE WHEN arm = 'EXO' THEN 'PBO' ELSE 'EXO' END"


@pytest.fixture
def trial(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trial]:
    monkeypatch.setattr(allocation_checkpoints, "SWEEP", 2)
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=2021)
    yield t
    t.engine.dispose()


def _randomize(trial: Trial, n: int) -> list[str]:
    investigator = who(trial, Role.INVESTIGATOR)
    out = []
    for _ in range(n):
        participant = enrolled(trial)
        randomize(trial.engine, investigator, participant)
        out.append(participant)
    return out


def _sql(trial: Trial, statement: str) -> None:
    with trial.engine.begin() as conn:
        conn.execute(text(statement))


def _entry(trial: Trial, participant: str) -> int:
    with trial.engine.connect() as conn:
        return int(
            conn.execute(
                select(allocation_entries.c.id).where(allocation_entries.c.participant_id == participant)
            ).scalar_one()
        )


def _load(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """One load of the DSMB's tables by arm: (digests computed, statements sent)."""
    digests = [0]
    for module in (audit_keys, allocation_checkpoints):
        real: Callable[..., str] = module.allocation_digest

        def counted(key: bytes, entry: Any, real: Callable[..., str] = real) -> str:
            digests[0] += 1
            return real(key, entry)

        monkeypatch.setattr(module, "allocation_digest", counted)
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(trial.engine, "before_cursor_execute", count)
    try:
        tables = safety_tables(trial.engine, who(trial, Role.DSMB_MEMBER))
    finally:
        event.remove(trial.engine, "before_cursor_execute", count)
        monkeypatch.undo()
        monkeypatch.setattr(allocation_checkpoints, "SWEEP", 2)
    assert tables.grouping == "by_arm"
    return digests[0], len(sent)


def test_a_load_checks_only_the_entries_added_since_the_last_and_sends_as_many_statements(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    _randomize(trial, 3)
    first, _ = _load(trial, monkeypatch)
    assert first >= 3  # the first load checks every claimed entry
    unchanged, quiet = _load(trial, monkeypatch)
    assert unchanged <= 2  # nothing new: only the sweep
    _randomize(trial, 1)
    after_one, one = _load(trial, monkeypatch)
    _randomize(trial, 5)
    after_five, five = _load(trial, monkeypatch)
    # 9 randomized by now: a load checks the new entries and the sweep, never the whole list
    assert 1 <= after_one <= 1 + 2 and 5 <= after_five <= 5 + 2
    _randomize(trial, 1)
    again, steady = _load(trial, monkeypatch)
    assert again <= 1 + 2
    assert one == five == steady, (quiet, one, five, steady)  # statements per load whatever the list's size


@pytest.mark.parametrize("change", ["arm flipped", "moved to another participant", "put back unclaimed", "deleted"])
def test_a_change_in_the_database_after_the_checkpoint_is_refused_naming_the_participant(
    trial: Trial, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    changed, other = _randomize(trial, 2)
    spare = enrolled(trial)  # enrolled, never randomized
    _load(trial, monkeypatch)
    _load(trial, monkeypatch)  # checkpointed and remembered
    entry = _entry(trial, changed)
    statement = {
        "arm flipped": FLIP + f" WHERE id = {entry}",
        "moved to another participant": f"UPDATE allocation_entries SET participant_id = '{spare}' WHERE id = {entry}",
        "put back unclaimed": "UPDATE allocation_entries SET participant_id = NULL, randomization_number = NULL "
        f"WHERE id = {entry}",
        "deleted": f"DELETE FROM allocation_entries WHERE id = {entry}",
    }[change]
    _sql(trial, statement)
    with pytest.raises(AllocationsAltered) as refused:
        safety_tables(trial.engine, who(trial, Role.DSMB_MEMBER))
    assert changed in str(refused.value) and other not in str(refused.value)
    assert changed in refused.value.participants
    if change in ("put back unclaimed", "deleted"):
        assert isinstance(refused.value, AllocationsMissing)
    else:
        assert entry in refused.value.entry_ids


@pytest.mark.parametrize("change", ["deleted with its copy", "put back unclaimed and its copy deleted"])
def test_an_entry_gone_with_its_copy_is_still_refused_naming_the_participant(
    trial: Trial, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A review found a participant silently left out of the tables by arm when someone holding the database file
    removed both the entry and its verified copy: the trail's randomized participants are counted against the
    claimed entries on every load."""
    changed, other = _randomize(trial, 2)
    _load(trial, monkeypatch)
    _load(trial, monkeypatch)  # checkpointed and remembered
    entry = _entry(trial, changed)
    if change == "deleted with its copy":
        _sql(trial, f"DELETE FROM allocation_entries WHERE id = {entry}")
    else:
        _sql(trial, "UPDATE allocation_entries SET participant_id = NULL, randomization_number = NULL "
                    f"WHERE id = {entry}")  # fmt: skip
    _sql(trial, f"DELETE FROM verified_allocations WHERE entry_id = {entry}")
    with pytest.raises(AllocationsMissing) as refused:
        safety_tables(trial.engine, who(trial, Role.DSMB_MEMBER))
    assert tuple(refused.value.participants) == (changed,) and other not in str(refused.value)


def test_a_flipped_entry_whose_copy_was_flipped_too_is_found_by_the_sweep(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    (changed,) = _randomize(trial, 1)
    _load(trial, monkeypatch)
    entry = _entry(trial, changed)
    _sql(trial, FLIP + f" WHERE id = {entry}")
    _sql(trial, FLIP.replace("allocation_entries", "verified_allocations") + f" WHERE entry_id = {entry}")
    with pytest.raises(AllocationsAltered, match=rf": {entry}\b.*{changed}"):
        safety_tables(trial.engine, who(trial, Role.DSMB_MEMBER))


def test_a_forged_checkpoint_is_not_trusted(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint not signed with the audit key (or altered) is ignored: the whole list is checked again."""
    _randomize(trial, 4)
    _load(trial, monkeypatch)
    _sql(trial, "UPDATE allocation_checkpoints SET mac = 'forged'")
    checked, _ = _load(trial, monkeypatch)
    assert checked >= 4


def test_a_checkpoint_that_cannot_be_written_does_not_fail_the_page(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a load verified is a cache: when it cannot be kept (SQLite's writer held by a long import past its
    wait), the tables already read are shown and the next load checks the whole list again (a review found the
    page failing instead)."""
    _randomize(trial, 2)

    def busy(*_: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(allocation_checkpoints, "_keep", busy)
    tables = safety_tables(trial.engine, who(trial, Role.DSMB_MEMBER))
    assert tables.grouping == "by_arm"
    with trial.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(allocation_checkpoints_table)).scalar() == 0
