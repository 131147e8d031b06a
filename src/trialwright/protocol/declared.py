"""Derivations declared in the protocol itself: sums and counts, bands, code points, value sets, formulas.

A named derivation (``trialwright.protocol.derivations``) is a clinical score the engine implements in
Python. A declared derivation needs no Python per trial: its ``kind`` says how the value is computed and
the protocol file carries every number (band cut-offs, points, a country's value set):

- ``sum``, ``mean``, ``min``, ``max``, ``count`` over named numeric fields (``count`` of the fields
  meeting a condition, or of the fields holding a value);
- ``bands``: a number's band gives points, each bound stated as inclusive (``ge``, ``le``) or exclusive
  (``gt``, ``lt``);
- ``codes``: a choice (or yes/no) field's code gives points;
- ``value_set``: a constant minus one decrement per dimension level (an EQ-5D index);
- ``formula``: + - * / with parentheses over numbers and other fields (derived ones included).

Inputs are fields of the same form, or ``form.field`` for another form of the same visit. Each kind
declares what happens when an input is missing (``missing``): ``refuse`` stores no value, with the
reason; ``{min_present: N, prorate: ...}`` computes from the inputs present when at least N are.
Whether the fields named exist and have the right type, bands leave no gap or overlap, value sets cover
every level and derived fields form no cycle is checked by ``trialwright.protocol.derivation_checks``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from trialwright.protocol.base import ProtocolModel
from trialwright.protocol.derivations import Derivation
from trialwright.protocol.formula import FormulaError, Node, names, parse

__all__ = [
    "AGGREGATES",
    "DERIVATION_TAGS",
    "Aggregate",
    "Band",
    "Bands",
    "CodePoints",
    "Condition",
    "DeclaredDerivation",
    "DerivedField",
    "Dimension",
    "Formula",
    "MinPresent",
    "ValueSet",
]

#: The aggregate kinds, in the order the docs list them.
AGGREGATES = ("sum", "mean", "min", "max", "count")


def _code_text(value: Any) -> Any:
    # A code written as a bare number in YAML (`in: [3, 4]`) is the text "3", as a choice's code is.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


CodeText = Annotated[str, BeforeValidator(_code_text)]


class _Declared(ProtocolModel):
    """What every declared kind offers the engine and the codebook."""

    kind: str = Field(description="How the value is computed.")

    @property
    def name(self) -> str:
        """The kind, where a named derivation has its name."""
        return self.kind


class MinPresent(ProtocolModel):
    """Compute from the inputs present when at least min_present of them hold a value."""

    min_present: int = Field(ge=1, description="Fewest inputs that must hold a value; below it, no value.")
    prorate: bool | None = Field(
        default=None,
        description=(
            "sum and count: true scales the result of the inputs present by (inputs named / inputs present), "
            "i.e. their mean times the number of inputs; false takes the sum or count of those present as it "
            "is. Required for sum and count, not used by mean, min and max."
        ),
    )


MissingRule = Literal["refuse"] | MinPresent


class Condition(ProtocolModel):
    """When a field counts: exactly one comparison."""

    lt: float | None = Field(default=None, description="Below this number.")
    le: float | None = Field(default=None, description="At or below this number.")
    gt: float | None = Field(default=None, description="Above this number.")
    ge: float | None = Field(default=None, description="At or above this number.")
    eq: float | bool | str | None = Field(default=None, description="Equal to this number, code or true/false.")
    in_: list[CodeText] | None = Field(default=None, alias="in", description="One of these choice codes.")

    @model_validator(mode="after")
    def _one(self) -> Condition:
        given = [k for k in ("lt", "le", "gt", "ge", "eq", "in_") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a condition needs exactly one of lt, le, gt, ge, eq, in")
        return self

    def describe(self) -> str:
        """The condition as written, e.g. ``ge 3``."""
        for key in ("lt", "le", "gt", "ge", "eq"):
            value = getattr(self, key)
            if value is not None:
                return f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
        return "in " + ", ".join(self.in_ or [])


class Aggregate(_Declared):
    """sum, mean, min, max or count over fields (a count: of those meeting when, or holding a value)."""

    kind: Literal["sum", "mean", "min", "max", "count"] = Field(description="sum, mean, min, max or count.")
    fields: list[str] = Field(
        min_length=1, description="The inputs: field ids of the same form, or form.field at the same visit."
    )
    when: Condition | Literal["present"] | None = Field(
        default=None,
        description="count only: the condition a field's value must meet, or present (counts fields holding a value).",
    )
    missing: MissingRule | None = Field(
        default=None,
        description=(
            "refuse (no value when any input is missing, with the reason stored), or {min_present: N, prorate: "
            "true/false}. Required, except for a count of present values, which has none."
        ),
    )

    @model_validator(mode="after")
    def _shape(self) -> Aggregate:
        if len(set(self.fields)) != len(self.fields):
            raise ValueError("each field is named once")
        if self.kind == "count" and self.when is None:
            raise ValueError("a count needs when: a condition, or present")
        if self.kind != "count" and self.when is not None:
            raise ValueError("when is only for count")
        if self.when == "present":
            if self.missing is not None:
                raise ValueError("a count of present values leaves the missing ones out by definition; drop missing")
            return self
        if self.missing is None:
            raise ValueError("declare missing: refuse, or missing: {min_present: N, prorate: true or false}")
        if isinstance(self.missing, MinPresent):
            if self.missing.min_present > len(self.fields):
                raise ValueError(f"min_present {self.missing.min_present} is more than the {len(self.fields)} fields")
            if self.kind in {"sum", "count"} and self.missing.prorate is None:
                raise ValueError(f"a {self.kind} with min_present must say prorate: true or false")
            if self.kind not in {"sum", "count"} and self.missing.prorate is not None:
                raise ValueError(f"prorate is for sum and count; a {self.kind} of the values present needs none")
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        """The fields read, as written."""
        return tuple(self.fields)

    def describe(self) -> str:
        """One line for the codebook."""
        when = "" if self.when is None else f" where {'present' if self.when == 'present' else self.when.describe()}"
        return f"{self.kind}({', '.join(self.fields)}){when}{_missing_text(self.missing)}"


class Band(ProtocolModel):
    """One band of a number and its points; each bound inclusive (ge, le) or exclusive (gt, lt)."""

    gt: float | None = Field(default=None, description="Lower bound, exclusive.")
    ge: float | None = Field(default=None, description="Lower bound, inclusive.")
    lt: float | None = Field(default=None, description="Upper bound, exclusive.")
    le: float | None = Field(default=None, description="Upper bound, inclusive.")
    points: float = Field(description="Points for a value in this band.")

    @model_validator(mode="after")
    def _bounds(self) -> Band:
        if self.gt is not None and self.ge is not None:
            raise ValueError("a band has one lower bound: gt or ge")
        if self.lt is not None and self.le is not None:
            raise ValueError("a band has one upper bound: lt or le")
        low, high = self.lower, self.upper
        both = low is not None and high is not None
        if both and low and high and (low[0] > high[0] or (low[0] == high[0] and not (low[1] and high[1]))):
            raise ValueError(f"the band {self.describe()} holds no value")
        return self

    @property
    def lower(self) -> tuple[float, bool] | None:
        """(bound, inclusive), or None when open below."""
        if self.ge is not None:
            return self.ge, True
        return (self.gt, False) if self.gt is not None else None

    @property
    def upper(self) -> tuple[float, bool] | None:
        """(bound, inclusive), or None when open above."""
        if self.le is not None:
            return self.le, True
        return (self.lt, False) if self.lt is not None else None

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies in the band."""
        low, high = self.lower, self.upper
        above = low is None or value > low[0] or (low[1] and value == low[0])
        below = high is None or value < high[0] or (high[1] and value == high[0])
        return above and below

    def describe(self) -> str:
        """The band as an interval, e.g. ``[100, 150)``."""
        low, high = self.lower, self.upper
        left = "(-inf" if low is None else ("[" if low[1] else "(") + f"{low[0]:g}"
        right = "inf)" if high is None else f"{high[0]:g}" + ("]" if high[1] else ")")
        return f"{left}, {right}"


