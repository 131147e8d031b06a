"""``audit verify`` replays log entries (both databases): the trail's ``log.entry_added``, ``log.value_entered``,
``log.value_changed`` and ``log.entry_removed`` entries, folded in order, give each entry's values, state and removal
reason, compared with ``log_entries``. Entries kept through the services replay clean; an entry's value altered by SQL,
a removal undone by SQL, an entry inserted or deleted by SQL are each named with the participant, the log and entry,
the field, both values and the audit entry the trail's value came from.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from typer.testing import CliRunner

from tests.spec.logs.test_log_entries import HEPARIN
from tests.trialfixtures import Trial, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.logs import add_entry, amend_entry, remove_entry
from trialwright.services.replay import replay


def _kept(trial: Trial, pid: str) -> None:
    """Two medications (the first amended, the second removed) and one condition, through the services."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    add_entry(trial.engine, coordinator, pid, "conmeds", {**HEPARIN, "medication": "Pantoprazole"})
    add_entry(trial.engine, coordinator, pid, "medical_history", {"condition": "Type 2 diabetes", "ongoing": True})
    amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 60}, reason="transcription error")
    remove_entry(trial.engine, coordinator, pid, "conmeds", 2, reason="entered for the wrong participant")


def _sql(trial: Trial, statement: str, **params: Any) -> None:
    with trial.engine.begin() as conn:
        conn.execute(text(statement), params)


def _values(trial: Trial, pid: str, log_id: str, sequence: int) -> dict[str, Any]:
    with trial.engine.connect() as conn:
        raw = conn.execute(
            text("SELECT entry_values FROM log_entries WHERE participant_id = :p AND log_id = :l AND sequence = :s"),
            {"p": pid, "l": log_id, "s": sequence},
        ).scalar_one()
    return dict(json.loads(raw))


def _last_seq(trial: Trial, pid: str, action: str, field: str | None = None) -> int:
    found = [e for e in audit.entries(trial.engine, participant=pid, action_prefix=action, limit=1000)
             if field is None or e.field == field]  # fmt: skip
    return found[0].seq  # newest first


def test_entries_kept_through_the_services_replay_clean(trial: Trial, pid: str) -> None:
    _kept(trial, pid)
    before = replay(trial.engine)
    assert before.ok, before.message
    with trial.engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM log_entries")).scalar_one()
    assert stored == 3
    logged = len(audit.entries(trial.engine, action_prefix="log.", limit=1000))  # no coding: every log.* is replayed
    assert logged == 1 + len(HEPARIN) + 1 + len(HEPARIN) + 1 + 2 + 1 + 1  # added + values, x2; history; dose; removed
    done = CliRunner().invoke(cli, ["audit", "verify", "--database", trial.url])
    assert done.exit_code == 0, done.output


def test_a_log_value_altered_by_sql_is_named_by_verify(trial: Trial, pid: str) -> None:
    _kept(trial, pid)
    values = _values(trial, pid, "conmeds", 1)
    trail_value = dict(values["dose"])
    assert trail_value["value"] == 60  # the amended dose, as the service stored it
    values["dose"] = {**trail_value, "value": 6000, "entered": 6000}
    _sql(trial, "UPDATE log_entries SET entry_values = :v WHERE participant_id = :p AND log_id = 'conmeds' "
         "AND sequence = 1", v=json.dumps(values), p=pid)  # fmt: skip
    report = replay(trial.engine)
    assert not report.ok and report.count == 1
    (found,) = report.disagreements
    assert (found.table, found.problem, found.participant, found.form, found.field) == (
        "log_entries", "differs", pid, "conmeds entry 1", "dose")  # fmt: skip
    assert json.loads(found.stored or "")["value"] == 6000 and json.loads(found.expected or "") == trail_value
    assert found.seq == _last_seq(trial, pid, "log.value_changed", "dose")
    done = CliRunner().invoke(cli, ["audit", "verify", "--database", trial.url])
    assert done.exit_code == 1
    assert f"log_entries {pid} conmeds entry 1 dose" in done.output and f"audit entry {found.seq}" in done.output


