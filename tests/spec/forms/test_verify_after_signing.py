"""Source data verification after the investigator's signature (both databases).

A monitor often visits after the investigator has signed. The signed forms were "Not ready: already signed" for
SDV, so they could never be verified. Now:

- a signed form not yet verified is offered (casebook, bulk, one form, by field); verifying it keeps the
  investigator's signature, sets verified_at/by and is audited ``form.verified`` (signed -> signed);
- a signed and verified form is not offered ("already verified") and a second verification is refused;
- a change to a signed and verified form makes it complete, voiding the signature and the verification, each
  audited;
- the monitor's work list "forms to verify" holds signed forms not yet verified, not the verified ones.
"""

from __future__ import annotations

import pytest

from tests.spec.forms.test_casebook import READY, _three_complete_forms
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.forms import FormState
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.trial import current_protocol
from trialwright.services.worklist import WorkKind, work_page

SIGNED = '"signed"'  # audit values are stored as JSON


def _signed(trial: Trial, pid: str) -> None:
    _three_complete_forms(trial, pid)
    investigator = who(trial, Role.INVESTIGATOR)
    book = svc.casebook(trial.engine, investigator, pid)
    seals = {(f.visit_id, f.form_id): f.seal for f in book.signable}
    svc.sign_casebook(trial.engine, investigator, pid, seals, password=PASSWORD)


def _baseline(book: svc.Casebook) -> dict[str, svc.CasebookForm]:
    return {f.form_id: f for f in book.forms if f.visit_id == "baseline" and f.form_id in READY}


def test_the_monitor_verifies_signed_forms_in_bulk_and_the_signature_stands(trial: Trial, pid: str) -> None:
    _signed(trial, pid)
    monitor, investigator = who(trial, Role.MONITOR), who(trial, Role.INVESTIGATOR)
    book = svc.casebook(trial.engine, monitor, pid)
    assert {k: f.not_verifiable for k, f in _baseline(book).items()} == dict.fromkeys(READY)
    chosen = {("baseline", "vitals"): _baseline(book)["vitals"].seal,
              ("baseline", "blood_gas"): _baseline(book)["blood_gas"].seal}  # fmt: skip
    outcome = svc.verify_casebook(trial.engine, monitor, pid, chosen)
    assert outcome.excluded == ()
    assert sorted(v.form_id for v in outcome.done) == ["blood_gas", "vitals"]
    for view in outcome.done:
        assert view.state is FormState.SIGNED and view.signed_by == investigator.username
        assert view.verified_by == monitor.username and view.verified_at is not None
    entries = audit.entries(trial.engine, action_prefix="form.verified")
    assert sorted((e.form, e.old_value, e.new_value, e.actor) for e in entries) == [
        ("blood_gas", SIGNED, SIGNED, monitor.username), ("vitals", SIGNED, SIGNED, monitor.username)]  # fmt: skip
    again = _baseline(svc.casebook(trial.engine, monitor, pid))
    assert again["vitals"].not_verifiable == "already verified" and again["performance"].not_verifiable is None
    with pytest.raises(svc.FormError, match="already verified"):
        svc.verify_form(trial.engine, monitor, pid, "baseline", "vitals")
    assert len(audit.entries(trial.engine, action_prefix="form.verified")) == 2


def test_one_signed_form_and_one_by_field(trial: Trial, pid: str) -> None:
    _signed(trial, pid)
    monitor = who(trial, Role.MONITOR)
    view = svc.verify_form(trial.engine, monitor, pid, "baseline", "performance")
    assert view.state is FormState.SIGNED and view.verified_by == monitor.username
    (gas,) = [f for f in svc.casebook(trial.engine, monitor, pid).forms if (f.visit_id, f.form_id) == (
        "baseline", "blood_gas")]  # fmt: skip
    required = svc.verification_fields(current_protocol(trial.engine).protocol, "blood_gas")
    whole = svc.verify_casebook(
        trial.engine, monitor, pid, {}, fields={("baseline", "blood_gas"): (gas.seal, required)}
    )
    assert [(v.form_id, v.state, v.verified_by) for v in whole.done] == [
        ("blood_gas", FormState.SIGNED, monitor.username)]  # fmt: skip


def test_a_change_voids_both_the_signature_and_the_verification_each_audited(trial: Trial, pid: str) -> None:
    _signed(trial, pid)
    svc.verify_form(trial.engine, who(trial, Role.MONITOR), pid, "baseline", "performance")
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "performance", {"status": "2"},
                  reason="source says 2")  # fmt: skip
    view = svc.get_form(trial.engine, who(trial, Role.INVESTIGATOR), pid, "baseline", "performance")
    assert view is not None and view.state is FormState.COMPLETE
    assert view.signed_by is None and view.verified_by is None and view.verified_at is None
    voided = [
        (e.action, e.form)
        for e in audit.entries(trial.engine, action_prefix="form.")
        if e.action in ("form.signature_voided", "form.verification_voided") and e.form == "performance"
    ]
    assert sorted(voided) == [("form.signature_voided", "performance"), ("form.verification_voided", "performance")]


def test_the_monitors_work_list_holds_signed_forms_not_yet_verified(trial: Trial, pid: str) -> None:
    _signed(trial, pid)
    monitor = who(trial, Role.MONITOR)
    svc.verify_form(trial.engine, monitor, pid, "baseline", "vitals")
    page = work_page(trial.engine, monitor, WorkKind.FORMS_TO_VERIFY)
    listed = {(i.visit_id, i.form_id) for i in page.items if i.participant_id == pid}
    assert listed == {("baseline", "blood_gas"), ("baseline", "performance")}
