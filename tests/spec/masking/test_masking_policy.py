"""The masking policy, as a table: which role may see an allocation, and what a blinded role is shown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.masking import MASKED, Viewer, may_see_allocation, present_arm, present_arms
from trialwright.domain.roles import Role
from trialwright.protocol import KNOWN_ROLES, load_protocol

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol

MAY_SEE = {
    Role.ADMINISTRATOR: False,
    Role.INVESTIGATOR: False,
    Role.STUDY_COORDINATOR: False,
    Role.OUTCOME_ASSESSOR: False,
    Role.UNBLINDED_PHARMACIST: True,
    Role.UNBLINDED_STATISTICIAN: True,
    Role.BLINDED_STATISTICIAN: False,
    Role.MONITOR: False,
    Role.DATA_MANAGER: False,
    Role.DSMB_MEMBER: True,
}


@pytest.mark.parametrize(("role", "expected"), MAY_SEE.items(), ids=[r.value for r in MAY_SEE])
def test_who_may_see_allocations(role: Role, expected: bool) -> None:
    viewer = Viewer("u", role)
    assert may_see_allocation(viewer) is expected
    assert may_see_allocation(viewer, "RAZ-001") is expected


@pytest.mark.covers("REG-6")
def test_an_emergency_unblinding_reveals_one_participant_to_one_viewer() -> None:
    viewer = Viewer("dr", Role.INVESTIGATOR, frozenset({"RAZ"}), frozenset({"RAZ-003"}))
    assert may_see_allocation(viewer, "RAZ-003")
    assert not may_see_allocation(viewer, "RAZ-004") and not may_see_allocation(viewer)
    assert present_arm(viewer, PROTOCOL.arms[0], "RAZ-003").code == "EXO"
    assert present_arm(viewer, PROTOCOL.arms[0], "RAZ-004").label == MASKED


def test_roles_the_protocol_may_name_are_the_roles() -> None:
    assert {r.value for r in Role} == KNOWN_ROLES


@given(
    role=st.sampled_from([r for r in Role if not may_see_allocation(Viewer("u", r))]),
    participant=st.one_of(st.none(), st.text(max_size=8)),
)
@pytest.mark.covers("REG-5")
def test_a_blinded_viewer_never_gets_anything_of_an_arm(role: Role, participant: str | None) -> None:
    viewer = Viewer("u", role)
    shown = [present_arm(viewer, arm, participant) for arm in PROTOCOL.arms] + present_arms(viewer, PROTOCOL)
    text = repr(shown)
    for arm in PROTOCOL.arms:
        assert arm.code not in text and arm.name not in text and arm.description not in text
    assert all(v.label == MASKED and v.code is None and v.ratio is None for v in shown)
