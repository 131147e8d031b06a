"""The protocol file reference (docs/protocol.md), generated from the models' own field descriptions.

``python -m trialwright.protocol.reference > docs/protocol.md`` regenerates it; a test fails when the
committed file differs, so every key of the protocol file is documented and the page cannot drift.
"""

from __future__ import annotations

import datetime as dt
import inspect
import types
import typing
from enum import Enum

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from trialwright.protocol.model import Protocol

__all__ = ["render_reference"]

_INTRO = """# The protocol file

A trial's whole design lives in one YAML file, e.g.
[protocols/IRCT20190101042197N2.yaml](../protocols/IRCT20190101042197N2.yaml). `trialwright protocol check
FILE` validates it and lists every problem as `FILE:LINE: path: message`; `trialwright protocol show FILE`
prints it as a registry record. Unknown keys are errors (with a suggestion when a known key is close), so
a typo never passes silently. Dates are written `YYYY-MM-DD` (Gregorian); the Solar Hijri form is derived
for display. Where the registry record is silent, the protocol writer's choice is marked `# ASSUMPTION:`
in a YAML comment.

Besides each section's own rules, cross-checks refuse: references to unknown screening fields, forms,
fields or visits (in criteria, derivations, visits, outcomes and strata); overlapping windows of
scheduled visits counted from the same event; outcome timepoints without a visit or whose visit does not
collect the outcome's form; block sizes that are not a multiple of the ratio sum; stratification
factors a participant could lack a level of (a field asked only under applies_if, a date field, levels
that leave out one of the field's values, a numeric field without cut points), and stratum names too long
to store; a simple randomization list shorter than the target; unnamed blinded groups when the arms'
ratios differ (the groups' sizes would name the arms); per-arm targets that do not add up to the target
or do not follow the ratio; duplicate ids; amendments out of order or not ending at the file's version;
consent versions out of date order. For derived fields (see
[forms.md](forms.md#derived-values)): an input naming no field or a field of the wrong type; bands with
a gap or an overlap; points or a value set without a number for every code of their field; a formula
naming an unknown field or dividing by a written zero; a whole-number field fed a fraction; and derived
fields that depend on themselves.

This page is generated from the model (`python -m trialwright.protocol.reference > docs/protocol.md`).
"""


def _name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_name(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (list, tuple, dict):
        inner = ", ".join("..." if a is Ellipsis else _name(a) for a in args)
        return {list: "list", tuple: "list", dict: "mapping"}[origin] + f" of {inner}"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
        if issubclass(annotation, Enum):
            return " or ".join(repr(m.value) for m in annotation)
        return {
            str: "text",
            int: "whole number",
            float: "number",
            bool: "true/false",
            dt.date: "date",
        }.get(annotation, annotation.__name__)
    return str(annotation)


def _models(annotation: object) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in typing.get_args(annotation):
        found.extend(_models(arg))
    return found


def render_reference() -> str:
    """Markdown with one section per model, reached from ``Protocol`` in file order."""
    order: list[type[BaseModel]] = []
    queue: list[type[BaseModel]] = [Protocol]
    while queue:
        model = queue.pop(0)
        if model in order:
            continue
        order.append(model)
        for info in model.model_fields.values():
            queue.extend(m for m in _models(info.annotation) if m not in order)
    parts = [_INTRO]
    for model in order:
        doc = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].replace("\n", " ")
        parts.append(f"## {model.__name__}\n\n{doc}\n\n| key | type | required | meaning |\n|---|---|---|---|")
        for name, info in model.model_fields.items():
            key = info.alias or name
            required = "yes" if info.is_required() else "no"
            if not info.is_required() and info.default not in (None, PydanticUndefined):
                required = f"no (default {info.default!r})"
            description = (info.description or "").replace("|", "\\|")
            parts.append(f"| `{key}` | {_name(info.annotation)} | {required} | {description} |")
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover - a documentation generator
    print(render_reference(), end="")
