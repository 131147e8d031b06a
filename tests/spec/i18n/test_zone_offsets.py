"""A time on a site's clock names its zone with the offset written as ISO 8601 does, with its colon: ``+03:30
(Asia/Tehran)``, never the bare ``+0330`` (issue 24); on a Persian page in Persian digits, ``+۰۳:۳۰``; in an
e-mail ``Asia/Tehran (+03:30)``. Both databases. The expected moment is computed with zoneinfo and jdatetime."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import jdatetime
import pytest
from fastapi.testclient import TestClient

from tests.spec.forms.conftest import ENROLLED_AT, enrolled_ten_days_ago
from tests.spec.web.conftest import sign_in
from tests.trialfixtures import Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.services.email.messages import local_time
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app

FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
TEHRAN = ZoneInfo("Asia/Tehran")


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _page(trial: Trial, path: str) -> str:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.INVESTIGATOR)
        return html.unescape(re.sub(r"<[^>]*>", " ", client.get(path).text))


def test_the_participant_page_writes_the_offset_with_its_colon(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    local = ENROLLED_AT.astimezone(TEHRAN)
    assert local.utcoffset() == dt.timedelta(hours=3, minutes=30)  # Iran has kept +03:30 all year since 2022
    jalali = jdatetime.date.fromgregorian(date=local.date()).strftime("%Y/%m/%d")
    english = _page(trial, f"/participants/{pid}")  # the accounts' default calendar: both
    assert f"{local:%Y-%m-%d}, {jalali} {local:%H:%M} +03:30 (Asia/Tehran)" in english
    assert "+0330" not in english
    set_preferences(trial.engine, username(Role.INVESTIGATOR), language="fa", calendar="jalali")
    persian = _page(trial, f"/participants/{pid}")
    assert f"{jalali} {local:%H:%M} +03:30".translate(FA) + " (Asia/Tehran)" in persian
    assert "+۰۳۳۰" not in persian and "+0330" not in persian


def test_an_e_mail_names_the_zone_and_the_offset_with_its_colon() -> None:
    at = dt.datetime(2026, 12, 4, 11, 5, tzinfo=dt.UTC)
    assert local_time(at, "Asia/Tehran") == "2026-12-04 14:35 Asia/Tehran (+03:30)"
    assert local_time(at, "America/New_York") == "2026-12-04 06:05 America/New_York (-05:00)"
