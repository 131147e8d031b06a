"""What the ODM import's modules share: its error, an AuditRecord as recorded, and the small readers of the file's
tags, attributes, times, dates and histories' order.

``odm_import`` reads and writes the file (``import_odm``); ``odm_import_history``, ``odm_import_elements``,
``odm_import_queries``, ``odm_import_records``, ``odm_import_consents``, ``odm_import_ae`` and ``odm_import_locks`` each
read and restore one part of it. They share what is here, by public names, so that no module imports a private name of
another. Every refusal is an ``OdmImportError`` naming the element or attribute and the rule.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

from trialwright.exports.odm import ODM_NS

__all__ = [
    "OdmImportError",
    "Recorded",
    "in_time_order",
    "need_attribute",
    "odm_tag",
    "parse_day",
    "parse_moment",
]


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
