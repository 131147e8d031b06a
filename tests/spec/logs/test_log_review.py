"""Log entries under the forms' review (both databases): queries on an entry's field, the monitor's source data
verification, the investigator's signature through the casebook, their voiding by a later change, and the lock
readiness.

| use case                                   | rule                                                                    |
|--------------------------------------------|-------------------------------------------------------------------------|
| monitor raises a query on an entry's field | stored on the entry; the inbox names the log and the sequence; audited  |
| site answers, raiser closes                | the forms' answer and close; a coordinator raises none                  |
| a field the log lacks, a removed entry     | refused naming it                                                       |
| the entry amended or removed               | its query stays open until the raiser closes it (as a form's: manual)   |
| monitor verifies an entry (or in bulk)     | verified_by/at kept, audited log.entry_verified                         |
| investigator signs the casebook            | signs the entries shown (seal); one audited log.entry_signed each       |
| an entry with an open query, or changed    | left out of the signing, with the reason                                |
| an amendment or a removal                  | voids the verification and the signature, each audited with the reason  |
| lock readiness (the policy: signed)        | an unsigned active entry blocks (log); its open query blocks (query)    |
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.spec.forms.conftest import TODAY
from tests.trialfixtures import PASSWORD, Trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.errors import FormError
from trialwright.services.log_views import LogError
from trialwright.services.logs import add_entry, amend_entry, list_entries, remove_entry
from trialwright.services.readiness import BlockerKind, lock_readiness
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

STARTED = (TODAY - dt.timedelta(days=30)).isoformat()
HEPARIN = {"medication": "Enoxaparin", "indication": "thromboprophylaxis", "dose": 40, "dose_unit": "mg",
           "frequency": "QD", "route": "SUBCUTANEOUS", "started_on": STARTED, "ongoing": True}  # fmt: skip


def _entries(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    add_entry(trial.engine, coordinator, pid, "conmeds", {**HEPARIN, "medication": "Pantoprazole"})
    add_entry(trial.engine, coordinator, pid, "medical_history", {"condition": "Type 2 diabetes", "ongoing": True})


def _entry(trial: Trial, pid: str, log_id: str, sequence: int):  # type: ignore[no-untyped-def]
    (found,) = [e for e in list_entries(trial.engine, who(trial, Role.MONITOR), pid, log_id) if e.sequence == sequence]
    return found


def _seals(book: svc.Casebook) -> dict[tuple[str, int], str]:
    return {e.key: e.seal for e in book.entries}


# --- queries ------------------------------------------------------------------------------------------------------


def test_a_query_on_an_entry_is_raised_answered_and_closed_like_a_forms(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    monitor = who(trial, Role.MONITOR)
    query = svc.raise_query(trial.engine, monitor, pid, "Dose per source is 60 mg?", log_id="conmeds", sequence=2,
                            field_id="dose")  # fmt: skip
    assert (query.log_id, query.sequence, query.field, query.visit_id, query.form_id) == ("conmeds", 2, "dose", None,
                                                                                          None)  # fmt: skip
    assert query.on == "conmeds entry 2" and query.status == "open"
    (listed,) = svc.list_queries(trial.engine, who(trial, Role.STUDY_COORDINATOR), participant_id=pid)
    assert (listed.id, listed.log_id, listed.sequence) == (query.id, "conmeds", 2)
    svc.answer_query(trial.engine, who(trial, Role.STUDY_COORDINATOR), query.id, "40 mg, as entered")
    closed = svc.close_query(trial.engine, monitor, query.id, "confirmed")
    assert closed.status == "closed" and closed.log_id == "conmeds"
    (raised,) = audit.entries(trial.engine, action_prefix="query.raised")
    assert (raised.form, raised.field, raised.actor, json.loads(raised.detail or "{}")) == (
        "conmeds", "dose", username(Role.MONITOR), {"sequence": 2})  # fmt: skip
    assert [e.action for e in audit.entries(trial.engine, action_prefix="query.")] == [
        "query.closed", "query.answered", "query.raised"]  # fmt: skip


def test_a_query_names_an_active_entry_and_a_field_of_its_log(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    manager = who(trial, Role.DATA_MANAGER)
    with pytest.raises(FormError, match=r"^field: the conmeds log has no field 'pulse'"):
        svc.raise_query(trial.engine, manager, pid, "?", log_id="conmeds", sequence=1, field_id="pulse")
    with pytest.raises(FormError, match=rf"^sequence: {pid} has no entry 9 in log conmeds"):
        svc.raise_query(trial.engine, manager, pid, "?", log_id="conmeds", sequence=9)
    with pytest.raises(LogError, match=r"^log: the protocol declares no log 'drugs'"):
        svc.raise_query(trial.engine, manager, pid, "?", log_id="drugs", sequence=1)
    with pytest.raises(FormError, match=r"^log: a query is on a form or on a log entry, not both"):
        svc.raise_query(trial.engine, manager, pid, "?", visit_id="baseline", form_id="vitals", log_id="conmeds",
                        sequence=1)  # fmt: skip
    remove_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 1, reason="entered twice")
    with pytest.raises(FormError, match=r"^sequence: entry 1 of conmeds was removed \(entered twice\)"):
        svc.raise_query(trial.engine, manager, pid, "?", log_id="conmeds", sequence=1, field_id="dose")
    with pytest.raises(FormError, match=r"^role:"):
        svc.raise_query(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "?", log_id="conmeds", sequence=2)
    assert svc.list_queries(trial.engine, manager, participant_id=pid) == []


def test_an_entrys_query_stays_open_when_it_is_amended_or_removed(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    monitor, coordinator = who(trial, Role.MONITOR), who(trial, Role.STUDY_COORDINATOR)
    dose = svc.raise_query(trial.engine, monitor, pid, "Dose?", log_id="conmeds", sequence=1, field_id="dose")
    history = svc.raise_query(trial.engine, monitor, pid, "Diagnosed when?", log_id="medical_history", sequence=1)
    amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 60}, reason="source says 60 mg")
    remove_entry(trial.engine, coordinator, pid, "medical_history", 1, reason="not this participant's")
    statuses = {q.id: q.status for q in svc.list_queries(trial.engine, monitor, participant_id=pid)}
    assert statuses == {dose.id: "open", history.id: "open"}  # the raiser reads the change, then closes


# --- source data verification ---------------------------------------------------------------------------------------


def test_the_monitor_verifies_an_entry_and_a_later_amendment_voids_it(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    monitor = who(trial, Role.MONITOR)
    with pytest.raises(FormError, match=r"^role:"):
        svc.verify_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 1)
    verified = svc.verify_entry(trial.engine, monitor, pid, "conmeds", 1)
    assert verified.verified_by == username(Role.MONITOR) and verified.verified_at is not None
    with pytest.raises(LogError, match=r"^sequence: entry 1 of conmeds of .* is already verified"):
        svc.verify_entry(trial.engine, monitor, pid, "conmeds", 1)
    (done,) = audit.entries(trial.engine, action_prefix="log.entry_verified")
    assert (done.form, done.actor, json.loads(done.detail or "{}")) == ("conmeds", username(Role.MONITOR),
                                                                        {"sequence": 1})  # fmt: skip
    amend_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 1, {"dose": 60},
                reason="source says 60 mg")  # fmt: skip
    assert _entry(trial, pid, "conmeds", 1).verified_by is None
    (voided,) = audit.entries(trial.engine, action_prefix="log.verification_voided")
    assert (voided.reason, json.loads(voided.old_value or "{}")["by"]) == ("source says 60 mg",
                                                                           username(Role.MONITOR))  # fmt: skip
    assert svc.verify_entry(trial.engine, monitor, pid, "conmeds", 1).verified_by == username(Role.MONITOR)


def test_a_series_is_verified_all_or_nothing(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    monitor = who(trial, Role.MONITOR)
    remove_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 2, reason="entered twice")
    with pytest.raises(LogError, match=r"entry 2 of conmeds .* is removed \(entered twice\).*nothing was verified"):
        svc.verify_entries(trial.engine, monitor, [(pid, "conmeds", 1), (pid, "conmeds", 2)])
    assert _entry(trial, pid, "conmeds", 1).verified_at is None
    views = svc.verify_entries(trial.engine, monitor, [(pid, "conmeds", 1), (pid, "medical_history", 1)])
    assert [(v.log_id, v.sequence) for v in views] == [("conmeds", 1), ("medical_history", 1)]


def test_the_casebook_bulk_verification_verifies_the_chosen_entries(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    monitor = who(trial, Role.MONITOR)
    book = svc.casebook(trial.engine, monitor, pid)
    assert [e.key for e in book.entries] == [("conmeds", 1), ("conmeds", 2), ("medical_history", 1)]
    seals = _seals(book)
    amend_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 2, {"dose": 20},
                reason="typo")  # fmt: skip
    outcome = svc.verify_casebook(trial.engine, monitor, pid, {}, entries=seals)
    assert [(e.log_id, e.sequence) for e in outcome.entries_done] == [("conmeds", 1), ("medical_history", 1)]
    assert outcome.entries_excluded == (("conmeds", 2, "changed since you reviewed it; review the casebook again"),)
    assert len(audit.entries(trial.engine, action_prefix="log.entry_verified")) == 2
    again = svc.casebook(trial.engine, monitor, pid)
    assert {e.key: e.not_verifiable for e in again.entries} == {("conmeds", 1): "already verified",
                                                                ("conmeds", 2): None,
                                                                ("medical_history", 1): "already verified"}  # fmt: skip


# --- the casebook's signature -------------------------------------------------------------------------------------


@pytest.mark.covers("REG-9")
def test_signing_the_casebook_signs_the_entries_shown_and_an_amendment_voids_it(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    investigator = who(trial, Role.INVESTIGATOR)
    query = svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "Stop date?", log_id="conmeds", sequence=2)
    book = svc.casebook(trial.engine, investigator, pid)
    assert {e.key: e.not_signable for e in book.entries} == {("conmeds", 1): None, ("conmeds", 2): "open queries",
                                                             ("medical_history", 1): None}  # fmt: skip
    with pytest.raises(FormError, match=r"^password:"):
        svc.sign_casebook(trial.engine, investigator, pid, {}, password="wrong", entries=_seals(book))
    outcome = svc.sign_casebook(trial.engine, investigator, pid, {}, password=PASSWORD, entries=_seals(book))
    assert [(e.log_id, e.sequence) for e in outcome.entries_done] == [("conmeds", 1), ("medical_history", 1)]
    assert outcome.entries_excluded == (("conmeds", 2, "open queries"),)
    signed = _entry(trial, pid, "conmeds", 1)
    assert signed.signed_by == username(Role.INVESTIGATOR) and signed.signature_meaning
    signatures = audit.entries(trial.engine, action_prefix="log.entry_signed")
    assert sorted((e.form, json.loads(e.detail or "{}")["sequence"]) for e in signatures) == [
        ("conmeds", 1), ("medical_history", 1)]  # fmt: skip
    svc.close_query(trial.engine, who(trial, Role.MONITOR), query.id, "stop date added")
    amend_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 1, {"frequency": "BID"},
                reason="source says twice daily")  # fmt: skip
    assert _entry(trial, pid, "conmeds", 1).signed_by is None
    (voided,) = audit.entries(trial.engine, action_prefix="log.signature_voided")
    assert (voided.form, voided.reason, json.loads(voided.detail or "{}")) == (
        "conmeds", "source says twice daily", {"sequence": 1})  # fmt: skip
    remove_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "medical_history", 1, reason="not theirs")
    assert _entry(trial, pid, "medical_history", 1).signed_by is None
    assert len(audit.entries(trial.engine, action_prefix="log.signature_voided")) == 2
    after = {e.key: e.not_signable for e in svc.casebook(trial.engine, investigator, pid).entries}
    assert after == {("conmeds", 1): None, ("conmeds", 2): None, ("medical_history", 1): "removed"}


def test_an_entry_changed_since_the_review_is_not_signed(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    investigator = who(trial, Role.INVESTIGATOR)
    seals = _seals(svc.casebook(trial.engine, investigator, pid))
    amend_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 1, {"dose": 60}, reason="typo")
    outcome = svc.sign_casebook(trial.engine, investigator, pid, {}, password=PASSWORD,
                                entries={("conmeds", 1): seals[("conmeds", 1)]})  # fmt: skip
    assert outcome.entries_done == ()
    assert outcome.entries_excluded == (("conmeds", 1, "changed since you reviewed it; review the casebook again"),)
    assert audit.entries(trial.engine, action_prefix="log.entry_signed") == []


# --- lock readiness -----------------------------------------------------------------------------------------------


def test_unsigned_entries_and_their_open_queries_block_the_lock(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    manager, investigator = who(trial, Role.DATA_MANAGER), who(trial, Role.INVESTIGATOR)
    query = svc.raise_query(trial.engine, manager, pid, "Dose?", log_id="conmeds", sequence=1, field_id="dose")
    remove_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 2, reason="entered twice")
    report = lock_readiness(trial.engine, manager)
    logs = [(b.where, b.detail) for b in report.blockers if b.kind is BlockerKind.LOG]
    assert report.forms_policy == "signed"
    assert logs == [("conmeds entry 1", "not signed; the lock policy needs signed"),
                    ("medical_history entry 1", "not signed; the lock policy needs signed")]  # fmt: skip
    (open_query,) = [b for b in report.blockers if b.kind is BlockerKind.QUERY]
    assert (open_query.where, open_query.detail) == (f"query {query.id}", "open on conmeds entry 1 dose: Dose?")
    assert "2 log entries not ready" in report.headline()
    svc.sign_casebook(trial.engine, investigator, pid, {}, password=PASSWORD,
                      entries=_seals(svc.casebook(trial.engine, investigator, pid)))  # fmt: skip
    after = lock_readiness(trial.engine, manager)
    assert [b.where for b in after.blockers if b.kind is BlockerKind.LOG] == ["conmeds entry 1"]  # its open query
    svc.close_query(trial.engine, manager, query.id, "confirmed")
    svc.sign_casebook(trial.engine, investigator, pid, {}, password=PASSWORD,
                      entries=_seals(svc.casebook(trial.engine, investigator, pid)))  # fmt: skip
    final = lock_readiness(trial.engine, manager)
    assert [b for b in final.blockers if b.kind in (BlockerKind.LOG, BlockerKind.QUERY)] == []


# --- the API --------------------------------------------------------------------------------------------------------


def test_the_api_raises_lists_verifies_and_signs_entries(trial: Trial, pid: str) -> None:
    def bearer(role: Role) -> dict[str, str]:
        token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
        return {"Authorization": f"Bearer {token}"}

    _entries(trial, pid)
    monitor, investigator = bearer(Role.MONITOR), bearer(Role.INVESTIGATOR)
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        raised = api.post("/api/v1/queries", headers=monitor, json={
            "participant_id": pid, "text": "Route?", "log_id": "conmeds", "sequence": 1, "field": "route"})  # fmt: skip
        assert raised.status_code == 201, raised.text
        listed = api.get("/api/v1/queries", headers=monitor, params={"participant_id": pid}).json()["items"]
        assert [(q["log_id"], q["sequence"], q["field"]) for q in listed] == [("conmeds", 1, "route")]
        verified = api.post(f"/api/v1/participants/{pid}/logs/medical_history/1/verify", headers=monitor)
        assert verified.status_code == 200 and verified.json()["verified_by"] == username(Role.MONITOR)
        book = api.get(f"/api/v1/participants/{pid}/casebook", headers=investigator).json()
        assert [(e["log_id"], e["sequence"], e["not_signable"]) for e in book["entries"]] == [
            ("conmeds", 1, "open queries"), ("conmeds", 2, None), ("medical_history", 1, None)]  # fmt: skip
        entries = [{"log_id": e["log_id"], "sequence": e["sequence"], "seal": e["seal"]} for e in book["entries"]]
        signed = api.post(f"/api/v1/participants/{pid}/casebook/sign", headers=investigator,
                          json={"entries": entries, "password": PASSWORD})  # fmt: skip
        assert signed.status_code == 200, signed.text
        body = signed.json()
        assert [(e["log_id"], e["sequence"]) for e in body["entries_done"]] == [("conmeds", 2), ("medical_history", 1)]
        assert body["entries_excluded"] == [{"log_id": "conmeds", "sequence": 1, "reason": "open queries"}]


# --- the command line -----------------------------------------------------------------------------------------------


def test_the_log_commands_verify_an_entry_and_raise_a_query(trial: Trial, pid: str) -> None:
    _entries(trial, pid)
    runner = CliRunner()
    db = ["--database", trial.url]
    verified = runner.invoke(cli, ["log", "verify", pid, "conmeds", "1", "--as", username(Role.MONITOR), *db])
    assert verified.exit_code == 0, verified.output
    assert f"verified by {username(Role.MONITOR)}" in verified.output
    refused = runner.invoke(cli, ["log", "verify", pid, "conmeds", "1", "--as", username(Role.MONITOR), *db])
    assert refused.exit_code == 1 and "already verified" in refused.output
    raised = runner.invoke(cli, ["log", "query", pid, "medical_history", "1", "--field", "condition", "--text",
                                 "Diagnosed when?", "--as", username(Role.DATA_MANAGER), *db])  # fmt: skip
    assert raised.exit_code == 0, raised.output
    assert f"on {pid} medical_history #1 condition: Diagnosed when?" in raised.output
    (query,) = svc.list_queries(trial.engine, who(trial, Role.MONITOR), participant_id=pid)
    assert (query.log_id, query.sequence, query.field) == ("medical_history", 1, "condition")
