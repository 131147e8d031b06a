"""A derived decimal is rounded to the places the protocol declares, never to a default: `protocol check`
refuses a derived decimal field without `decimals`; a format-1 protocol that an older database stored is read
with the 2 places the engine of that time kept, so that database still opens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
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
