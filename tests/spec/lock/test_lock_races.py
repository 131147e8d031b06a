"""No change checked before the database lock commits after it: a save in flight when the data manager locks
the trial finishes first, and the lock waits for it; a save after the lock is refused (both databases: on
PostgreSQL through the data-lock lock, on SQLite through its single writer)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.services import lock as lock_service


def test_a_lock_waits_for_the_save_in_flight_and_refuses_the_next(
    trial: Trial, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked, go = threading.Event(), threading.Event()
    real = lock_service._frozen

    # held where the save has checked the lock (``require_unlocked``), however it read the lock's row (a single save
    # reads it with its participant, ``forms.read_ahead.look_ahead``)
    def slow_save(session: Any, *args: Any) -> Any:
        refusal = real(session, *args)
        if threading.current_thread().name == "save":  # the save has checked the lock: hold it there
            checked.set()
            go.wait(10)
        return refusal

    monkeypatch.setattr(lock_service, "_frozen", slow_save)
    coordinator, manager = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.DATA_MANAGER)
    outcome: dict[str, object] = {}

    def save() -> None:
        outcome["saved"] = svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 45})

    def lock() -> None:
        outcome["locked"] = lock_service.lock_trial(trial.engine, manager, "final analysis", password=PASSWORD)

    saving = threading.Thread(target=save, name="save")
    saving.start()
    assert checked.wait(10)
    locking = threading.Thread(target=lock, name="lock")
    locking.start()
    locking.join(1.0)
    assert locking.is_alive() and "locked" not in outcome  # the lock waits for the save in flight
    go.set()
    saving.join(10)
    locking.join(10)
    assert "saved" in outcome and "locked" in outcome
    with pytest.raises(svc.FormError, match="the database is locked"):
        svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 46})
    assert svc.get_form(trial.engine, coordinator, pid, "baseline", "labs").values["crp"].value == 45
