"""What the ODM import's modules share: its error, an AuditRecord as recorded, what one participant's SubjectData
holds as read (``Subject`` and its visits, forms and log entries), and the small readers of the file's tags,
attributes, times, dates and histories' order.

``odm_import`` runs the import (``import_odm``) with ``odm_import_reader``'s ``Reader`` (the file's structure, its
metadata and admin data, AuditRecords) and ``odm_import_writer``'s ``Writer``; ``odm_import_subjects`` (a participant),
``odm_import_forms`` (visits, forms, values, signatures), ``odm_import_logs``, ``odm_import_history``,
``odm_import_elements``, ``odm_import_queries``, ``odm_import_records``, ``odm_import_consents``, ``odm_import_ae`` and
``odm_import_locks`` each read and restore one part of it. They share what is here, by public names, so that no module
imports a private name of another. Every refusal is an ``OdmImportError`` naming the element or attribute and the rule.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from trialwright.exports.odm import ODM_NS, TW_NS
from trialwright.legacy import LEGACY_ODM_NS

__all__ = [
    "EXTENSION_NAMESPACES",
    "ImportedForm",
    "ImportedLogEntry",
    "ImportedVisit",
    "OdmImportError",
    "Recorded",
    "Subject",
    "in_time_order",
    "need_attribute",
    "nothing_else",
    "odm_tag",
    "parse_day",
    "parse_moment",
    "who",
]

#: The vendor extension's namespace, and its namespace in files written before the rename.
EXTENSION_NAMESPACES = (TW_NS, LEGACY_ODM_NS)


class OdmImportError(ValueError):
    """An ODM file that cannot be imported, or a trial it cannot go into; the message names the element or
    attribute and the rule. Nothing was written."""


#: An element's AuditRecord as the file has it: who (login), their role as the EditPoint tells it, the site, the
#: time stamp's text, the reason for change, and the source trial's audit entry (seq and hash of ``SourceID``).
Recorded = dict[str, Any]


def odm_tag(local: str) -> str:
    """``local`` in the ODM 1.3 namespace, as ElementTree names a tag."""
    return f"{{{ODM_NS}}}{local}"


def need_attribute(elem: ET.Element, name: str, where: str) -> str:
    """Attribute ``name`` of ``elem`` (at ``where``), refused when missing or blank."""
    value = elem.get(name)
    if value is None or not value.strip():
        raise OdmImportError(f"{where}/@{name}: required")
    return value


def parse_moment(text: str | None, where: str) -> dt.datetime | None:
    """A date and time with its zone, in UTC (None for None); refused otherwise, naming ``where``."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise OdmImportError(f"{where}: {text!r} is not a date and time") from None
    if moment.tzinfo is None:
        raise OdmImportError(f"{where}: {text!r} has no time zone")
    return moment.astimezone(dt.UTC)


def parse_day(text: str | None, where: str) -> dt.date | None:
    """A date, YYYY-MM-DD (None for None); refused otherwise, naming ``where``."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise OdmImportError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


def in_time_order(records: list[Recorded], where: str, earlier: int) -> None:
    """Each record after the one before it: its time not earlier (a source entry's sequence may come from another
    trail, so it says nothing about the order)."""
    for n in range(1, len(records)):
        before, after = records[n - 1], records[n]
        name = f"{where}/tw:Earlier[{n + 1}]" if n < earlier else where.removesuffix("/tw:History")
        then = parse_moment(str(before["at"]), f"{name}/DateTimeStamp")
        now = parse_moment(str(after["at"]), f"{name}/DateTimeStamp")
        assert then is not None and now is not None
        if now < then:
            raise OdmImportError(
                f"{name}/AuditRecord/DateTimeStamp: {after['at']} is before {before['at']}, the record before it; "
                "a history comes oldest first"
            )


# --- what one participant's SubjectData holds ------------------------------------------------------


@dataclass
class ImportedForm:
    """A form record as the file has it: its values, ``tw:Form``'s attributes, and its and its values' records."""

    form_id: str
    values: dict[str, dict[str, Any]]
    tw: dict[str, str]
    recorded: Recorded | None = None
    items: dict[str, Recorded] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # field -> earlier (odm_import_history)
    earlier: list[Recorded] = field(default_factory=list)  # the form's own earlier records (odm_import_elements)


@dataclass
class ImportedVisit:
    """A visit held or missed as the file has it, with its forms."""

    visit_id: str
    date: dt.date | None
    missed: str | None
    label: str | None
    created: tuple[str, dt.datetime] | None
    forms: list[ImportedForm] = field(default_factory=list)
    recorded: Recorded | None = None
    earlier: list[Recorded] = field(default_factory=list)  # the visit's own earlier records (odm_import_elements)


@dataclass
class Subject:
    """One participant's SubjectData as read (``odm_import_subjects.read_subject``), checked, ready to write."""

    participant_id: str
    site: str
    number: int
    screening_number: int
    enrolment: dict[str, str]
    screening_values: dict[str, Any]
    withdrawals: list[tuple[str, dt.date, str, str | None]]
    enrolled: tuple[str, dt.datetime] | None
    visits: list[ImportedVisit]
    recorded: Recorded | None = None
    randomization: dict[str, str] | None = None  # the file's RandomizationNumber, RandomizedAt, Stratum, as text
    entries: list[ImportedLogEntry] = field(default_factory=list)
    queries: list[Any] = field(default_factory=list)  # ImportedQuery (trialwright.services.odm_import_queries)
    adverse_events: list[Any] = field(default_factory=list)  # odm_import_ae.ImportedEvent
    consent: dict[str, Any] | None = None  # the consent's other details (odm_import_records), None in an older file
    withdrawn: list[tuple[dt.datetime, str] | None] = field(default_factory=list)  # who recorded each withdrawal, when
    earlier: list[Recorded] = field(default_factory=list)  # the participant's own earlier records (odm_import_elements)
    consent_id: int | None = None  # the id of the consent it was enrolled on (None in an older file)
    later_consents: list[dict[str, Any]] = field(default_factory=list)  # its other consents (odm_import_consents)
    screening_earlier: list[Recorded] = field(default_factory=list)  # its screening's entries before enrolment


@dataclass
class ImportedLogEntry:
    """One log entry as the file has it: its values, ``tw:LogEntry``'s attributes, its coding (as ``log_codings``
    stores it, the path a list) and its and its values' AuditRecords."""

    log_id: str
    sequence: int
    values: dict[str, dict[str, Any]]
    tw: dict[str, str]
    coding: dict[str, Any] | None
    recorded: Recorded | None = None
    items: dict[str, Recorded] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # field -> earlier (odm_import_history)
    earlier: list[Recorded] = field(default_factory=list)  # the entry's own earlier records (odm_import_elements)


def who(recorded: Recorded | None) -> tuple[str, dt.datetime] | None:
    """Who and when (UTC) of an AuditRecord as recorded (its time checked when it was read)."""
    if recorded is None:
        return None
    return str(recorded["by"]), dt.datetime.fromisoformat(str(recorded["at"])).astimezone(dt.UTC)


def nothing_else(elem: ET.Element, where: str) -> None:
    """The export writes no AuditRecord, Signature or Annotation on the logs' study event or a log's FormData:
    one there could not be restored, so it is refused rather than dropped."""
    for part in ("AuditRecord", "Signature", "Annotation", f"{{{TW_NS}}}History"):
        if elem.find(part if part.startswith("{") else odm_tag(part)) is not None:
            raise OdmImportError(f"{where}/{part.replace(f'{{{TW_NS}}}', 'tw:')}: the import does not restore it "
                                 "here (never dropped: refused)")