class Bands(_Declared):
    """Points from the band a number falls in (e.g. a SOFA component)."""

    kind: Literal["bands"] = Field(description="bands.")
    input: str = Field(description="The numeric field banded (same form, or form.field at the same visit).")
    bands: list[Band] = Field(min_length=1, description="The bands, together covering every value, none overlapping.")
    missing: Literal["refuse"] = Field(description="refuse: no value while the input is missing (reason stored).")

    @property
    def sources(self) -> tuple[str, ...]:
        """The fields read, as written."""
        return (self.input,)

    def describe(self) -> str:
        """One line for the codebook."""
        parts = "; ".join(f"{b.describe()} -> {b.points:g}" for b in self.bands)
        return f"bands({self.input}: {parts})"


class CodePoints(_Declared):
    """Points from a choice field's code, or a yes/no field's answer (keys true and false)."""

    kind: Literal["codes"] = Field(description="codes.")
    input: str = Field(description="The choice or yes/no field (same form, or form.field at the same visit).")
    points: dict[str, float] = Field(description="Code -> points, for every code of the field (true/false for yes/no).")
    missing: Literal["refuse"] = Field(description="refuse: no value while the input is missing (reason stored).")

    @property
    def sources(self) -> tuple[str, ...]:
        """The fields read, as written."""
        return (self.input,)

    def describe(self) -> str:
        """One line for the codebook."""
        parts = ", ".join(f"{code} -> {points:g}" for code, points in self.points.items())
        return f"codes({self.input}: {parts})"


