"""An allocation's preparation code stands for nothing to prepare only when the viewer sees an arm without a
product; to a blinded viewer every allocation has a preparation code (or the arm without a product would be
told apart)."""

from __future__ import annotations

from pathlib import Path

from tests.trialfixtures import first_protocol
from trialwright.domain.masking import MASKED
from trialwright.domain.preparation import nothing_to_prepare
from trialwright.protocol import load_protocol

OPEN_LABEL = Path(__file__).parents[3] / "protocols" / "EXAMPLE-MOBILISE-OL.yaml"


def test_an_arm_without_a_product_shown_to_an_allowed_viewer_has_nothing_to_prepare() -> None:
    protocol = load_protocol(OPEN_LABEL).protocol
    usual_care = next(a for a in protocol.arms if a.role.value == "no_intervention")
    assert usual_care.preparation() is None
    assert nothing_to_prepare(protocol, usual_care.code)


def test_a_masked_arm_always_has_its_preparation_code() -> None:
    assert not nothing_to_prepare(load_protocol(OPEN_LABEL).protocol, MASKED)
    assert not nothing_to_prepare(first_protocol().protocol, MASKED)


def test_an_arm_with_a_product_has_something_to_prepare() -> None:
    protocol = first_protocol().protocol
    assert all(a.preparation() is not None for a in protocol.arms)
    assert not any(nothing_to_prepare(protocol, a.code) for a in protocol.arms)
