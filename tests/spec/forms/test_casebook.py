"""A participant's casebook: the investigator signs every ready form with one password entry, the monitor
verifies forms in bulk; a form changed after the review is refused with the reason, and forms not ready are
listed with why. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.spec.forms.conftest import TODAY
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.forms import FormState
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc

AT = f"{TODAY.isoformat()}T00:00+03:30"
READY = {
    "vitals": {"assessed_at": AT, "resp_rate": 26, "spo2": 90, "on_oxygen": True, "systolic_bp": 105, "pulse": 115,
               "consciousness": "alert", "temperature": 38.5, "fio2": 0.5},
    "blood_gas": {"sampled_at": AT, "pao2": 80, "fio2": 0.5, "support_mode": "conventional_oxygen"},
    "performance": {"assessed_on": TODAY.isoformat(), "status": "3"},
}  # fmt: skip


def _three_complete_forms(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    for form_id, values in READY.items():
        svc.save_form(trial.engine, coordinator, pid, "baseline", form_id, values)
        svc.complete_form(trial.engine, coordinator, pid, "baseline", form_id)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {})  # a draft


def _seals(book: svc.Casebook) -> dict[tuple[str, str], str]:
    return {(f.visit_id, f.form_id): f.seal for f in book.signable}


def test_the_casebook_lists_every_form_in_order_with_what_it_still_needs(trial: Trial, pid: str) -> None:
    _three_complete_forms(trial, pid)
    book = svc.casebook(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    protocol_forms = [(v.id, f) for v in trial_protocol_visits(trial) for f in v.forms]
    assert [(f.visit_id, f.form_id) for f in book.forms] == protocol_forms
    baseline = {f.form_id: f for f in book.forms if f.visit_id == "baseline"}
    assert {k for k, f in baseline.items() if f.not_signable is None} == set(READY)
    assert baseline["labs"].not_signable == "not complete"
    assert baseline["demographics"].not_signable == "not started" and baseline["demographics"].view is None
    assert baseline["vitals"].view is not None and baseline["vitals"].view.values["pulse"].value == 115


def trial_protocol_visits(trial: Trial):  # type: ignore[no-untyped-def]
    from trialwright.services.trial import current_protocol

    return current_protocol(trial.engine).protocol.visits


@pytest.mark.covers("REG-9")
def test_one_password_entry_signs_every_ready_form_with_an_audit_entry_each(trial: Trial, pid: str) -> None:
    _three_complete_forms(trial, pid)
    investigator = who(trial, Role.INVESTIGATOR)
    svc.verify_form(trial.engine, who(trial, Role.MONITOR), pid, "baseline", "blood_gas")
    book = svc.casebook(trial.engine, investigator, pid)
    with pytest.raises(svc.FormError, match="password"):
        svc.sign_casebook(trial.engine, investigator, pid, _seals(book), password="wrong")
    assert not audit.entries(trial.engine, action_prefix="form.signed")  # nothing signed
    outcome = svc.sign_casebook(trial.engine, investigator, pid, _seals(book), password=PASSWORD)
    assert sorted(v.form_id for v in outcome.done) == sorted(READY) and outcome.excluded == ()
    assert all(v.state is FormState.SIGNED and v.signed_by == investigator.username for v in outcome.done)
    assert all(v.signature_meaning and "legally binding" in v.signature_meaning for v in outcome.done)
    entries = audit.entries(trial.engine, action_prefix="form.signed")
    assert sorted(e.form or "" for e in entries) == sorted(READY)
    assert all(e.actor == investigator.username and "legally binding" in (e.detail or "") for e in entries)
    again = svc.casebook(trial.engine, investigator, pid)
    assert {f.form_id: f.not_signable for f in again.forms if f.visit_id == "baseline" and f.form_id in READY} == (
        dict.fromkeys(READY, "already signed")
    )


def test_a_form_changed_after_the_review_is_not_signed_and_says_why(trial: Trial, pid: str) -> None:
    _three_complete_forms(trial, pid)
    investigator = who(trial, Role.INVESTIGATOR)
    seals = _seals(svc.casebook(trial.engine, investigator, pid))
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "vitals", {"pulse": 100},
                  reason="re-counted")  # fmt: skip
    outcome = svc.sign_casebook(trial.engine, investigator, pid, seals, password=PASSWORD)
    assert sorted(v.form_id for v in outcome.done) == ["blood_gas", "performance"]
    assert outcome.excluded == (("baseline", "vitals", "changed since you reviewed it; review the casebook again"),)
    vitals = svc.get_form(trial.engine, investigator, pid, "baseline", "vitals")
    assert vitals is not None and vitals.state is FormState.COMPLETE and vitals.signed_by is None
    assert sorted(e.form or "" for e in audit.entries(trial.engine, action_prefix="form.signed")) == [
        "blood_gas", "performance"]  # fmt: skip


def test_forms_not_ready_are_listed_with_why_and_left_unsigned(trial: Trial, pid: str) -> None:
    _three_complete_forms(trial, pid)
    investigator = who(trial, Role.INVESTIGATOR)
    before = svc.casebook(trial.engine, investigator, pid)
    svc.raise_query(
        trial.engine,
        who(trial, Role.MONITOR),
        pid,
        "source says 2",
        visit_id="baseline",
        form_id="performance",
        field_id="status",
    )
    after = svc.casebook(trial.engine, investigator, pid)
    (performance,) = [f for f in after.forms if (f.visit_id, f.form_id) == ("baseline", "performance")]
    assert performance.not_signable == "open queries"
    assert any(q.form_id == "performance" and q.status == "open" for q in after.queries)
    labs = {(f.visit_id, f.form_id): f.seal for f in before.forms if f.form_id == "labs" and f.visit_id == "baseline"}
    outcome = svc.sign_casebook(trial.engine, investigator, pid, {**_seals(before), **labs}, password=PASSWORD)
    assert sorted(v.form_id for v in outcome.done) == ["blood_gas", "vitals"]
    assert sorted(outcome.excluded) == [
        ("baseline", "labs", "not complete"),
        ("baseline", "performance", "open queries"),
    ]


def test_the_monitor_verifies_chosen_forms_in_one_action(trial: Trial, pid: str) -> None:
    _three_complete_forms(trial, pid)
    monitor = who(trial, Role.MONITOR)
    book = svc.casebook(trial.engine, monitor, pid)
    chosen = {(f.visit_id, f.form_id): f.seal for f in book.verifiable}
    assert set(chosen) == {("baseline", f) for f in READY}
    with pytest.raises(svc.FormError, match="only a monitor may"):
        svc.verify_casebook(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, chosen)
    svc.sign_form(trial.engine, who(trial, Role.INVESTIGATOR), pid, "baseline", "vitals", password=PASSWORD)
    outcome = svc.verify_casebook(trial.engine, monitor, pid, chosen)
    assert sorted(v.form_id for v in outcome.done) == ["blood_gas", "performance"]
    assert all(v.state is FormState.VERIFIED and v.verified_by == monitor.username for v in outcome.done)
    assert outcome.excluded == (("baseline", "vitals", "changed since you reviewed it; review the casebook again"),)
    assert sorted(e.form or "" for e in audit.entries(trial.engine, action_prefix="form.verified")) == [
        "blood_gas", "performance"]  # fmt: skip


def test_a_change_that_moves_a_derived_value_on_another_form_changes_that_form_too(trial: Trial, pid: str) -> None:
    """The PRIEST score on the vital signs reads the performance status: the signature covers it as shown."""
    _three_complete_forms(trial, pid)
    investigator = who(trial, Role.INVESTIGATOR)
    seals = _seals(svc.casebook(trial.engine, investigator, pid))
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "performance", {"status": "2"},
                  reason="source says 2")  # fmt: skip
    outcome = svc.sign_casebook(trial.engine, investigator, pid, seals, password=PASSWORD)
    assert [v.form_id for v in outcome.done] == ["blood_gas"]
    assert sorted(f for _, f, _ in outcome.excluded) == ["performance", "vitals"]


def test_field_verification_is_audited_and_the_form_is_verified_when_every_required_field_is(
    trial: Trial, pid: str
) -> None:
    _three_complete_forms(trial, pid)
    monitor = who(trial, Role.MONITOR)
    book = svc.casebook(trial.engine, monitor, pid)
    (gas,) = [f for f in book.forms if (f.visit_id, f.form_id) == ("baseline", "blood_gas")]
    required = svc.verification_fields(trial_protocol(trial), "blood_gas")
    # Independently: the blood gas form's required fields that are entered, not derived.
    assert set(required) == {f.id for f in trial_protocol(trial).form("blood_gas").fields
                             if f.required and f.derived is None}  # fmt: skip
    assert len(required) >= 2
    first, rest = required[:1], required[1:]
    partly = svc.verify_casebook(trial.engine, monitor, pid, {}, fields={("baseline", "blood_gas"): (gas.seal, first)})
    assert partly.fields == tuple(("baseline", "blood_gas", f) for f in first) and partly.done == ()
    (entry,) = audit.entries(trial.engine, action_prefix="form.field_verified")
    assert (entry.actor, entry.form, entry.field) == (monitor.username, "blood_gas", first[0])
    again = svc.casebook(trial.engine, monitor, pid)
    (gas,) = [f for f in again.forms if (f.visit_id, f.form_id) == ("baseline", "blood_gas")]
    assert gas.verified_fields == frozenset(first) and gas.view is not None and gas.view.state is FormState.COMPLETE
    whole = svc.verify_casebook(trial.engine, monitor, pid, {}, fields={("baseline", "blood_gas"): (gas.seal, rest)})
    assert [(v.form_id, v.state) for v in whole.done] == [("blood_gas", FormState.VERIFIED)]
    assert len(audit.entries(trial.engine, action_prefix="form.field_verified")) == len(required)
    assert [e.form for e in audit.entries(trial.engine, action_prefix="form.verified")] == ["blood_gas"]


def test_a_field_verification_stands_only_while_the_field_holds_the_value_verified(trial: Trial, pid: str) -> None:
    _three_complete_forms(trial, pid)
    monitor = who(trial, Role.MONITOR)
    (perf,) = [f for f in svc.casebook(trial.engine, monitor, pid).forms
               if (f.visit_id, f.form_id) == ("baseline", "performance")]  # fmt: skip
    svc.verify_casebook(trial.engine, monitor, pid, {}, fields={("baseline", "performance"): (perf.seal, ["status"])})
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "performance", {"status": "2"},
                  reason="source says 2")  # fmt: skip
    (perf,) = [f for f in svc.casebook(trial.engine, monitor, pid).forms
               if (f.visit_id, f.form_id) == ("baseline", "performance")]  # fmt: skip
    assert "status" not in perf.verified_fields
    stale = svc.verify_casebook(
        trial.engine, monitor, pid, {}, fields={("baseline", "performance"): ("old", ["status"])}
    )
    assert stale.fields == () and stale.excluded == (
        ("baseline", "performance", "changed since you reviewed it; review the casebook again"),
    )


def trial_protocol(trial: Trial):  # type: ignore[no-untyped-def]
    from trialwright.services.trial import current_protocol

    return current_protocol(trial.engine).protocol


def test_the_casebook_through_the_api(trial: Trial, pid: str) -> None:
    from fastapi.testclient import TestClient

    from tests.trialfixtures import username
    from trialwright.services.users import issue_token
    from trialwright.settings import Settings
    from trialwright.web.app import create_app

    def bearer(role: Role) -> dict[str, str]:
        token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
        return {"Authorization": f"Bearer {token}"}

    _three_complete_forms(trial, pid)
    url = f"/api/v1/participants/{pid}/casebook"
    inv, monitor = bearer(Role.INVESTIGATOR), bearer(Role.MONITOR)
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        book = api.get(url, headers=monitor).json()
        ready = [f for f in book["forms"] if f["not_verifiable"] is None]
        assert sorted(f["form_id"] for f in ready) == sorted(READY)
        reviewed = [{"visit_id": f["visit_id"], "form_id": f["form_id"], "seal": f["seal"]} for f in ready]
        gas = next(r for r in reviewed if r["form_id"] == "blood_gas")
        verified = api.post(f"{url}/verify", headers=monitor, json={"forms": [gas]})
        assert [f["state"] for f in verified.json()["done"]] == ["verified"]
        assert api.post(f"{url}/verify", headers=inv, json={"forms": [gas]}).status_code == 403
        # The verification changed the blood gas form's state: the investigator reads the casebook as it is now.
        book = api.get(url, headers=inv).json()
        reviewed = [{"visit_id": f["visit_id"], "form_id": f["form_id"], "seal": f["seal"]}
                    for f in book["forms"] if f["not_signable"] is None]  # fmt: skip
        assert sorted(r["form_id"] for r in reviewed) == sorted(READY)
        stale = [{**r, "seal": "old"} if r["form_id"] == "performance" else r for r in reviewed]
        signed = api.post(f"{url}/sign", headers=inv, json={"forms": stale, "password": PASSWORD})
        assert signed.status_code == 200
        assert sorted(f["form_id"] for f in signed.json()["done"]) == ["blood_gas", "vitals"]
        changed = "changed since you reviewed it; review the casebook again"
        assert signed.json()["excluded"] == [{"visit_id": "baseline", "form_id": "performance", "reason": changed}]
        wrong = api.post(f"{url}/sign", headers=inv, json={"forms": reviewed, "password": "nope"})
        assert wrong.status_code == 422 and "password" in wrong.json()["errors"][0]["rule"]
