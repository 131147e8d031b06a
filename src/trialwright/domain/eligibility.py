"""The eligibility engine: a protocol's criteria applied to one patient's screening values.

Pure: no I/O. Rules use three-valued logic, so a missing value never counts as met or failed: a rule is
True, False, or unknown. The decision is

- **not eligible** when any inclusion criterion is false or any exclusion criterion is true (each such
  criterion is listed with the values that decided it), even if other values are still missing;
- **incomplete** otherwise when any criterion is unknown (each missing field is listed);
- **eligible** when every inclusion criterion holds and no exclusion criterion does.

A screening field with ``applies_if`` (e.g. pregnancy, only for women) is not needed when its condition
is false, and a value for it is refused there (``applies_if_problems``): pregnant = yes for a man is not stored.
Where the condition cannot be decided (its inputs are missing) the value is accepted. Derived screening fields
(e.g. ``pf_ratio``) are computed from their inputs, never typed in.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trialwright.domain.derivations import derive
from trialwright.domain.forms import round_half_up
from trialwright.domain.numerals import typed_number
from trialwright.protocol import Criterion, Protocol, Rule, ScreeningField

__all__ = [
    "CriterionResult",
    "Decision",
    "EligibilityDecision",
    "ScreeningValueError",
    "applies_if_problems",
    "evaluate",
    "inapplicable_fields",
    "recorded_values",
    "rule_text",
    "typed_values",
    "validate_values",
    "values_at_screening",
]


class Decision(StrEnum):
    """The three outcomes of an eligibility check."""

    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class CriterionResult:
    """How one criterion came out, and the values it read."""

    id: str
    text: str
    kind: str  # inclusion | exclusion
    holds: bool | None  # the rule's truth value (None: unknown)
    values: Mapping[str, Any]

    @property
    def failed(self) -> bool:
        """Whether this criterion makes the patient not eligible."""
        return (self.kind == "inclusion" and self.holds is False) or (self.kind == "exclusion" and self.holds is True)


@dataclass(frozen=True)
class EligibilityDecision:
    """The decision with its reasons, and the values (with derived ones) it was made on."""

    decision: Decision
    failed: tuple[CriterionResult, ...]
    missing: tuple[str, ...]
    results: tuple[CriterionResult, ...]
    values: Mapping[str, Any] = field(default_factory=dict)


class ScreeningValueError(ValueError):
    """A screening value that cannot be accepted; the message names the field and the rule."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(problems))


def _coerce(f: ScreeningField, raw: Any) -> Any:
    if raw is None or raw == "":
        return None
    if f.type == "boolean":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"true", "yes", "1", "y"}:
            return True
        if text in {"false", "no", "0", "n"}:
            return False
        raise ValueError("must be yes or no")
    if f.type == "integer":
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError("must be a whole number")
        try:
            return int(typed_number(str(raw)))
        except ValueError:
            raise ValueError("must be a whole number") from None
    if f.type == "decimal":
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        text = typed_number(str(raw))
        try:
            number = float(text)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if f.type == "date":
        if isinstance(raw, dt.date):
            return raw
        try:
            return dt.date.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValueError("must be a date written YYYY-MM-DD") from None
    value = str(raw).strip()
    if f.type == "choice" and value not in f.codes:
        raise ValueError(f"must be one of {', '.join(f.codes)}")
    return value


