"""An audit entry's old and new values as a readable diff: one change per key that differs, old value and new value.

An entry holds its values as JSON (``trialwright.services.audit``): a form value as its stored parts (the entry
names its form and field), shown as one change of that field as a person reads it: as stored, in the field's
unit, with what was typed beside it (``450 mg/L (entered 45 mg/dL)``, ``not done: sample clotted``); most other
actions as an object (``{"query": 3, "text": "..."}``), and a screening's changed values one level down
(``{"values": {"age": 71}, "decision": "eligible"}``), each key of which is a change of its own.

Only what the entry given holds is read: give it the entry as the reader may see it
(``trialwright.domain.audit_masking.present_entry``), and a masked value stays ``masked``; a masked value is always
listed (nobody can tell from it whether it changed), never compared away.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from trialwright.domain.audit import AuditEntry
from trialwright.domain.forms import StoredValue
from trialwright.domain.masking import MASKED
from trialwright.protocol import Protocol

__all__ = ["AuditChange", "audit_changes", "canonical_units", "shown_value"]

#: The keys whose object is a set of changes of its own: a screening's values.
_NESTED = frozenset({"values"})


@dataclass(frozen=True)
class AuditChange:
    """One changed key of an entry: ``key`` (a field id for a form value, else the value's key), ``within`` (the
    object it sits in, e.g. ``values`` for a screening field), and the old and new values as text (empty: none)."""

    key: str
    old: str
    new: str
    within: str | None = None
    form: str | None = None

    @property
    def masked(self) -> bool:
        """Whether the reader may not see the value (on either side)."""
        return MASKED in (self.old, self.new)


class _Absent:
    """No value in that column (not JSON null, which is a value)."""


_ABSENT = _Absent()


def _loads(raw: str | None) -> object:
    if raw is None:
        return _ABSENT
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def shown_value(value: object) -> str:
    """A stored value as text: text as it is, a number as written, yes or no, a list joined, an object as JSON."""
    if isinstance(value, _Absent) or value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(shown_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _pairs(old: Mapping[str, object], new: Mapping[str, object], within: str | None) -> Iterator[AuditChange]:
    for key in [*new, *(k for k in old if k not in new)]:
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if (
            within is None
            and key in _NESTED
            and isinstance(before, dict | _Absent)
            and isinstance(after, dict | _Absent)
        ):
            inner_old = before if isinstance(before, dict) else {}
            inner_new = after if isinstance(after, dict) else {}
            yield from _pairs(inner_old, inner_new, key)
            continue
        change = AuditChange(key, shown_value(before), shown_value(after), within)
        if change.masked or change.old != change.new:
            yield change


def canonical_units(protocol: Protocol) -> dict[tuple[str, str], str | None]:
    """Each form field's canonical unit (the unit its values are stored in) by (form, field), for ``audit_changes``."""
    return {(form.id, f.id): f.unit for form in protocol.forms for f in form.fields}


def audit_changes(
    entry: AuditEntry, units: Mapping[tuple[str, str], str | None] | None = None
) -> tuple[AuditChange, ...]:
    """What ``entry`` changed, one ``AuditChange`` per key that differs (see the module docstring). ``units``
    gives each form field's canonical unit by (form, field), so a form value reads as stored, in it."""
    old, new = _loads(entry.old_value), _loads(entry.new_value)
    if old is _ABSENT and new is _ABSENT:
        return ()
    unit = (units or {}).get((entry.form or "", entry.field or ""))
    if (value := _form_value(entry, old, new, unit)) is not None:
        return value
    if isinstance(old, dict | _Absent) and isinstance(new, dict | _Absent):
        return tuple(_pairs(old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {}, None))
    if isinstance(old, dict) or isinstance(new, dict):
        # One side an object, the other one value (e.g. a query's previous status, then what was done to it).
        side_old = old if isinstance(old, dict) else ({} if old is _ABSENT else {"old_value": old})
        side_new = new if isinstance(new, dict) else ({} if new is _ABSENT else {"new_value": new})
        return tuple(_pairs(side_old, side_new, None))
    key = entry.field or "value"
    change = AuditChange(key, shown_value(old), shown_value(new), form=entry.form if entry.field else None)
    return (change,) if change.masked or change.old != change.new else ()


def _form_value(entry: AuditEntry, old: object, new: object, unit: str | None) -> tuple[AuditChange, ...] | None:
    """A form field's value, stored as its parts (``StoredValue``), as one change of that field; None when the
    entry is not one."""
    if entry.field is None or entry.form is None:
        return None
    sides = [side for side in (old, new) if not isinstance(side, _Absent)]
    if not sides or not all(isinstance(side, dict) and side and set(side) <= _STORED for side in sides):
        return None
    change = AuditChange(entry.field, _stored_text(old, unit), _stored_text(new, unit), form=entry.form)
    return (change,) if change.masked or change.old != change.new else ()


#: The parts of a stored form value (``trialwright.domain.forms.StoredValue.as_json``).
_STORED = frozenset({"value", "status", "entered", "unit", "reason", "limit", "components"})


def _stored_text(side: object, unit: str | None) -> str:
    """A stored form value as a person reads it: the value as stored, in the field's canonical ``unit``, with what
    was typed beside it when that reads differently (``450 mg/L (entered 45 mg/dL)``); ``< 1.5``, ``not done:
    sample clotted``; masked as a whole when any part of it is."""
    if not isinstance(side, dict):
        return ""
    if MASKED in side.values():
        return MASKED
    stored = StoredValue.from_json({k: v for k, v in side.items() if k != "components"})
    text = stored.shown()
    if stored.status == "value":
        canonical = f"{text} {unit}" if unit and text else text
        if stored.entered is not None:
            typed = shown_value(stored.entered) + (f" {stored.unit}" if stored.unit else "")
            if typed != canonical:
                return f"{canonical} (entered {typed})"
        return canonical
    if stored.status in {"below_lloq", "above_uloq"}:
        return f"{text} {unit}" if unit else text  # the limit, in the canonical unit
    return f"{text}: {stored.reason}" if stored.reason else text
