"""Who does what in a trial: the roles, their labels, and which of them are limited to their sites.

Which roles may see an allocation is NOT decided here: only ``trialwright.domain.masking`` knows that.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from trialwright.legacy import LEGACY_SYSTEM_ACTOR

__all__ = [
    "RESERVED_USERNAMES",
    "SIMULATION_ACTOR",
    "SITE_SCOPED",
    "SYSTEM_ACTOR",
    "SYSTEM_ACTORS",
    "Role",
    "only_roles_may",
    "role_named",
]

#: The actor under which trialwright records what it does itself: automatic queries, and closing them.
SYSTEM_ACTOR = "trialwright"
#: Every name the system has recorded its own actions under (databases made before the rename hold the old
#: one). No user account may take one of them.
SYSTEM_ACTORS = frozenset({SYSTEM_ACTOR, LEGACY_SYSTEM_ACTOR})
#: The actor under which the simulator creates its own accounts (``sim-<role>``): their passwords are drawn and never
#: shown, so no person signs in as them, and the two-person rule does not count them as approvers.
SIMULATION_ACTOR = "simulation"
#: Names no user account may take: the system's own, and the simulator's (a person named so would create
#: approving accounts that the two-person rule does not count).
RESERVED_USERNAMES = SYSTEM_ACTORS | {SIMULATION_ACTOR}


class Role(StrEnum):
    """A user's role in the trial."""

    ADMINISTRATOR = "administrator"
    INVESTIGATOR = "investigator"
    STUDY_COORDINATOR = "study_coordinator"
    OUTCOME_ASSESSOR = "outcome_assessor"
    UNBLINDED_PHARMACIST = "unblinded_pharmacist"
    UNBLINDED_STATISTICIAN = "unblinded_statistician"
    BLINDED_STATISTICIAN = "blinded_statistician"
    MONITOR = "monitor"
    DATA_MANAGER = "data_manager"
    DSMB_MEMBER = "dsmb_member"
    CODER = "coder"

    @property
    def label(self) -> str:
        """The role's name for people (an English message id; pages translate it)."""
        return _LABELS[self]

    @property
    def site_scoped(self) -> bool:
        """Whether a user with this role sees only the participants of their own sites."""
        return self in SITE_SCOPED


_LABELS = {
    Role.ADMINISTRATOR: "Administrator",
    Role.INVESTIGATOR: "Investigator",
    Role.STUDY_COORDINATOR: "Study coordinator",
    Role.OUTCOME_ASSESSOR: "Outcome assessor",
    Role.UNBLINDED_PHARMACIST: "Unblinded pharmacist",
    Role.UNBLINDED_STATISTICIAN: "Unblinded statistician",
    Role.BLINDED_STATISTICIAN: "Blinded statistician",
    Role.MONITOR: "Monitor",
    Role.DATA_MANAGER: "Data manager",
    Role.DSMB_MEMBER: "DSMB member",
    Role.CODER: "Coder",
}

#: Roles that work at sites and see only their sites' participants; the others are trial-wide.
SITE_SCOPED: frozenset[Role] = frozenset(
    {
        Role.INVESTIGATOR,
        Role.STUDY_COORDINATOR,
        Role.OUTCOME_ASSESSOR,
        Role.UNBLINDED_PHARMACIST,
        Role.MONITOR,
    }
)


def role_named(role: Role) -> str:
    """A role as a sentence names it: "a monitor", "an investigator", "a DSMB member"."""
    label = role.label if role.label[:2].isupper() else role.label[0].lower() + role.label[1:]
    return f"{'an' if label[0] in 'aeiouAEIOU' else 'a'} {label}"


def only_roles_may(roles: Iterable[Role], what: str) -> str:
    """The role rule as a sentence: "only a monitor may verify forms against source", "only an investigator or a
    study coordinator may complete forms", "only a, b or c may ..." (a page reads the roles back by their names)."""
    names = [role_named(r) for r in roles]
    said = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"only {said} may {what}"
