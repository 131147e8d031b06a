"""Who may consent: the age of consent beside a child's assent, and the one initial consent (both databases).

A protocol that seeks a child's assent declares the age from which a participant consents for themselves,
``eligibility.assent.consent_age`` (in the assent's unit). Here the first protocol is given
``{from_age: 7, unit: years, age_field: age, form_versions: [A1], consent_age: 18}`` and admits ages 7-65.

| consent record                                                  | decision                                           |
|-----------------------------------------------------------------|----------------------------------------------------|
| a 10-year-old's own consent                                     | refused naming given_by and consent_age            |
| a 17-year-old's own consent on the screening day                | refused (17 + 0 days is below 18)                  |
| an 18-year-old's own consent                                    | recorded; enrolment goes ahead                     |
| a parent's consent for the 10-year-old, with the child's assent | recorded; enrolment goes ahead                     |
| a second *initial* consent once enrolled (a dissent included)   | refused naming kind and the re-consent             |
| a re-consent once enrolled                                      | recorded                                           |
| assent declared without consent_age, or consent_age <= from_age | ``protocol check`` refuses naming consent_age      |
| the same text read back from a trial database                   | loads (its engine applied no age of consent)       |
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.spec.forms.conftest import earlier_today
from tests.spec.protocol.conftest import mutated_text
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.assent import own_consent_problem
from trialwright.domain.roles import Role
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.protocol.design import Assent
from trialwright.services.screening import (
    ScreeningError,
    enrol,
    get_screening,
    record_consent,
    screen,
    update_screening,
)
from trialwright.store.screening_tables import screenings

RULE = {"from_age": 7, "unit": "years", "age_field": "age", "form_versions": ["A1"], "consent_age": 18}


def _text(**rule: Any) -> str:
    def amend(document: Any) -> None:
        document["eligibility"]["assent"] = {**RULE, **rule}
        document["trial"]["design"]["minimum_age"] = "P7Y"  # children from 7 are eligible
        for criterion in document["eligibility"]["inclusion"]:
            if criterion["rule"].get("field") == "age":
                criterion["rule"]["between"] = [7, 65]
        for key in [k for k, v in rule.items() if v is None]:
            del document["eligibility"]["assent"][key]

    return mutated_text(amend)


@pytest.fixture
def kids(database_url: str) -> Iterator[Trial]:
    trial = make_trial(database_url, load_protocol_text(_text()))
    try:
        yield trial
    finally:
        trial.engine.dispose()


def _screened(trial: Trial, age: int) -> int:
    values = {**TYPED, "age": age}
    return screen(trial.engine, who(trial, Role.STUDY_COORDINATOR), site="RAZ", screened_on=TODAY, values=values).id


def _own(trial: Trial, sid: int, minutes: int = 30, **more: Any) -> Any:
    return record_consent(trial.engine, who(trial, Role.INVESTIGATOR), sid, form_version="1.0",
                          given_by="participant", obtained_by="Dr K", obtained_at=earlier_today(minutes),
                          **more)  # fmt: skip


def _parent(trial: Trial, sid: int, minutes: int = 30, **more: Any) -> Any:
    assent = {"assent": "given", "assent_obtained_by": "Dr K", "assent_obtained_at": earlier_today(minutes),
              "assent_form_version": "A1"}  # fmt: skip
    return record_consent(trial.engine, who(trial, Role.INVESTIGATOR), sid, form_version="1.0",
                          given_by="representative", representative_name="Maryam Ahmadi",
                          representative_relationship="mother", obtained_by="Dr K",
                          obtained_at=earlier_today(minutes), **{**assent, **more})  # fmt: skip


@pytest.mark.parametrize("age", [10, 17])
def test_a_minors_own_consent_is_refused_naming_the_field_and_the_rule(kids: Trial, age: int) -> None:
    sid = _screened(kids, age)
    with pytest.raises(ScreeningError) as caught:
        _own(kids, sid)
    assert str(caught.value) == (
        f"given_by: the participant is {age} years at screening, below the age of consent (18 years, "
        "eligibility.assent.consent_age); a representative consents for them, with their assent"
    )
    assert get_screening(kids.engine, who(kids, Role.INVESTIGATOR), sid).consents == ()
    with pytest.raises(ScreeningError, match="only an eligible patient is enrolled"):  # no consent: incomplete
        enrol(kids.engine, who(kids, Role.STUDY_COORDINATOR), sid)


def test_an_adults_own_consent_and_a_parents_consent_for_a_child_are_recorded(kids: Trial) -> None:
    adult, child = _screened(kids, 18), _screened(kids, 10)
    _own(kids, adult)
    _parent(kids, child)
    coordinator = who(kids, Role.STUDY_COORDINATOR)
    assert enrol(kids.engine, coordinator, adult).participant is not None
    assert enrol(kids.engine, coordinator, child).participant is not None


@pytest.mark.parametrize(
    ("age", "days", "refused"),
    # the age at the record is at least the screening age plus the days since, in 366-day years
    [(17, 0, True), (17, 365, True), (17, 366, False), (10, 2900, True), (10, 2928, False), (18, 0, False)],
)
def test_the_age_at_the_record_counts_the_days_since_screening(age: int, days: int, refused: bool) -> None:
    rule = Assent.model_validate(RULE)
    found = own_consent_problem(rule, age=age, age_unit="years", given_by="participant", days_since=days)
    assert (found is not None) is refused
    assert own_consent_problem(rule, age=None, age_unit="years", given_by="participant", days_since=0) is not None
    assert own_consent_problem(rule, age=age, age_unit="years", given_by="representative", days_since=days) is None


@pytest.mark.parametrize("given", ["participant", "representative"])
def test_an_initial_consent_after_enrolment_is_refused_a_reconsent_is_the_way(kids: Trial, given: str) -> None:
    sid = _screened(kids, 18 if given == "participant" else 10)
    record = _own if given == "participant" else _parent
    record(kids, sid, 40)
    enrolled = enrol(kids.engine, who(kids, Role.STUDY_COORDINATOR), sid).participant
    assert enrolled is not None
    for decision, extra in (("consent", {}), ("refuse", {})):
        more = {"decision": decision, **extra}
        if given == "representative" and decision == "refuse":
            more |= {"assent": None, "assent_obtained_by": None, "assent_obtained_at": None,
                     "assent_form_version": None}  # fmt: skip
        with pytest.raises(ScreeningError) as caught:
            record(kids, sid, 20, kind="initial", **more)
        assert str(caught.value) == (
            f"kind: {get_screening(kids.engine, who(kids, Role.INVESTIGATOR), sid).label} is enrolled as "
            f"{enrolled.participant_id}; an initial consent is recorded before enrolment, and a later one is a "
            "re-consent (kind: reconsent)"
        )
    if given == "representative":  # the walk's case: a second initial consent carrying the child's dissent
        with pytest.raises(ScreeningError, match=r"^kind: .* is enrolled as "):
            record(kids, sid, 20, kind="initial", assent="dissent")
    assert len(get_screening(kids.engine, who(kids, Role.INVESTIGATOR), sid).consents) == 1
    record(kids, sid, 10, kind="reconsent")
    assert [c.kind for c in get_screening(kids.engine, who(kids, Role.INVESTIGATOR), sid).consents] == [
        "initial", "reconsent"
    ]


@pytest.mark.parametrize(
    ("rule", "words"),
    [({"consent_age": None}, "declare the age, in the assent's unit, from which a participant consents"),
     ({"consent_age": 7}, "7 years is not above from_age (7)")],
)
def test_protocol_check_refuses_assent_without_an_age_of_consent_above_it(rule: dict[str, Any], words: str) -> None:
    text = _text(**rule)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="kids.yaml")
    found = [p for p in caught.value.problems if p.path == "eligibility.assent.consent_age" and words in p.message]
    assert found, str(caught.value)
    assert found[0].line is not None and ("assent" in (line := text.splitlines()[found[0].line - 1])
                                          or "consent_age" in line)  # fmt: skip
    assert load_protocol_text(text, stored=True).protocol.eligibility.assent is not None


def test_an_age_corrected_below_the_age_of_consent_under_the_participants_own_consent_is_refused(
    kids: Trial,
) -> None:
    sid = _screened(kids, 19)
    _own(kids, sid)
    investigator = who(kids, Role.INVESTIGATOR)
    with pytest.raises(ScreeningError) as caught:
        update_screening(kids.engine, investigator, sid, values={"age": 10}, reason="typed wrong")
    said = str(caught.value)
    assert said.startswith("age: corrected to 10, RAZ-S0001's consent record in force (initial, ")
    assert "is the participant's own, no longer allowed" in said and "eligibility.assent.consent_age" in said
    assert get_screening(kids.engine, investigator, sid).values["age"] == 19  # nothing changed
    # the way: the correction with a representative's consent recorded again, with the child's assent
    again = {"form_version": "1.0", "given_by": "representative", "representative_name": "Maryam Ahmadi",
             "representative_relationship": "mother", "obtained_by": "Dr K", "obtained_at": earlier_today(10),
             "kind": "reconsent", "assent": "given", "assent_obtained_by": "Dr K",
             "assent_obtained_at": earlier_today(10), "assent_form_version": "A1"}  # fmt: skip
    view = update_screening(kids.engine, investigator, sid, values={"age": 10}, reason="typed wrong", consent=again)
    assert view.values["age"] == 10 and [c.given_by for c in view.consents] == ["participant", "representative"]
    assert enrol(kids.engine, who(kids, Role.STUDY_COORDINATOR), sid).participant is not None


def test_enrolment_refuses_a_participants_own_consent_below_the_age_of_consent(kids: Trial) -> None:
    sid = _screened(kids, 19)
    _own(kids, sid)
    with kids.engine.begin() as conn:  # as a database written before the rule, or by hand, could hold it
        read = select(screenings.c.screening_values).where(screenings.c.id == sid)
        stored = json.loads(conn.execute(read).scalar_one())
        conn.execute(update(screenings).where(screenings.c.id == sid).values(
            screening_values=json.dumps({**stored, "age": 10}, sort_keys=True)))  # fmt: skip
    with pytest.raises(ScreeningError) as caught:
        enrol(kids.engine, who(kids, Role.STUDY_COORDINATOR), sid)
    assert str(caught.value).startswith("consent: RAZ-S0001's consent in force is the participant's own: given_by: ")
    assert "eligibility.assent.consent_age" in str(caught.value)


def test_a_consent_sent_with_unchanged_values_is_recorded_not_dropped(kids: Trial) -> None:
    sid = _screened(kids, 19)
    investigator = who(kids, Role.INVESTIGATOR)
    consent = {"form_version": "1.0", "given_by": "participant", "obtained_by": "Dr K",
               "obtained_at": earlier_today(10)}  # fmt: skip
    view = update_screening(kids.engine, investigator, sid, values={"age": 19}, consent=consent)
    assert [(c.given_by, c.decision) for c in view.consents] == [("participant", "consent")]
