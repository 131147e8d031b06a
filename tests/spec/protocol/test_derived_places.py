"""A derived decimal is rounded to the places the protocol declares, never to a default: `protocol check`
refuses a derived decimal field without `decimals`; a format-1 protocol that an older database stored is read
with the 2 places the engine of that time kept, so that database still opens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import first_protocol
from trialwright.domain.eligibility import Decision, evaluate
from trialwright.protocol import ProtocolError, load_protocol_text

BLOOD_GAS, PF_RATIO = 2, 7


def _without_places(format_: int) -> Any:
    def mutate(doc: Any) -> None:
        doc["format"] = format_
        field = doc["forms"][BLOOD_GAS]["fields"][PF_RATIO]
        assert field["id"] == "pf_ratio" and "derived" in field
        del field["decimals"]

    return mutate


def test_a_derived_decimal_field_without_places_is_refused() -> None:
    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(mutated_text(_without_places(2)))
    problem = next(p for p in refused.value.problems if p.path == f"forms[{BLOOD_GAS}].fields[{PF_RATIO}]")
    assert "a derived decimal field needs decimals" in problem.message and problem.line is not None


def test_a_format_1_protocol_keeps_the_places_its_engine_rounded_to() -> None:
    protocol = load_protocol_text(mutated_text(_without_places(1))).protocol
    assert protocol.form("blood_gas").field("pf_ratio").decimals == 2


def test_a_derived_decimal_screening_field_without_places_is_refused_as_on_forms() -> None:
    def mutate(doc: Any) -> None:
        next(f for f in doc["eligibility"]["screening_fields"] if f["id"] == "pf_ratio").pop("decimals")

    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(mutated_text(mutate))
    problem = next(p for p in refused.value.problems if p.path.startswith("eligibility.screening_fields["))
    assert "a derived decimal field needs decimals" in problem.message and problem.line is not None
    # A text a trial database stored before the rule still opens, its ratio read exact as its engine read it.
    stored = load_protocol_text(mutated_text(mutate), stored=True).protocol
    assert next(f for f in stored.eligibility.screening_fields if f.id == "pf_ratio").decimals is None

    def typed(doc: Any) -> None:
        next(f for f in doc["eligibility"]["screening_fields"] if f["id"] == "fio2")["decimals"] = 2

    with pytest.raises(ProtocolError, match="decimals are for a derived decimal field"):
        load_protocol_text(mutated_text(typed))  # places that nothing would apply are refused, not ignored


def test_the_criteria_read_the_derived_ratio_rounded_to_the_declared_places() -> None:
    """P/F 199.96 (PaO2 99.98 / FiO2 0.5) at 1 place is 200.0: "P/F below 200" does not hold, as shown."""
    protocol = first_protocol().protocol
    assert next(f for f in protocol.eligibility.screening_fields if f.id == "pf_ratio").decimals == 1
    decision = evaluate(protocol, {**ELIGIBLE, "pao2_mmhg": 99.98, "fio2": 0.5})
    assert decision.values["pf_ratio"] == 200.0  # 99.98 / 0.5 = 199.96, rounded half away from zero to 1 place
    below = evaluate(protocol, {**ELIGIBLE, "pao2_mmhg": 99.97, "fio2": 0.5})  # 199.94 -> 199.9
    assert below.values["pf_ratio"] == 199.9
    ratio = next(c.id for c in protocol.eligibility.inclusion if c.rule.field == "pf_ratio")
    assert [r.id for r in decision.failed] == [ratio] and below.decision is Decision.ELIGIBLE
