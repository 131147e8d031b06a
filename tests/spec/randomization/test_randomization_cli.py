"""`trialwright randomization generate|status|export`, `trialwright randomize`, `trialwright unblind`."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import PASSWORD, Trial, make_trial, username
from trialwright.cli.main import app
from trialwright.domain.roles import Role
from trialwright.services import audit

runner = CliRunner()


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _as(trial: Trial, role: Role) -> list[str]:
    return ["--database", trial.url, "--as", username(role)]


@pytest.mark.covers("REG-7")
def test_generate_randomize_status_export_unblind(trial: Trial, tmp_path: Path) -> None:
    refused = runner.invoke(app, ["randomization", "generate", *_as(trial, Role.INVESTIGATOR)])
    assert refused.exit_code == 4 and "only the unblinded statistician" in refused.output
    made = runner.invoke(app, ["randomization", "generate", "--seed", "7", *_as(trial, Role.UNBLINDED_STATISTICIAN)])
    assert made.exit_code == 0 and "sealed; checksum" in made.output
    pid = enrolled(trial)
    done = runner.invoke(app, ["randomize", pid, *_as(trial, Role.INVESTIGATOR)])
    assert done.exit_code == 0 and "randomization number 1" in done.output and "arm masked" in done.output
    # How far each stratum's list is used hints at its block sizes: the statistician's, never the blinded staff's.
    hidden = runner.invoke(app, ["randomization", "status", *_as(trial, Role.INVESTIGATOR)])
    assert hidden.exit_code == 4 and "only the unblinded statistician" in hidden.output
    assert "site=RAZ" not in hidden.output and "remaining" not in hidden.output
    status = runner.invoke(app, ["randomization", "status", *_as(trial, Role.UNBLINDED_STATISTICIAN)])
    assert status.exit_code == 0 and "site=RAZ" in status.output
    assert "EXO" not in status.output and "PBO" not in status.output
    out = tmp_path / "list.csv"
    denied = runner.invoke(app, ["randomization", "export", "--out", str(out), *_as(trial, Role.DATA_MANAGER)])
    assert denied.exit_code == 4 and not out.exists()
    exported = runner.invoke(
        app, ["randomization", "export", "--out", str(out), *_as(trial, Role.UNBLINDED_STATISTICIAN)]
    )
    assert exported.exit_code == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["arm"] for r in rows} == {"EXO", "PBO"} and rows[0]["stratum"] == "site=GOL"
    assert audit.entries(trial.engine, action_prefix="randomization.list_exported")
    wrong = runner.invoke(
        app,
        ["unblind", pid, "--reason", "anaphylaxis", "--password-stdin", *_as(trial, Role.INVESTIGATOR)],
        input="nope\n",
    )
    assert wrong.exit_code == 4 and "password" in wrong.output
    unblinded = runner.invoke(
        app,
        ["unblind", pid, "--reason", "anaphylaxis", "--password-stdin", *_as(trial, Role.INVESTIGATOR)],
        input=PASSWORD + "\n",
    )
    assert unblinded.exit_code == 0 and ("arm EXO" in unblinded.output or "arm PBO" in unblinded.output)


def test_extend_report_and_balance(trial: Trial) -> None:
    stat = _as(trial, Role.UNBLINDED_STATISTICIAN)
    runner.invoke(app, ["randomization", "generate", "--seed", "3", *stat])
    randomized = runner.invoke(app, ["randomize", enrolled(trial), *_as(trial, Role.INVESTIGATOR)])
    assert randomized.exit_code == 0
    no_reason = runner.invoke(app, ["randomization", "extend", "site=RAZ", "--entries", "4", "--reason", "", *stat])
    assert no_reason.exit_code == 1 and "reason: say why" in no_reason.output
    extended = runner.invoke(app, ["randomization", "extend", "site=RAZ", "--entries", "4", "--reason", "busy", *stat])
    assert extended.exit_code == 0 and "Stratum site=RAZ extended" in extended.output
    report = runner.invoke(app, ["randomization", "report", *stat], env={"COLUMNS": "400"})
    assert report.exit_code == 0 and "extension 1" in report.output and "busy" in report.output
    balance = runner.invoke(app, ["randomization", "balance", *_as(trial, Role.DSMB_MEMBER)], env={"COLUMNS": "200"})
    assert balance.exit_code == 0 and "site=RAZ" in balance.output and "EXO" in balance.output
    blinded = runner.invoke(app, ["randomization", "balance", *_as(trial, Role.MONITOR)])
    assert blinded.exit_code == 4 and "EXO" not in blinded.output
