"""A command that needs a password and a role refuses a role that may never do it with the role rule, before it asks
any password (issue 24): the emergency unblinding, the database lock with --override, a DSMB decision and a data
access decision. Nothing is typed: a prompt would read an empty input and abort instead of refusing. Both databases.

The role allowed still gets the prompt (the lock's --password-stdin in ``tests/spec/lock/test_lock_edges.py``;
here the unblinding's prompt for an investigator)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.trialfixtures import Trial, make_trial, username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role

runner = CliRunner()


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()

CASES = [
    (["database", "lock", "--reason", "final", "--override"], Role.MONITOR,
     "role: only a data manager may lock and unlock the trial database"),
    (["unblind", "RAZ-001", "--reason", "anaphylaxis"], Role.STUDY_COORDINATOR,
     "role: an investigator performs an emergency unblinding"),
    (["safety", "decide", "resume", "--reason", "reviewed"], Role.INVESTIGATOR,
     "role: only a DSMB member may record safety decisions"),
    (["safety", "decide", "resume", "--reason", "reviewed"], Role.UNBLINDED_STATISTICIAN,
     "role: only a DSMB member may record safety decisions"),
    (["access", "decide", "DAR-0001", "--approve", "--reason", "fits"], Role.MONITOR,
     "role: only an administrator or an investigator may decide data access requests"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "role", "rule"), CASES)
def test_a_role_that_may_not_is_refused_before_any_password_is_asked(
    trial: Trial, monkeypatch: pytest.MonkeyPatch, command: list[str], role: Role, rule: str
) -> None:
    monkeypatch.delenv("TRIALWRIGHT_PASSWORD", raising=False)  # an unblinded account's prompt would show too
    result = runner.invoke(cli, [*command, "--as", username(role), "--database", trial.url], input="")
    assert result.exit_code == 4, result.output
    assert rule in result.output
    assert "Password" not in result.output


def test_the_role_allowed_is_asked_its_password(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIALWRIGHT_PASSWORD", raising=False)
    command = ["safety", "decide", "resume", "--reason", "reviewed", "--as", username(Role.DSMB_MEMBER)]
    result = runner.invoke(cli, [*command, "--database", trial.url], input="")
    assert "Password" in result.output and result.exit_code != 0  # asked, and nothing typed
