"""A field's unit in the reader's language (issue 24, a new user's walk): a protocol may give a unit in its other
declared languages (``unit_translations``, beside ``unit`` as ``help_translations`` beside ``help``); a Persian
reader then reads it on the form page (to enter and read only), the casebook and the screening form, while the
value stays stored in the declared unit and an English reader reads it as written. It is optional (``mg`` reads the
same in many languages); given, it needs every declared language, and a field without a unit has none to
translate: ``protocol check`` refuses either, naming the field. Both databases for the pages."""

from __future__ import annotations

import html
from typing import Any

import pytest

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol.loader import ProtocolError, load_protocol_text
from trialwright.services import forms as forms_svc
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app

CRP_FA = "میلی‌گرم در لیتر"
AGE_FA = "سال"


def _field(doc: Any, form: str, field: str) -> Any:
    found = next(f for f in doc["forms"] if f["id"] == form)
    return next(x for x in found["fields"] if x["id"] == field)


def _with_units(doc: Any) -> None:
    _field(doc, "labs", "crp")["unit_translations"] = {"fa": CRP_FA}
    next(f for f in doc["eligibility"]["screening_fields"] if f["id"] == "age")["unit_translations"] = {"fa": AGE_FA}


def _refused(mutate: Any) -> list[Any]:
    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(mutated_text(mutate), "trial.yaml")
    return list(refused.value.problems)


def test_a_unit_translation_is_optional_and_loads_when_given() -> None:
    p = load_protocol_text(mutated_text(_with_units)).protocol
    crp = next(f for f in p.form("labs").fields if f.id == "crp")
    assert crp.unit == "mg/L" and crp.unit_translations == {"fa": CRP_FA}


def test_a_unit_translation_without_a_declared_language_is_refused() -> None:
    def german_only(doc: Any) -> None:
        _field(doc, "labs", "crp")["unit_translations"] = {"de": "mg/L"}

    (problem,) = _refused(german_only)
    assert problem.path.endswith(".unit") and "forms[" in problem.path
    assert problem.message == (
        "no 'fa' translation of the unit text (the protocol declares 'fa' in languages): add fa: ... to "
        f"unit_translations in {problem.path.removesuffix('.unit')}"
    )


def test_a_unit_translation_of_a_field_without_a_unit_is_refused() -> None:
    def unitless(doc: Any) -> None:
        _field(doc, "labs", "sampled_at")["unit_translations"] = {"fa": "ساعت"}

    (problem,) = _refused(unitless)
    assert problem.path.endswith(".unit_translations") and "does not declare" in problem.message


def test_a_persian_reader_reads_the_unit_in_persian(database_url: str) -> None:
    trial = make_trial(database_url, load_protocol_text(mutated_text(_with_units)))
    try:
        app = create_app(Settings(database_url=trial.url))
        pid = enrolled_ten_days_ago(trial)
        coordinator = who(trial, Role.STUDY_COORDINATOR)
        forms_svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 40})
        set_preferences(trial.engine, coordinator.username, language="fa")
        set_preferences(trial.engine, who(trial, Role.MONITOR).username, language="fa")
        url = f"/participants/{pid}/visits/baseline/forms/labs"
        with as_role(app, Role.STUDY_COORDINATOR) as coord:
            entry = html.unescape(coord.get(url).text)
            screening = html.unescape(coord.get("/screening/new").text)
        with as_role(app, Role.MONITOR) as monitor:
            read_only = html.unescape(monitor.get(url).text)
            casebook = html.unescape(monitor.get(f"/data/casebook/{pid}").text)
        with as_role(app, Role.DATA_MANAGER) as manager:  # an English reader, read only
            english = html.unescape(manager.get(url).text)
        # entering: the declared unit's choice beside its alternative (mg/dL, as written), isolated (FSI ... PDI)
        assert f'<option value="">\u2068{CRP_FA}\u2069</option>' in entry and ">mg/L<" not in entry
        for page in (read_only, casebook):
            assert f"<bdi>{CRP_FA}</bdi>" in page and "mg/L</bdi>" not in page
        assert f"<bdi>{AGE_FA}</bdi>" in screening and ">years</bdi>" not in screening
        assert '<bdi dir="ltr">mg/L</bdi>' in english and CRP_FA not in english
    finally:
        trial.engine.dispose()


#: The first trial's units that are words (or a word's abbreviation): translated; its symbols: kept as written.
FIRST_TRIAL_WORDS = {"years": "سال", "/min": "در دقیقه", "d": "روز", "fraction": "کسر", "particles": "ذره"}
FIRST_TRIAL_SYMBOLS = {"%", "mmHg", "°C", "kg", "cm", "mL", "L/min", "cmH2O", "pg/mL", "mg/L", "ug/mL FEU", "/uL"}


def _units(doc: Any) -> list[dict[str, Any]]:
    """Every field of the file that declares a unit: form fields, screening fields, preparation attributes."""
    fields = [f for form in doc["forms"] for f in form["fields"]] + list(doc["eligibility"]["screening_fields"])
    preparations = [(arm.get("intervention") or {}).get("preparation") or {} for arm in doc["arms"]]
    fields += [a for p in preparations for a in p.get("attributes") or []]
    return [f for f in fields if f.get("unit")]


def test_the_first_trial_translates_its_word_units_and_keeps_its_symbols() -> None:
    import yaml

    from tests.trialfixtures import FIRST_PROTOCOL

    doc = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    units = _units(doc)
    assert {f["unit"] for f in units} == set(FIRST_TRIAL_WORDS) | FIRST_TRIAL_SYMBOLS  # every unit is one or other
    for f in units:
        if f["unit"] in FIRST_TRIAL_WORDS:
            assert f.get("unit_translations") == {"fa": FIRST_TRIAL_WORDS[f["unit"]]}, f["id"]
        else:
            assert "unit_translations" not in f, f["id"]


def test_a_persian_reader_of_the_first_trial_reads_per_minute_in_persian_and_mmhg_as_written(
    database_url: str,
) -> None:
    trial = make_trial(database_url)
    try:
        app = create_app(Settings(database_url=trial.url))
        pid = enrolled_ten_days_ago(trial)
        coordinator = who(trial, Role.STUDY_COORDINATOR)
        forms_svc.save_form(trial.engine, coordinator, pid, "baseline", "vitals", {"resp_rate": 22, "systolic_bp": 118})
        set_preferences(trial.engine, who(trial, Role.MONITOR).username, language="fa")
        with as_role(app, Role.MONITOR) as monitor:
            read_only = html.unescape(monitor.get(f"/participants/{pid}/visits/baseline/forms/vitals").text)
        assert "<bdi>در دقیقه</bdi>" in read_only and ">/min</bdi>" not in read_only
        assert '<bdi dir="ltr">mmHg</bdi>' in read_only
    finally:
        trial.engine.dispose()
