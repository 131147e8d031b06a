"""The kit check, read as the specification (issue 20 item 2), on SQLite and PostgreSQL.

The protocol names the form and field that record the preparation code given
(``analysis_plan.treatment: {form, code_field}``; in the first trial ``administration.preparation_code``).
Saving that field:

| code entered                                   | participant       | result                                        |
|------------------------------------------------|-------------------|-----------------------------------------------|
| the participant's own allocated code           | randomized        | saved                                         |
| another participant's allocated code           | randomized        | refused: "not the code allocated to" them     |
| any code                                       | not randomized    | refused: "not the code allocated to" them     |
| own code, but another participant's record     | randomized        | refused: "recorded already on another         |
|   holds it already (e.g. data from before)     |                   |   participant's ... form"                     |

A refusal names the field and the rule ("kit check") and nothing else a blinded nurse should not learn: no
arm (code, name or intervention), not whose code it is, not the right code. Nothing already saved is lost.
The check follows the protocol's declaration, so a trial whose form is called ``dosing`` and whose field is
``kit_number`` is checked the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.spec.protocol.conftest import mutated_text
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol, load_protocol, load_protocol_text
from trialwright.services.forms import FormError, get_form, save_form
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.store.data_tables import form_records
from trialwright.store.engine import session_scope
from trialwright.web.app import create_app


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=20)
    yield t
    t.engine.dispose()


def randomized(trial: Trial) -> tuple[str, str]:
    """A new participant, randomized: their id and preparation code."""
    pid = enrolled(trial)
    return pid, randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid).preparation_code


def arm_words(protocol: Protocol) -> list[str]:
    """Every word that would name an arm: codes, names and interventions."""
    return [w for a in protocol.arms for w in (a.code, a.name, a.intervention.name) if w]


def refusal(trial: Trial, pid: str, values: dict[str, Any], *, form: str = "administration") -> str:
    with pytest.raises(FormError) as caught:
        save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "infusion", form, values)
    return str(caught.value)


def test_only_the_participants_own_code_is_accepted(trial: Trial) -> None:
    nurse = who(trial, Role.STUDY_COORDINATOR)
    first, first_code = randomized(trial)
    second, second_code = randomized(trial)
    saved = save_form(trial.engine, nurse, first, "infusion", "administration", {"volume": 3.0})
    assert saved.values["volume"].value == 3.0

    message = refusal(trial, first, {"preparation_code": second_code, "volume": 4.0})
    assert message == (
        f"preparation_code: {second_code} is not the code allocated to participant {first} (kit check); do not "
        "give it: check the label against the participant's randomization record"
    )
    assert second not in message and first_code not in message  # not whose it is, nor the right code
    protocol = load_protocol(FIRST_PROTOCOL).protocol
    assert not any(word.lower() in message.lower() for word in arm_words(protocol))
    kept = get_form(trial.engine, nurse, first, "infusion", "administration")
    assert kept is not None and kept.values["volume"].value == 3.0 and "preparation_code" not in kept.values

    ok = save_form(trial.engine, nurse, first, "infusion", "administration", {"preparation_code": first_code})
    assert ok.values["preparation_code"].value == first_code
    # A participant not randomized has no code of their own.
    third = enrolled(trial)
    assert refusal(trial, third, {"preparation_code": first_code}).startswith(
        f"preparation_code: {first_code} is not the code allocated to participant {third} (kit check"
    )


def test_a_code_another_administration_record_holds_is_refused(trial: Trial) -> None:
    nurse = who(trial, Role.STUDY_COORDINATOR)
    first, _ = randomized(trial)
    second, second_code = randomized(trial)
    save_form(trial.engine, nurse, first, "infusion", "administration", {"volume": 3.0})
    # Data from before the kit check: the first participant's record holds the second's code.
    with session_scope(trial.engine) as session:
        session.execute(
            update(form_records)
            .where(form_records.c.participant_id == first)
            .values(form_values=json.dumps({"preparation_code": {"value": second_code}}))
        )
    assert refusal(trial, second, {"preparation_code": second_code}) == (
        f"preparation_code: {second_code} is recorded already on another participant's administration form "
        "(kit check: a preparation code is given once); the data manager resolves the other record first"
    )
    with session_scope(trial.engine) as session:
        assert session.execute(select(form_records.c.id).where(form_records.c.participant_id == second)).first() is None


def test_the_api_answers_a_kit_check_refusal_as_422_naming_the_field(trial: Trial) -> None:
    first, _ = randomized(trial)
    _, second_code = randomized(trial)
    token, _ = issue_token(trial.engine, username(Role.STUDY_COORDINATOR), name="t", actor="test")
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        answer = api.post(
            f"/api/v1/participants/{first}/visits/infusion/forms/administration",
            headers={"Authorization": f"Bearer {token}"},
            json={"values": {"preparation_code": second_code}},
        )
    assert answer.status_code == 422
    (problem,) = answer.json()["errors"]
    assert problem["rule"].startswith(f"preparation_code: {second_code} is not the code allocated to participant")
    assert problem["field"] == "preparation_code"


# --- a trial that names its form and field otherwise ---------------------------------------------------------


def _renamed(doc: Any) -> None:
    """The administration form called dosing, its code field kit_number, everywhere the protocol names them."""
    form = next(f for f in doc["forms"] if f["id"] == "administration")
    form["id"] = "dosing"
    next(f for f in form["fields"] if f["id"] == "preparation_code")["id"] = "kit_number"
    for visit in doc["visits"]:
        visit["forms"] = ["dosing" if f == "administration" else f for f in visit["forms"]]
    plan = doc["analysis_plan"]
    plan["treatment"]["form"], plan["treatment"]["code_field"] = "dosing", "kit_number"
    plan["per_protocol"]["exclude_when"] = [
        w.replace("administration.", "dosing.") for w in plan["per_protocol"]["exclude_when"]
    ]


def test_the_form_and_field_come_from_the_protocol(database_url: str) -> None:
    loaded = load_protocol_text(mutated_text(_renamed), source="renamed.yaml")
    assert "administration" not in {f.id for f in loaded.protocol.forms}
    trial = make_trial(database_url, loaded)
    try:
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=20)
        first, first_code = randomized(trial)
        _, second_code = randomized(trial)
        assert refusal(trial, first, {"kit_number": second_code}, form="dosing").startswith(
            f"kit_number: {second_code} is not the code allocated to participant {first} (kit check)"
        )
        nurse = who(trial, Role.STUDY_COORDINATOR)
        saved = save_form(trial.engine, nurse, first, "infusion", "dosing", {"kit_number": first_code})
        assert saved.values["kit_number"].value == first_code
    finally:
        trial.engine.dispose()
