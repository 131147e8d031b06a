"""The lock policy: what the data must be before the trial database is locked.

The readiness report (``trialwright.services.readiness``) lists what does not meet it; ``database lock`` refuses
while anything does, unless the data manager overrides with a reason and their password.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trialwright.protocol.base import ProtocolModel

__all__ = ["AE_OUTCOMES", "LockPolicy"]

#: The adverse event outcomes a report may record (ICH E2B terms; ``trialwright.domain.safety.EventOutcome``).
AE_OUTCOMES = ("recovered", "recovering", "not_recovered", "recovered_with_sequelae", "fatal", "unknown")
AeOutcome = Literal["recovered", "recovering", "not_recovered", "recovered_with_sequelae", "fatal", "unknown"]
_FINAL: tuple[AeOutcome, ...] = ("recovered", "recovered_with_sequelae", "fatal")


class LockPolicy(ProtocolModel):
    """What must hold before the database lock (each thing that does not is a blocker in the readiness report)."""

    forms: Literal["complete", "verified", "signed"] = Field(
        default="signed",
        description=(
            "The state every started form must have reached: complete, verified (by a monitor) or signed (by an "
            "investigator); a form locked by the data manager meets every level. A form due at a visit held but "
            "never started blocks too."
        ),
    )
    sae_final_outcomes: list[AeOutcome] = Field(
        default_factory=lambda: list(_FINAL),
        min_length=1,
        description=(
            "The outcomes that make a serious adverse event's last report a final follow-up; an SAE whose last "
            "report records another outcome (e.g. recovering, unknown) blocks the lock."
        ),
    )
