"""`trialwright recruitment status|forecast|registry-update` on the hand-built trial (both databases): the same
numbers as the service, dates in both calendars, arms only for the unblinded, refusals naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.spec.recruitment.test_recruitment_service import ARM_WORDS, hand_built
from tests.trialfixtures import Trial, username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role

runner = CliRunner()


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = hand_built(module_database_url)
    yield t
    t.engine.dispose()


def _run(trial: Trial, role: Role, *args: str) -> tuple[int, str]:
    done = runner.invoke(cli, ["recruitment", *args, "--as", username(role), "--database", trial.url])
    return done.exit_code, done.output


def test_status(trial: Trial) -> None:
    code, out = _run(trial, Role.STUDY_COORDINATOR, "status", "--as-of", "2021-06-30")
    assert code == 0, out
    assert "Recruitment as of 2021-06-30, 1400/04/09: 3 of 30 randomized (10%)" in out
    assert "Planned recruitment: 2021-05-20, 1400/02/30 to 2021-09-22, 1400/06/31" in out
    assert "not eligible" in out and "I1 Age 18 to 65 years" in out
    assert "median 2 (interquartile range 1-3), 3 randomized" in out
    assert not [w for w in ARM_WORDS if w in out]
    code, out = _run(trial, Role.STUDY_COORDINATOR, "status", "--as-of", "2021-06-30", "--json")
    data = json.loads(out)
    assert code == 0 and data["totals"]["randomized"] == 3 and data["arms"] is None
    code, out = _run(trial, Role.DSMB_MEMBER, "status", "--as-of", "2021-06-30")
    assert code == 0 and "Randomized by arm" in out and "EXO" in out and "PBO" in out


def test_forecast_and_what_if(trial: Trial) -> None:
    code, out = _run(trial, Role.BLINDED_STATISTICIAN, "forecast", "--as-of", "2021-06-30")
    assert code == 0, out
    assert "Forecast as of 2021-06-30, 1400/04/09 (one pooled rate" in out and "randomized: 3 of 30 (27 to go)" in out
    assert "  80% interval: 2021-12-" in out and "P(target by the planned end, 2021-09-22, 1400/06/31): 0%" in out
    code, out = _run(trial, Role.BLINDED_STATISTICIAN, "forecast", "--as-of", "2021-06-30", "--new-site-rate", "6",
                     "--new-site-opens", "2021-07-15", "--end-date", "2022-03-20")  # fmt: skip
    assert code == 0, out
    assert "what-if: a new site, 6 a month from 2021-07-15, 1400/04/24" in out
    assert "P(target by 2022-03-20, 1400/12/29)" in out and "monte-carlo" in out
    code, out = _run(trial, Role.BLINDED_STATISTICIAN, "forecast", "--as-of", "2021-06-30", "--json")
    assert code == 0 and json.loads(out)["state"] == "forecast"


def test_refusals_name_the_field(trial: Trial) -> None:
    code, out = _run(trial, Role.MONITOR, "forecast", "--as-of", "2021-06-30", "--new-site-rate", "2",
                     "--new-site-opens", "2021-06-01")  # fmt: skip
    assert code == 1 and "new_site_opens: is in the past (today is 2021-06-30)" in out
    code, out = _run(trial, Role.MONITOR, "forecast", "--new-site-rate", "2")
    assert code == 1 and "new_site_opens: is required with new_site_rate" in out
    code, out = _run(trial, Role.OUTCOME_ASSESSOR, "status")
    assert code == 4 and "role: only the trial team reads recruitment" in out
    # the refusal names the roles that do (an outcome assessor could not tell who "the trial team" is)
    team = ("administrator, investigator, study_coordinator, monitor, data_manager, blinded_statistician, "
            "unblinded_statistician, dsmb_member")  # fmt: skip
    assert f"({team})" in " ".join(out.split())


def test_registry_update(trial: Trial) -> None:
    code, out = _run(trial, Role.INVESTIGATOR, "registry-update", "--as-of", "2021-06-30")
    assert code == 0 and out.startswith("Recruitment as of 2021-06-30, 1400/04/09: 3 participants randomized")
    assert "declined 1" in out
