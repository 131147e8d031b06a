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

Who holds a code is found by the index of ``administered_codes`` (``store/administered.py``), which the save keeps
exact in its transaction:

| step                                                              | codes held after (record -> code)         |
|-------------------------------------------------------------------|-------------------------------------------|
| the first participant saves their own code                        | their record -> their code                |
| that code corrected away (the field cleared)                      | nothing                                   |
| saved again                                                       | their record -> their code                |
| another participant's record held it before the table (upgrade)   | refused; the other record corrected: saved |
| two participants' saves of one code at once (PostgreSQL)          | the second refused by the kit check, not  |
|                                                                   |   an IntegrityError; saved if the first   |
|                                                                   |   rolls back                              |

A refusal names the field and the rule ("kit check") and nothing else a blinded nurse should not learn: no
arm (code, name or intervention), not whose code it is, not the right code. Nothing already saved is lost.
The check follows the protocol's declaration, so a trial whose form is called ``dosing`` and whose field is
``kit_number`` is checked the same way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import column, delete, insert, select, table, update

from tests.conftest import fresh_database
from tests.migrations import downgrade
from tests.spec.protocol.conftest import mutated_text
from tests.spec.randomization.test_preparation import EXOSOMES, PLACEBO
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol, load_protocol, load_protocol_text
from trialwright.services.forms import FormError, get_form, save_form
from trialwright.services.randomization import generate_list, prepare, randomize, what_to_prepare
from trialwright.services.trial import init_trial
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.store.data_tables import form_records
from trialwright.store.engine import session_scope
from trialwright.store.migrate import upgrade
from trialwright.web.app import create_app

#: The first trial's arm whose dose has a particle count (the other, the placebo, has none).
EXO_ARM = next(a.name for a in load_protocol(FIRST_PROTOCOL).protocol.arms if a.code == "EXO")


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=20)
    yield t
    t.engine.dispose()


def randomized(trial: Trial, *, prepared: bool = True) -> tuple[str, str]:
    """A new participant, randomized (and, unless ``prepared`` is false, their dose prepared by the pharmacist):
    their id and preparation code."""
    pid = enrolled(trial)
    code = randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid).preparation_code
    if prepared:
        pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
        values = PLACEBO if what_to_prepare(trial.engine, pharmacist, code).arm != EXO_ARM else EXOSOMES
        prepare(trial.engine, pharmacist, code, values)
    return pid, code


def test_a_dose_is_not_recorded_as_given_before_its_preparation_is_recorded(trial: Trial) -> None:
    """Walk 4 (F9): the administration form was saved before the pharmacist recorded the preparation. Both arms of
    the first trial declare a preparation, so for either arm the save is refused, in the same words (no arm), and
    accepted once the preparation is recorded."""
    nurse, pharmacist = who(trial, Role.STUDY_COORDINATOR), who(trial, Role.UNBLINDED_PHARMACIST)
    arms: set[str] = set()
    while len(arms) < 2:
        pid, code = randomized(trial, prepared=False)
        arm = what_to_prepare(trial.engine, pharmacist, code).arm
        if arm in arms:
            continue
        arms.add(arm)
        message = refusal(trial, pid, {"preparation_code": code})
        assert message == (
            f"preparation_code: {code} has no preparation recorded yet (kit check: a dose is given only once the "
            "unblinded pharmacist has recorded its preparation); ask the pharmacy to record it, then save again"
        )
        assert not any(word in message for word in arm_words(load_protocol(FIRST_PROTOCOL).protocol))
        assert get_form(trial.engine, nurse, pid, "infusion", "administration") is None
        prepare(trial.engine, pharmacist, code, EXOSOMES if arm == EXO_ARM else PLACEBO)
        saved = save_form(trial.engine, nurse, pid, "infusion", "administration", {"preparation_code": code})
        assert saved.values["preparation_code"].value == code


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


AD_COLUMNS = ("form_record_id", "preparation_code", "participant_id", "form_id", "claim")


def given_already(code: str) -> str:
    return (f"preparation_code: {code} is recorded already on another participant's administration form (kit check: "
            "a preparation code is given once); the data manager resolves the other record first")  # fmt: skip


def held(trial: Trial) -> dict[int, tuple[str, str]]:
    """The administered codes: record -> (code, participant)."""
    from trialwright.store.data_tables import administered_codes

    with session_scope(trial.engine) as session:
        rows = session.execute(select(administered_codes)).all()
    return {r.form_record_id: (r.preparation_code, r.participant_id) for r in rows}


def record_of(trial: Trial, pid: str) -> int:
    with session_scope(trial.engine) as session:
        return int(session.execute(select(form_records.c.id).where(form_records.c.participant_id == pid)).scalar_one())


