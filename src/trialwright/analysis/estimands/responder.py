"""A responder computed at analysis (``Variable.responder``): whether each participant meets the protocol's rule on a
numeric field's stored values (its value at the variable's visit, its change or percent change from the baseline
visit), never a value anyone typed.

Each criterion is met, not met, or unknown (a value it needs is missing, or a percent change from a baseline of 0 or
below). ``any`` is met when one criterion is met, not met when none is and none is unknown; ``all`` is not met when
one is not met, met when every one is; otherwise the participant's status is unknown, and they are handled as a
typed yes/no with no value: by the estimand's strategies (a composite event decides first), else listed as not
analysed with the reason. Nobody is made a non-responder for a value that is missing. Changes are rounded to 9
decimals before they are compared, so that 6.9 - 7.3 meets ``change <= -0.4`` as written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trialwright.analysis import sentences as say
from trialwright.analysis.dataset import Subject
from trialwright.analysis.estimands.common import after_death, why_missing
from trialwright.analysis.results import number
from trialwright.protocol.estimands import Responder, ResponderCriterion, ResponderMeasure, Variable

__all__ = ["Status", "responder_of"]


@dataclass(frozen=True)
class Status:
    """A participant's responder status: 1, 0, or None with why (``zero``: unknown for a baseline of 0 or below)."""

    value: int | None
    why: str = ""
    zero: bool = False


def responder_of(v: Variable, day_at: Callable[[Subject], int | None], day_base: Callable[[Subject], int | None],
                 not_due: Callable[[Subject], bool]) -> Callable[[Subject], Status]:  # fmt: skip
    """The participant's status under the variable's responder rule (without intercurrent events: the caller applies
    a composite strategy first); ``not_due``: whether the outcome visit is not yet due (said so when missing)."""
    rule = v.responder
    assert rule is not None and v.at is not None
    at, base, field = v.at, v.baseline, v.fields[0]

    def status(s: Subject) -> Status:
        f = None if after_death(s, at) else number(s.value(at, field))
        b = None if base is None or after_death(s, base) else number(s.value(base, field))
        known = [_met(c, f, b) for c in rule.criteria]
        combined = _combine(rule, known)
        if combined is not None:
            return Status(int(combined))
        why: list[str] = []
        if f is None:
            why.append(why_missing(s, at, field, False, day_at(s), not_due(s)))
        if base is not None and rule.needs_baseline and b is None:
            why.append(why_missing(s, base, field, False, day_base(s)))
        zero = f is not None and b is not None and b <= 0 and rule.percent
        if zero:
            assert base is not None and b is not None
            why.append(say.ZERO_BASELINE % {"variable": field, "visit": base, "value": f"{b:g}",
                                            "handling": rule.zero_baseline or "refuse"})  # fmt: skip
        return Status(None, "; ".join(why), zero)

    return status


def _met(c: ResponderCriterion, f: float | None, b: float | None) -> bool | None:
    """Whether the criterion is met by the value ``f`` and baseline ``b``; None when it cannot be known."""
    measure = c.measure
    if f is None:
        return None
    if measure is ResponderMeasure.VALUE:
        return c.met(f)
    if b is None:
        return None
    if measure is ResponderMeasure.CHANGE:
        return c.met(round(f - b, 9))
    if b <= 0:
        return None  # undefined: never divided (zero_baseline says what follows)
    return c.met(round(100 * (f - b) / b, 9))


def _combine(rule: Responder, known: list[bool | None]) -> bool | None:
    if rule.combine == "all":
        if any(k is False for k in known):
            return False
        return None if any(k is None for k in known) else True
    if any(k is True for k in known):  # any, or a single criterion
        return True
    return None if any(k is None for k in known) else False
