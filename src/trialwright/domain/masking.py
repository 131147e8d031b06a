"""The masking policy: for a viewer and a piece of data, whether the viewer may see an allocation.

This is the only module that knows which roles are masked. The protocol's ``masking.blinding`` decides
(``masked_roles``): open label and single-blind (the participant only) mask no system role; double- and
triple-blind (and protocols that predate ``blinding``) mask every role except those unblinded by their work
(``UNBLINDED_ROLES``); custom masks exactly the roles it lists. Every page, API response, export, report and
notification asks it before showing an arm; everything else shows the arm as ``masked``. An emergency
unblinding adds one participant to one viewer's ``unblinded_participants``; it exists only where the
investigator is masked (``unblinding_applies``).

A form whose values differ by arm (``forms[].reveals_arm``) is kept whole from every masked role
(``kept_forms``): its values, anything derived from them, their audit entries and queries. An emergency
unblinding does not open it (the unblinding is for the one participant's care, not their record). Every path
that shows or exports form values asks ``may_see_form`` or filters by ``kept_forms``; none keeps its own list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from trialwright.domain.roles import Role, only_roles_may, role_named
from trialwright.protocol import Arm, Protocol
from trialwright.protocol.design import Blinding

__all__ = [
    "BLINDED_ROLES",
    "MASKED",
    "UNBLINDED_ROLES",
    "ArmView",
    "Viewer",
    "arms_refused",
    "kept_forms",
    "masked_roles",
    "may_see_allocation",
    "may_see_form",
    "present_arm",
    "present_arms",
    "sees_arms",
    "unblinding_applies",
    "viewer_for",
]

#: What a blinded viewer sees in place of an arm.
MASKED = "masked"

#: Roles that know allocations by the nature of their work.
UNBLINDED_ROLES: frozenset[Role] = frozenset({Role.UNBLINDED_PHARMACIST, Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER})

#: Roles a double- or triple-blind trial masks: every role but those unblinded by their work.
BLINDED_ROLES: frozenset[Role] = frozenset(Role) - UNBLINDED_ROLES


def masked_roles(protocol: Protocol) -> frozenset[Role]:
    """The system roles kept from the arms in this trial (see the module docstring)."""
    m = protocol.masking
    if m.blinding in (Blinding.OPEN, Blinding.SINGLE):
        return frozenset()
    if m.blinding is Blinding.CUSTOM:
        return frozenset(Role(r) for r in m.masked_roles)
    return BLINDED_ROLES


def sees_arms(protocol: Protocol, role: Role) -> bool:
    """Whether ``role`` sees every participant's arm in this trial."""
    return role not in masked_roles(protocol)


def arms_refused(protocol: Protocol, role: Role, roles: Iterable[Role], what: str) -> str:
    """The rule a masked ``role`` breaks by asking for the arms (an export with arms, the unblinded analysis), one
    sentence for every such refusal: the role, the protocol's masking that keeps it from the arms, and those of
    ``roles`` this trial lets ``what``: "a data manager is masked in this trial (masking.blinding: double) and may
    not see the arms; only an unblinded statistician may export the arms". A page says each of its four branches
    (blinding declared or not, some role or none that may) in its own language (``web.wording.RULES``)."""
    blinding = protocol.masking.blinding
    rule = "masking.blinding not declared: masked as double"
    if blinding is not None:
        rule = f"masking.blinding: {blinding.value}"
    seeing = [r for r in roles if sees_arms(protocol, r)]
    who = only_roles_may(seeing, what) if seeing else f"no role may {what} in this trial"
    return f"{role_named(role)} is masked in this trial ({rule}) and may not see the arms; {who}"


def unblinding_applies(protocol: Protocol) -> bool:
    """Whether emergency unblinding exists here: only where the investigator, who performs it, is masked."""
    return Role.INVESTIGATOR in masked_roles(protocol)


@dataclass(frozen=True)
class Viewer:
    """Who is looking: their role, sites, any participants emergency-unblinded to them, and the roles this
    trial masks (by default those of a double-blind trial)."""

    username: str
    role: Role
    sites: frozenset[str] = frozenset()
    unblinded_participants: frozenset[str] = field(default_factory=frozenset)
    masked: frozenset[Role] = BLINDED_ROLES

    @property
    def blinded(self) -> bool:
        """Whether this viewer is kept from allocations in general."""
        return self.role in self.masked


def viewer_for(
    protocol: Protocol, username: str, role: Role, sites: frozenset[str], unblinded: frozenset[str] = frozenset()
) -> Viewer:
    """The viewer as this trial's masking sees them."""
    return Viewer(username, role, sites, unblinded, masked_roles(protocol))


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


def kept_forms(protocol: Protocol, role: Role) -> frozenset[str]:
    """The ids of the forms kept from ``role``: every form that reveals the arm when the trial masks the role,
    none otherwise."""
    if role not in masked_roles(protocol):
        return frozenset()
    return frozenset(form.id for form in protocol.forms if form.reveals_arm)


def may_see_form(protocol: Protocol, role: Role, form_id: str | None) -> bool:
    """Whether ``role`` may open, fill or read form ``form_id`` (None, about no form: yes)."""
    return form_id is None or form_id not in kept_forms(protocol, role)