def test_a_code_another_administration_record_holds_is_refused(trial: Trial) -> None:
    nurse = who(trial, Role.STUDY_COORDINATOR)
    first, first_code = randomized(trial)
    second, second_code = randomized(trial)
    save_form(trial.engine, nurse, first, "infusion", "administration", {"volume": 3.0})
    # Data from before the kit check (and before its table): the first participant's record holds the second's code;
    # the upgrade that makes the table finds it there.
    downgrade(trial.engine, "0040")
    with session_scope(trial.engine) as session:
        session.execute(
            update(form_records)
            .where(form_records.c.participant_id == first)
            .values(form_values=json.dumps({"preparation_code": {"value": second_code}}))
        )
    upgrade(trial.engine)
    assert held(trial) == {record_of(trial, first): (second_code, first)}
    assert refusal(trial, second, {"preparation_code": second_code}) == given_already(second_code)
    with session_scope(trial.engine) as session:
        assert session.execute(select(form_records.c.id).where(form_records.c.participant_id == second)).first() is None
    # The data manager corrects the first record to the first participant's own code: the second's is free.
    save_form(trial.engine, nurse, first, "infusion", "administration", {"preparation_code": first_code},
              reason="label misread")  # fmt: skip
    save_form(trial.engine, nurse, second, "infusion", "administration", {"preparation_code": second_code})
    assert held(trial) == {
        record_of(trial, first): (first_code, first),
        record_of(trial, second): (second_code, second),
    }


def test_a_corrected_code_keeps_the_codes_held_exact(trial: Trial) -> None:
    nurse = who(trial, Role.STUDY_COORDINATOR)
    first, first_code = randomized(trial)
    save_form(trial.engine, nurse, first, "infusion", "administration", {"preparation_code": first_code})
    record = record_of(trial, first)
    assert held(trial) == {record: (first_code, first)}
    save_form(trial.engine, nurse, first, "infusion", "administration", {"preparation_code": None})
    assert held(trial) == {}
    cleared = get_form(trial.engine, nurse, first, "infusion", "administration")
    assert cleared is not None and "preparation_code" not in cleared.values
    save_form(trial.engine, nurse, first, "infusion", "administration", {"preparation_code": first_code, "volume": 2})
    assert held(trial) == {record: (first_code, first)}
    # A save that changes another field leaves the code where it is.
    save_form(trial.engine, nurse, first, "infusion", "administration", {"volume": 2.5})
    assert held(trial) == {record: (first_code, first)}


@pytest.fixture
def pg_url(tmp_path: Path, postgres_available: str | None) -> Iterator[str]:
    """PostgreSQL only: SQLite runs one writer at a time, so no two saves are ever in flight together there."""
    with fresh_database("postgresql", tmp_path, postgres_available) as url:
        yield url


def test_two_participants_saving_one_code_at_once_the_second_is_refused(pg_url: str) -> None:
    """PostgreSQL: the other participant's save holding the code is in flight (its row written, not committed) when
    this save checks; this save's claim waits for it, and when it commits, the save is refused by the kit check (not
    an IntegrityError), nothing of it kept; when it rolls back instead, the save goes through. (No allocation gives
    one code to two participants, so the other save in flight is written here, as an import or a legacy record
    could hold the code.)"""
    trial = make_trial(pg_url)
    try:
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=20)
        nurse = who(trial, Role.STUDY_COORDINATOR)
        first, first_code = randomized(trial)
        second, _ = randomized(trial)
        save_form(trial.engine, nurse, second, "infusion", "administration", {"volume": 3.0})
        other = record_of(trial, second)
        for outcome in ("commit", "rollback"):
            outcomes: list[Any] = []
            with trial.engine.connect() as conn:
                in_flight = conn.begin()
                conn.execute(insert(table("administered_codes", *map(column, AD_COLUMNS))).values(
                    form_record_id=other, preparation_code=first_code, participant_id=second, form_id="administration",
                    claim=first_code,
                ))  # fmt: skip

                def save(into: list[Any]) -> None:
                    try:
                        into.append(save_form(trial.engine, nurse, first, "infusion", "administration",
                                              {"preparation_code": first_code}))  # fmt: skip
                    except Exception as exc:
                        into.append(exc)  # what it raised is the point

                thread = threading.Thread(target=save, args=(outcomes,))
                thread.start()
                thread.join(timeout=3)
                assert thread.is_alive() and outcomes == []  # it waits for the save in flight
                in_flight.commit() if outcome == "commit" else in_flight.rollback()
                thread.join(timeout=30)
            (result,) = outcomes
            if outcome == "commit":
                assert isinstance(result, FormError) and str(result) == given_already(first_code)
                assert held(trial) == {other: (first_code, second)}
                assert get_form(trial.engine, nurse, first, "infusion", "administration") is None
                with session_scope(trial.engine) as session:
                    session.execute(delete(table("administered_codes")))
            else:
                assert not isinstance(result, Exception), result
                assert held(trial) == {record_of(trial, first): (first_code, first)}
    finally:
        trial.engine.dispose()


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


