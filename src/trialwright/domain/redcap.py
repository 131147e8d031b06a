"""The trial as REDCap sees a project: its data dictionary, instruments, events and the names of its columns.

A REDCap project is longitudinal here: each visit of the protocol is an event of one event arm (``arm 1``; an
event arm is REDCap's, never a randomization arm), named ``<visit id>_arm_1``; each form is an instrument; the
record id field is ``participant_id``. REDCap field names are unique across the project while a protocol's field
ids are unique within their form, so every field is named ``<form id>_<field id>`` (stable when an amendment adds
a form; two protocol fields that would get one name are refused, never merged). A multiple choice field is a
checkbox, exported as one column per choice, ``<name>___<code>``.

Values are written as REDCap writes them: numbers as typed in the canonical unit, codes, ``1``/``0`` for yes/no,
dates ``YYYY-MM-DD``; a date and time keeps its ISO 8601 UTC offset (REDCap's has none: reading an offset-less
time on some clock would be a guess). A value recorded as not done, not applicable, or censored at a limit of
quantification is written as a missing data code (``ND``, ``NA``, ``BLQ``, ``ALQ``), listed in the project's
``missing_data_codes``; the reason and the limit stay in the native API and exports.

Pure: no I/O. ``services/redcap.py`` reads and writes through the form services.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from trialwright.domain.forms import StoredValue, number_text
from trialwright.domain.redcap_logic import derivation_expression
from trialwright.protocol import Protocol
from trialwright.protocol.forms import FieldType, FormDef, FormField

__all__ = [
    "ARM_NUM",
    "METADATA_COLUMNS",
    "MISSING_CODES",
    "RECORD_ID",
    "Dictionary",
    "FieldName",
    "RedcapError",
    "dictionary",
    "event_mapping",
    "event_name",
]

#: The record id field (REDCap's first field of the first instrument).
RECORD_ID = "participant_id"
#: The one event arm: events are visits; REDCap's event arms are not randomization arms.
ARM_NUM = 1
#: What REDCap writes for a value without a plain value.
MISSING_CODES = {"not_done": "ND", "not_applicable": "NA", "below_lloq": "BLQ", "above_uloq": "ALQ"}
_MISSING_LABELS = {
    "ND": "Not done",
    "NA": "Not applicable",
    "BLQ": "Below the lower limit of quantification",
    "ALQ": "Above the upper limit of quantification",
}
MISSING_DATA_CODES = " | ".join(f"{code}, {label}" for code, label in _MISSING_LABELS.items())

#: The data dictionary's columns, in REDCap's order.
METADATA_COLUMNS = (
    "field_name", "form_name", "section_header", "field_type", "field_label", "select_choices_or_calculations",
    "field_note", "text_validation_type_or_show_slider_number", "text_validation_min", "text_validation_max",
    "identifier", "branching_logic", "required_field", "custom_alignment", "question_number",
    "matrix_group_name", "matrix_ranking", "field_annotation",
)  # fmt: skip

_VALIDATION = {
    FieldType.INTEGER: "integer",
    FieldType.DECIMAL: "number",
    FieldType.DATE: "date_ymd",
    FieldType.DATETIME: "datetime_ymd",
    FieldType.TIME: "time",
}


class RedcapError(ValueError):
    """A request REDCap would refuse (or this endpoint refuses rather than guess): the message names the
    parameter or field and the rule."""


def event_name(visit_id: str) -> str:
    """The unique event name of a visit."""
    return f"{visit_id}_arm_{ARM_NUM}"


@dataclass(frozen=True)
class FieldName:
    """A protocol field under its REDCap name."""

    name: str
    form_id: str
    field: FormField


def _choices(f: FormField) -> str:
    return " | ".join(f"{c.code}, {c.label}" for c in f.choices)


def _number(value: float | None) -> str:
    return "" if value is None else number_text(value)


def _row(name: str, form: FormDef, f: FormField, identifying: bool, name_of: Callable[[str], str]) -> dict[str, str]:
    kind = f.type
    field_type = {
        FieldType.CHOICE: "radio",
        FieldType.MULTI_CHOICE: "checkbox",
        FieldType.BOOLEAN: "yesno",
    }.get(kind, "notes" if f.multiline else "text")
    numeric = kind in {FieldType.INTEGER, FieldType.DECIMAL}
    choices = _choices(f) if f.choices else ""
    annotation = computed = ""
    if f.derived is not None:
        expression = _calculation(f, name_of) if numeric else None
        if expression is not None:
            field_type, choices = "calc", expression
        else:  # a score REDCap cannot compute: a read-only field it accepts on upload, the value from trialwright
            computed = f"computed by trialwright: {f.derived.name}"
        annotation = "@READONLY"
    note = " ".join(x for x in (f.unit or "", f.help or "", computed) if x)
    limits = f.hard_limits
    return {
        "field_name": name,
        "form_name": form.id,
        "section_header": "",
        "field_type": field_type,
        "field_label": f.label,
        "select_choices_or_calculations": choices,
        "field_note": note,
        "text_validation_type_or_show_slider_number": "" if field_type == "calc" else _VALIDATION.get(kind, ""),
        "text_validation_min": _number(limits.min) if limits else "",
        "text_validation_max": _number(limits.max) if limits else "",
        "identifier": "y" if identifying else "",
        "branching_logic": "",
        "required_field": "y" if f.required and f.derived is None else "",
        "custom_alignment": "",
        "question_number": "",
        "matrix_group_name": "",
        "matrix_ranking": "",
        "field_annotation": annotation,
    }


def _calculation(f: FormField, name_of: Callable[[str], str]) -> str | None:
    """REDCap's expression for a formula or a sum, mean, min or max of the values present; None for any other
    derivation (a clinical score, bands, ...), which REDCap cannot compute (a calc field's text must be an
    expression: REDCap refuses the dictionary otherwise)."""
    assert f.derived is not None
    try:
        return derivation_expression(f, name_of)
    except KeyError:  # an input outside the forms (screening): no REDCap variable
        return None


@dataclass(frozen=True)
class Dictionary:
    """The project's data dictionary and the names that map REDCap columns to protocol fields."""

    rows: tuple[dict[str, str], ...]
    fields: Mapping[str, FieldName]  # REDCap field name -> protocol field
    by_form: Mapping[str, tuple[FieldName, ...]]  # form id -> its fields in order
    events: Mapping[str, str]  # unique event name -> visit id
    first_form: str

    def export_names(self, f: FieldName) -> list[tuple[str, str]]:
        """The columns a field is exported as: (export name, choice code or "")."""
        if f.field.type is FieldType.MULTI_CHOICE:
            return [(f"{f.name}___{c.code}", c.code) for c in f.field.choices]
        return [(f.name, "")]

    def columns(self, forms: list[str]) -> Iterator[tuple[str, FieldName, str]]:
        """Every export column of these forms in order: (column, field, choice code or "")."""
        for form_id in forms:
            for f in self.by_form[form_id]:
                for column, code in self.export_names(f):
                    yield column, f, code


