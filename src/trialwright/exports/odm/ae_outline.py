"""Adverse events in the ODM file's metadata: a common study event ``SE.AE`` with one form ``F.AE`` whose item group
``IG.AE`` repeats, one ``ItemGroupData`` per event keyed by its AE number (``ItemGroupRepeatKey`` ``AE-0001``), and an
item per field of a report (``IT.AE.<field>``: the term, onset, end, grade, seriousness and its criteria, causality,
expected event, action taken, outcome, awareness time, death date and cause, narrative), the coded ones with their
``CodeList`` (``CL.AE.<field>``) from the protocol's safety settings (causality scale, expected events, actions taken)
and the engine's own terms (ICH E2A seriousness criteria, ICH E2B outcomes).

The items are described as ``FormField`` objects (``ae_fields``) so the metadata and the values are written and read
back exactly as a form's are (``metadata``, ``values``). The OIDs' ``AE`` part is upper case, so it never meets a
form's or a log's (a protocol's identifiers are lower case). Nothing here is of one trial: the codes come from the
protocol file. This module imports nothing of the ODM package, so ``outline`` may import it.
"""

from __future__ import annotations

from trialwright.domain.safety import EventOutcome, Seriousness
from trialwright.protocol import FieldType, FormField, Protocol
from trialwright.protocol.forms import Choice

__all__ = ["AE_EVENT", "AE_FORM", "AE_GROUP", "AE_OID", "ae_fields", "ae_item_oids"]

#: The part of the adverse events' OIDs after the kind: ``F.AE``, ``IG.AE``, ``IT.AE.<field>``, ``CL.AE.<field>``.
AE_OID = "AE"
AE_EVENT = "SE.AE"
AE_FORM = f"F.{AE_OID}"
AE_GROUP = f"IG.{AE_OID}"

_WORDS = {
    "term": "Adverse event term, as reported",
    "onset": "Onset date",
    "end": "End date",
    "grade": "CTCAE grade",
    "serious": "Serious (the reporter's judgement)",
    "seriousness_criteria": "Seriousness criteria (ICH E2A)",
    "causality": "Causality",
    "expected_event": "Expected event of the reference safety information",
    "action_taken": "Action taken with the investigational product",
    "outcome": "Outcome",
    "aware_at": "When the site became aware (this report)",
    "death_date": "Date of death",
    "death_cause": "Cause of death",
    "narrative": "Narrative",
}


def _choices(pairs: list[tuple[str, str, dict[str, str]]]) -> list[Choice]:
    return [Choice(code=code, label=label, translations=translations) for code, label, translations in pairs]


def ae_fields(protocol: Protocol) -> tuple[FormField, ...]:
    """The items of an adverse event report, in the order of a report's fields (``domain.safety.REPORT_FIELDS``)."""
    s = protocol.safety
    words = {e.value: e.value.replace("_", " ") for e in (*Seriousness, *EventOutcome)}
    coded: dict[str, list[Choice]] = {
        "seriousness_criteria": _choices([(c.value, words[c.value], {}) for c in Seriousness]),
        "causality": _choices([(c.code, c.label, dict(c.translations)) for c in s.causality]),
        "expected_event": _choices([(e.code, e.term, dict(e.translations)) for e in s.expected_events]),
        "action_taken": _choices([(a.code, a.label, dict(a.translations)) for a in s.action_choices]),
        "outcome": _choices([(o.value, words[o.value], {}) for o in EventOutcome]),
    }
    kinds = {
        "term": FieldType.TEXT, "onset": FieldType.DATE, "end": FieldType.DATE, "grade": FieldType.INTEGER,
        "serious": FieldType.BOOLEAN, "seriousness_criteria": FieldType.MULTI_CHOICE, "causality": FieldType.CHOICE,
        "expected_event": FieldType.CHOICE if coded["expected_event"] else FieldType.TEXT,
        "action_taken": FieldType.CHOICE, "outcome": FieldType.CHOICE, "aware_at": FieldType.DATETIME,
        "death_date": FieldType.DATE, "death_cause": FieldType.TEXT, "narrative": FieldType.TEXT,
    }  # fmt: skip
    optional = {"end", "seriousness_criteria", "expected_event", "death_date", "death_cause", "narrative"}
    return tuple(
        FormField(
            id=name, label=label, type=kinds[name], required=name not in optional,
            choices=coded.get(name, []) if kinds[name] in {FieldType.CHOICE, FieldType.MULTI_CHOICE} else [],
        )
        for name, label in _WORDS.items()
    )  # fmt: skip


def ae_item_oids(protocol: Protocol) -> dict[str, str]:
    """Each report field's ItemDef OID."""
    return {f.id: f"IT.{AE_OID}.{f.id}" for f in ae_fields(protocol)}
