"""Whether the treatment was given and which arm was received: the rules the analysis (safety set, as treated,
CONSORT, per protocol) and the SDTM export (EX, DM's RFXSTDTC, ACTARMCD/ACTARM and ACTARMUD) share, read from the
analysis plan's treatment ``given_field`` and ``code_field``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trialwright.domain.forms import StoredValue
from trialwright.protocol import Protocol

__all__ = ["ArmReceived", "arm_received", "code_held", "kit_field", "treatment_given"]


def kit_field(protocol: Protocol) -> tuple[str, str] | None:
    """The form and field that record the preparation code given (``analysis_plan.treatment``'s ``form`` and
    ``code_field``), which the kit check guards; None when the protocol declares no code field."""
    plan = protocol.analysis_plan
    treatment = plan.treatment if plan is not None else None
    if treatment is None or treatment.code_field is None:
        return None
    return treatment.form, treatment.code_field


def code_held(stored: StoredValue | Mapping[str, Any] | None) -> str | None:
    """The preparation code a code field holds: its value as text when it holds a value (status ``value``; not
    missing, not done or not applicable), else None. ``stored`` as the save holds it or as the JSON stores it."""
    if stored is None:
        return None
    if isinstance(stored, StoredValue):
        status, value = stored.status, stored.value
    else:
        status, value = stored.get("status", "value"), stored.get("value")
    return None if status != "value" or value is None else str(value)


def treatment_given(stored: StoredValue | None) -> bool:
    """Given when the given field holds a value (recorded or derived, not missing, not done or not applicable)
    that is not "no": a yes/no field answered yes, or a date or date-time of administration."""
    if stored is None or stored.status not in {"value", "derived"} or stored.value is None:
        return False
    return stored.value is not False


@dataclass(frozen=True)
class ArmReceived:
    """The arm a treated participant received (as treated), or ``None`` when the preparations given name no one
    planned arm: then ``unknown`` holds the codes in no allocation list (sorted) and ``arms`` the arms the other
    codes belong to (sorted; more than one when preparations of several arms were given)."""

    arm: str | None
    unknown: tuple[str, ...] = ()
    arms: tuple[str, ...] = ()


def arm_received(codes: Iterable[str], arms: Mapping[str, str], allocated: str) -> ArmReceived:
    """The arm received by a participant given the treatment, from the preparation codes its treatment records
    hold (``code_field``) and each allocation list's code -> arm: every code of one arm, that arm (the allocated
    one or another); no code (no code field declared, none recorded), the allocated arm; a code in no allocation
    list (a wrong or mistyped preparation) or codes of more than one arm, no arm."""
    given = list(codes)
    if not given:
        return ArmReceived(allocated)
    named = {arms.get(code) for code in given}
    if None in named or len(named) > 1:
        known = sorted(a for a in named if a is not None)
        return ArmReceived(None, tuple(sorted({c for c in given if c not in arms})), tuple(known))
    (arm,) = named
    assert arm is not None
    return ArmReceived(arm)
