"""Which visits a derived form field can be computed at: what ``protocol check`` refuses and notes about them.

The engine computes a derived value from the forms of the visit being saved and screening, never another
visit's forms (``trialwright.services.forms.checks``). An input on another form that is collected at none of the
visits where the derived field's form is collected can never be read, so the value would never be computed: it is
refused, naming the field, the input and those visits. An input's form collected at some of them only leaves the
value empty at the others, which ``protocol check`` notes (``derivation_gaps``).
"""

from __future__ import annotations

from collections.abc import Iterator

from trialwright.protocol.declared import Aggregate, Bands, CodePoints, DeclaredDerivation, Formula, ValueSet
from trialwright.protocol.derivation_checks import derived_fields, resolve
from trialwright.protocol.derivations import Derivation
from trialwright.protocol.model import Protocol
from trialwright.protocol.references import Found

__all__ = ["derivation_gaps", "visit_inputs"]


def visit_inputs(p: Protocol) -> Iterator[Found]:
    """An input on another form that no visit collecting the derived field's form also collects, in file order."""
    forms = {f.id for f in p.forms}
    for i, j in derived_fields(p):
        form, field = p.forms[i], p.forms[i].fields[j]
        assert field.derived is not None
        at = [v for v in p.visits if form.id in v.forms]
        if not at:
            continue  # collected at unscheduled visits only: which forms are there is the site's choice
        for where, source in _inputs(field.derived, f"forms[{i}].fields[{j}].derived"):
            other = resolve(form.id, source)[0]
            if other in (form.id, "screening") or other not in forms:
                continue  # the same form, screening, or an unknown form (refused by derivation_checks)
            if not any(other in v.forms for v in at):
                yield (
                    where,
                    f"{form.id}.{field.id} reads {source}, but form {other!r} is not collected at "
                    f"{', '.join(v.id for v in at)}, where form {form.id!r} is: a derived value reads only the forms "
                    "of its own visit (and screening), so it would never be computed",
                )


def derivation_gaps(p: Protocol) -> tuple[str, ...]:
    """Notes for ``protocol check``: derived fields left without a value at some of their visits because an
    input's form is not collected there (it is at others)."""
    notes = []
    for i, j in derived_fields(p):
        form, field = p.forms[i], p.forms[i].fields[j]
        assert field.derived is not None
        at = [v for v in p.visits if form.id in v.forms]
        others = sorted({resolve(form.id, s)[0] for s in field.derived.sources} - {form.id, "screening"})
        for other in others:
            missing = [v.id for v in at if other not in v.forms]
            if missing and len(missing) < len(at):
                notes.append(
                    f"{form.id}.{field.id} has no value at {', '.join(missing)}: it reads form {other!r}, "
                    "which is not collected there"
                )
    return tuple(notes)


def _inputs(spec: Derivation | DeclaredDerivation, path: str) -> Iterator[tuple[str, str]]:
    """(path, source) of each input a derivation reads."""
    if isinstance(spec, Derivation):
        yield from ((f"{path}.inputs.{role}", source) for role, source in spec.inputs.items())
    elif isinstance(spec, Aggregate):
        yield from ((f"{path}.fields[{k}]", source) for k, source in enumerate(spec.fields))
    elif isinstance(spec, Bands | CodePoints):
        yield f"{path}.input", spec.input
    elif isinstance(spec, ValueSet):
        yield from ((f"{path}.dimensions[{k}].input", d.input) for k, d in enumerate(spec.dimensions))
    elif isinstance(spec, Formula):
        yield from ((f"{path}.expression", source) for source in spec.sources)
