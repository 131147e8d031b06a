"""A refused save does not take the data lock with it: a batch saves each form (a bulk import each row) in a
savepoint, and a savepoint rolled back on PostgreSQL releases an advisory lock taken inside it. The data lock is
held in the batch's own transaction, before its first savepoint, so every later save of the batch still holds it
and no trial or soft lock can commit between a refused save and the next; a check made after the lock was lost
takes it again and reads the locks again. SQLite holds its single writer lock for the whole transaction (a
savepoint never releases it), so there nothing can commit in between either."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.spec.forms.test_bulk_import import DAY, STAMP
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.services import lock as lock_service
from trialwright.services.bulk_reads import reading_once
from trialwright.services.errors import FormError
from trialwright.services.forms import save as save_module
from trialwright.store.engine import session_scope


def nothing_else_can_commit(trial: Trial, session: Session) -> bool:
    """Whether ``session``'s transaction holds what keeps a trial or soft lock from committing now: on PostgreSQL the
    shared data lock (an advisory lock of this very connection, in ``pg_locks``), on SQLite the writer lock (another
    connection cannot begin writing)."""
    if session.get_bind().dialect.name == "postgresql":
        held = session.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' "
                                    "AND granted AND pid = pg_backend_pid()")).scalar_one()  # fmt: skip
        return int(held) >= 1
    other = sqlite3.connect(str(trial.engine.url.database), timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return True
    else:
        other.rollback()
        return False
    finally:
        other.close()


def watching(trial: Trial, real: Callable[..., Any], seen: list[bool]) -> Callable[..., Any]:
    """``real`` (a save, given the session first), noting after each save that was not refused whether nothing
    else can commit now."""

    def watched(session: Session, *args: Any, **kwargs: Any) -> Any:
        out = real(session, *args, **kwargs)
        seen.append(nothing_else_can_commit(trial, session))
        return out

    return watched


def test_a_batch_whose_first_save_is_refused_still_holds_the_data_lock_for_the_next(
    trial: Trial, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(save_module, "_save_and_view", watching(trial, save_module._save_and_view, seen))
    out = svc.save_visit_forms(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", [
        svc.VisitFormSave("labs", {"sampled_at": STAMP, "crp": 900}),  # refused after the lock check
        svc.VisitFormSave("labs", {"sampled_at": STAMP, "crp": 450}),
        svc.VisitFormSave("labs", {"crp": 120}),
    ], visit_date=DAY)  # fmt: skip
    assert isinstance(out[0], ValueError) and "outside the accepted range" in str(out[0])
    assert [type(each).__name__ for each in out[1:]] == ["FormView", "FormView"]
    assert seen == [True, True]


def test_a_form_import_whose_first_row_is_refused_still_holds_the_data_lock_for_the_next(
    trial: Trial, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(save_module, "_save", watching(trial, save_module._save, seen))
    row = {"participant": pid, "visit": "baseline", "form": "labs", "visit_date": DAY.isoformat()}
    report = svc.import_forms(trial.engine, who(trial, Role.STUDY_COORDINATOR), [
        {**row, "values": {"sampled_at": STAMP, "crp": 900}},  # refused after the lock check
        {**row, "values": {"sampled_at": STAMP, "crp": 450}},
        {**row, "values": {"crp": 120}},
    ], all_or_nothing=False)  # fmt: skip
    assert report.saved == 2 and [index for index, _ in report.rejected] == [1]
    assert seen == [True, True]


def test_a_check_after_a_rolled_back_savepoint_takes_the_lock_again_and_reads_the_locks_again(
    trial: Trial, pid: str
) -> None:
    """Whatever the caller: a lock taken in a savepoint that was rolled back is taken again by the next check, and
    the lock rows read before are read again (on PostgreSQL a lock may have committed while it was not held)."""
    manager = who(trial, Role.DATA_MANAGER)
    with session_scope(trial.engine) as session, reading_once(session):
        nested = session.begin_nested()
        lock_service.require_unlocked(session, pid)  # takes the data lock inside the savepoint; the trial is open
        nested.rollback()
        if session.get_bind().dialect.name == "postgresql":
            assert not nothing_else_can_commit(trial, session)  # PostgreSQL released it with the savepoint
            # So the data manager's lock commits now (from another connection, without waiting for this one)...
            locking = threading.Thread(target=lock_service.lock_trial, args=(trial.engine, manager, "final"),
                                       kwargs={"password": PASSWORD})  # fmt: skip
            locking.start()
            locking.join(20)
            assert not locking.is_alive() and lock_service.lock_state(trial.engine).locked
            # ...and this transaction's next check sees it: taken again, not answered from before.
            with pytest.raises(FormError, match="the database is locked"):
                lock_service.require_unlocked(session, pid)
            assert nothing_else_can_commit(trial, session)
        else:  # SQLite: the savepoint's rollback kept the writer lock; nothing could commit in between
            assert nothing_else_can_commit(trial, session)
            lock_service.require_unlocked(session, pid)


def test_the_simulators_visit_whose_first_save_is_refused_still_holds_the_data_lock(
    trial: Trial, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trialwright.services.forms import simulated

    seen: list[bool] = []
    # the simulator saves through the one savepoint loop ``save_visit_forms`` uses (``save.saved_each``)
    monkeypatch.setattr(save_module, "_save_and_view", watching(trial, save_module._save_and_view, seen))
    outcome = simulated.save_and_verify_visit(
        trial.engine, who(trial, Role.STUDY_COORDINATOR), who(trial, Role.MONITOR), pid, "baseline",
        [(svc.VisitFormSave("labs", {"sampled_at": STAMP, "crp": 900}), False),  # refused after the lock check
         (svc.VisitFormSave("labs", {"sampled_at": STAMP, "crp": 450}), False)], visit_date=DAY)  # fmt: skip
    assert isinstance(outcome.saves[0], ValueError) and type(outcome.saves[1]).__name__ == "FormView"
    assert seen == [True]
