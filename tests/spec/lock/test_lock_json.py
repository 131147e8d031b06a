"""`--json` on the one-line lock actions: `database unlock`, `soft-lock` and `soft-unlock` print one JSON
document, read back against the lock service."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.trialfixtures import PASSWORD, Trial, username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services.lock import active_soft_locks, lock_state

runner = CliRunner()


def test_lock_actions_print_one_json_document(trial: Trial, pid: str) -> None:
    manager = ["--database", trial.url, "--as", username(Role.DATA_MANAGER), "--json"]
    locked = runner.invoke(cli, ["database", "lock", "--reason", "final", "--override", "--password-stdin", *manager],
                           input=PASSWORD + "\n")  # fmt: skip
    assert locked.exit_code == 0, locked.output
    unlocked = runner.invoke(cli, ["database", "unlock", "--reason", "late data", *manager])
    assert unlocked.exit_code == 0, unlocked.output
    state = json.loads(unlocked.stdout)
    assert state["locked"] is False and state == {**state, "locked": lock_state(trial.engine).locked}
    soft = runner.invoke(cli, ["database", "soft-lock", "--participant", pid, "--reason", "interim", *manager])
    assert soft.exit_code == 0, soft.output
    made = json.loads(soft.stdout)
    (held,) = active_soft_locks(trial.engine)
    assert (made["scope"], made["target"], made["by"], made["reason"]) == (
        "participant", pid, held.by, "interim",
    )  # fmt: skip
    lifted = runner.invoke(cli, ["database", "soft-unlock", "--participant", pid, "--reason", "done", *manager])
    assert lifted.exit_code == 0, lifted.output
    assert json.loads(lifted.stdout) == {"scope": "participant", "target": pid, "soft_locked": False}
    assert not active_soft_locks(trial.engine)