def test_a_removal_undone_by_sql_is_named(trial: Trial, pid: str) -> None:
    _kept(trial, pid)
    _sql(trial, "UPDATE log_entries SET state = 'active', removed_reason = NULL WHERE participant_id = :p "
         "AND log_id = 'conmeds' AND sequence = 2", p=pid)  # fmt: skip
    found = replay(trial.engine).disagreements
    assert [(d.form, d.field, d.stored, d.expected) for d in found] == [
        ("conmeds entry 2", "state", '"active"', '"removed"'),
        ("conmeds entry 2", "removed_reason", None, '"entered for the wrong participant"'),
    ]
    assert {d.seq for d in found} == {_last_seq(trial, pid, "log.entry_removed")}


def test_an_entry_inserted_or_deleted_by_sql_is_named(trial: Trial, pid: str) -> None:
    _kept(trial, pid)
    _sql(trial, "INSERT INTO log_entries (participant_id, log_id, sequence, entry_values, state, version, "
         "protocol_version, created_at, created_by, updated_at, updated_by) SELECT participant_id, log_id, 9, "
         "entry_values, state, 1, protocol_version, created_at, created_by, updated_at, updated_by FROM log_entries "
         "WHERE participant_id = :p AND log_id = 'medical_history'", p=pid)  # fmt: skip
    _sql(trial, "DELETE FROM log_entries WHERE participant_id = :p AND log_id = 'medical_history' AND sequence = 1",
         p=pid)  # fmt: skip
    found = replay(trial.engine).disagreements
    assert [(d.table, d.problem, d.form, d.seq) for d in found] == [
        ("log_entries", "unexplained", "medical_history entry 9", None),
        ("log_entries", "missing", "medical_history entry 1", _last_seq(trial, pid, "log.entry_added")),
    ]


def test_a_value_sent_back_unchanged_keeps_what_was_typed_so_nothing_changes_unaudited(trial: Trial, pid: str) -> None:
    """The log page sends every field back, numbers in their canonical form: a dose typed ``۴۰`` and sent back as
    ``40`` while another field is amended is no change, and stays stored as typed; the trail replays clean."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", {**HEPARIN, "dose": "۴۰"})
    assert _values(trial, pid, "conmeds", 1)["dose"]["entered"] == "۴۰"
    amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {**HEPARIN, "dose": "40", "indication": "DVT"},
                reason="indication from the chart")  # fmt: skip
    stored = _values(trial, pid, "conmeds", 1)
    assert stored["dose"]["entered"] == "۴۰" and stored["indication"]["value"] == "DVT"
    changed = audit.entries(trial.engine, participant=pid, action_prefix="log.value_changed", limit=100)
    assert [e.field for e in changed] == ["indication"]
    assert replay(trial.engine).ok


def test_an_entrys_verification_and_signature_replay_and_one_written_by_sql_is_named(trial: Trial, pid: str) -> None:
    """Who verified an entry is replayed from ``log.entry_verified`` and its voiding by an amendment; a signature
    set in the database with no ``log.entry_signed`` entry is named by verify, as a form's would be."""
    from trialwright.services.forms.log_review import verify_entry

    _kept(trial, pid)
    verify_entry(trial.engine, who(trial, Role.MONITOR), pid, "conmeds", 1)
    assert replay(trial.engine).ok
    amend_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", 1, {"dose": 50},
                reason="lab sheet")  # fmt: skip  (voids the verification, audited)
    verify_entry(trial.engine, who(trial, Role.MONITOR), pid, "medical_history", 1)
    assert replay(trial.engine).ok
    _sql(trial, "UPDATE log_entries SET signed_by = 'inv-x', signed_at = verified_at WHERE log_id = 'medical_history'")
    found = replay(trial.engine).disagreements
    assert [(d.problem, d.form, d.field, d.stored) for d in found] == [
        ("unexplained", "medical_history entry 1", "signed_by", '"inv-x"')]  # fmt: skip
