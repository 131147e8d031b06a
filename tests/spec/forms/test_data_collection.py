"""Entering, completing, verifying, signing and locking forms through the service, with queries and the
audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.spec.forms.conftest import TODAY
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.forms import FormState, FormValueError
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.screening import withdraw

GAS = {"sampled_at": None, "pao2": 80, "fio2": 0.5, "support_mode": "conventional_oxygen"}


def gas(**changes: object) -> dict[str, object]:
    return {**GAS, "sampled_at": f"{TODAY.isoformat()}T00:00+03:30", **changes}


@pytest.mark.covers("REG-1")
def test_values_are_saved_with_an_audit_entry_per_field(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    view = svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", gas())
    assert view.state is FormState.DRAFT and view.values["pao2"].value == 80
    assert view.values["pf_ratio"].value == 160.0 and view.values["pf_ratio"].status == "derived"
    entries = {e.field: e for e in audit.entries(trial.engine, action_prefix="form.value_entered")}
    assert set(entries) == {"sampled_at", "pao2", "fio2", "support_mode"}
    pao2 = entries["pao2"]
    assert (pao2.actor, pao2.role, pao2.site, pao2.participant, pao2.form) == (
        coordinator.username,
        "study_coordinator",
        "RAZ",
        pid,
        "blood_gas",
    )
    assert pao2.old_value is None and json.loads(pao2.new_value or "") == {
        "value": 80,
        "entered": 80,
        "unit": "mmHg",
        "status": "value",
    }
    (derived,) = audit.entries(trial.engine, action_prefix="form.value_derived")
    assert derived.field == "pf_ratio" and derived.actor == "trialwright"


def test_a_derived_value_follows_the_form_it_reads(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", gas())
    view = svc.get_form(trial.engine, coordinator, pid, "baseline", "blood_gas")
    assert view is not None and "sf_ratio" not in view.values  # vitals not entered yet
    svc.save_form(trial.engine, coordinator, pid, "baseline", "vitals", {"spo2": 90})
    view = svc.get_form(trial.engine, coordinator, pid, "baseline", "blood_gas")
    assert view is not None and view.values["sf_ratio"].value == 180.0  # 90 / 0.5


@pytest.mark.covers("REG-1", "REG-2", "REG-9")
def test_the_lifecycle_with_reasons_signature_and_lock(trial: Trial, pid: str) -> None:
    coordinator, monitor = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.MONITOR)
    investigator, manager = who(trial, Role.INVESTIGATOR), who(trial, Role.DATA_MANAGER)
    e = trial.engine
    svc.save_form(e, coordinator, pid, "baseline", "blood_gas", {"pao2": 80})
    with pytest.raises(svc.FormError, match=r"^sampled_at: required; enter a value or record it as not done"):
        svc.complete_form(e, coordinator, pid, "baseline", "blood_gas")
    svc.save_form(e, coordinator, pid, "baseline", "blood_gas", gas())
    assert svc.complete_form(e, coordinator, pid, "baseline", "blood_gas").state is FormState.COMPLETE
    # the refusal names the field changed
    refusal = r"reason: the form is complete; a change needs a reason for change \(changed: blood_gas.pao2\)"
    with pytest.raises(svc.FormError, match=refusal):
        svc.save_form(e, coordinator, pid, "baseline", "blood_gas", {"pao2": 85})
    kept = svc.get_form(e, coordinator, pid, "baseline", "blood_gas")
    assert kept is not None and kept.values["pao2"].value == 80  # nothing lost
    svc.save_form(e, coordinator, pid, "baseline", "blood_gas", {"pao2": 85}, reason="transcription error")
    (change,) = audit.entries(e, action_prefix="form.value_changed")
    assert change.reason == "transcription error" and json.loads(change.old_value or "")["value"] == 80
    with pytest.raises(svc.FormError, match="only a monitor may"):
        svc.verify_form(e, coordinator, pid, "baseline", "blood_gas")
    assert svc.verify_form(e, monitor, pid, "baseline", "blood_gas").verified_by == monitor.username
    with pytest.raises(svc.FormError, match="password"):
        svc.sign_form(e, investigator, pid, "baseline", "blood_gas", password="wrong")
    signed = svc.sign_form(e, investigator, pid, "baseline", "blood_gas", password=PASSWORD)
    assert signed.state is FormState.SIGNED and signed.signed_by == investigator.username
    assert signed.signature_meaning and "legally binding" in signed.signature_meaning
    (sign_entry,) = audit.entries(e, action_prefix="form.signed")
    assert "legally binding" in (sign_entry.detail or "")
    voided = svc.save_form(e, coordinator, pid, "baseline", "blood_gas", {"fio2": 0.6}, reason="wrong FiO2")
    assert voided.state is FormState.COMPLETE and voided.signed_by is None and voided.verified_by is None
    assert audit.entries(e, action_prefix="form.signature_voided")
    svc.sign_form(e, investigator, pid, "baseline", "blood_gas", password=PASSWORD)
    assert svc.lock_form(e, manager, pid, "baseline", "blood_gas").state is FormState.LOCKED
    with pytest.raises(svc.FormError, match="locked; the data manager unlocks it"):
        svc.save_form(e, coordinator, pid, "baseline", "blood_gas", {"pao2": 90}, reason="late correction")
    with pytest.raises(svc.FormError, match="reason: say why"):
        svc.unlock_form(e, manager, pid, "baseline", "blood_gas", reason="")
    back = svc.unlock_form(e, manager, pid, "baseline", "blood_gas", reason="correction after query")
    assert back.state is FormState.SIGNED


@pytest.mark.covers("REG-12")
def test_the_trial_lock_stops_every_change(trial: Trial, pid: str) -> None:
    coordinator, manager = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.DATA_MANAGER)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", gas())
    with pytest.raises(svc.FormError, match="only a data manager may"):
        svc.lock_trial(trial.engine, coordinator, "final analysis")
    # The baseline visit is held today: its blood gas a draft, its six other forms not started.
    with pytest.raises(svc.FormError, match=r"^trial: 7 blockers \(7 forms not ready\) block the lock"):
        svc.lock_trial(trial.engine, manager, "final analysis")
    assert svc.lock_trial(trial.engine, manager, "final analysis", password=PASSWORD).locked
    with pytest.raises(svc.FormError, match=r"^trial: the database is locked"):
        svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", {"pao2": 81})
    with pytest.raises(svc.FormError, match=r"^trial: the database is locked"):
        svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "check pao2")
    with pytest.raises(svc.FormError, match=r"^trial: the database is locked"):
        svc.record_visit(trial.engine, coordinator, pid, None, TODAY, label="extra")
    assert not svc.unlock_trial(trial.engine, manager, "database reopened for a late SAE").locked
    assert [e.action for e in audit.entries(trial.engine, action_prefix="trial.")][:2] == [
        "trial.unlocked",
        "trial.locked",
    ]


def test_bad_input_names_the_field_and_loses_nothing(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 40})
    with pytest.raises(FormValueError) as caught:
        svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 900, "il6": "high"})
    assert caught.value.problems == (
        "crp: 900 mg/L is outside the accepted range 0-600 mg/L",
        "il6: must be a number, not 'high'",
    )
    view = svc.get_form(trial.engine, coordinator, pid, "baseline", "labs")
    assert view is not None and view.values["crp"].value == 40 and "il6" not in view.values
    with pytest.raises(svc.FormError, match="form: labs is not collected at day1"):
        svc.save_form(trial.engine, coordinator, pid, "day1", "labs", {"crp": 40})
    withdraw(
        trial.engine,
        coordinator,
        pid,
        scope="follow_up",
        cause="lost_to_follow_up",
        reason="moved away",
        withdrawn_on=TODAY,
    )
    with pytest.raises(svc.FormError, match="withdrew from follow-up"):
        svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 41})


def test_queries_from_soft_limits_checks_and_people(trial: Trial, pid: str) -> None:
    coordinator, monitor = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.MONITOR)
    e = trial.engine
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": 450, "cd3_pct": 60, "cd4_pct": 40, "cd8_pct": 26})
    (soft, *checks) = sorted(svc.list_queries(e, coordinator, participant_id=pid),
                             key=lambda q: (q.origin != "soft_limit", q.field or ""))  # fmt: skip
    assert (soft.origin, soft.field, soft.status) == ("soft_limit", "crp", "open")
    # The query names the field by its label, the value with its unit and the range (issue 24: not "crp").
    assert soft.text == (
        "C-reactive protein 450 mg/L is outside the expected range 0-400 mg/L; please confirm or correct"
    )
    # 40 + 26 > 60 + 5: a query on each field the check reads, saying the protocol's message and the rule in words
    assert [(q.origin, q.check_id, q.field) for q in checks] == [
        ("data_check", "cd4_cd8_within_cd3", name) for name in ("cd3_pct", "cd4_pct", "cd8_pct")]  # fmt: skip
    assert {q.text for q in checks} == {
        "CD4% + CD8% is more than 5 points above CD3%. (expected: CD4+ (% of lymphocytes) + CD8+ (% of lymphocytes) "
        "is at most CD3+ (% of lymphocytes) + 5)"
    }
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": 350, "cd8_pct": 25}, reason="lab re-run")
    assert {q.status for q in svc.list_queries(e, coordinator, participant_id=pid)} == {"closed"}  # corrected
    manual = svc.raise_query(
        e, monitor, pid, "Source shows CRP 35.0", visit_id="baseline", form_id="labs", field_id="crp"
    )
    with pytest.raises(svc.FormError, match="only a monitor or a data manager may raise queries"):
        svc.raise_query(e, coordinator, pid, "x")
    answered = svc.answer_query(e, coordinator, manual.id, "Corrected to 35.0")
    assert answered.status == "answered" and answered.answered_by == coordinator.username
    with pytest.raises(svc.FormError, match="whoever raised a query closes it"):
        svc.close_query(e, coordinator, manual.id)
    assert svc.close_query(e, monitor, manual.id, "agreed").status == "closed"
    assert [q.status for q in svc.list_queries(e, monitor, status="closed")] == ["closed"] * 5


def test_a_query_names_a_visit_form_and_field_the_protocol_declares_or_is_refused_naming_what_is_not(
    trial: Trial, pid: str
) -> None:
    """A query on a field that is not there would sit on every work list and block the lock, answerable by no one:
    the visit, the form and the field are checked against the protocol before anything is stored."""
    coordinator, monitor, e = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.MONITOR), trial.engine
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": 40})
    refused = {
        "field: form labs has no field 'crpx' (fields: ": dict(visit_id="baseline", form_id="labs", field_id="crpx"),
        "form: 'labz' is not a form of the protocol": dict(visit_id="baseline", form_id="labz"),
        "visit: 'week9' is not a visit of the protocol (visits: baseline,": dict(visit_id="week9", form_id="labs"),
        "form: a query on field 'crp' names its form": dict(field_id="crp"),
    }
    for said, target in refused.items():
        with pytest.raises(svc.FormError) as caught:
            svc.raise_query(e, monitor, pid, "Please check", **target)  # type: ignore[arg-type]
        assert str(caught.value).startswith(said), str(caught.value)
    assert svc.list_queries(e, monitor, participant_id=pid) == []  # nothing stored
    on_crp = svc.raise_query(e, monitor, pid, "Source?", visit_id="baseline", form_id="labs", field_id="crp")
    assert (on_crp.visit_id, on_crp.form_id, on_crp.field) == ("baseline", "labs", "crp")


def test_a_sample_outside_its_visit_window_raises_a_query(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    e = trial.engine
    svc.record_visit(e, coordinator, pid, "infusion", TODAY - dt.timedelta(days=7))
    outside = f"{(TODAY - dt.timedelta(days=3)).isoformat()}T09:00+03:30"  # day 4, not within day 6 to 8
    svc.save_form(e, coordinator, pid, "day7", "labs", {"sampled_at": outside}, visit_date=TODAY)
    (query,) = svc.list_queries(e, coordinator, participant_id=pid)
    assert query.check_id == "labs_in_window" and query.visit_id == "day7" and query.form_id == "labs"
    # The query says the value and the window: day 6 to day 8 after the infusion (held 7 days ago).
    earliest, latest = TODAY - dt.timedelta(days=7 - 6), TODAY - dt.timedelta(days=7 - 8)
    assert query.text == (
        "The laboratory sample was taken outside the visit window. (Time of sampling "
        f"{(TODAY - dt.timedelta(days=3)).isoformat()} is outside the visit window {earliest.isoformat()} to "
        f"{latest.isoformat()})"
    )
    svc.save_form(e, coordinator, pid, "day7", "labs", {"sampled_at": f"{TODAY.isoformat()}T00:00+03:30"})
    assert [q.status for q in svc.list_queries(e, coordinator, participant_id=pid)] == ["closed"]
    schedule = svc.participant_schedule(e, coordinator, pid)
    status = {v.visit_id: v.status.value for v in schedule.visits}
    assert status["infusion"] == "done" and status["day7"] == "done" and status["day3"] == "overdue"
    assert schedule.forms["day7"]["labs"] is FormState.DRAFT and schedule.forms["day7"]["vitals"] is None


def test_a_bulk_import_saves_all_or_nothing_as_asked(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    good = {"participant": pid, "visit": "baseline", "form": "labs", "values": {"crp": 12}}
    bad = {"participant": pid, "visit": "baseline", "form": "labs", "values": {"il6": -1}}
    unknown = {"participant": "RAZ-999", "visit": "baseline", "form": "labs", "values": {"crp": 1}}
    report = svc.import_forms(trial.engine, coordinator, [good, bad, unknown])
    assert report.saved == 0 and report.rejected == (
        (2, ("il6: -1 pg/mL is outside the accepted range 0-200000 pg/mL",)),
        (3, ("no such participant (participant RAZ-999, visit baseline, form labs)",)),
    )
    assert svc.get_form(trial.engine, coordinator, pid, "baseline", "labs") is None
    partial = svc.import_forms(trial.engine, coordinator, [good, bad], all_or_nothing=False)
    assert partial.saved == 1 and [i for i, _ in partial.rejected] == [2]
    view = svc.get_form(trial.engine, coordinator, pid, "baseline", "labs")
    assert view is not None and view.values["crp"].value == 12


def test_a_value_sent_back_unchanged_keeps_its_unit_and_what_was_typed(trial: Trial, pid: str) -> None:
    """The form page sends every field back, in the field's unit: CRP typed 45 mg/dL (stored 450 mg/L) and sent
    back as 450 while another field changes is no change; it keeps the unit and text it was typed in, and the only
    audit entry is the other field's."""
    coordinator, e = who(trial, Role.STUDY_COORDINATOR), trial.engine
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": {"value": "45", "unit": "mg/dL"}})
    svc.save_form(e, coordinator, pid, "baseline", "labs", {"crp": 450, "il6": 2})
    view = svc.get_form(e, coordinator, pid, "baseline", "labs")
    assert view is not None
    crp = view.values["crp"]
    assert (crp.value, crp.unit, crp.entered) == (450, "mg/dL", "45")
    entered = [x.field for x in audit.entries(e, participant=pid, action_prefix="form.value_", limit=100)]
    assert sorted(entered) == ["crp", "il6"]  # crp once (typed), il6 once
