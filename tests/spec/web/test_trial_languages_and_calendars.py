"""A trial's languages and calendars as its protocol declares them (a new user's walk, defect 3).

An English-only Gregorian trial (``languages: [en]``, ``calendars: [gregorian]``) offers no Persian switch and
shows no Solar Hijri date, on pages or in the CLI's forecast; a cookie for an undeclared language or calendar falls
back to the protocol's first. The first protocol (no ``calendars`` key) keeps both calendars by default."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.spec.web.conftest import sign_in
from tests.trialfixtures import Trial, first_protocol, make_trial, username
from trialwright.cli.main import app
from trialwright.domain.roles import Role
from trialwright.protocol.loader import ProtocolError, load_protocol_text
from trialwright.services.tokens import issue_token
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app

FIRST = Path(__file__).resolve().parents[3] / "protocols" / "IRCT20190101042197N2.yaml"
#: a Solar Hijri date as pages and the CLI write it (13xx/14xx years)
JALALI = re.compile(r"1[34]\d\d/\d\d/\d\d")


def english_gregorian_text() -> str:
    declared = "languages: [en]\ncalendars: [gregorian]\n"
    return FIRST.read_text(encoding="utf-8").replace("languages: [en, fa]\n", declared)


@pytest.fixture
def english_trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url, load_protocol_text(english_gregorian_text()))
    yield t
    t.engine.dispose()


@pytest.fixture
def english_client(english_trial: Trial) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=english_trial.url)), follow_redirects=False) as c:
        yield c


def test_an_english_gregorian_trial_offers_no_persian_and_no_solar_hijri(english_client: TestClient) -> None:
    sign_in_page = english_client.get("/sign-in")
    assert sign_in_page.status_code == 200
    assert "فارسی" not in sign_in_page.text and 'name="language"' not in sign_in_page.text
    assert 'value="jalali"' not in sign_in_page.text and 'value="both"' not in sign_in_page.text
    english_client.cookies.set("trialwright_lang", "fa")  # a cookie for an undeclared language: English pages
    english_client.cookies.set("trialwright_calendar", "both")
    assert 'lang="en"' in english_client.get("/sign-in").text
    sign_in(english_client, Role.STUDY_COORDINATOR)
    home = english_client.get("/")
    assert home.status_code == 200 and "2021-04-19" in home.text
    assert "فارسی" not in home.text and not JALALI.search(home.text), JALALI.findall(home.text)[:3]


def test_the_first_protocol_still_offers_both_languages_and_calendars(client: TestClient, trial: Trial) -> None:
    assert first_protocol().protocol.calendars is None
    page = client.get("/sign-in").text
    assert "فارسی" in page and 'value="jalali"' in page and 'value="both" selected' in page
    sign_in(client, Role.STUDY_COORDINATOR)
    assert "2021-04-19, 1400/01/30" in client.get("/").text


def test_an_unknown_calendar_is_refused_with_its_line() -> None:
    text = english_gregorian_text().replace("calendars: [gregorian]", "calendars: [gregorian, islamic]")
    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(text, "trial.yaml")
    (problem,) = refused.value.problems
    assert problem.path == "calendars[1]" and "'gregorian' or 'solar_hijri'" in problem.message
    assert problem.line == text.splitlines().index("calendars: [gregorian, islamic]") + 1


def test_a_persian_both_calendars_preference_falls_back_on_pages_and_in_the_api(
    english_trial: Trial, english_client: TestClient
) -> None:
    # a preference stored before (or set elsewhere) for a language and calendar this trial does not declare
    set_preferences(english_trial.engine, username(Role.STUDY_COORDINATOR), language="fa", calendar="both")
    sign_in(english_client, Role.STUDY_COORDINATOR)
    home = english_client.get("/")
    assert 'lang="en"' in home.text and not JALALI.search(home.text)
    token, _ = issue_token(english_trial.engine, username(Role.STUDY_COORDINATOR), name="t", actor="test")
    me = english_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and (me.json()["language"], me.json()["calendar"]) == ("en", "gregorian")


def test_protocol_check_says_both_calendars_are_shown_when_none_is_declared(tmp_path: Path) -> None:
    """The default (both calendars) is said by ``protocol check``, never left to surprise a one-calendar trial."""
    def notes(text: str) -> list[str]:
        path = tmp_path / "trial.yaml"
        path.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(app, ["protocol", "check", str(path), "--json"])
        assert result.exit_code == 0, result.output
        return [n for n in json.loads(result.output)["notes"] if n.startswith("Calendars:")]

    assert notes(FIRST.read_text(encoding="utf-8")) == [
        "Calendars: none declared (calendars): every date is shown in both the Gregorian and the Solar Hijri "
        "calendar (each person may choose one); declare calendars: [gregorian] or [solar_hijri] to show only one "
        "(docs/i18n.md)"
    ]
    assert notes(english_gregorian_text()) == []
