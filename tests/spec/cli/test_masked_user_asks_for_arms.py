"""A masked user asking a command for the arms is refused as a matter of permission, whichever option asks: the
same exit code (4, permission: docs/cli.md, "Exit codes") and the same kind of message, naming the user's role, the
protocol's masking that keeps it from the arms, and who may (walk 5, F9: ``export --with-arms`` ended with 1, refused
input, while ``analyse --unblinded`` by the same user ended with 4). Nothing is written. Both databases; the first
trial is double-blind.

| command                  | as                   | exit | message                                            |
|--------------------------|----------------------|------|----------------------------------------------------|
| `export csv --with-arms` | data manager         | 4    | `with_arms: a data manager MASKED; ONLY EXPORT`    |
| `export csv --with-arms` | blinded statistician | 4    | `with_arms: a blinded statistician MASKED; ONLY EXPORT` |
| `analyse --unblinded`    | blinded statistician | 4    | `unblinded: a blinded statistician MASKED; ONLY RUN` |
| `plan ... --unblinded`   | blinded statistician | 4    | the same as `analyse --unblinded`                  |

where MASKED is `is masked in this trial (masking.blinding: double) and may not see the arms`, ONLY is `only an
unblinded statistician`, EXPORT `may export the arms` and RUN `may run the unblinded analysis`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.trialfixtures import Trial, make_trial, username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role

runner = CliRunner()

MASKED = "is masked in this trial (masking.blinding: double) and may not see the arms; only an unblinded statistician"
EXPORT = ["export", "csv", "--with-arms", "--out"]
ANALYSE = ["analyse", "--unblinded", "--out"]
PLAN = ["plan", "--outcome", "il6", "--effect", "0.5", "--unblinded"]

CASES = [
    (EXPORT, Role.DATA_MANAGER, f"with_arms: a data manager {MASKED} may export the arms"),
    (EXPORT, Role.BLINDED_STATISTICIAN, f"with_arms: a blinded statistician {MASKED} may export the arms"),
    (ANALYSE, Role.BLINDED_STATISTICIAN, f"unblinded: a blinded statistician {MASKED} may run the unblinded analysis"),
    (PLAN, Role.BLINDED_STATISTICIAN, f"unblinded: a blinded statistician {MASKED} may run the unblinded analysis"),
]  # fmt: skip


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


@pytest.mark.parametrize(("command", "role", "rule"), CASES, ids=["export-dm", "export-bstat", "analyse", "plan"])
def test_a_masked_user_asking_for_the_arms_is_refused_with_the_permission_code(
    trial: Trial, tmp_path: Path, command: list[str], role: Role, rule: str
) -> None:
    out = tmp_path / "out"
    args = [*command, str(out)] if command[-1] == "--out" else command
    result = runner.invoke(cli, [*args, "--as", username(role), "--database", trial.url])
    said = " ".join(result.output.split())
    assert result.exit_code == 4, said
    assert rule in said, said
    assert not out.exists()
