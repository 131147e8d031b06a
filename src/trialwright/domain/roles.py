"""Who does what in a trial: the roles, their labels, and which of them are limited to their sites.

Which roles may see an allocation is NOT decided here: only ``trialwright.domain.masking`` knows that.
"""

from __future__ import annotations

from enum import StrEnum

from trialwright.legacy import LEGACY_SYSTEM_ACTOR

__all__ = ["SITE_SCOPED", "SYSTEM_ACTOR", "SYSTEM_ACTORS", "Role"]

#: The actor under which trialwright records what it does itself: automatic queries, and closing them.
SYSTEM_ACTOR = "trialwright"
#: Every name the system has recorded its own actions under (databases made before the rename hold the old
#: one). No user account may take one of them.
SYSTEM_ACTORS = frozenset({SYSTEM_ACTOR, LEGACY_SYSTEM_ACTOR})


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
