"""An allocation whose arm has nothing to prepare keeps its preparation code, and the pages and the command line say
that there is nothing to prepare without a word about the arm (issue 24: the old "none (this arm receives no
product)" dropped the code and spoke of the arm), in English and in Persian, both databases.

The viewers are the open-label trial's site team (the arm shown to them, so they may be told there is nothing to
prepare) and the pharmacist; a blinded viewer is told neither (``domain.preparation.nothing_to_prepare``,
``tests/spec/randomization/test_nothing_to_prepare.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.spec.masking.test_blinding_as_declared import _open_label
from tests.spec.protocol.conftest import mutated_text
from tests.spec.randomization.test_randomize_service import enrolled
from tests.spec.web.conftest import sign_in
from tests.trialfixtures import Trial, make_trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services.randomization import generate_list, randomize, what_to_prepare
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app

USUAL_CARE = "Placebo (PBS) + standard care"  # the open-label trial's arm without a product (its name kept)
ARM_WORDS = ("this arm", "receives no product", "این بازو", "فرآورده‌ای دریافت نمی‌کند")


@pytest.fixture
def open_trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url, load_protocol_text(mutated_text(_open_label)))
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=3)
    yield t
    t.engine.dispose()


def _usual_care(trial: Trial) -> tuple[str, str]:
    """A participant randomized to usual care, and their preparation code."""
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    while True:
        made = randomize(trial.engine, who(trial, Role.INVESTIGATOR), enrolled(trial))
        if what_to_prepare(trial.engine, pharmacist, made.preparation_code).arm == USUAL_CARE:
            return made.participant_id, made.preparation_code


def _testid(page: str, testid: str) -> str:
    inner = page.split(f'data-testid="{testid}"', 1)[1].split(">", 1)[1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", "", inner.split("</dd>", 1)[0].split("</p>", 1)[0])).strip()


@pytest.mark.parametrize(("lang", "words", "prepare_words"), [
    ("en", "nothing to prepare", "There is nothing to prepare for this code."),
    ("fa", "چیزی برای آماده‌سازی نیست", "برای این کد چیزی برای آماده‌سازی نیست."),
])  # fmt: skip
def test_the_pages_keep_the_code_and_say_there_is_nothing_to_prepare(
    open_trial: Trial, lang: str, words: str, prepare_words: str
) -> None:
    pid, code = _usual_care(open_trial)
    for role in (Role.INVESTIGATOR, Role.UNBLINDED_PHARMACIST):
        set_preferences(open_trial.engine, who(open_trial, role).username, language=lang, calendar="gregorian")
    with TestClient(create_app(Settings(database_url=open_trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.INVESTIGATOR)
        shown = _testid(client.get(f"/participants/{pid}").text, "preparation-code")
    assert shown == f"{code} ({words})"
    with TestClient(create_app(Settings(database_url=open_trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.UNBLINDED_PHARMACIST)
        prepare = _testid(client.get(f"/pharmacy/{code}").text, "nothing-to-prepare")
    assert prepare.endswith(prepare_words)
    assert not any(w in shown + prepare for w in ARM_WORDS)


def test_the_command_line_keeps_the_code_and_says_there_is_nothing_to_prepare(open_trial: Trial) -> None:
    pharmacist = who(open_trial, Role.UNBLINDED_PHARMACIST)
    while True:
        done = CliRunner().invoke(cli, ["randomize", enrolled(open_trial), "--database", open_trial.url,
                                        "--as", username(Role.INVESTIGATOR)])  # fmt: skip
        assert done.exit_code == 0, done.output
        code = re.search(r"preparation code ([^\s,]+)", done.output)
        assert code is not None, done.output
        if what_to_prepare(open_trial.engine, pharmacist, code.group(1)).arm == USUAL_CARE:
            break
    assert f"preparation code {code.group(1)} (nothing to prepare), arm" in done.output
    assert not any(w in done.output for w in ARM_WORDS)
