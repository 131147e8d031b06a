"""One REDCap dictionary row as a protocol form field, with each part that does not map listed.

The field type and text validation give the protocol type (``text`` + ``integer`` is an integer field, ``notes``
multiline text, ``radio`` and ``dropdown`` a choice, ``checkbox`` a multiple choice, ``yesno`` and ``truefalse``
a yes/no field, ``calc`` a derived number); a numeric validation's min and max are hard limits; ``Required
Field?`` is required; the field note is help. Descriptive text, files, sliders and SQL fields are no field of the
protocol; section headers, identifiers, branching logic, alignment, survey question numbers, matrices and action
tags have no place on a protocol field: each is an :class:`Unmapped`, naming the variable, the column and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Field", "Unmapped", "map_field"]

_HEAD = {
    "section_header": "Section Header", "field_type": "Field Type", "select_choices_or_calculations":
    "Choices, Calculations, OR Slider Labels", "text_validation_type_or_show_slider_number":
    "Text Validation Type OR Show Slider Number", "text_validation_min": "Text Validation Min",
    "text_validation_max": "Text Validation Max", "identifier": "Identifier?",
    "branching_logic": "Branching Logic (Show field only if...)", "custom_alignment": "Custom Alignment",
    "question_number": "Question Number (surveys only)", "matrix_group_name": "Matrix Group Name",
    "matrix_ranking": "Matrix Ranking?", "field_annotation": "Field Annotation",
}  # fmt: skip

#: Field types that are no field of the protocol, and why.
NOT_FIELDS = {
    "descriptive": "descriptive text holds no value: the protocol's forms hold fields (put the text in a field's "
    "help or the form's description)",
    "file": "a file upload (or signature): trialwright stores no documents on forms",
    "slider": "a slider (visual analogue scale) is no protocol field type: declare an integer field with its "
    "hard_limits if that is what it records",
    "sql": "an SQL field reads REDCap's own database",
}
_TEXT_TYPES = {"": "text", "integer": "integer", "number": "decimal", "date_ymd": "date", "datetime_ymd": "datetime",
               "time": "time"}  # fmt: skip
#: Validations that map, with what is lost (the display order of a date, the seconds, a decimal comma).
_NEAR_TYPES = {
    "date_mdy": ("date", "a date shown M-D-Y; trialwright stores and writes it Y-M-D (to-redcap: date_ymd)"),
    "date_dmy": ("date", "a date shown D-M-Y; trialwright stores and writes it Y-M-D (to-redcap: date_ymd)"),
    "datetime_mdy": ("datetime", "shown M-D-Y; written back as datetime_ymd"),
    "datetime_dmy": ("datetime", "shown D-M-Y; written back as datetime_ymd"),
    "datetime_seconds_ymd": ("datetime", "with seconds; written back as datetime_ymd"),
    "datetime_seconds_mdy": ("datetime", "with seconds, shown M-D-Y; written back as datetime_ymd"),
    "datetime_seconds_dmy": ("datetime", "with seconds, shown D-M-Y; written back as datetime_ymd"),
    "number_comma_decimal": ("decimal", "typed with a decimal comma; trialwright takes a point"),
}
_PLACES = re.compile(r"^number_(\d)dp(_comma_decimal)?$")
_YES = {"y", "yes", "1"}


@dataclass(frozen=True)
class Unmapped:
    """A part of the dictionary the draft does not carry: the variable (or form, or event), the column, the
    value found there and why it does not map."""

    variable: str
    column: str
    value: str
    reason: str


@dataclass(frozen=True)
class Field:
    """A row's protocol field (plain data for the file; None when the row is no field) and what did not map."""

    field: dict[str, Any] | None
    unmapped: tuple[Unmapped, ...]


def _choices(row: Mapping[str, str], found: list[Unmapped]) -> list[dict[str, str]]:
    choices = []
    text = row["select_choices_or_calculations"]
    for part in (p.strip() for p in text.split("|")):
        code, comma, label = part.partition(",")
        if not comma or not code.strip():
            found.append(Unmapped(row["field_name"], _HEAD["select_choices_or_calculations"], text,
                                  f"{part!r} is not 'code, label': choice left out"))  # fmt: skip
            continue
        choices.append({"code": code.strip(), "label": label.strip()})
    return choices


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _typed(row: Mapping[str, str], field: dict[str, Any], found: list[Unmapped]) -> None:
    """A text field's type from its validation, and its limits."""
    name = row["field_name"]
    validation = row["text_validation_type_or_show_slider_number"]
    head = _HEAD["text_validation_type_or_show_slider_number"]
    if validation in _TEXT_TYPES:
        field["type"] = _TEXT_TYPES[validation]
    elif validation in _NEAR_TYPES:
        field["type"], why = _NEAR_TYPES[validation]
        found.append(Unmapped(name, head, validation, why))
    elif m := _PLACES.match(validation):
        field["type"], field["decimals"] = "decimal", int(m.group(1))
        found.append(Unmapped(name, head, validation, (
            f"REDCap asks for exactly {m.group(1)} decimal places; the draft keeps at most {m.group(1)} "
            "(decimals) and to-redcap writes number"
            + ("; typed with a decimal comma, trialwright takes a point" if m.group(2) else "")
        )))  # fmt: skip
    else:
        field["type"] = "text"
        found.append(Unmapped(name, head, validation, (
            "a text validation the protocol has no rule for: the draft's field is free text"
        )))  # fmt: skip
    _limits(row, field, found)