def dictionary(protocol: Protocol) -> Dictionary:
    """The data dictionary of the protocol's forms (in the order visits first use them), with the record id field
    first; two fields that would share a REDCap name are refused."""
    order: list[str] = []
    for visit in protocol.visits:
        order += [f for f in visit.forms if f not in order]
    order += [f.id for f in protocol.forms if f.id not in order]
    # A field's REDCap name: its own (kept from an imported dictionary) or <form>_<field>.
    names = {(form.id, f.id): f.redcap_name or f"{form.id}_{f.id}" for form in protocol.forms for f in form.fields}
    rows: list[dict[str, str]] = []
    fields: dict[str, FieldName] = {}
    by_form: dict[str, tuple[FieldName, ...]] = {}
    # REDCap's identifier flag: the direct identifiers the protocol's de-identification names.
    identifying = set(protocol.deidentification.identifiers) if protocol.deidentification else set()
    for form_id in order:
        form = protocol.form(form_id)
        if not rows:
            rows.append({**dict.fromkeys(METADATA_COLUMNS, ""), "field_name": RECORD_ID, "form_name": form.id,
                         "field_type": "text", "field_label": "Participant ID"})  # fmt: skip

        def name_of(ref: str, here: str = form.id) -> str:
            at, _, field = ref.rpartition(".")
            return names[(at or here, field)]

        named = []
        for f in form.fields:
            name = names[(form.id, f.id)]
            if name in fields or name == RECORD_ID or name.endswith("_complete"):
                raise RedcapError(f"{name}: two protocol fields (or a reserved name) would share this REDCap name")
            fields[name] = FieldName(name, form.id, f)
            named.append(fields[name])
            rows.append(_row(name, form, f, f"{form.id}.{f.id}" in identifying, name_of))
        by_form[form_id] = tuple(named)
    events = {event_name(v.id): v.id for v in protocol.visits}
    return Dictionary(tuple(rows), fields, by_form, events, order[0])


