"""Soft locks of one site or one participant (e.g. for an interim analysis): saves, visits and form lifecycle steps
there are refused with a clear message until the data manager unlocks with a reason; safety reports never are."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.spec.forms.conftest import NOW, TODAY
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.lock import active_soft_locks, soft_lock, soft_unlock
from trialwright.services.safety import report_event

LABS = {"crp": 40}
SAE = {
    "term": "Fall", "onset": TODAY.isoformat(), "grade": 3, "serious": True,
    "seriousness_criteria": ["hospitalisation"], "causality": "unlikely", "action_taken": "not_applicable",
    "outcome": "recovering", "aware_at": NOW.isoformat(),
}  # fmt: skip


def test_a_participant_soft_lock_refuses_their_saves_and_nobody_else_s(trial: Trial, pid: str) -> None:
    manager, coordinator = who(trial, Role.DATA_MANAGER), who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", LABS)
    with pytest.raises(svc.FormError, match=r"^role: only a data manager may soft-lock"):
        soft_lock(trial.engine, coordinator, "interim analysis", participant_id=pid)
    with pytest.raises(svc.FormError, match=r"^reason: say why"):
        soft_lock(trial.engine, manager, "", participant_id=pid)
    with pytest.raises(svc.FormError, match=r"^target: name one site or one participant"):
        soft_lock(trial.engine, manager, "interim analysis", site="RAZ", participant_id=pid)
    lock = soft_lock(trial.engine, manager, "interim analysis", participant_id=pid)
    assert (lock.scope, lock.target, lock.by) == ("participant", pid, manager.username)
    refusal = rf"^participant: {pid} is soft-locked \(since .* by {manager.username}: interim analysis\)"
    with pytest.raises(svc.FormError, match=refusal):
        svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 41})
    with pytest.raises(svc.FormError, match=refusal):
        svc.record_visit(trial.engine, coordinator, pid, "infusion", TODAY)
    with pytest.raises(svc.FormError, match=refusal):
        svc.miss_visit(trial.engine, coordinator, pid, "day1", "unwell")
    with pytest.raises(svc.FormError, match=refusal):
        svc.verify_form(trial.engine, who(trial, Role.MONITOR), pid, "baseline", "labs")
    kept = svc.get_form(trial.engine, coordinator, pid, "baseline", "labs")
    assert kept is not None and kept.values["crp"].value == 40  # nothing changed
    other = enrolled(trial)  # the same site, not soft-locked
    assert svc.record_visit(trial.engine, coordinator, other, "infusion", TODAY) == "infusion"
    assert report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, SAE).ae_number == "AE-0001"
    with pytest.raises(svc.FormError, match=rf"^participant: {pid} is already soft-locked"):
        soft_lock(trial.engine, manager, "again", participant_id=pid)
    assert [(s.scope, s.target) for s in active_soft_locks(trial.engine)] == [("participant", pid)]
    soft_unlock(trial.engine, manager, "interim analysis done", participant_id=pid)
    assert active_soft_locks(trial.engine) == ()
    assert svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 41}).values["crp"].value == 41
    locked, unlocked = (
        audit.entries(trial.engine, action_prefix=a) for a in ("lock.soft_locked", "lock.soft_unlocked")
    )
    assert [(e.participant, e.site, e.reason) for e in locked] == [(pid, "RAZ", "interim analysis")]
    assert [(e.participant, e.reason) for e in unlocked] == [(pid, "interim analysis done")]


def test_a_site_soft_lock_refuses_every_participant_there(trial: Trial, pid: str) -> None:
    manager, coordinator = who(trial, Role.DATA_MANAGER), who(trial, Role.STUDY_COORDINATOR)
    with pytest.raises(svc.FormError, match=r"^site: there is no site XYZ"):
        soft_lock(trial.engine, manager, "interim", site="XYZ")
    soft_lock(trial.engine, manager, "interim analysis of RAZ", site="RAZ")
    with pytest.raises(svc.FormError, match=r"^site: RAZ is soft-locked .*interim analysis of RAZ\); nothing there"):
        svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", LABS)
    assert svc.get_form(trial.engine, coordinator, pid, "baseline", "labs") is None  # nothing saved
    soft_unlock(trial.engine, manager, "interim analysis done", site="RAZ")
    with pytest.raises(svc.FormError, match=r"^site: RAZ is not soft-locked"):
        soft_unlock(trial.engine, manager, "again", site="RAZ")
    assert svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", LABS, visit_date=TODAY - dt.timedelta(1))
