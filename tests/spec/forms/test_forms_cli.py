"""`trialwright form save|show|import`, `trialwright audit verify|show`, `trialwright database lock|unlock`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.trialfixtures import PASSWORD, Trial, username
from trialwright.cli.main import app
from trialwright.domain.roles import Role

runner = CliRunner()


def _as(trial: Trial, role: Role) -> list[str]:
    return ["--database", trial.url, "--as", username(role)]


@pytest.mark.covers("REG-12")
def test_form_save_show_import_and_the_database_lock(trial: Trial, pid: str, tmp_path: Path) -> None:
    values = tmp_path / "labs.json"
    values.write_text(json.dumps({"crp": {"value": 4.5, "unit": "mg/dL"}, "il6": {"below_lloq": 1.5}}))
    coord = _as(trial, Role.STUDY_COORDINATOR)
    saved = runner.invoke(app, ["form", "save", pid, "baseline", "labs", "--data", str(values), *coord])
    assert saved.exit_code == 0, saved.output
    assert "labs: draft" in saved.output and "crp: 45 mg/L (entered 4.5 mg/dL)" in saved.output
    assert "il6: < 1.5 pg/mL" in saved.output  # every value with its unit
    values.write_text(json.dumps({"crp": 900}))
    refused = runner.invoke(app, ["form", "save", pid, "baseline", "labs", "--data", str(values), *coord])
    assert refused.exit_code == 1 and "crp: 900 mg/L is outside the accepted range 0-600 mg/L" in refused.output
    shown = runner.invoke(app, ["form", "show", pid, "baseline", "labs", *_as(trial, Role.MONITOR)])
    assert "crp: 45 mg/L (entered 4.5 mg/dL)" in shown.output  # nothing lost
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([
        {"participant": pid, "visit": "baseline", "form": "blood_gas", "values": {"pao2": 80}},
        {"participant": pid, "visit": "baseline", "form": "blood_gas", "values": {"fio2": 3}},
    ]))  # fmt: skip
    imported = runner.invoke(app, ["form", "import", "--data", str(rows), *coord])
    assert imported.exit_code == 1 and f"{rows}: row 2: fio2: 3 fraction is outside" in imported.output
    assert "0 saved, 1 refused." in imported.output
    manager = _as(trial, Role.DATA_MANAGER)
    refused = runner.invoke(app, ["database", "lock", "--reason", "final analysis", *manager])
    assert refused.exit_code == 1 and "block the lock" in refused.output
    override = ["database", "lock", "--reason", "final analysis", "--override", "--password-stdin", *manager]
    locked = runner.invoke(app, override, input=PASSWORD + "\n")
    assert locked.exit_code == 0 and "Locked with 7 open blockers by data-manager" in locked.output, locked.output
    values.write_text(json.dumps({"crp": 40}))
    locked = runner.invoke(app, ["form", "save", pid, "baseline", "labs", "--data", str(values), *coord])
    assert locked.exit_code == 1 and "the database is locked" in locked.output
    assert runner.invoke(app, ["database", "unlock", "--reason", "late data", *manager]).exit_code == 0


TAMPERING = {
    "altered": ["UPDATE audit_entries SET new_value = '{\"value\": 21}' WHERE seq = :s"],
    "removed": ["DELETE FROM audit_entries WHERE seq = :s"],
    "inserted": [
        "UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= :s",
        "UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000",
        "INSERT INTO audit_entries (seq, at, actor, action, prev_hash, hash) SELECT :s, at, 'mallory',"
        " 'form.value_changed', hash, 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'"
        " FROM audit_entries WHERE seq = :s - 1",
    ],
}


@pytest.mark.covers("REG-1")
@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_audit_show_and_verify_detect_tampering(trial: Trial, pid: str, tmp_path: Path, tampering: str) -> None:
    values = tmp_path / "labs.json"
    values.write_text(json.dumps({"crp": 12, "il6": 30}))
    runner.invoke(app, ["form", "save", pid, "baseline", "labs", "--data", str(values), *_as(trial, Role.INVESTIGATOR)])
    shown = runner.invoke(app, ["audit", "show", "--participant", pid, *_as(trial, Role.MONITOR)])
    assert "form.value_entered" in shown.output and "labs crp" in shown.output
    assert '{"visit":"baseline"}' in shown.output  # the entry's detail: which visit
    nothing = runner.invoke(app, ["audit", "show", "--action", "no.such.action", *_as(trial, Role.MONITOR)])
    assert nothing.exit_code == 0 and nothing.output.strip() == "No audit entry matches."
    denied = runner.invoke(app, ["audit", "show", *_as(trial, Role.STUDY_COORDINATOR)])
    assert denied.exit_code == 4
    ok = runner.invoke(app, ["audit", "verify", "--database", trial.url])
    assert ok.exit_code == 0 and "The audit trail is intact" in ok.output
    with trial.engine.begin() as conn:  # an attacker with database rights drops the guards and edits the trail
        if trial.engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_entries_no_change ON audit_entries"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
            conn.execute(text("DROP TRIGGER audit_entries_no_delete"))
        seq = conn.execute(text("SELECT seq FROM audit_entries WHERE field = 'crp'")).scalar_one()
        for statement in TAMPERING[tampering]:
            conn.execute(text(statement), {"s": seq})
    broken = runner.invoke(app, ["audit", "verify", "--database", trial.url])
    assert broken.exit_code == 1 and "the audit trail is broken" in broken.output
    assert f"entry {seq} " in broken.output or f"#{seq}" in broken.output or str(seq) in broken.output