def _limits(row: Mapping[str, str], field: dict[str, Any], found: list[Unmapped]) -> None:
    """A number's hard limits from the validation's min and max."""
    name = row["field_name"]
    limits: dict[str, float | int] = {}
    for end, column in (("min", "text_validation_min"), ("max", "text_validation_max")):
        value = row[column]
        if not value:
            continue
        number = _number(value) if field["type"] in {"integer", "decimal"} else None
        if number is None:
            found.append(Unmapped(name, _HEAD[column], value, (
                "only a number's limits are hard limits in the protocol (for dates and times: not_before or a "
                "data check)" if field["type"] not in {"integer", "decimal"} else "not a number"
            )))  # fmt: skip
        else:
            limits[end] = int(number) if number.is_integer() else number
    if limits:
        field["hard_limits"] = limits


def map_field(row: Mapping[str, str], field_id: str, redcap_name: str | None) -> Field:
    """The protocol field of one dictionary row (a calculated field gets its derivation from the caller)."""
    name, kind = row["field_name"], row["field_type"]
    found: list[Unmapped] = []
    if kind in NOT_FIELDS or kind not in {"text", "notes", "radio", "dropdown", "checkbox", "yesno", "truefalse",
                                          "calc"}:  # fmt: skip
        why = NOT_FIELDS.get(kind, "a field type this version of REDCap's dictionary does not have")
        return Field(None, (Unmapped(name, _HEAD["field_type"], kind, why + ": variable left out"),))
    field: dict[str, Any] = {"id": field_id, "label": row["field_label"]}
    if redcap_name is not None:
        field["redcap_name"] = redcap_name
    if kind == "text":
        _typed(row, field, found)
    elif kind == "notes":
        field.update(type="text", multiline=True)
    elif kind in {"radio", "dropdown", "checkbox"}:
        field["type"] = "multi_choice" if kind == "checkbox" else "choice"
        field["choices"] = _choices(row, found)
        if kind == "dropdown":
            found.append(Unmapped(name, _HEAD["field_type"], kind, "a drop-down list: the draft's choice field has "
                                  "one look, and to-redcap writes radio"))  # fmt: skip
    elif kind in {"yesno", "truefalse"}:
        field["type"] = "boolean"
        if kind == "truefalse":
            found.append(Unmapped(name, _HEAD["field_type"], kind, "true/false is a yes/no field (1 and 0 kept); "
                                  "to-redcap writes yesno"))  # fmt: skip
    else:  # calc: a number computed from others
        field["type"] = "decimal"
    if kind == "calc":  # REDCap takes no limits here; to-redcap writes a derived number's own
        _limits(row, field, found)
    columns = ("text_validation_type_or_show_slider_number",) if kind in {"text", "calc"} else (
        "text_validation_type_or_show_slider_number", "text_validation_min", "text_validation_max")  # fmt: skip
    for column in columns:
        if kind != "text" and row[column]:
            found.append(Unmapped(name, _HEAD[column], row[column], f"a {kind} field takes no validation"))
    if row["field_note"]:
        field["help"] = row["field_note"]
    if kind != "calc" and row["required_field"].lower() not in _YES:
        field["required"] = False
    if row["branching_logic"]:
        field["not_applicable_allowed"] = True
        found.append(Unmapped(name, _HEAD["branching_logic"], row["branching_logic"], (
            "a form field has no show-if condition in the protocol (only screening fields have applies_if): the "
            "field is always shown, and the draft allows not applicable for the participants it does not apply to"
        )))  # fmt: skip
    found += _layout(row, kind)
    return Field(field, tuple(found))


def _layout(row: Mapping[str, str], kind: str) -> list[Unmapped]:
    """The columns about how REDCap shows a field, or who may see it, that have no place on a protocol field."""
    name = row["field_name"]
    reasons = {
        "section_header": "the protocol's forms have no section headers",
        "identifier": "identifiers are trial-level: list the field under deidentification.identifiers "
        "(to-redcap then flags it)",
        "custom_alignment": "the protocol says nothing about layout",
        "question_number": "survey question numbers: trialwright has no surveys",
        "matrix_group_name": "a matrix is REDCap's layout: each field is kept on its own, with its choices",
        "matrix_ranking": "a ranked matrix (each choice once across the group) has no protocol rule",
    }
    found = [Unmapped(name, _HEAD[c], row[c], why) for c, why in reasons.items()
             if row[c] and not (c in {"identifier", "matrix_ranking"} and row[c].lower() not in _YES)]  # fmt: skip
    annotation = row["field_annotation"]
    if annotation and not (kind == "calc" and annotation.strip() == "@READONLY"):  # a calculation is read-only
        found.append(Unmapped(name, _HEAD["field_annotation"], annotation, (
            "action tags and annotations are REDCap's: none is carried into the protocol"
        )))  # fmt: skip
    return found