# --- an amendment that names another code field -----------------------------------------------------------------


def _amended(version: str, *, kit_number: bool) -> Any:
    """The first protocol at ``version``: a site added (amendment 2), and with ``kit_number`` also the administration
    form's new field kit_number named as the code field (amendment 3)."""

    def change(doc: Any) -> None:
        doc["version"] = {"number": version, "date": "2026-11-01"}
        doc["amendments"].append({"number": 2, "date": "2026-11-01", "version": "3.0", "reason": "A third site."})
        doc["sites"].append({"code": "IMA", "name": "Imam Khomeini Hospital", "timezone": "Asia/Tehran",
                             "translations": {"fa": "بیمارستان امام خمینی"}})  # fmt: skip
        if kit_number:
            doc["amendments"].append({"number": 3, "date": "2026-11-01", "version": version, "reason": "Kit labels."})
            form = next(f for f in doc["forms"] if f["id"] == "administration")
            form["fields"].append({"id": "kit_number", "label": "Kit number", "type": "text", "max_length": 16,
                                   "translations": {"fa": "شماره کیت"}})  # fmt: skip
            doc["analysis_plan"]["treatment"]["code_field"] = "kit_number"

    return load_protocol_text(mutated_text(change), source=f"amended-{version}.yaml")


def test_an_amendment_naming_another_code_field_makes_the_codes_held_anew(trial: Trial) -> None:
    """| amendment                                   | codes held after                                      |
    |---------------------------------------------|-------------------------------------------------------|
    | a site added (the kit's form and field kept) | as before                                              |
    | the code field becomes kit_number           | read anew from kit_number: none, until a save holds one |"""
    nurse = who(trial, Role.STUDY_COORDINATOR)
    first, first_code = randomized(trial)
    save_form(trial.engine, nurse, first, "infusion", "administration", {"preparation_code": first_code})
    record = record_of(trial, first)
    init_trial(trial.engine, _amended("3.0", kit_number=False))
    assert held(trial) == {record: (first_code, first)}
    init_trial(trial.engine, _amended("4.0", kit_number=True))
    assert held(trial) == {}
    save_form(trial.engine, nurse, first, "infusion", "administration", {"kit_number": first_code})
    assert held(trial) == {record: (first_code, first)}


def _placebo_prepares_nothing(doc: Any) -> None:
    """A custom masking of the outcome assessor alone (neither who gives the dose nor a reader of the audit trail),
    which lets one arm prepare nothing while the other prepares a dose. (Masking the investigator or the coordinator
    too is refused by protocol check: a participant given nothing would tell them the arm;
    ``tests/spec/randomization/test_preparation.py``.)"""
    doc["masking"] = {"blinding": "custom", "masked": ["outcome_assessor"],
                      "masked_roles": ["outcome_assessor"]}  # fmt: skip
    doc["trial"]["design"]["blinding"] = "single"
    doc["arms"][1]["intervention"]["preparation"] = "none"


def test_where_an_arm_prepares_nothing_no_arm_waits_for_its_preparation(database_url: str) -> None:
    """The review of walk 4's F9 fix: refusing a dose before its preparation only for the arms that prepare one
    would tell the arm to whoever reads the refusal where another arm prepares nothing. So where any arm prepares
    nothing, the administration is never refused for want of a preparation record, whatever the arm (before: the
    prepared arm's participant was refused and the other's saved)."""
    from tests.spec.protocol.conftest import mutated_text
    from trialwright.services.randomization import allocation_of

    t = make_trial(database_url, load_protocol_text(mutated_text(_placebo_prepares_nothing)))
    try:
        generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=20)
        nurse = who(t, Role.STUDY_COORDINATOR)
        saved_in: set[str] = set()
        while len(saved_in) < 2:
            pid, code = randomized(t, prepared=False)
            arm = allocation_of(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), pid)
            assert arm is not None
            saved = save_form(t.engine, nurse, pid, "infusion", "administration", {"preparation_code": code})
            assert saved.values["preparation_code"].value == code
            saved_in.add(arm.arm)
    finally:
        t.engine.dispose()