def event_mapping(protocol: Protocol) -> list[dict[str, Any]]:
    """REDCap's instrument-event mapping: each visit's forms, as (arm_num, unique_event_name, form) rows."""
    return [{"arm_num": ARM_NUM, "unique_event_name": event_name(v.id), "form": f}
            for v in protocol.visits for f in v.forms]  # fmt: skip


def export_value(
    f: FormField, stored: StoredValue | None, code: str = "", *, label: bool = False, choice_label: bool = False
) -> str:
    """A stored value as REDCap writes it (``code``: the checkbox column's choice; ``choice_label``: REDCap's
    ``exportCheckboxLabel``, with ``label``, a ticked box as its choice's label and an unticked one blank)."""
    if f.type is FieldType.MULTI_CHOICE and code:
        picked = stored is not None and stored.status == "value" and code in (stored.value or [])
        if label and choice_label:
            return next(c.label for c in f.choices if c.code == code) if picked else ""
        if label:
            return "Checked" if picked else "Unchecked"
        if stored is not None and stored.status in MISSING_CODES:
            return MISSING_CODES[stored.status]
        return "1" if picked else "0"
    if stored is None:
        return ""
    if stored.status in MISSING_CODES:
        return MISSING_CODES[stored.status]
    value = stored.value
    if value is None:
        return ""
    if f.type is FieldType.BOOLEAN:
        return ("Yes" if value else "No") if label else ("1" if value else "0")
    if f.type is FieldType.CHOICE and label:
        return next((c.label for c in f.choices if c.code == value), str(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return number_text(value)
    return str(value)


def import_value(f: FieldName, raw: str) -> Any:
    """A REDCap value as the form service takes it (``""`` clears); a missing data code is refused: the form
    service needs the reason a value was not done, which REDCap's code does not carry."""
    text = raw.strip()
    if text in _MISSING_LABELS:
        raise RedcapError(
            f"{f.name}: the missing data code {text} carries no reason; record not done or not applicable with its "
            "reason on the form page or the REST API"
        )
    return text


def checkbox_value(f: FieldName, columns: Mapping[str, str], stored: Collection[str] = ()) -> Any:
    """The codes ticked in a checkbox's columns (``1`` ticked, ``0`` or blank not), or refused. A column not sent
    keeps its stored state, as REDCap leaves it: ticked when its code is in ``stored`` (the codes saved)."""
    picked = []
    for c in f.field.choices:
        if c.code not in columns:
            if c.code in stored:
                picked.append(c.code)
            continue
        raw = columns[c.code].strip()
        if raw not in {"", "0", "1"}:
            raise RedcapError(f"{f.name}___{c.code}: a checkbox column holds 1 or 0, not {raw!r}")
        if raw == "1":
            picked.append(c.code)
    return picked


def project_info(protocol: Protocol) -> dict[str, Any]:
    """REDCap's project information for the trial (nothing about arms: REDCap's arms are event arms)."""
    t = protocol.trial
    return {
        "project_id": 1,
        "project_title": t.titles.scientific,
        "creation_time": t.registration.date.isoformat() + " 00:00:00" if t.registration.date else "",
        "production_time": "",
        "in_production": 1,
        "project_language": "English",
        "purpose": 2,
        "purpose_other": "",
        "project_notes": f"trialwright protocol {protocol.trial_id} version {protocol.version.number}",
        "custom_record_label": "",
        "secondary_unique_field": "",
        "is_longitudinal": 1,
        "has_repeating_instruments_or_events": 0,
        "surveys_enabled": 0,
        "scheduling_enabled": 0,
        "record_autonumbering_enabled": 0,
        "randomization_enabled": 1,
        "ddp_enabled": 0,
        "project_irb_number": "; ".join(f"{i.registry}: {i.id}" for i in t.ids),
        "project_grant_number": "",
        "project_pi_firstname": "",
        "project_pi_lastname": "",
        "display_today_now_button": 1,
        "missing_data_codes": MISSING_DATA_CODES,
        "external_modules": "",
        "bypass_branching_erase_field_prompt": 0,
    }
