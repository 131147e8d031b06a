"""The recruitment page's plots are drawn once per what they show (``web.routes.recruitment._plot``): the same page
asked again draws nothing new, and anything a plot shows (the numbers as of a day, the reader's arms, the language
and calendar) draws it anew, so no reader is ever shown a plot drawn for other numbers or for an unblinded reader.
On both databases, on the hand-built trial of the recruitment specs."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.spec.recruitment.test_recruitment_service import hand_built
from tests.spec.web.conftest import csrf_of, sign_in
from tests.spec.web.test_blinded_crawl import ARM_SECRETS, _leaks
from tests.trialfixtures import Trial
from trialwright.domain.roles import Role
from trialwright.settings import Settings
from trialwright.web import recruitment_plots
from trialwright.web.app import create_app
from trialwright.web.routes import recruitment as page_module


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = hand_built(module_database_url)
    yield t
    t.engine.dispose()


@pytest.fixture
def client(trial: Trial) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as c:
        yield c


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The plots matplotlib drew, by name, from an empty memo."""
    names: list[str] = []
    monkeypatch.setattr(page_module, "_DRAWN", type(page_module._DRAWN)())

    def counting(name: str, real):  # type: ignore[no-untyped-def]
        def draw(*args, **kwargs):  # type: ignore[no-untyped-def]
            names.append(name)
            return real(*args, **kwargs)

        return draw

    for name in ("cumulative_svg", "forecast_svg", "reasons_svg"):
        monkeypatch.setattr(page_module, name, counting(name, getattr(recruitment_plots, name)))
    return names


def _plots(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, re.DOTALL)


def test_the_same_page_again_draws_nothing_new(client: TestClient, drawn: list[str]) -> None:
    sign_in(client, Role.STUDY_COORDINATOR)
    first = client.get("/recruitment?as_of=2021-06-30")
    assert first.status_code == 200 and len(_plots(first.text)) == 4
    assert sorted(drawn) == ["cumulative_svg", "forecast_svg", "reasons_svg", "reasons_svg"]
    again = client.get("/recruitment?as_of=2021-06-30")
    assert len(drawn) == 4 and _plots(again.text) == _plots(first.text)


def test_other_numbers_draw_other_plots(client: TestClient, drawn: list[str]) -> None:
    sign_in(client, Role.STUDY_COORDINATOR)
    june = _plots(client.get("/recruitment?as_of=2021-06-30").text)
    april = _plots(client.get("/recruitment?as_of=2021-04-15").text)
    assert drawn.count("cumulative_svg") == 2 and june[0] != april[0]
    assert _plots(client.get("/recruitment?as_of=2021-06-30").text) == june and drawn.count("cumulative_svg") == 2


def test_a_blinded_reader_never_gets_the_plot_drawn_with_arms(client: TestClient, drawn: list[str]) -> None:
    sign_in(client, Role.DSMB_MEMBER)
    unblinded = client.get("/recruitment?as_of=2021-06-30").text
    assert _leaks(_plots(unblinded)[0], ARM_SECRETS) != []  # the detector sees the arms' names on that plot
    client.cookies.clear()
    sign_in(client, Role.MONITOR)
    blinded = client.get("/recruitment?as_of=2021-06-30").text
    assert _leaks(blinded, ARM_SECRETS) == [] and _plots(blinded)[0] != _plots(unblinded)[0]
    assert drawn.count("cumulative_svg") == 2


def test_another_language_draws_its_own_words(client: TestClient, drawn: list[str]) -> None:
    sign_in(client, Role.DATA_MANAGER)
    english = _plots(client.get("/recruitment?as_of=2021-06-30").text)
    form = {"csrf_token": csrf_of(client.get("/profile").text), "language": "fa", "calendar": "jalali",
            "next": "/recruitment"}  # fmt: skip
    try:
        assert client.post("/profile/preferences", data=form).status_code == 303
        persian = _plots(client.get("/recruitment?as_of=1400/04/09").text)
        assert "بیماران (تجمعی)" in persian[0] and "بیماران (تجمعی)" not in english[0]
        assert drawn.count("cumulative_svg") == 2
    finally:
        form = {"csrf_token": csrf_of(client.get("/profile").text), "language": "en", "calendar": "both"}
        client.post("/profile/preferences", data=form)
