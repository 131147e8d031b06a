"""Every command that takes the acting user's password reads it the same way (``cli.common.read_password``):
``--password-stdin``, else the TRIALWRIGHT_PASSWORD variable, else a hidden prompt. A new user's walk set the
variable for ``database lock --override``: its ``--as`` account was confirmed from the variable, and then the
override asked again on a prompt and ended with a bare "Aborted." The lock's override, the emergency unblinding and
the DSMB's decision now read it like the others; and where no password is given at all (no variable, standard input
at its end), the command says so and how to give one, instead of "Aborted.". Both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.trialfixtures import PASSWORD, Trial, make_trial, username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services.safety import pause

runner = CliRunner()


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def test_the_lock_override_reads_the_variable(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALWRIGHT_PASSWORD", PASSWORD)
    command = ["database", "lock", "--reason", "final analysis", "--override", "--as", username(Role.DATA_MANAGER)]
    result = runner.invoke(cli, [*command, "--database", trial.url], input="")
    assert result.exit_code == 0, result.output
    assert "The trial database is locked." in result.output and "Aborted" not in result.output


def test_the_dsmb_decision_reads_the_variable(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALWRIGHT_PASSWORD", PASSWORD)
    command = ["safety", "decide", "pause", "--reason", "a signal to review", "--as", username(Role.DSMB_MEMBER)]
    result = runner.invoke(cli, [*command, "--database", trial.url], input="")
    assert result.exit_code == 0, result.output
    assert pause(trial.engine).last_decision == "pause"


def test_no_password_given_says_how_to_give_one(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIALWRIGHT_PASSWORD", raising=False)
    command = ["database", "lock", "--reason", "final analysis", "--override", "--as", username(Role.DATA_MANAGER)]
    result = runner.invoke(cli, [*command, "--database", trial.url], input="")
    assert result.exit_code == 2, result.output
    assert "password: none given; type it when asked, set the TRIALWRIGHT_PASSWORD variable, or pass" in " ".join(
        result.output.split()
    )
    assert "Aborted" not in result.output
