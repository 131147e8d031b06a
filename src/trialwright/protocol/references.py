"""Naming what a protocol refers to: form fields, duplicate ids, unknown names (shared by the cross-checks)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from trialwright.protocol.base import a_kind
from trialwright.protocol.forms import FormDef

__all__ = ["Found", "dupes", "field_ref", "unknown"]

Found = tuple[str, str]  # (path, message)


def dupes(path: str, ids: Iterable[str], what: str) -> Iterator[Found]:
    """A problem at ``path`` for every id used more than once."""
    for value, count in Counter(ids).items():
        if count > 1:
            yield path, f"{what} {value!r} is used {count} times; ids must be unique"


def unknown(name: str, known: Iterable[str], what: str) -> str:
    """The message for a name that is not among the known ones, listing them."""
    return f"unknown {what} {name!r} (known: {', '.join(sorted(known))})"


def field_ref(forms: dict[str, FormDef], ref: str, path: str, kinds: set[str] | None = None) -> Iterator[Found]:
    """A problem when ``ref`` (form.field) names no field of the protocol, or one of another type than ``kinds``."""
    form_id, dot, field_id = ref.partition(".")
    if not dot:
        yield path, f"{ref!r} must be written form.field"
    elif form_id not in forms:
        yield path, unknown(form_id, forms, "form")
    elif field_id not in {f.id for f in forms[form_id].fields}:
        yield path, f"form {form_id!r} has no field {field_id!r}"
    elif kinds is not None and (kind := forms[form_id].field(field_id).type.value) not in kinds:
        yield path, f"{ref} is {a_kind(kind)} field; this needs {' or '.join(sorted(kinds))}"
