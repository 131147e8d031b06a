"""How the screening form is laid out: the protocol's criteria, each with its wording and the fields it reads.

Pure: no I/O. A person screening a patient reads the criteria, not a list of fields: the form shows the
inclusion criteria, then the exclusion criteria, each with its text and the inputs of the fields its rule reads
(a derived field, e.g. the P/F ratio, by its inputs, with the derived value shown beside them). A field read by
several criteria is asked once, under the first; the fields no criterion reads come last ("other values"). The
consent field is set from the consent record and is never typed in.

The exclusion criteria offer "none of these apply": every yes/no field read only by exclusion criteria that was
left empty is recorded as *no* (a field an inclusion criterion also reads is never filled this way, nor one
already answered).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trialwright.domain.eligibility import ScreeningValueError, inapplicable_fields, validate_values
from trialwright.protocol import Criterion, Protocol, ScreeningField

__all__ = ["CriterionGroup", "ScreeningGroup", "none_apply", "none_apply_fields", "screening_groups"]


@dataclass(frozen=True)
class CriterionGroup:
    """One criterion on the form: its wording, the fields typed for it, and the derived values it reads."""

    criterion: Criterion
    fields: tuple[ScreeningField, ...]
    derived: tuple[ScreeningField, ...]


@dataclass(frozen=True)
class ScreeningGroup:
    """A group of the form: ``inclusion``, ``exclusion`` or ``other`` (fields no criterion reads)."""

    kind: str
    criteria: tuple[CriterionGroup, ...]
    fields: tuple[ScreeningField, ...] = ()


def screening_groups(protocol: Protocol) -> tuple[ScreeningGroup, ...]:
    """The screening form's groups in the protocol's order (an empty group is left out)."""
    eligibility = protocol.eligibility
    by_id = {f.id: f for f in eligibility.screening_fields}
    placed: set[str] = {eligibility.consent_field} if eligibility.consent_field else set()
    groups: list[ScreeningGroup] = []
    for kind, criteria in (("inclusion", eligibility.inclusion), ("exclusion", eligibility.exclusion)):
        shown: list[CriterionGroup] = []
        for c in criteria:
            typed: list[ScreeningField] = []
            derived: list[ScreeningField] = []
            for name in _in_order(protocol, c.rule.fields()):
                f = by_id[name]
                if f.derived is not None:
                    derived.append(f)
                    sources = [by_id[src] for src in f.derived.inputs.values() if src in by_id]
                else:
                    sources = [f]
                for s in sources:
                    if s.id not in placed and s.derived is None:
                        placed.add(s.id)
                        typed.append(s)
            shown.append(CriterionGroup(c, tuple(typed), tuple(derived)))
        if shown:
            groups.append(ScreeningGroup(kind, tuple(shown)))
    rest = tuple(f for f in eligibility.screening_fields if f.id not in placed and f.derived is None)
    if rest:
        groups.append(ScreeningGroup("other", (), rest))
    return tuple(groups)


def _in_order(protocol: Protocol, names: set[str]) -> list[str]:
    """Field ids in the protocol's order of screening fields."""
    return [f.id for f in protocol.eligibility.screening_fields if f.id in names]


def none_apply_fields(protocol: Protocol) -> tuple[str, ...]:
    """The yes/no fields "none of these apply" answers *no*: read by an exclusion criterion and by no inclusion
    criterion, typed in (not derived, not the consent field)."""
    eligibility = protocol.eligibility
    inclusion = set().union(*(c.rule.fields() for c in eligibility.inclusion))
    exclusion = set().union(*(c.rule.fields() for c in eligibility.exclusion)) if eligibility.exclusion else set()
    return tuple(
        f.id
        for f in eligibility.screening_fields
        if f.id in exclusion
        and f.id not in inclusion
        and f.type == "boolean"
        and f.derived is None
        and f.id != eligibility.consent_field
    )


def none_apply(protocol: Protocol, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (as typed) with every field of ``none_apply_fields`` left empty answered *no*, and none answered
    for a question that does not apply to this patient (``applies_if`` false for these values: pregnant for a man):
    the box answers only the questions asked of them, so a *no* there (the page's script fills every empty one) is
    left out rather than refused. A *yes* there is kept, and refused by the screening's rule; values that cannot be
    typed are kept as they are, for the screening to refuse by name."""
    asked = none_apply_fields(protocol)
    filled = dict(values)
    for name in asked:
        if filled.get(name) in (None, ""):
            filled[name] = "no"
    try:
        typed = validate_values(protocol, filled)
    except ScreeningValueError:
        return filled
    for name in inapplicable_fields(protocol, typed):
        if name in asked and filled.get(name) == "no":
            del filled[name]
    return filled
