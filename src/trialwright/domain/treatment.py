"""Whether the treatment was given: the one rule the analysis (safety set, as treated, CONSORT) and the SDTM
export (EX, DM's RFXSTDTC and ACTARM) share, read from the analysis plan's treatment ``given_field``."""

from __future__ import annotations

from trialwright.domain.forms import StoredValue

__all__ = ["treatment_given"]


def treatment_given(stored: StoredValue | None) -> bool:
    """Given when the given field holds a value (recorded or derived, not missing, not done or not applicable)
    that is not "no": a yes/no field answered yes, or a date or date-time of administration."""
    if stored is None or stored.status not in {"value", "derived"} or stored.value is None:
        return False
    return stored.value is not False