class Dimension(ProtocolModel):
    """One dimension of a value set: the field holding its level and the decrement per level."""

    input: str = Field(description="The choice field holding the level (same form, or form.field at the same visit).")
    decrements: dict[str, float] = Field(description="Level code -> the decrement subtracted, for every level.")


class ValueSet(_Declared):
    """A value set (e.g. an EQ-5D index): constant minus the decrement of each dimension's level."""

    kind: Literal["value_set"] = Field(description="value_set.")
    source: str = Field(min_length=1, description="The publication the numbers come from.")
    constant: float = Field(description="The value before any decrement (1 for full health in EQ-5D).")
    dimensions: list[Dimension] = Field(min_length=1, description="Each dimension with its decrements.")
    missing: Literal["refuse"] = Field(description="refuse: no value while any dimension is missing (reason stored).")

    @model_validator(mode="after")
    def _distinct(self) -> ValueSet:
        inputs = [d.input for d in self.dimensions]
        if len(set(inputs)) != len(inputs):
            raise ValueError("each dimension reads its own field")
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        """The fields read, as written."""
        return tuple(d.input for d in self.dimensions)

    def describe(self) -> str:
        """One line for the codebook."""
        return f"value_set({', '.join(self.sources)}; {self.source})"


class Formula(_Declared):
    """Arithmetic over other fields: + - * / with parentheses and numbers, never evaluated as code."""

    kind: Literal["formula"] = Field(description="formula.")
    expression: str = Field(description="e.g. (pao2_mmhg / fio2) or sofa_total - labs.sofa_renal.")
    missing: Literal["refuse"] = Field(description="refuse: no value while any field named is missing (reason stored).")

    @model_validator(mode="after")
    def _parses(self) -> Formula:
        try:
            parse(self.expression)
        except FormulaError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def tree(self) -> Node:
        """The parsed expression."""
        return parse(self.expression)

    @property
    def sources(self) -> tuple[str, ...]:
        """The fields read, as written (each once)."""
        return tuple(dict.fromkeys(names(self.tree)))

    def describe(self) -> str:
        """One line for the codebook."""
        return f"formula({self.expression})"


def _missing_text(rule: MissingRule | None) -> str:
    if rule is None:
        return ""
    if rule == "refuse":
        return "; missing: refuse"
    assert isinstance(rule, MinPresent)
    prorate = "" if rule.prorate is None else f", prorate {str(rule.prorate).lower()}"
    return f"; missing: min_present {rule.min_present}{prorate}"


DeclaredDerivation = Aggregate | Bands | CodePoints | ValueSet | Formula

#: Where a derived field's declaration is validated: the named derivations, and each declared kind.
_TAG_OF_KIND = {**dict.fromkeys(AGGREGATES, "aggregate"), "bands": "bands", "codes": "codes",
                "value_set": "value_set", "formula": "formula"}  # fmt: skip
#: The tags pydantic puts in an error's location (the loader leaves them out of the path it reports).
DERIVATION_TAGS = frozenset({"named", *_TAG_OF_KIND.values()})


def _tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    if kind is None:
        return "named"
    return _TAG_OF_KIND.get(str(kind))


#: What a form field's ``derived`` holds: a named derivation, or one of the declared kinds.
DerivedField = Annotated[
    Annotated[Derivation, Tag("named")]
    | Annotated[Aggregate, Tag("aggregate")]
    | Annotated[Bands, Tag("bands")]
    | Annotated[CodePoints, Tag("codes")]
    | Annotated[ValueSet, Tag("value_set")]
    | Annotated[Formula, Tag("formula")],
    Discriminator(
        _tag,
        custom_error_type="derivation_kind",
        custom_error_message=("name a derivation (name: ...) or declare one with kind: " + ", ".join(_TAG_OF_KIND)),
    ),
]