def validate_values(protocol: Protocol, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed screening values, or ``ScreeningValueError`` naming every bad field and its rule.

    A value may be given with a unit, ``{"value": 60, "unit": "%"}``, when the field accepts that unit.
    Derived fields cannot be typed in.
    """
    fields = {f.id: f for f in protocol.eligibility.screening_fields}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, given in raw.items():
        f = fields.get(name)
        if f is None:
            problems.append(f"{name}: not a screening field of this protocol")
            continue
        if f.derived is not None:
            problems.append(f"{name}: is derived ({f.derived.name}) and cannot be entered")
            continue
        amount, unit = (given.get("value"), given.get("unit")) if isinstance(given, Mapping) else (given, None)
        try:
            value = _coerce(f, amount)
        except ValueError as exc:
            problems.append(f"{name}: {exc} (got {amount!r})")
            continue
        if value is not None and unit not in (None, "", f.unit):
            conversion = next((u for u in f.alternative_units if u.unit == unit), None)
            if conversion is None:
                accepted = ", ".join([f.unit or "-", *(u.unit for u in f.alternative_units)])
                problems.append(f"{name}: unknown unit {unit!r} (accepted: {accepted})")
                continue
            value = value * conversion.factor + conversion.offset
        if value is not None and f.hard_limits is not None and not isinstance(value, bool | str | dt.date):
            lo, hi = f.hard_limits
            if not lo <= value <= hi:
                shown = (
                    f"{amount:g} {unit}"
                    if unit and isinstance(amount, int | float)
                    else (f"{amount} {unit}" if unit else f"{value:g}")
                )
                problems.append(
                    f"{name}: {shown} is outside the plausible range {lo:g} to {hi:g} {f.unit or ''}".rstrip()
                )
                continue
        values[name] = value
    if problems:
        raise ScreeningValueError(problems)
    return values


def _truth(rule: Rule, values: Mapping[str, Any]) -> bool | None:
    if rule.all_of is not None:
        parts = [_truth(r, values) for r in rule.all_of]
        return False if False in parts else (None if None in parts else True)
    if rule.any_of is not None:
        parts = [_truth(r, values) for r in rule.any_of]
        return True if True in parts else (None if None in parts else False)
    if rule.not_ is not None:
        inner = _truth(rule.not_, values)
        return None if inner is None else not inner
    value = values.get(rule.field or "")
    if value is None:
        return None
    if rule.between is not None:
        return bool(rule.between[0] <= value <= rule.between[1])
    if rule.is_ is not None:
        return bool(value) is rule.is_
    if rule.in_ is not None:
        return value in rule.in_
    for op, test in (
        ("lt", operator.lt),
        ("le", operator.le),
        ("gt", operator.gt),
        ("ge", operator.ge),
        ("eq", operator.eq),
        ("ne", operator.ne),
    ):
        bound = getattr(rule, op)
        if bound is not None:
            return bool(test(value, bound))
    raise AssertionError("a validated rule always has an operator")  # pragma: no cover


_OPERATORS = (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "="), ("ne", "!="))


def rule_text(rule: Rule) -> str:
    """A rule as one line of text, as a message names it: ``sex = female``, ``(a >= 1 and b is true)``."""
    if rule.all_of is not None:
        return "(" + " and ".join(rule_text(r) for r in rule.all_of) + ")"
    if rule.any_of is not None:
        return "(" + " or ".join(rule_text(r) for r in rule.any_of) + ")"
    if rule.not_ is not None:
        return f"not {rule_text(rule.not_)}"
    if rule.between is not None:
        return f"{rule.field} between {rule.between[0]:g} and {rule.between[1]:g}"
    if rule.is_ is not None:
        return f"{rule.field} is {str(rule.is_).lower()}"
    if rule.in_ is not None:
        return f"{rule.field} in {', '.join(str(v) for v in rule.in_)}"
    for op, sign in _OPERATORS:
        bound = getattr(rule, op)
        if bound is not None:
            if isinstance(bound, bool):
                return f"{rule.field} {sign} {str(bound).lower()}"
            return f"{rule.field} {sign} {bound:g}" if isinstance(bound, float) else f"{rule.field} {sign} {bound}"
    raise AssertionError("a validated rule always has an operator")  # pragma: no cover


def _reads(protocol: Protocol, rule: Rule) -> set[str]:
    """The screening fields a rule reads, through derivations (a derived field reads its inputs)."""
    fields = {f.id: f for f in protocol.eligibility.screening_fields}
    read = set(rule.fields())
    for name in list(read):
        f = fields.get(name)
        if f is not None and f.derived is not None:
            read |= set(f.derived.inputs.values())
    return read


def inapplicable_fields(protocol: Protocol, values: Mapping[str, Any]) -> list[str]:
    """The screening fields whose ``applies_if`` is false for ``values`` (not asked of this patient), in the
    protocol's order; a condition that cannot be decided leaves its field asked."""
    full = _with_derived(protocol, values)
    return [
        f.id
        for f in protocol.eligibility.screening_fields
        if f.applies_if is not None and _truth(f.applies_if, full) is False
    ]


def applies_if_problems(
    protocol: Protocol, values: Mapping[str, Any], changed: Collection[str] | None = None
) -> list[str]:
    """Each value of a screening field whose ``applies_if`` is false for ``values`` (the values being saved, typed),
    as ``field: why``; empty when none. ``changed``: the fields a change sets (None: a new screening, every value
    is checked). A change is refused when it sets such a value, or when it makes a condition false while a value
    of the dependent field is stored (unless it clears that value); a stored value the change touches neither
    directly nor through its condition is left as it is. A condition that cannot be decided (its inputs missing)
    refuses nothing."""
    fields = {f.id: f for f in protocol.eligibility.screening_fields}
    problems: list[str] = []
    for name in inapplicable_fields(protocol, values):
        f = fields[name]
        if values.get(f.id) is None or f.applies_if is None:
            continue
        rule = rule_text(f.applies_if)
        if changed is None or f.id in changed:
            problems.append(f"{f.id}: does not apply to this patient (applies_if: {rule} is false); leave it empty")
            continue
        causes = sorted(_reads(protocol, f.applies_if) & set(changed))
        if causes:
            problems.append(
                f"{f.id}: a value is stored, and the change of {', '.join(causes)} makes it not apply to this patient "
                f"(applies_if: {rule} is false); clear {f.id} in the same change"
            )
    return problems


def typed_values(protocol: Protocol, stored: Mapping[str, Any]) -> dict[str, Any]:
    """A screening record's values as stored (JSON) back to typed ones (dates)."""
    dates = {f.id for f in protocol.eligibility.screening_fields if f.type == "date"}
    return {k: (dt.date.fromisoformat(v) if k in dates and isinstance(v, str) else v) for k, v in stored.items()}


def recorded_values(protocol: Protocol, stored: Mapping[str, Any]) -> dict[str, Any]:
    """What a ``screening.<field>`` source reads (``protocol.sources``): the screening record's values as stored,
    typed, with each derived field computed from them as the screening page shows it (rounded to its places)."""
    return _with_derived(protocol, typed_values(protocol, stored))


def values_at_screening(
    protocol: Protocol, records: Iterable[tuple[str, Mapping[str, Any]]], names: Collection[str]
) -> dict[str, dict[str, Any]]:
    """Per participant, the values of the screening fields ``names`` that ``screening.<field>`` sources read
    (``recorded_values``), from each (participant id, screening record's stored values) of ``records``; every name
    present, None where nothing is recorded. The one reader Table 1's screening rows
    (``services.analysis``) and the IPD's screening quasi-identifiers and age (``exports.ipd``) share."""
    out = {}
    for pid, stored in records:
        values = recorded_values(protocol, stored)
        out[pid] = {name: values.get(name) for name in names}
    return out


def _with_derived(protocol: Protocol, values: Mapping[str, Any]) -> dict[str, Any]:
    full = dict(values)
    for f in protocol.eligibility.screening_fields:
        if f.derived is not None:
            value = derive(f.derived.name, {role: full.get(src) for role, src in f.derived.inputs.items()})
            # rounded to the protocol's places (half away from zero), as on forms: the criteria read what is shown
            full[f.id] = round_half_up(value, f.decimals) if f.decimals is not None and value is not None else value
    return full


def _needed(protocol: Protocol, rule: Rule, values: Mapping[str, Any]) -> list[str]:
    """The fields a criterion still needs: missing ones, through derivations, unless not applicable."""
    fields = {f.id: f for f in protocol.eligibility.screening_fields}
    missing: list[str] = []
    for name in sorted(rule.fields()):
        if values.get(name) is not None:
            continue
        f = fields[name]
        if f.applies_if is not None and _truth(f.applies_if, values) is False:
            continue
        if f.derived is not None:
            missing += [src for src in f.derived.inputs.values() if values.get(src) is None]
        else:
            missing.append(name)
    return missing


def _result(protocol: Protocol, c: Criterion, kind: str, values: Mapping[str, Any]) -> CriterionResult:
    holds = _truth(c.rule, values)
    if holds is None:
        # A field that does not apply (e.g. pregnancy for a man) makes its part false, not unknown.
        applicable = dict(values)
        for f in protocol.eligibility.screening_fields:
            if f.applies_if is not None and values.get(f.id) is None and _truth(f.applies_if, values) is False:
                applicable[f.id] = False if f.type == "boolean" else None
        holds = _truth(c.rule, applicable)
    shown = {name: values.get(name) for name in sorted(c.rule.fields())}
    return CriterionResult(id=c.id, text=c.text, kind=kind, holds=holds, values=shown)


def evaluate(protocol: Protocol, values: Mapping[str, Any]) -> EligibilityDecision:
    """Apply every inclusion and exclusion criterion to validated screening values."""
    full = _with_derived(protocol, values)
    results = tuple(
        [_result(protocol, c, "inclusion", full) for c in protocol.eligibility.inclusion]
        + [_result(protocol, c, "exclusion", full) for c in protocol.eligibility.exclusion]
    )
    failed = tuple(r for r in results if r.failed)
    if failed:
        return EligibilityDecision(Decision.NOT_ELIGIBLE, failed, (), results, full)
    unknown = [
        c
        for c, r in zip((*protocol.eligibility.inclusion, *protocol.eligibility.exclusion), results, strict=True)
        if r.holds is None
    ]
    missing = sorted({name for c in unknown for name in _needed(protocol, c.rule, full)})
    if unknown:
        return EligibilityDecision(Decision.INCOMPLETE, (), tuple(missing), results, full)
    return EligibilityDecision(Decision.ELIGIBLE, (), (), results, full)
