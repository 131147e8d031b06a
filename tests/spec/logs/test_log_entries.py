"""Log entries (both databases): a participant's concomitant medications and medical history are entries added,
amended and removed one at a time, numbered in the order added, validated by the forms' engine and audited field by
field with who, when, the old and new value and why.

| use case                          | rule                                                                          |
|-----------------------------------|-------------------------------------------------------------------------------|
| add                               | next sequence in that log; each value audited (log.value_entered)             |
| add with a bad value              | refused naming the field and rule (choice, hard limit, future date, required) |
| a stop before the start           | refused: not_before another field of the entry                                |
| amend                             | needs a reason; each changed value audited old -> new with the reason         |
| remove                            | needs a reason; kept, marked removed; its sequence is never reused            |
| trial lock, soft lock, withdrawal | refuse every change, as they refuse a form's                                  |
| a monitor                         | may read the entries, not add one                                             |
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.spec.forms.conftest import TODAY
from tests.trialfixtures import PASSWORD, Trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.errors import FormError
from trialwright.services.lock import lock_trial, soft_lock
from trialwright.services.logs import LogError, add_entry, amend_entry, list_entries, remove_entry
from trialwright.services.screening import withdraw

STARTED = (TODAY - dt.timedelta(days=30)).isoformat()
HEPARIN = {"medication": "Enoxaparin", "indication": "thromboprophylaxis", "dose": 40, "dose_unit": "mg",
           "frequency": "QD", "route": "SUBCUTANEOUS", "started_on": STARTED, "ongoing": True}  # fmt: skip


def test_entries_are_numbered_per_log_and_every_value_is_audited(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    first = add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    second = add_entry(trial.engine, coordinator, pid, "conmeds", {**HEPARIN, "medication": "Pantoprazole"})
    history = add_entry(trial.engine, coordinator, pid, "medical_history", {"condition": "Type 2 diabetes",
                                                                             "ongoing": True})  # fmt: skip
    assert (first.sequence, second.sequence, history.sequence) == (1, 2, 1)
    assert first.values["dose"].value == 40 and first.values["route"].value == "SUBCUTANEOUS"
    assert first.created_by == username(Role.STUDY_COORDINATOR) and first.state == "active"
    entered = audit.entries(trial.engine, action_prefix="log.value_entered")
    mine = sorted(
        e.field or "" for e in entered if e.form == "conmeds" and json.loads(e.detail or "{}")["sequence"] == 1
    )
    assert mine == sorted(HEPARIN)
    assert all(e.actor == username(Role.STUDY_COORDINATOR) and e.participant == pid for e in entered)
    added = audit.entries(trial.engine, action_prefix="log.entry_added")  # newest first
    expected = [("conmeds", {"sequence": 1}), ("conmeds", {"sequence": 2}), ("medical_history", {"sequence": 1})]
    assert [(e.form, json.loads(e.new_value or "")) for e in reversed(added)] == expected


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"route": "NASAL"}, "route: 'NASAL' is not one of"),
        ({"dose": 100001}, "dose: 100001 is outside the accepted range"),
        ({"started_on": (TODAY + dt.timedelta(days=2)).isoformat()}, "is in the future"),
        ({"medication": None}, "medication: is required"),
        ({"colour": "red"}, "colour: form 'conmeds' has no such field"),
        ({"stopped_on": (TODAY - dt.timedelta(days=31)).isoformat()}, "stopped_on: "),
    ],
)
def test_a_bad_value_is_refused_naming_the_field_and_rule(trial: Trial, pid: str, change: dict, words: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    entry = {k: v for k, v in {**HEPARIN, **change}.items() if v is not None}
    with pytest.raises(LogError, match=words.replace("(", r"\(")):
        add_entry(trial.engine, coordinator, pid, "conmeds", entry)
    assert list_entries(trial.engine, coordinator, pid) == ()
    assert audit.entries(trial.engine, action_prefix="log.") == []


def test_a_stop_before_the_start_is_refused(trial: Trial, pid: str) -> None:
    stop = (TODAY - dt.timedelta(days=31)).isoformat()
    with pytest.raises(LogError, match=rf"^stopped_on: {stop} is before started_on \({STARTED}\)$"):
        add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds",
                  {**HEPARIN, "stopped_on": stop, "ongoing": False})  # fmt: skip  # ended: ongoing has no end date


def test_an_amendment_needs_a_reason_and_is_audited_old_to_new(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    with pytest.raises(LogError, match=r"^reason: amending entry 1 of conmeds needs a reason$"):
        amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 60}, reason=" ")
    with pytest.raises(LogError, match=r"^values: nothing changes in entry 1 of conmeds$"):
        amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 40}, reason="recheck")
    amended = amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 60, "ongoing": False},
                          reason="chart says 60 mg")  # fmt: skip
    assert amended.values["dose"].value == 60 and amended.version == 2
    changes = audit.entries(trial.engine, action_prefix="log.value_changed")
    assert sorted((e.field, json.loads(e.old_value or "")["value"], json.loads(e.new_value or "")["value"], e.reason)
                  for e in changes) == [("dose", 40, 60, "chart says 60 mg"),
                                        ("ongoing", True, False, "chart says 60 mg")]  # fmt: skip


def test_a_removed_entry_is_kept_and_its_sequence_never_reused(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    with pytest.raises(LogError, match=r"^reason: removing entry 1 of conmeds needs a reason$"):
        remove_entry(trial.engine, coordinator, pid, "conmeds", 1, reason=None)
    removed = remove_entry(trial.engine, coordinator, pid, "conmeds", 1, reason="entered for the wrong patient")
    assert removed.removed and removed.removed_reason == "entered for the wrong patient"
    with pytest.raises(LogError, match=r"^sequence: entry 1 of conmeds was removed"):
        amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 60}, reason="fix")
    with pytest.raises(LogError, match=r"^sequence: entry 1 of conmeds was removed already"):
        remove_entry(trial.engine, coordinator, pid, "conmeds", 1, reason="again")
    assert add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN).sequence == 2
    assert [(e.sequence, e.state) for e in list_entries(trial.engine, coordinator, pid, "conmeds")] == [
        (1, "removed"), (2, "active")]  # fmt: skip
    (entry,) = audit.entries(trial.engine, action_prefix="log.entry_removed")
    assert (entry.old_value, entry.new_value, entry.reason) == (
        '"active"',
        '"removed"',
        "entered for the wrong patient",
    )


def test_a_soft_lock_refuses_every_change(trial: Trial, pid: str) -> None:
    coordinator, manager = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.DATA_MANAGER)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    soft_lock(trial.engine, manager, "interim analysis", participant_id=pid)
    with pytest.raises(FormError, match=f"^participant: {pid} is soft-locked"):
        add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    with pytest.raises(FormError, match="locked"):
        remove_entry(trial.engine, coordinator, pid, "conmeds", 1, reason="duplicate")


def test_the_trial_lock_refuses_changes(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    # The unsigned entry blocks the lock (tests/spec/logs/test_log_review.py): the data manager overrides.
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    with pytest.raises(FormError, match=r"^trial: the database is locked"):
        amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"dose": 60}, reason="late correction")


def test_a_withdrawn_participant_gets_no_entries(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    withdraw(trial.engine, coordinator, pid, scope="follow_up", cause="withdrew_consent", reason="moved away",
             withdrawn_on=None)  # fmt: skip
    with pytest.raises(FormError, match=f"^participant: {pid} withdrew from follow-up"):
        add_entry(trial.engine, coordinator, pid, "medical_history", {"condition": "Asthma", "ongoing": True})


def test_a_monitor_reads_entries_but_adds_none(trial: Trial, pid: str) -> None:
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    monitor = who(trial, Role.MONITOR)
    assert [e.values["medication"].value for e in list_entries(trial.engine, monitor, pid)] == ["Enoxaparin"]
    with pytest.raises(
        FormError,
        match=r"^role: only an investigator, a study coordinator or an outcome assessor may add entries to the",
    ):
        add_entry(trial.engine, monitor, pid, "conmeds", HEPARIN)
    with pytest.raises(
        LogError, match=r"^log: the protocol declares no log 'drugs' \(logs: conmeds, medical_history\)"
    ):
        add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "drugs", HEPARIN)


def test_the_log_commands_add_amend_remove_and_list(trial: Trial, pid: str, tmp_path: Path) -> None:
    runner = CliRunner()
    db = ["--database", trial.url, "--as", username(Role.STUDY_COORDINATOR)]
    data = tmp_path / "entry.json"
    data.write_text(json.dumps(HEPARIN), encoding="utf-8")
    added = runner.invoke(cli, ["log", "add", pid, "conmeds", "--data", str(data), *db])
    assert added.exit_code == 0, added.output
    assert f"{pid} conmeds #1: active, version 1" in added.output and "medication: Enoxaparin" in added.output
    data.write_text(json.dumps({"route": "NASAL"}), encoding="utf-8")
    v1 = ["--entry-version", "1"]
    refused = runner.invoke(cli, ["log", "amend", pid, "conmeds", "1", "--data", str(data), "--reason", "x", *v1, *db])
    assert refused.exit_code == 1 and "route: 'NASAL' is not one of" in refused.output
    data.write_text(json.dumps({"dose": 60}), encoding="utf-8")
    amended = runner.invoke(cli, ["log", "amend", pid, "conmeds", "1", "--data", str(data), "--reason", "chart", *v1,
                                  *db])  # fmt: skip
    assert amended.exit_code == 0 and "version 2" in amended.output and "dose: 60" in amended.output
    stale = runner.invoke(cli, ["log", "remove", pid, "conmeds", "1", "--reason", "duplicate", *v1, *db])
    assert stale.exit_code == 1 and "you read version 1; it is at version 2" in stale.output
    removed = runner.invoke(cli, ["log", "remove", pid, "conmeds", "1", "--reason", "duplicate", "--entry-version",
                                  "2", *db])  # fmt: skip
    assert removed.exit_code == 0 and "removed, version 3 (duplicate)" in removed.output
    listed = runner.invoke(cli, ["log", "list", pid, "--json", *db])
    assert listed.exit_code == 0
    (entry,) = json.loads(listed.output)
    assert (entry["sequence"], entry["state"], entry["removed_reason"]) == (1, "removed", "duplicate")
