"""Two people saving the same form at the same moment: each save reads the form as the other left it, so no
value typed is lost and the audit trail chains each change from the value it replaced (no lost update), on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.forms import save as save_module


def test_concurrent_saves_of_one_form_keep_both_changes(
    trial: Trial, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 40})
    # Each save pauses between reading the form and writing it, so that without the visit's lock both would
    # read the form before either wrote, and the second would write back the first's field as it was.
    kit_check = save_module._kit_check

    def slow(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.4)
        kit_check(*args, **kwargs)

    monkeypatch.setattr(save_module, "_kit_check", slow)
    errors: list[BaseException] = []

    def save(values: dict[str, object]) -> None:
        try:
            svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", values)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(v,)) for v in ({"crp": 55}, {"il6": 12})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    view = svc.get_form(trial.engine, coordinator, pid, "baseline", "labs")
    assert view is not None
    assert (view.values["crp"].value, view.values["il6"].value, view.version) == (55, 12, 3)
    # Every entry's old value is what the field held before it: the trail explains the form as stored.
    newest_first = audit.entries(trial.engine, action_prefix="form.value")
    trail = [(e.field, e.old_value, e.new_value) for e in reversed(newest_first) if e.form == "labs"]
    crp = [(json.loads(o)["value"] if o else None, json.loads(n)["value"]) for f, o, n in trail if f == "crp"]
    assert crp == [(None, 40), (40, 55)]
    assert [json.loads(n)["value"] for f, _, n in trail if f == "il6"] == [12]
