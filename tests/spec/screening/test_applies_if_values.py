"""A value for a screening field whose ``applies_if`` is false is refused (both databases).

The first trial asks ``pregnant`` only of women (``applies_if: {field: sex, eq: female}``). A value the question
does not apply to is refused, naming the field and the rule, on every path (service, API, CLI, page), and nothing is
written (no screening row, no audit entry); ``import odm`` refuses such a value in a file at its
``tw:ScreeningValues``:

| values saved                         | what happens                                                              |
|--------------------------------------|---------------------------------------------------------------------------|
| sex male, pregnant yes               | refused: pregnant: does not apply to this patient (applies_if: sex =      |
|                                      | female is false); leave it empty                                          |
| sex male, pregnant no                | refused the same way (any value, not only yes)                            |
| sex male, pregnant empty             | accepted (nothing to refuse)                                              |
| sex female, pregnant yes             | accepted                                                                  |
| sex not recorded, pregnant yes       | accepted: the condition cannot be decided, so the value is kept           |

A change (``update_screening``) by the same rule, on the values after the change:

| stored                    | change                               | what happens                                    |
|---------------------------|--------------------------------------|-------------------------------------------------|
| sex female, pregnant no   | sex -> male                          | refused, naming pregnant and sex                |
| sex female, pregnant no   | sex -> male and pregnant cleared     | accepted: pregnant left empty                   |
| sex male                  | pregnant -> yes                      | refused (does not apply)                        |
| nothing about sex         | pregnant -> yes                      | accepted (condition unknown)                    |
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.spec.exports.test_odm_queries import _export
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import Trial, first_protocol, second_trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.eligibility import ScreeningValueError
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.screening import get_screening, screen, update_screening
from trialwright.services.users import issue_token
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import screenings
from trialwright.web.routes.screening import INPUTS
from trialwright.web.wording import page_words, say

NOT_FOR_A_MAN = "pregnant: does not apply to this patient (applies_if: sex = female is false); leave it empty"
SEX_CHANGED = ("pregnant: a value is stored, and the change of sex makes it not apply to this patient (applies_if: "
               "sex = female is false); clear pregnant in the same change")  # fmt: skip


def _written(trial: Trial) -> tuple[int, int]:
    """The screenings and the screening audit entries there are."""
    with session_scope(trial.engine) as session:
        rows = session.execute(select(func.count()).select_from(screenings)).scalar_one()
    return rows, len(audit.entries(trial.engine, action_prefix="screening", limit=10_000))


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"sex": "male", "pregnant": True}, NOT_FOR_A_MAN),
        ({"sex": "male", "pregnant": False}, NOT_FOR_A_MAN),
        ({"sex": "male", "pregnant": ""}, None),
        ({"sex": "female", "pregnant": True}, None),
        ({"sex": None, "pregnant": True}, None),
    ],
    ids=["man, pregnant yes", "man, pregnant no", "man, pregnant empty", "woman, pregnant yes", "sex unknown"],
)
def test_a_new_screening_with_a_value_that_does_not_apply_is_refused(
    trial: Trial, changes: dict[str, Any], refused: str | None
) -> None:
    values = {k: v for k, v in {**TYPED, **changes}.items() if v is not None}
    before = _written(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    if refused is None:
        made = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=values)
        assert made.values.get("pregnant") == (changes["pregnant"] if changes["pregnant"] != "" else None)
        return
    with pytest.raises(ScreeningValueError) as caught:
        screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=values)
    assert caught.value.problems == (refused,)
    assert _written(trial) == before  # no row, no audit entry


def test_a_change_that_makes_a_stored_value_not_apply_is_refused_unless_it_clears_it(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    woman = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY,
                   values={**TYPED, "sex": "female", "pregnant": False})  # fmt: skip
    before = _written(trial)
    with pytest.raises(ScreeningValueError) as caught:
        update_screening(trial.engine, coordinator, woman.id, values={"sex": "male"}, reason="typed in error")
    assert caught.value.problems == (SEX_CHANGED,)
    assert _written(trial) == before
    assert get_screening(trial.engine, coordinator, woman.id).values["sex"] == "female"
    cleared = update_screening(
        trial.engine, coordinator, woman.id, values={"sex": "male", "pregnant": ""}, reason="typed in error"
    )
    assert cleared.values["sex"] == "male" and cleared.values.get("pregnant") is None
    man = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=TYPED)
    before = _written(trial)
    with pytest.raises(ScreeningValueError) as caught:
        update_screening(trial.engine, coordinator, man.id, values={"pregnant": True})
    assert caught.value.problems == (NOT_FOR_A_MAN,)
    assert _written(trial) == before
    unknown = screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY,
                     values={k: v for k, v in TYPED.items() if k != "sex"})  # fmt: skip
    assert update_screening(trial.engine, coordinator, unknown.id, values={"pregnant": True}).values["pregnant"] is True


def test_the_api_refuses_with_a_422_naming_the_field(client: TestClient, trial: Trial) -> None:
    token, _ = issue_token(trial.engine, username(Role.INVESTIGATOR), name="t", actor="t")
    headers = {"Authorization": f"Bearer {token}"}
    before = _written(trial)
    made = client.post(
        "/api/v1/screenings",
        headers=headers,
        json={"site": "RAZ", "screened_on": TODAY.isoformat(), "values": {**TYPED, "pregnant": True}},
    )
    assert made.status_code == 422
    assert made.json()["errors"] == [{"field": "pregnant", "rule": NOT_FOR_A_MAN, "message": None}]
    assert _written(trial) == before
    woman_values = {**TYPED, "sex": "female", "pregnant": False}
    woman = client.post(
        "/api/v1/screenings",
        headers=headers,
        json={"site": "RAZ", "screened_on": TODAY.isoformat(), "values": woman_values},
    )
    assert woman.status_code == 201
    before = _written(trial)
    changed = client.post(f"/api/v1/screenings/{woman.json()['id']}/values", headers=headers,
                          json={"values": {"sex": "male"}, "reason": "typed in error"})  # fmt: skip
    assert changed.status_code == 422
    assert changed.json()["errors"] == [{"field": "pregnant", "rule": SEX_CHANGED, "message": None}]
    assert _written(trial) == before
    cleared = client.post(f"/api/v1/screenings/{woman.json()['id']}/values", headers=headers,
                          json={"values": {"sex": "male", "pregnant": None}, "reason": "typed in error"})  # fmt: skip
    assert cleared.status_code == 200 and cleared.json()["values"]["pregnant"] is None


def test_the_cli_refuses_with_exit_code_1_naming_the_field(trial: Trial) -> None:
    runner = CliRunner()
    db = ["--database", trial.url, "--as", username(Role.STUDY_COORDINATOR)]
    before = _written(trial)
    add = ["screening", "add", "--site", "RAZ", *db]
    refused = runner.invoke(cli, add, input=json.dumps({**TYPED, "pregnant": True}))
    assert refused.exit_code == 1 and NOT_FOR_A_MAN in refused.output, refused.output
    assert _written(trial) == before
    woman = runner.invoke(cli, ["screening", "add", "--site", "RAZ", *db],
                          input=json.dumps({**TYPED, "sex": "female", "pregnant": True}))  # fmt: skip
    assert woman.exit_code == 0, woman.output


def test_the_page_refuses_by_the_fields_label(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.STUDY_COORDINATOR)
    form = client.get("/screening/new")
    before = _written(trial)
    data = {k: ("yes" if v is True else "no" if v is False else str(v)) for k, v in TYPED.items()}
    data |= {"pregnant": "yes", "site": "RAZ", "screened_on": TODAY.isoformat(), "csrf_token": csrf_of(form.text)}
    bad = client.post("/screening/new", data=data)
    assert bad.status_code == 422
    assert "Pregnant: does not apply to this patient (applies_if: sex = female is false); leave it empty" in bad.text
    assert _written(trial) == before


@pytest.fixture
def target(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Trial]:
    """A fresh trial of the same protocol on a second database of the same kind."""
    with second_trial(tmp_path, database_url, request) as fresh:
        yield fresh


def test_the_odm_import_refuses_a_screening_value_that_does_not_apply(
    trial: Trial, target: Trial, tmp_path: Path
) -> None:
    """A never-enrolled screening of a woman with pregnant = no, exported, then edited to a man: refused at its
    tw:ScreeningValues by the same rule, nothing written; the file as exported is imported."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    woman = {**TYPED, "sex": "female", "pregnant": False}
    screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values=woman)
    text = _export(trial, tmp_path / "odm").read_text(encoding="utf-8")
    assert text.count('"sex": "female"') == 1
    bad = tmp_path / "man.odm.xml"
    bad.write_text(text.replace('"sex": "female"', '"sex": "male"'), encoding="utf-8")
    manager = who(target, Role.DATA_MANAGER)
    before = _written(target)
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, manager, bad)
    assert f"tw:Screening[1]/tw:ScreeningValues: {NOT_FOR_A_MAN.replace('leave it empty', '')}" in str(refused.value)
    assert _written(target) == before
    good = tmp_path / "woman.odm.xml"
    good.write_text(text, encoding="utf-8")
    assert import_odm(target.engine, manager, good).screenings == 1


def test_both_refusals_are_said_in_the_pages_language() -> None:
    """On a Persian page the rule is said in Persian (the field by its Persian label, the protocol's rule as
    written); on an English page as the rule words it, the field by its label."""
    protocol = first_protocol().protocol
    for message in (NOT_FOR_A_MAN, SEX_CHANGED):
        (persian,) = say([message], page_words(protocol, "fa", *INPUTS), "fa")
        rule = persian.partition(": ")[2]
        assert re.search("[\u0600-\u06ff]", rule) and "sex = female" in rule, persian
        assert not re.search(r"does not apply|a value is stored|leave it empty|in the same change", persian), persian
        (english,) = say([message], page_words(protocol, "en", *INPUTS), "en")
        assert english == "Pregnant: " + message.partition(": ")[2].replace("change of sex", "change of Sex")
