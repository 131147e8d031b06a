"""What a visit holds decides what can be derived and exported: ``protocol check`` refuses what never could be.

A derived value is computed from the forms of its own visit (and screening). An input on another form that is
collected at none of the visits where the derived field's form is collected would leave the value empty for
ever, so the protocol is refused, naming the field, the input and the visits; an input's form collected at some
of those visits only leaves the value empty at the others, which ``protocol check`` notes.

Two fields giving the same SDTM LB/VS test (same test code and specimen) at one visit would be two records with
the same VISITNUM and date and nothing to tell them apart (the protocol has no timepoint, --TPT): refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from tests.conftest import FIRST_PROTOCOL
from tests.spec.protocol.conftest import mutated_text
from trialwright.cli.main import app
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.protocol.loader import Problem


def _doc() -> Any:
    """The first protocol as plain data (to find where a field appended by a mutation lands)."""
    return YAML(typ="safe").load(FIRST_PROTOCOL.read_text(encoding="utf-8"))


def _form(doc: Any, form_id: str) -> Any:
    return next(f for f in doc["forms"] if f["id"] == form_id)


def _index(doc: Any, form_id: str) -> int:
    return [f["id"] for f in doc["forms"]].index(form_id)


def _refused(mutate: Any) -> tuple[str, list[Problem]]:
    text = mutated_text(mutate)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="broken.yaml")
    return text, list(caught.value.problems)


# --- A. a derivation input on a form its visits do not collect ------------------------------------------------


def _crp_at_discharge(doc: Any) -> None:
    # hospital_course is collected at the discharge visit only; labs at baseline, day3 and day7.
    _form(doc, "hospital_course")["fields"].append(
        {"id": "crp_double", "label": "CRP x 2", "translations": {"fa": "CRP × ۲"}, "type": "decimal", "decimals": 1,
         "derived": {"kind": "formula", "expression": "2 * labs.crp", "missing": "refuse"}}
    )  # fmt: skip


def _stay_from_sampling(doc: Any) -> None:
    _form(doc, "hospital_course")["fields"].append(
        {"id": "days_since_gas", "label": "Days since the blood gas", "translations": {"fa": "روز از گاز خون"},
         "type": "integer",
         "derived": {"name": "length_of_stay", "inputs": {"admission": "blood_gas.sampled_at", "end": "ended_on"}}}
    )  # fmt: skip


def test_a_formula_reading_a_form_never_collected_at_its_visits_is_refused() -> None:
    text, problems = _refused(_crp_at_discharge)
    i = _index(_doc(), "hospital_course")
    j = len(_form(_doc(), "hospital_course")["fields"])  # the field appended last
    path = f"forms[{i}].fields[{j}].derived.expression"
    assert [p.path for p in problems] == [path], problems
    found = problems
    assert found[0].message == (
        "hospital_course.crp_double reads labs.crp, but form 'labs' is not collected at discharge, where form "
        "'hospital_course' is: a derived value reads only the forms of its own visit (and screening), so it would "
        "never be computed"
    )
    assert found[0].line is not None and "expression" in text.splitlines()[found[0].line - 1]


def test_a_named_derivation_reading_a_form_never_collected_at_its_visits_is_refused_naming_the_input() -> None:
    _, problems = _refused(_stay_from_sampling)
    i = _index(_doc(), "hospital_course")
    j = len(_form(_doc(), "hospital_course")["fields"])
    assert [p.path for p in problems] == [f"forms[{i}].fields[{j}].derived.inputs.admission"], problems
    found = problems
    assert "reads blood_gas.sampled_at, but form 'blood_gas' is not collected at discharge" in found[0].message


def test_an_input_form_collected_at_some_of_the_visits_is_accepted_and_noted() -> None:
    # PRIEST on vitals (baseline, infusion, day1, day3, day7) reads performance.status (baseline, day3, day7):
    # it is computed at three visits and has no value at the other two, which protocol check says.
    load_protocol_text(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    result = CliRunner().invoke(app, ["protocol", "check", str(FIRST_PROTOCOL)])
    assert result.exit_code == 0, result.output
    assert (
        "Note: vitals.priest_score has no value at infusion, day1: it reads form 'performance', which is not "
        "collected there"
    ) in result.output


# --- B. the same SDTM test twice at one visit ------------------------------------------------------------------


def _crp_copy(form_id: str, specimen: str | None = None) -> Any:
    def mutate(doc: Any) -> None:
        crp = next(f for f in _form(doc, "labs")["fields"] if f["id"] == "crp")
        copy = {key: crp[key] for key in ("label", "translations", "type", "decimals", "unit", "codes")}
        copy["codes"] = dict(copy["codes"], sdtm=dict(crp["codes"]["sdtm"]))
        if specimen is not None:
            copy["codes"]["sdtm"]["specimen"] = specimen
        _form(doc, form_id)["fields"].append({"id": "crp_again", **copy})

    return mutate


def test_the_same_lb_test_on_two_fields_at_one_visit_is_refused() -> None:
    # blood_gas (baseline, day1, day3, day7) comes before labs (baseline, day3, day7) in the file: labs.crp, the
    # later of the two, is refused once, at the first visit both are collected.
    _, problems = _refused(_crp_copy("blood_gas"))
    i = _index(_doc(), "labs")
    j = [f["id"] for f in _form(_doc(), "labs")["fields"]].index("crp")
    assert [p.path for p in problems] == [f"forms[{i}].fields[{j}].codes.sdtm.testcd"], problems
    found = problems
    assert found[0].message == (
        "blood_gas.crp_again and labs.crp both give LB test CRP at visit baseline: two LB records with the same "
        "VISITNUM and date and nothing to tell them apart (the protocol has no timepoint, --TPT); declare the test "
        "on one of them only"
    )


def test_the_same_test_on_forms_never_at_one_visit_or_on_another_specimen_is_accepted() -> None:
    load_protocol_text(mutated_text(_crp_copy("hospital_course")))  # discharge only: never beside labs
    load_protocol_text(mutated_text(_crp_copy("blood_gas", specimen="URINE")))  # LBSPEC tells them apart
