"""The ODM file's names and shape: namespaces, OIDs, the DataType of each field type, and the metadata outline
by OID (what the export writes and what an import must find again)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from trialwright.exports.odm.ae_outline import AE_EVENT, AE_FORM, AE_GROUP, AE_OID, ae_fields
from trialwright.protocol import FieldType, FormField, Protocol

__all__ = [
    "DATA_TYPES",
    "LOGS_EVENT",
    "ODM_NS",
    "SIGNATURE_DEF",
    "TW_NS",
    "UNSCHEDULED",
    "Outline",
    "item_oid",
    "log_oid",
    "mdv_oid",
    "outline",
    "unit_oids",
    "user_oid",
]

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
TW_NS = "https://trialwright.dev/odm"
UNSCHEDULED = "SE.UNSCHEDULED"
#: The study event holding every participant's log entries (``trialwright.protocol.logs``): logs are not at a visit.
LOGS_EVENT = "SE.LOGS"
SIGNATURE_DEF = "SD.investigator"

DATA_TYPES = {
    FieldType.INTEGER: "integer",
    FieldType.DECIMAL: "float",
    FieldType.TEXT: "text",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime",
    FieldType.TIME: "time",
    FieldType.CHOICE: "text",
    FieldType.MULTI_CHOICE: "text",
    FieldType.BOOLEAN: "boolean",
}


def mdv_oid(version: str) -> str:
    """The MetaDataVersion OID of a protocol version."""
    return f"MDV.{version}"


def item_oid(form_id: str, field_id: str) -> str:
    """The ItemDef OID of a form's field."""
    return f"IT.{form_id}.{field_id}"


def log_oid(log_id: str) -> str:
    """The part of a log's OIDs after the kind: ``F.LOG.<log>``, ``IG.LOG.<log>``, ``IT.LOG.<log>.<field>``,
    ``CL.LOG.<log>.<field>`` (apart from the forms' OIDs, so a log's can never be taken for a form's)."""
    return f"LOG.{log_id}"


def user_oid(username: str) -> str:
    """The User OID of a trialwright user (or of trialwright itself, for derived values)."""
    return f"USR.{username}"


def unit_oids(protocol: Protocol) -> dict[str, str]:
    """Each canonical unit's MeasurementUnit OID, readable and unique."""
    oids: dict[str, str] = {}
    for form in [*protocol.forms, *protocol.logs]:
        for f in form.fields:
            if f.unit and f.unit not in oids:
                readable = f.unit.replace("%", "percent").replace("°", "deg").replace("/", " per ")
                slug = re.sub(r"[^A-Za-z0-9]+", "_", readable).strip("_") or "unit"
                oid, n = f"MU.{slug}", 1
                while oid in oids.values():
                    n += 1
                    oid = f"MU.{slug}_{n}"
                oids[f.unit] = oid
    return oids


@dataclass(frozen=True)
class Outline:
    """The metadata's structure by OID: what the export writes and what an import must find again."""

    events: Mapping[str, tuple[str, ...]]  # StudyEventDef -> FormRef OIDs
    forms: Mapping[str, tuple[str, ...]]  # FormDef -> ItemGroupRef OIDs
    groups: Mapping[str, tuple[str, ...]]  # ItemGroupDef -> ItemRef OIDs
    items: Mapping[str, tuple[str, str | None]]  # ItemDef -> (DataType, CodeListRef)
    codelists: Mapping[str, tuple[str, ...]]  # CodeList -> coded values
    visits: Mapping[str, str]  # StudyEventDef -> protocol visit id ("" for SE.UNSCHEDULED)
    fields: Mapping[str, tuple[str, FormField]]  # ItemDef -> (form id, field)


def outline(protocol: Protocol) -> Outline:
    """The metadata outline of a protocol."""
    items: dict[str, tuple[str, str | None]] = {}
    codelists: dict[str, tuple[str, ...]] = {}
    fields: dict[str, tuple[str, FormField]] = {}
    for form in protocol.forms:
        for f in form.fields:
            oid = item_oid(form.id, f.id)
            codelist = f"CL.{form.id}.{f.id}" if f.choices else None
            items[oid] = (DATA_TYPES[f.type], codelist)
            fields[oid] = (form.id, f)
            if codelist:
                codelists[codelist] = tuple(c.code for c in f.choices)
    for log in protocol.logs:
        for f in log.fields:
            oid = item_oid(log_oid(log.id), f.id)
            codelist = f"CL.{log_oid(log.id)}.{f.id}" if f.choices else None
            items[oid] = (DATA_TYPES[f.type], codelist)
            fields[oid] = (log.id, f)
            if codelist:
                codelists[codelist] = tuple(c.code for c in f.choices)
    events = {f"SE.{v.id}": tuple(f"F.{form}" for form in v.forms) for v in protocol.visits}
    events[UNSCHEDULED] = tuple(f"F.{form.id}" for form in protocol.forms)
    visits = {f"SE.{v.id}": v.id for v in protocol.visits} | {UNSCHEDULED: ""}
    forms = {f"F.{form.id}": (f"IG.{form.id}",) for form in protocol.forms}
    groups = {f"IG.{form.id}": tuple(item_oid(form.id, f.id) for f in form.fields) for form in protocol.forms}
    if protocol.logs:
        events[LOGS_EVENT] = tuple(f"F.{log_oid(log.id)}" for log in protocol.logs)
        forms |= {f"F.{log_oid(log.id)}": (f"IG.{log_oid(log.id)}",) for log in protocol.logs}
        groups |= {f"IG.{log_oid(log.id)}": tuple(item_oid(log_oid(log.id), f.id) for f in log.fields)
                   for log in protocol.logs}  # fmt: skip
    fields_of_ae = ae_fields(protocol)  # adverse events: ``ae_outline``
    events[AE_EVENT], forms[AE_FORM], groups[AE_GROUP] = (AE_FORM,), (AE_GROUP,), tuple(
        item_oid(AE_OID, f.id) for f in fields_of_ae)  # fmt: skip
    for f in fields_of_ae:
        items[item_oid(AE_OID, f.id)] = (DATA_TYPES[f.type], f"CL.{AE_OID}.{f.id}" if f.choices else None)
        fields[item_oid(AE_OID, f.id)] = (AE_OID, f)
        codelists |= {f"CL.{AE_OID}.{f.id}": tuple(c.code for c in f.choices)} if f.choices else {}
    return Outline(
        events=events,
        forms=forms,
        groups=groups,
        items=items,
        codelists=codelists,
        visits=visits,
        fields=fields,
    )
