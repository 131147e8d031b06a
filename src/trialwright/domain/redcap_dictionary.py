"""A REDCap data dictionary read as a protocol draft, and a protocol's dictionary written as REDCap's CSV.

REDCap's data dictionary is a CSV of 18 columns, one row per variable (``Variable / Field Name``, ``Form Name``,
``Field Type``, ...). What maps onto the protocol becomes a draft of its ``forms`` (and, from an instrument-event
mapping, its ``visits``): the field's type from its field type and text validation, hard limits from the
validation's min and max, choices, required, the field note as help, calculations as declared derivations
(``trialwright.domain.redcap_logic``). Everything else is listed as :class:`Unmapped` (variable, column, value,
reason), never dropped in silence. Trial-level facts (arms, sites, randomization, ...) are in no dictionary: the
draft leaves them out, so ``trialwright protocol check`` names each one to write (:data:`TO_WRITE`).

A field keeps its REDCap name: ``<form>_<id>`` when the name starts with its form's name, else its own name as
``redcap_name`` (``trialwright.domain.redcap`` writes the names back). The first variable is the record id,
which is trialwright's participant id.

Pure: text in, text and frozen results out (``draft_yaml`` writes the draft's text).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trialwright.domain.redcap import METADATA_COLUMNS, RECORD_ID, RedcapError
from trialwright.domain.redcap_dictionary_fields import Field, Unmapped, map_field
from trialwright.domain.redcap_logic import NotMapped, calculation
from trialwright.protocol.forms import RECORD_COLUMNS

__all__ = [
    "HEADERS",
    "MAPPING_COLUMNS",
    "TO_WRITE",
    "Draft",
    "Unmapped",
    "dictionary_csv",
    "draft",
    "draft_yaml",
    "read_dictionary",
    "read_event_mapping",
]

#: The dictionary's columns as REDCap's CSV heads them, in METADATA_COLUMNS' order.
HEADERS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
    "Matrix Ranking?", "Field Annotation",
)  # fmt: skip
#: The instrument-event mapping's columns.
MAPPING_COLUMNS = ("arm_num", "unique_event_name", "form")
#: What a dictionary never holds: the protocol's trial-level sections, each for the user to write.
TO_WRITE = (
    "trial", "sites", "arms", "sample_size", "masking", "eligibility", "randomization", "outcomes",
    "analysis_sets", "safety", "consent_versions", "version",
)  # fmt: skip
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_EVENT = re.compile(r"^(.+)_arm_(\d+)$")
_READS = re.compile(r"\[([a-z][a-z0-9_]*)\]")
_CODED = {"radio", "dropdown", "checkbox", "yesno", "truefalse"}


@dataclass(frozen=True)
class Draft:
    """A protocol draft: its forms and visits as plain data for the file, what did not map, and what the user
    still writes."""

    forms: tuple[dict[str, Any], ...]
    visits: tuple[dict[str, Any], ...]
    unmapped: tuple[Unmapped, ...]
    to_write: tuple[str, ...]

    @property
    def field_count(self) -> int:
        return sum(len(f["fields"]) for f in self.forms)


def _table(text: str, what: str, columns: Sequence[str], heads: Sequence[Sequence[str]]) -> list[dict[str, str]]:
    """The CSV's rows keyed by ``columns``; its header must be one of ``heads`` exactly (any order refused)."""
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    while lines and not any(c.strip() for c in lines[-1]):
        lines.pop()
    if not lines:
        raise RedcapError(f"{what}: the file is empty")
    header = [h.strip() for h in lines[0]]
    if not any(header == list(h) for h in heads):
        raise RedcapError(f"{what}: the header must be REDCap's {len(columns)} columns: {', '.join(heads[0])}")
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(header):
            raise RedcapError(f"{what}: row {number} has {len(cells)} cells, not {len(header)}")
        rows.append(dict(zip(columns, (c.strip() for c in cells), strict=True)))
    return rows


