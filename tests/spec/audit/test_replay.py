"""The data tables agree with the audit trail, or ``audit verify`` says where they do not.

A replay of the trail reconstructs every form (its values and state), every visit, every randomization and
every allocation list's checksum, and compares them with the stored rows. Data entered through the services
replays clean; a value changed or deleted by hand in the database, a form record inserted by hand, and an arm
flipped in the allocation table are each reported with where, both values and the audit entry the trail's
value came from. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.randomization import extend_list, generate_list, randomize
from trialwright.services.replay import replay
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.store.engine import make_engine

GAS = {"pao2": 80, "fio2": 0.5, "support_mode": "conventional_oxygen", "sampled_at": f"{TODAY.isoformat()}T00:00+03:30"}


@dataclass(frozen=True)
class Entered:
    """A trial with data entered through the services: ``first`` has a blood gas that went through every step
    of the form lifecycle; ``second`` a plain draft, an empty form and a missed visit; both are randomized."""

    trial: Trial
    first: str
    second: str


@pytest.fixture
def entered(database_url: str) -> Iterator[Entered]:
    trial = make_trial(database_url)
    e = trial.engine
    coordinator, monitor = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.MONITOR)
    investigator, manager = who(trial, Role.INVESTIGATOR), who(trial, Role.DATA_MANAGER)
    statistician = who(trial, Role.UNBLINDED_STATISTICIAN)
    generate_list(e, statistician, seed=11)
    first, second = enrolled_ten_days_ago(trial), enrolled_ten_days_ago(trial)
    randomize(e, investigator, first)
    randomize(e, investigator, second)
    svc.save_form(e, coordinator, first, "baseline", "blood_gas", GAS, complete=True)
    svc.verify_form(e, monitor, first, "baseline", "blood_gas")
    svc.save_form(e, coordinator, first, "baseline", "blood_gas", {"pao2": 85}, reason="transcription error")
    svc.sign_form(e, investigator, first, "baseline", "blood_gas", password=PASSWORD)
    svc.lock_form(e, manager, first, "baseline", "blood_gas")
    svc.unlock_form(e, manager, first, "baseline", "blood_gas", reason="correction after query")
    svc.save_form(e, coordinator, first, "baseline", "vitals", {"spo2": 90})  # derives sf_ratio on blood_gas
    svc.save_form(e, coordinator, second, "baseline", "blood_gas", {**GAS, "pao2": 70})
    svc.save_form(e, coordinator, second, "baseline", "performance", {})  # started, nothing entered yet
    svc.miss_visit(e, coordinator, second, "day7", "discharged home early")
    extend_list(e, statistician, "site=RAZ", entries=4, reason="recruitment above plan")
    yield Entered(trial, first, second)
    e.dispose()


def _sql(trial: Trial, statement: str, **params: Any) -> None:
    """What someone holding the database file can do: change the tables without the services or the trail."""
    with trial.engine.begin() as conn:
        conn.execute(text(statement), params)


def _stored_values(trial: Trial, participant: str, form: str) -> dict[str, Any]:
    with trial.engine.connect() as conn:
        raw = conn.execute(
            text("SELECT form_values FROM form_records WHERE participant_id = :p AND form_id = :f"),
            {"p": participant, "f": form},
        ).scalar_one()
    return dict(json.loads(raw))


def _last_seq(trial: Trial, participant: str, action_prefix: str, field: str | None = None) -> int:
    found = [e for e in audit.entries(trial.engine, participant=participant, action_prefix=action_prefix, limit=1000)
             if field is None or e.field == field]  # fmt: skip
    return found[0].seq  # newest first


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_data_entered_through_the_services_replays_clean(entered: Entered) -> None:
    report = replay(entered.trial.engine)
    assert report.ok and report.count == 0 and report.disagreements == (), report.message
    # 4 forms, 3 visits (baseline twice, day7 missed), 2 randomizations, 2 lists (the list and its extension).
    assert report.rows == 4 + 3 + 2 + 2
    assert report.entries > 20
    done = CliRunner().invoke(cli, ["audit", "verify", "--database", entered.trial.url])
    assert done.exit_code == 0, done.output
    assert "The audit trail is intact" in done.output and "The data tables agree with the trail" in done.output


def test_a_value_changed_in_the_table_is_reported_with_both_values_and_its_entry(entered: Entered) -> None:
    trial, first = entered.trial, entered.first
    values = _stored_values(trial, first, "blood_gas")
    trail_value = dict(values["pao2"])
    assert trail_value["value"] == 85  # the corrected value, as the service stored it
    values["pao2"] = {**trail_value, "value": 58, "entered": 58}
    _sql(trial, "UPDATE form_records SET form_values = :v WHERE participant_id = :p AND form_id = 'blood_gas'",
         v=json.dumps(values), p=first)  # fmt: skip
    report = replay(trial.engine)
    assert not report.ok and report.count == 1
    (found,) = report.disagreements
    assert (found.table, found.problem, found.participant, found.visit, found.form, found.field) == (
        "form_records", "differs", first, "baseline", "blood_gas", "pao2")  # fmt: skip
    assert json.loads(found.stored or "")["value"] == 58
    assert found.expected == _canonical(trail_value)
    assert found.seq == _last_seq(trial, first, "form.value_changed", "pao2")
    done = CliRunner().invoke(cli, ["audit", "verify", "--database", trial.url])
    assert done.exit_code == 1
    assert "1 disagreement(s) between the data tables and the audit trail" in done.output
    assert f"{first} baseline blood_gas pao2" in done.output and f"audit entry {found.seq}" in done.output
    assert "The audit trail is intact" in done.output  # the chain itself was not touched


def test_a_state_changed_in_the_table_is_reported(entered: Entered) -> None:
    trial, first = entered.trial, entered.first
    _sql(trial, "UPDATE form_records SET state = 'locked' WHERE participant_id = :p AND form_id = 'blood_gas'", p=first)
    (found,) = replay(trial.engine).disagreements
    assert (found.form, found.field, found.stored, found.expected) == ("blood_gas", "state", '"locked"', '"signed"')
    assert found.seq == _last_seq(trial, first, "form.unlocked")


def test_a_value_deleted_from_the_table_is_reported_as_missing(entered: Entered) -> None:
    trial, second = entered.trial, entered.second
    values = _stored_values(trial, second, "blood_gas")
    removed = values.pop("support_mode")
    _sql(trial, "UPDATE form_records SET form_values = :v WHERE participant_id = :p AND form_id = 'blood_gas'",
         v=json.dumps(values), p=second)  # fmt: skip
    (found,) = replay(trial.engine).disagreements
    assert (found.table, found.problem, found.participant, found.form, found.field) == (
        "form_records", "missing", second, "blood_gas", "support_mode")  # fmt: skip
    assert found.stored is None and found.expected == _canonical(removed)
    assert found.seq == _last_seq(trial, second, "form.value_entered", "support_mode")


def test_a_value_added_to_the_table_is_reported_as_unexplained(entered: Entered) -> None:
    trial, second = entered.trial, entered.second
    values = _stored_values(trial, second, "performance")
    assert values == {}
    _sql(trial, "UPDATE form_records SET form_values = :v WHERE participant_id = :p AND form_id = 'performance'",
         v=json.dumps({"ecog": {"status": "value", "value": 1}}), p=second)  # fmt: skip
    (found,) = replay(trial.engine).disagreements
    assert (found.problem, found.form, found.field, found.seq) == ("unexplained", "performance", "ecog", None)
    assert json.loads(found.stored or "")["value"] == 1


def test_a_form_record_inserted_by_hand_is_reported(entered: Entered) -> None:
    trial, second = entered.trial, entered.second
    _sql(
        trial,
        "INSERT INTO form_records (participant_id, visit_record_id, form_id, state, form_values, version, "
        "protocol_version, updated_at, updated_by) SELECT participant_id, visit_record_id, 'labs', 'complete', "
        ":v, 1, protocol_version, updated_at, updated_by FROM form_records WHERE participant_id = :p "
        "AND form_id = 'blood_gas'",
        v=json.dumps({"crp": {"status": "value", "value": 3}}),
        p=second,
    )
    report = replay(trial.engine)
    (found,) = report.disagreements
    assert (found.table, found.problem, found.participant, found.visit, found.form, found.seq) == (
        "form_records", "unexplained", second, "baseline", "labs", None)  # fmt: skip
    assert json.loads(found.stored or "")["state"] == "complete"


def test_a_form_record_deleted_by_hand_is_reported(entered: Entered) -> None:
    trial, second = entered.trial, entered.second
    _sql(trial, "DELETE FROM form_records WHERE participant_id = :p AND form_id = 'performance'", p=second)
    (found,) = replay(trial.engine).disagreements
    assert (found.table, found.problem, found.participant, found.form) == (
        "form_records", "missing", second, "performance")  # fmt: skip
    assert found.seq == _last_seq(trial, second, "form.started")


def test_a_visit_date_changed_by_hand_is_reported(entered: Entered) -> None:
    trial, second = entered.trial, entered.second
    _sql(trial, "UPDATE visit_records SET visit_date = :d WHERE participant_id = :p AND visit_id = 'baseline'",
         d=TODAY.replace(day=1) if TODAY.day != 1 else TODAY.replace(day=2), p=second)  # fmt: skip
    (found,) = replay(trial.engine).disagreements
    assert (found.table, found.participant, found.visit, found.field) == (
        "visit_records", second, "baseline", "visit_date")  # fmt: skip
    assert found.expected == _canonical(TODAY.isoformat()) and found.seq == _last_seq(trial, second, "visit.held")


def _arms(trial: Trial) -> list[str]:
    with trial.engine.connect() as conn:
        return sorted(conn.execute(text("SELECT DISTINCT arm FROM allocation_entries")).scalars())


def test_an_arm_flipped_in_the_allocation_table_is_reported_without_naming_an_arm(entered: Entered) -> None:
    trial, first = entered.trial, entered.first
    arms = _arms(trial)
    assert len(arms) == 2
    _sql(trial, "UPDATE allocation_entries SET arm = CASE WHEN arm = :a THEN :b ELSE :a END WHERE participant_id = :p",
         a=arms[0], b=arms[1], p=first)  # fmt: skip
    report = replay(trial.engine)
    by_field = {d.field: d for d in report.disagreements}
    assert report.count == 2 and set(by_field) == {"seal (arm, entry)", "checksum of the entries"}
    seal = by_field["seal (arm, entry)"]
    assert (seal.table, seal.problem, seal.participant) == ("allocation_entries", "differs", first)
    assert seal.seq == _last_seq(trial, first, "participant.randomized")
    listed = by_field["checksum of the entries"]
    assert listed.form == "the allocation list"
    assert listed.seq == audit.entries(trial.engine, action_prefix="randomization.list_generated")[0].seq
    shown = " ".join(d.describe() for d in report.disagreements) + report.message
    assert not any(arm in shown for arm in arms)  # the report is read by blinded staff too
    done = CliRunner().invoke(cli, ["audit", "verify", "--database", trial.url])
    assert done.exit_code == 1 and "2 disagreement(s)" in done.output
    assert not any(arm in done.output for arm in arms)


def test_an_arm_flipped_in_an_entry_not_yet_used_is_reported(entered: Entered) -> None:
    trial = entered.trial
    arms = _arms(trial)
    _sql(trial, "UPDATE allocation_entries SET arm = CASE WHEN arm = :a THEN :b ELSE :a END WHERE id = "
         "(SELECT MAX(id) FROM allocation_entries)", a=arms[0], b=arms[1])  # fmt: skip
    (found,) = replay(trial.engine).disagreements
    # The newest entry belongs to the extension, whose checksum the trail recorded when it was made.
    assert (found.table, found.form, found.field) == ("allocation_entries", "extension 1 of site=RAZ",
                                                      "checksum of the entries")  # fmt: skip
    assert found.seq == audit.entries(trial.engine, action_prefix="randomization.list_extended")[0].seq


def test_claims_swapped_between_allocation_entries_are_reported(entered: Entered) -> None:
    """Moving two participants' claims and preparation codes between their entries keeps the list's checksum and
    what the trail records in clear (number, code, stratum); the seal of each randomization catches it."""
    trial, first, second = entered.trial, entered.first, entered.second
    columns = "participant_id, randomization_number, preparation_code"
    with trial.engine.begin() as conn:
        one, two = (conn.execute(text(f"SELECT id, {columns} FROM allocation_entries WHERE participant_id = :p"),
                                 {"p": p}).one() for p in (first, second))  # fmt: skip
        move = text("UPDATE allocation_entries SET participant_id = :p, randomization_number = :n, "
                    "preparation_code = :c WHERE id = :id")  # fmt: skip
        conn.execute(move, {"p": None, "n": None, "c": "P-SWAP", "id": one.id})  # the columns are unique
        conn.execute(move, {"p": one.participant_id, "n": one.randomization_number, "c": one.preparation_code,
                            "id": two.id})  # fmt: skip
        conn.execute(move, {"p": two.participant_id, "n": two.randomization_number, "c": two.preparation_code,
                            "id": one.id})  # fmt: skip
    report = replay(trial.engine)
    assert report.count == 2
    assert {(d.participant, d.field) for d in report.disagreements} == {
        (first, "seal (arm, entry)"), (second, "seal (arm, entry)")}  # fmt: skip


def test_a_randomization_inserted_by_hand_is_reported(entered: Entered) -> None:
    trial = entered.trial
    third = enrolled_ten_days_ago(trial)
    _sql(trial, "UPDATE allocation_entries SET participant_id = :p, randomization_number = 3 WHERE id = "
         "(SELECT MIN(id) FROM allocation_entries WHERE participant_id IS NULL)", p=third)  # fmt: skip
    (found,) = replay(trial.engine).disagreements
    assert (found.table, found.problem, found.participant, found.seq) == (
        "allocation_entries",
        "unexplained",
        third,
        None,
    )


def test_a_simulated_trial_of_a_few_hundred_participants_replays_clean(database_url: str) -> None:
    """Every action the services write in a whole trial is understood: no false alarm on real data."""
    trial = make_trial(database_url)
    summary = simulate(trial.engine, FIRST_PROTOCOL, 250, seed=29)  # 250 screened
    assert summary.randomized >= 100 and summary.forms_signed > 0 and summary.visits_missed > 0
    report = replay(trial.engine)
    assert report.ok, report.message
    assert report.rows > 2000 and report.entries > 15000
    trial.engine.dispose()


@pytest.mark.parametrize("name", ["EXAMPLE-CAP-3ARM", "EXAMPLE-MOBILISE-OL", "EXAMPLE-PACIFIC-CELLULITIS"])
def test_simulated_trials_of_the_other_designs_replay_clean(database_url: str, name: str) -> None:
    """Minimization (seals only), simple randomization and stratified blocks, with their own forms."""
    path = FIRST_PROTOCOL.with_name(f"{name}.yaml")
    engine = make_engine(database_url)
    init_trial(engine, load_protocol(path))
    summary = simulate(engine, path, None, seed=8, enrolled=20)
    assert summary.randomized >= 15
    report = replay(engine)
    assert report.ok and report.rows > 200, report.message
    engine.dispose()
