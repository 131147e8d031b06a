"""A minor's assent beside a representative's consent (ICH E6(R3) 2.8.9-2.8.12, E11), on both databases.

The protocol declares when assent is sought: ``eligibility.assent: {from_age, unit, age_field, form_versions}``.
Here the first protocol is given ``{from_age: 18, unit: years, age_field: age, form_versions: [A1]}`` so that its
screened patient (aged 45) is of assent age; the first protocol itself declares none.

| consent record (by a representative)                   | decision                                                |
|--------------------------------------------------------|---------------------------------------------------------|
| no assent                                              | refused naming eligibility.assent.from_age              |
| assent given, by whom, when, form A1                   | recorded, audited, shown; enrolment goes ahead          |
| assent given on form A9                                 | refused naming eligibility.assent.form_versions         |
| assent not sought, no reason                           | refused naming assent_not_sought_reason                 |
| assent not sought, "unable to understand"              | recorded; enrolment goes ahead                          |
| dissent                                                 | recorded; enrolment refused naming eligibility.assent   |
| patient younger than from_age, assent sent             | refused (sought only from from_age)                     |
| the first protocol (no assent rule), no assent         | recorded as before                                      |
| the first protocol, assent sent                        | refused: the protocol declares no assent                |
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.spec.forms.conftest import earlier_today
from tests.spec.protocol.conftest import mutated_text
from tests.spec.screening.assent_fixtures import GIVEN, with_assent
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import Trial, first_protocol, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.services import audit
from trialwright.services.screening import ScreeningError, enrol, get_screening, record_consent, screen
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app


@pytest.fixture
def adults(database_url: str) -> Iterator[Trial]:
    trial = make_trial(database_url)
    try:
        yield trial
    finally:
        trial.engine.dispose()


def _screened(trial: Trial, age: int = 45) -> int:
    values = {**TYPED, "age": age}
    return screen(trial.engine, who(trial, Role.STUDY_COORDINATOR), site="RAZ", screened_on=TODAY, values=values).id


def _consent(trial: Trial, sid: int, **assent: Any) -> Any:
    return record_consent(
        trial.engine, who(trial, Role.INVESTIGATOR), sid, form_version="1.0", given_by="representative",
        representative_name="Maryam Ahmadi", representative_relationship="mother", obtained_by="Dr K",
        obtained_at=earlier_today(30), **assent,
    )  # fmt: skip


def test_a_representatives_consent_without_the_assent_is_refused(kids: Trial) -> None:
    with pytest.raises(ScreeningError, match=r"^assent: .*eligibility\.assent\.from_age"):
        _consent(kids, _screened(kids))
    assert get_screening(kids.engine, who(kids, Role.INVESTIGATOR), _screened(kids)).consents == ()


def test_a_given_assent_is_recorded_audited_and_enrolment_goes_ahead(kids: Trial) -> None:
    sid = _screened(kids)
    when = earlier_today(25)
    view = _consent(kids, sid, **GIVEN, assent_obtained_at=when)
    (c,) = view.consents
    assert (c.assent, c.assent_obtained_by, c.assent_form_version) == ("given", "Dr K", "A1")
    assert c.assent_obtained_at == when
    (entry,) = audit.entries(kids.engine, action_prefix="consent.")
    logged = json.loads(entry.new_value or "{}")
    assert logged["assent"] == "given" and logged["assent_form_version"] == "A1"
    assert logged["assent_obtained_at"] == when.isoformat()
    assert enrol(kids.engine, who(kids, Role.STUDY_COORDINATOR), sid).participant is not None


@pytest.mark.parametrize(
    ("sent", "words"),
    [
        ({**GIVEN, "assent_form_version": "A9"}, r"^assent_form_version: .*eligibility\.assent\.form_versions"),
        ({"assent": "given", "assent_form_version": "A1"}, r"^assent_obtained_by: "),
        ({"assent": "not_sought"}, r"^assent_not_sought_reason: "),
        ({"assent": "maybe"}, r"^assent: must be one of given, dissent, not_sought"),
        ({"assent_obtained_by": "Dr K"}, r"^assent_obtained_by: given without assent"),
    ],
)
def test_an_incomplete_assent_is_refused_naming_the_field(kids: Trial, sent: dict[str, Any], words: str) -> None:
    when = {"assent_obtained_at": earlier_today(25)} if sent.get("assent") == "given" else {}
    with pytest.raises(ScreeningError, match=words):
        _consent(kids, _screened(kids), **sent, **when)


def test_assent_not_sought_with_the_reason_is_recorded_and_enrolment_goes_ahead(kids: Trial) -> None:
    sid = _screened(kids)
    view = _consent(kids, sid, assent="not_sought", assent_not_sought_reason="unable to understand")
    assert view.consents[0].assent_not_sought_reason == "unable to understand"
    assert enrol(kids.engine, who(kids, Role.STUDY_COORDINATOR), sid).participant is not None


def test_a_dissent_is_recorded_and_refuses_enrolment_naming_the_rule(kids: Trial) -> None:
    sid = _screened(kids)
    view = _consent(kids, sid, assent="dissent", assent_obtained_by="Dr K", assent_obtained_at=earlier_today(25),
                    assent_form_version="A1")  # fmt: skip
    assert view.consents[0].assent == "dissent"
    with pytest.raises(ScreeningError, match=r"^assent: RAZ-S\d{4}'s own dissent .*\(eligibility\.assent\)"):
        enrol(kids.engine, who(kids, Role.STUDY_COORDINATOR), sid)
    assert get_screening(kids.engine, who(kids, Role.INVESTIGATOR), sid).participant is None


def test_below_the_assent_age_no_assent_is_needed_and_none_is_taken(kids: Trial) -> None:
    young = _screened(kids, age=17)
    with pytest.raises(ScreeningError, match=r"^assent: sought from 18 years .*17 years"):
        _consent(kids, young, **GIVEN, assent_obtained_at=earlier_today(25))
    assert _consent(kids, young).consents[0].assent is None


def test_the_first_protocol_is_unchanged_and_refuses_an_assent(adults: Trial) -> None:
    assert first_protocol().protocol.eligibility.assent is None
    sid = _screened(adults)
    with pytest.raises(ScreeningError, match=r"^assent: the protocol declares no assent"):
        _consent(adults, sid, **GIVEN, assent_obtained_at=earlier_today(25))
    app = create_app(Settings(database_url=adults.url, lockout_threshold=3))
    with as_role(app, Role.INVESTIGATOR) as inv:
        assert 'data-testid="assent-inputs"' not in inv.get(f"/screening/{sid}").text
    assert _consent(adults, sid).consents[0].assent is None
    assert enrol(adults.engine, who(adults, Role.STUDY_COORDINATOR), sid).participant is not None


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        ({"age_field": "agee"}, "eligibility.assent.age_field", "'agee' is not a screening field"),
        ({"age_field": "sex"}, "eligibility.assent.age_field", "sex is a choice field"),
        (
            {"age_field": "pao2_mmhg"},
            "eligibility.assent.age_field",
            "pao2_mmhg has the unit 'mmHg'; the assent rule reads an age in years or months",
        ),
        ({"unit": "decades"}, "eligibility.assent.unit", "'years' or 'months'"),
    ],
)
def test_an_assent_rule_that_cannot_be_applied_is_refused_with_its_line(rule: Any, path: str, words: str) -> None:
    text = mutated_text(lambda d: with_assent(d, **rule))
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="kids.yaml")
    found = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert found, str(caught.value)
    assert found[0].line is not None
    assert path.rsplit(".", 1)[1] in text.splitlines()[found[0].line - 1]
    assert f"kids.yaml:{found[0].line}: {path}: " in str(caught.value)


def test_an_age_field_without_a_unit_is_said_to_have_none_never_python_s_none() -> None:
    """Walk 4: the message said "acq_screen's unit is None"."""

    def unitless_age(document: Any) -> None:
        with_assent(document)
        document["eligibility"]["screening_fields"][0].pop("unit")

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(unitless_age), source="kids.yaml")
    said = [p.message for p in caught.value.problems if p.path == "eligibility.assent.age_field"]
    assert said == ["age has no unit; the assent rule reads an age in years or months (the field's unit: years or "
                    "months)"], str(caught.value)  # fmt: skip


@pytest.mark.parametrize("language", ["en", "fa"])
def test_the_page_offers_and_shows_the_assent(kids: Trial, language: str) -> None:
    sid = _screened(kids)
    if language == "fa":
        set_preferences(kids.engine, "investigator", language="fa")
    app = create_app(Settings(database_url=kids.url, lockout_threshold=3))
    with as_role(app, Role.INVESTIGATOR) as inv:
        assert 'data-testid="assent-inputs"' in inv.get(f"/screening/{sid}").text
        _consent(kids, sid, assent="not_sought", assent_not_sought_reason="unable to understand")
        page = html.unescape(inv.get(f"/screening/{sid}").text)
    shown = "رضایت خود شرکت‌کننده (assent) درخواست نشد" if language == "fa" else "the participant's assent not sought"
    assert 'data-testid="assent-1"' in page and shown in page and "unable to understand" in page