def read_dictionary(text: str) -> list[dict[str, str]]:
    """The dictionary's rows keyed by REDCap's API names (``field_name``, ...); REDCap's CSV heads or the API's
    names are accepted. A variable named twice, or a variable or form name REDCap itself refuses, is refused."""
    rows = _table(text, "dictionary", METADATA_COLUMNS, (HEADERS, METADATA_COLUMNS))
    if not rows:
        raise RedcapError("dictionary: no variables")
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        for column in ("field_name", "form_name"):
            if not _IDENTIFIER.match(row[column]):
                head = HEADERS[METADATA_COLUMNS.index(column)]
                raise RedcapError(
                    f"dictionary: row {number}, {head}: {row[column]!r} is not a REDCap name (lower-case letters, "
                    "digits and _, starting with a letter)"
                )
        if row["field_name"] in seen:
            raise RedcapError(f"dictionary: row {number}: variable {row['field_name']} is named twice")
        seen.add(row["field_name"])
    return rows


def read_event_mapping(text: str) -> list[dict[str, str]]:
    """The instrument-event mapping's rows (``arm_num``, ``unique_event_name``, ``form``)."""
    return _table(text, "instrument-event mapping", MAPPING_COLUMNS, (MAPPING_COLUMNS,))


def _field_ids(rows: Sequence[Mapping[str, str]]) -> dict[str, tuple[str, str, str | None]]:
    """Each variable's (form, field id, redcap_name or None): the name without its form's prefix when that
    keeps it unique in the form, else the name itself, kept as redcap_name."""
    ids: dict[str, tuple[str, str, str | None]] = {}
    used: set[tuple[str, str]] = {(r["form_name"], r["field_name"]) for r in rows}  # a name is its own id first
    for row in rows:
        name, form = row["field_name"], row["form_name"]
        short = name.removeprefix(f"{form}_")
        if short != name and _IDENTIFIER.match(short) and (form, short) not in used and short not in RECORD_COLUMNS:
            ids[name] = (form, short, None)
        else:  # variable names are unique, so its own name is free
            ids[name] = (form, name, name)
        used.add((form, ids[name][1]))
    return ids


def _visits(mapping: Sequence[Mapping[str, str]], forms: Sequence[str]) -> tuple[list[dict[str, Any]], list[Unmapped]]:
    """The visits of the first event arm, each with its forms; the other arms' events are listed."""
    arms = sorted({r["arm_num"] for r in mapping}, key=lambda a: (len(a), a))
    visits: dict[str, dict[str, Any]] = {}
    unmapped: list[Unmapped] = []
    for number, row in enumerate(mapping, start=2):
        event, form = row["unique_event_name"], row["form"]
        if form not in forms:
            raise RedcapError(f"instrument-event mapping: row {number}: form {form!r} is not in the dictionary")
        m = _EVENT.match(event)
        if not m or not _IDENTIFIER.match(m.group(1)) or m.group(2) != row["arm_num"]:
            raise RedcapError(
                f"instrument-event mapping: row {number}: {event!r} is not a unique event name "
                f"<event>_arm_{row['arm_num']}"
            )
        if row["arm_num"] != arms[0]:
            unmapped.append(Unmapped(event, "arm_num", row["arm_num"], (
                f"event arm {row['arm_num']}: trialwright has one visit schedule for every participant (the draft "
                f"keeps arm {arms[0]}'s events); a REDCap event arm is not a randomization arm"
            )))  # fmt: skip
            continue
        visit = visits.setdefault(m.group(1), {"id": m.group(1), "name": _label(m.group(1)), "forms": []})
        visit["forms"].append(form)
    return list(visits.values()), unmapped


def _label(name: str) -> str:
    """A name shown to people, as REDCap makes an instrument's label from its name."""
    return name.replace("_", " ").strip().capitalize()


