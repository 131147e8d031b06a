"""A value's source, as demographics, Table 1 (``analysis_plan.baseline_table``) and the IPD's quasi-identifiers
name one: ``form.field`` or ``screening.field``.

One rule for all three, so they cannot drift apart:

* ``form.field`` is a field of a form: its values are the form records' (each reader says which: Table 1 the
  baseline visit's, the exports the first recorded);
* ``screening.field`` is a field of the screening form (``eligibility.screening_fields``): its value is the
  participant's screening record's, one per participant, a derived field's computed as the screening page shows it
  (``domain.eligibility.recorded_values``).

``protocol check`` refuses a reference to no field, naming the path and what is known (``source_ref``); a reader
takes the checked reference's field (label, type, unit, choices) from ``source``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trialwright.protocol.base import a_kind
from trialwright.protocol.references import Found, field_ref, unknown

if TYPE_CHECKING:
    from trialwright.protocol.design import ScreeningField
    from trialwright.protocol.forms import FormField
    from trialwright.protocol.model import Protocol

__all__ = ["SCREENING", "Source", "source", "source_ref"]

#: The word before the dot of a screening field's reference (``screening.age``).
SCREENING = "screening"


@dataclass(frozen=True)
class Source:
    """Where one reference's values are: a form's field (``form`` its id) or the screening record's (``form`` None)."""

    ref: str
    form: str | None
    name: str  # the field's id, on its form or the screening form
    field: FormField | ScreeningField

    @property
    def screening(self) -> bool:
        """The screening record holds the value (one per participant)."""
        return self.form is None


def source(p: Protocol, ref: str) -> Source:
    """The field ``ref`` names; a reference ``protocol check`` refused (``source_ref``) raises KeyError."""
    where, _, name = ref.partition(".")
    if where == SCREENING:
        screening = {f.id: f for f in p.eligibility.screening_fields}
        if name not in screening:
            raise KeyError(f"{ref}: {unknown(name, screening, 'screening field')}")
        return Source(ref, None, name, screening[name])
    return Source(ref, where, name, p.form(where).field(name))


def source_ref(p: Protocol, ref: str, path: str, kinds: set[str] | None = None) -> Iterator[Found]:
    """A problem at ``path`` when ``ref`` (``form.field`` or ``screening.field``) names no field of the protocol, or
    one of another type than ``kinds`` (None: any type)."""
    where, _, name = ref.partition(".")
    if where != SCREENING:
        yield from field_ref({f.id: f for f in p.forms}, ref, path, kinds)
        return
    screening = {f.id: f for f in p.eligibility.screening_fields}
    if name not in screening:
        yield path, unknown(name, screening, "screening field")
    elif kinds is not None and screening[name].type not in kinds:
        yield path, f"{ref} is {a_kind(screening[name].type)} field; this needs {' or '.join(sorted(kinds))}"
