"""`trialwright recruitment` prints dates in the trial's calendars (both databases): the hand-built trial of
test_recruitment_service under a protocol that declares ``languages: [en]`` and ``calendars: [gregorian]`` prints
no Solar Hijri date (a new user's walk: an English-only trial in Lusaka and Lima got ``2025-10-10, 1404/07/18``).
The first protocol, which declares no calendars, keeps both (test_recruitment_cli)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.spec.recruitment.test_recruitment_service import hand_built
from tests.trialfixtures import FIRST_PROTOCOL, Trial, username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role

runner = CliRunner()
JALALI = re.compile(r"1[34]\d\d/\d\d/\d\d")


@pytest.fixture(scope="module")
def trial(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trial]:
    path = tmp_path_factory.mktemp("gregorian") / "trial.yaml"
    declared = "languages: [en]\ncalendars: [gregorian]\n"
    path.write_text(FIRST_PROTOCOL.read_text(encoding="utf-8").replace("languages: [en, fa]\n", declared), "utf-8")
    t = hand_built(module_database_url, path)
    yield t
    t.engine.dispose()


def _run(trial: Trial, *args: str) -> str:
    done = runner.invoke(cli, ["recruitment", *args, "--as", username(Role.BLINDED_STATISTICIAN), "--database",
                               trial.url])  # fmt: skip
    assert done.exit_code == 0, done.output
    return done.output


def test_a_gregorian_trial_forecast_prints_no_solar_hijri_date(trial: Trial) -> None:
    out = _run(trial, "forecast", "--as-of", "2021-06-30", "--new-site-rate", "6", "--new-site-opens", "2021-07-15")
    assert "Forecast as of 2021-06-30 (one pooled rate" in out
    assert "P(target by the planned end, 2021-09-22): " in out and "a month from 2021-07-15\n" in out
    assert not JALALI.search(out), JALALI.findall(out)
    status = _run(trial, "status", "--as-of", "2021-06-30")
    assert "Planned recruitment: 2021-05-20 to 2021-09-22" in status and not JALALI.search(status)
    # the forecast's sentence from the service (the page's and the API's text) too
    message = _run(trial, "forecast", "--as-of", "2021-06-30", "--json")
    assert "as of 2021-06-30;" in message and not JALALI.search(message)
