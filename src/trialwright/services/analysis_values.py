"""The analysis' reading of stored form values: each declared field's stored JSON turned into its analysis value.

A stored value (``StoredValue``, kept as JSON in ``form_records.form_values``) becomes what the analysis works on:
a number (integers and decimals as floats), ``"True"``/``"False"`` for yes/no, text (a list of choices joined by
commas), a value below or above a limit of quantification by the plan's rule, a date's ``not_done`` /
``not_applicable`` kept as such, and ``None`` for anything missing. ``_value`` is the definition, on the object.

``FormValuesReader`` reads a whole snapshot's records that way with as little Python per value as it can: each
form's declared fields (key and converter) worked out once, each record's JSON parsed by pydantic-core's parser
(Rust, about twice as fast as ``json`` here; a text it refuses goes to ``json.loads``, which parses or refuses it
as before), a recorded value (the common case) converted inline by one built-in or small function, and only the
rest (censored, missing, not done, or a shape ``StoredValue.from_json`` would refuse) through ``_value`` of the
object, which also refuses what it refuses. Whether the treatment was given is read from the given field's record
only, not tested for every value. It gives what reading each value as ``_value(StoredValue.from_json(raw))`` gives
(``tests/spec/analysis/test_form_values_reader.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from trialwright.domain.forms import StoredValue
from trialwright.domain.treatment import treatment_given
from trialwright.protocol import Protocol
from trialwright.protocol.analysis_plan import BelowLimitRule
from trialwright.protocol.forms import FieldType
from trialwright.services.stored_json import loads

__all__ = ["AnalysisValue", "FormValuesReader"]

#: A value as the analysis reads it.
AnalysisValue = float | str | None


def _below_limit(stored: StoredValue, rule: BelowLimitRule) -> float | None:
    if stored.limit is None:
        return None
    if stored.status == "above_uloq":
        return float(stored.limit)
    if rule is BelowLimitRule.HALF_LIMIT:
        return stored.limit / 2
    if rule is BelowLimitRule.LIMIT:
        return float(stored.limit)
    return stored.limit / math.sqrt(2)


def _value(stored: StoredValue, kind: FieldType, rule: BelowLimitRule) -> AnalysisValue:
    """The definition: one stored value object's analysis value."""
    if stored.status in {"below_lloq", "above_uloq"}:
        return _below_limit(stored, rule)
    if kind is FieldType.DATE and stored.status in {"not_done", "not_applicable"}:
        return stored.status  # an event's date marked not done is unknown, not "no event" (a blank date)
    if stored.status not in {"value", "derived"} or stored.value is None:
        return None
    if kind in (FieldType.INTEGER, FieldType.DECIMAL):
        return float(stored.value)
    if kind is FieldType.BOOLEAN:
        return str(bool(stored.value))
    if isinstance(stored.value, list):
        return ",".join(map(str, stored.value))
    return str(stored.value)


_PRESENT = frozenset({"value", "derived"})
_STORED_KEYS = frozenset(f.name for f in dataclasses.fields(StoredValue))


def _stored_value(raw: Mapping[str, Any], kind: FieldType, rule: BelowLimitRule) -> AnalysisValue:
    """``_value`` of ``StoredValue.from_json(raw)``, read from the stored JSON without building the object."""
    # Censored, missing, or not what ``from_json`` reads: as ``_value`` reads it (or refused as ``from_json`` does).
    if (
        type(raw) is not dict
        or not _STORED_KEYS.issuperset(raw)
        or raw.get("status", "value") not in _PRESENT
        or raw.get("value") is None
    ):
        return _value(StoredValue.from_json(raw), kind, rule)
    return _CONVERT[kind](raw["value"])


def _yes_no(value: Any) -> str:
    return "True" if value else "False"


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


#: A recorded value's conversion by field type (``_value``'s last lines, one call each).
_CONVERT: dict[FieldType, Callable[[Any], AnalysisValue]] = {
    kind: float if kind in (FieldType.INTEGER, FieldType.DECIMAL) else _yes_no if kind is FieldType.BOOLEAN else _text
    for kind in FieldType
}


#: ``json.loads(text)``, by pydantic-core's parser (``trialwright.services.stored_json``, shared with the exports).
_parsed: Callable[[str], Any] = loads


#: Per participant, per visit, ``form.field`` -> analysis value.
Values = dict[str, dict[str, dict[str, AnalysisValue]]]


class FormValuesReader:
    """Reads form records (visit record id, form id, stored JSON) into analysis values per participant and visit,
    and who the treatment form says was given the treatment (``treatment_given`` of its given field)."""

    def __init__(self, protocol: Protocol, rule: BelowLimitRule, visit_of: Mapping[int, tuple[str, str]]) -> None:
        self._rule = rule
        self._visit_of = visit_of
        #: Each form's declared fields: name -> (form.field key, type, recorded value's conversion).
        self._declared: dict[str, dict[str, tuple[str, FieldType, Callable[[Any], AnalysisValue]]]] = {
            f.id: {x.id: (f"{f.id}.{x.id}", x.type, _CONVERT[x.type]) for x in f.fields} for f in protocol.forms
        }
        plan = protocol.analysis_plan
        t = plan.treatment if plan else None
        # The given field, when the treatment form declares it (an undeclared one is never read, as before).
        self._given = (
            (t.visit, t.form, t.given_field) if t and t.given_field in self._declared.get(t.form, {}) else None
        )
        self.values: Values = {}
        self.given: set[str] = set()

    def read(self, records: Iterable[tuple[int, str, str]]) -> None:
        """Add these records' values (each record once; a record of an unknown form adds an empty visit)."""
        values, visit_of, declared, rule, given = self.values, self._visit_of, self._declared, self._rule, self._given
        present, keys, stored_value = _PRESENT, _STORED_KEYS, StoredValue.from_json
        nothing: dict[str, tuple[str, FieldType, Callable[[Any], AnalysisValue]]] = {}
        for record_id, form_id, text in records:
            pid, visit_id = visit_of[record_id]
            per = values.get(pid)
            if per is None:
                per = values[pid] = {}
            slot = per.get(visit_id)
            if slot is None:
                slot = per[visit_id] = {}
            fields = declared.get(form_id, nothing)
            parsed = _parsed(text)
            if not parsed:  # saved with every field blank: still saved (a date left blank says the event had not
                for key, _, _ in fields.values():  # happened by that visit), so its fields are there, empty
                    slot.setdefault(key, None)
            for name, raw in parsed.items():
                known = fields.get(name)
                if known is None:
                    continue
                key, kind, convert = known
                if (
                    type(raw) is dict
                    and raw.get("status", "value") in present
                    and (value := raw.get("value")) is not None
                    and keys.issuperset(raw)
                ):
                    slot[key] = convert(value)
                else:
                    slot[key] = _value(stored_value(raw), kind, rule)
            if (
                given is not None
                and visit_id == given[0]
                and form_id == given[1]
                and given[2] in parsed
                and treatment_given(stored_value(parsed[given[2]]))
            ):
                self.given.add(pid)
