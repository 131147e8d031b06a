"""The masking policy: for a viewer and a piece of data, whether the viewer may see an allocation.

This is the only module that knows which roles are unblinded. Every page, API response, export, report
and notification asks it before showing an arm; everything else shows the arm as ``masked``. An
emergency unblinding (issue 5) adds one participant to one viewer's ``unblinded_participants``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trialwright.domain.roles import Role
from trialwright.protocol import Arm, Protocol

__all__ = ["MASKED", "UNBLINDED_ROLES", "ArmView", "Viewer", "may_see_allocation", "present_arm", "present_arms"]

#: What a blinded viewer sees in place of an arm.
MASKED = "masked"

#: Roles that know allocations by the nature of their work.
UNBLINDED_ROLES: frozenset[Role] = frozenset({Role.UNBLINDED_PHARMACIST, Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER})


@dataclass(frozen=True)
class Viewer:
    """Who is looking: their role, sites, and any participants emergency-unblinded to them."""

    username: str
    role: Role
    sites: frozenset[str] = frozenset()
    unblinded_participants: frozenset[str] = field(default_factory=frozenset)

    @property
    def blinded(self) -> bool:
        """Whether this viewer is kept from allocations in general."""
        return self.role not in UNBLINDED_ROLES


@dataclass(frozen=True)
class ArmView:
    """An arm as one viewer may see it: for a blinded viewer only the word ``masked``."""

    label: str
    code: str | None = None
    name: str | None = None
    role: str | None = None
    description: str | None = None
    ratio: int | None = None


def may_see_allocation(viewer: Viewer, participant_id: str | None = None) -> bool:
    """Whether ``viewer`` may see the arm of ``participant_id`` (or arms in general when None)."""
    if not viewer.blinded:
        return True
    return participant_id is not None and participant_id in viewer.unblinded_participants


def present_arm(viewer: Viewer, arm: Arm, participant_id: str | None = None) -> ArmView:
    """The arm as ``viewer`` may see it."""
    if not may_see_allocation(viewer, participant_id):
        return ArmView(label=MASKED)
    return ArmView(
        label=arm.name,
        code=arm.code,
        name=arm.name,
        role=arm.role.value,
        description=arm.description,
        ratio=arm.ratio,
    )


def present_arms(viewer: Viewer, protocol: Protocol) -> list[ArmView]:
    """The protocol's arms as ``viewer`` may see them (one entry per arm; masked for blinded viewers)."""
    return [present_arm(viewer, arm) for arm in protocol.arms]