def draft(rows: Sequence[Mapping[str, str]], mapping: Sequence[Mapping[str, str]] | None = None) -> Draft:
    """The protocol draft of a dictionary's rows (``read_dictionary``) and an optional event mapping."""
    unmapped: list[Unmapped] = []
    record, rest = rows[0], rows[1:]
    if record["field_name"] != RECORD_ID:
        unmapped.append(Unmapped(record["field_name"], HEADERS[0], record["field_name"], (
            f"the record id: trialwright's participant id, exported as {RECORD_ID}"
        )))  # fmt: skip
    ids = _field_ids(rest)
    names = {name: (form, field) for name, (form, field, _) in ids.items()}
    kinds = {r["field_name"]: r["field_type"] for r in rest}
    forms: dict[str, dict[str, Any]] = {}
    for row in rest:
        form, field_id, redcap_name = ids[row["field_name"]]
        mapped: Field = map_field(row, field_id, redcap_name)
        unmapped += mapped.unmapped
        forms.setdefault(form, {"id": form, "name": _label(form), "fields": []})
        if mapped.field is None:
            continue
        if row["field_type"] == "calc":
            unmapped += _derive(mapped.field, row, form, names, kinds)
        forms[form]["fields"].append(mapped.field)
    empty = [f for f, d in forms.items() if not d["fields"]]
    for form in empty:
        unmapped.append(Unmapped(form, HEADERS[1], form, "no variable of this form maps onto a field: form left out"))
        del forms[form]
    visits: list[dict[str, Any]] = []
    if mapping is not None:
        visits, more = _visits(mapping, [r["form_name"] for r in rows])
        unmapped += more
        for v in visits:
            v["forms"] = [f for f in v["forms"] if f in forms]
    to_write = [*TO_WRITE, "visits[].reference and visits[].day" if visits else "visits"]
    return Draft(tuple(forms.values()), tuple(visits), tuple(unmapped), tuple(to_write))


#: The derivation a calculation that does not map is left with: ``protocol check`` refuses its name there.
PLACEHOLDER = "redcap_calculation_to_write"


def _derive(
    field: dict[str, Any],
    row: Mapping[str, str],
    form: str,
    names: Mapping[str, tuple[str, str]],
    kinds: Mapping[str, str],
) -> list[Unmapped]:
    """Give a calculated field its derivation (or the placeholder), listing what does not carry over."""
    head = HEADERS[5]
    expression = row["select_choices_or_calculations"]
    coded = [v for v in dict.fromkeys(_READS.findall(expression)) if kinds.get(v) in _CODED]
    found = [Unmapped(row["field_name"], head, expression, (
        f"it reads {', '.join(coded)}, whose codes REDCap computes with as numbers; a derivation computes with "
        "integer and decimal fields (make the items integer fields, or give codes points: kind codes)"
    ))] if coded else []  # fmt: skip
    try:
        calc = calculation(expression, form, names)
    except NotMapped as exc:
        field["derived"] = {"name": PLACEHOLDER, "inputs": {}}
        return [*found, Unmapped(row["field_name"], head, expression, (
            f"{exc}; the draft's derived names {PLACEHOLDER}, which protocol check refuses until you declare it"
        ))]  # fmt: skip
    field["derived"] = calc.derived
    if calc.decimals is not None:
        field["decimals"] = calc.decimals
        return found
    return [*found, Unmapped(row["field_name"], head, expression, (
        "no round(..., n): declare decimals (the places the value is kept to), which protocol check asks for"
    ))]  # fmt: skip


def dictionary_csv(rows: Sequence[Mapping[str, str]]) -> str:
    """Dictionary rows (keyed by REDCap's API names) as REDCap's CSV, with its column heads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow([row[c] for c in METADATA_COLUMNS])
    return out.getvalue()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def draft_yaml(d: Draft, source: str) -> str:
    """The draft as a protocol file: a comment saying where it came from, what the user still writes and what
    did not map, then ``format``, ``visits`` and ``forms``."""
    from ruamel.yaml import YAML

    head = [
        f"# Protocol DRAFT written by `trialwright protocol from-redcap` from the REDCap data dictionary {source}.",
        "# Forms and fields come from the dictionary. Still to write (`trialwright protocol check` names each):",
        *(f"#   {part}" for part in d.to_write),
        "# (trial-level facts no data dictionary holds: see docs/protocol.md and the files under protocols/).",
    ]
    if d.unmapped:
        head.append(f"# Not mapped from the dictionary ({len(d.unmapped)}; also printed by the command):")
        head += [f"#   {u.variable}, {u.column}: {_one_line(u.value)!r}: {_one_line(u.reason)}" for u in d.unmapped]
    body: dict[str, Any] = {"format": 2}
    if d.visits:
        body["visits"] = list(d.visits)
    body["forms"] = list(d.forms)
    writer = YAML()
    writer.width = 110
    writer.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    writer.dump(body, out)
    return "\n".join(head) + "\n" + out.getvalue()
