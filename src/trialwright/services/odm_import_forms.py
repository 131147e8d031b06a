"""Importing a participant's visits and forms from an ODM file: each ``StudyEventData`` (a visit held or missed, an
unscheduled one by its number) and ``FormData`` (a form record's state, version, review and lock, its values and their
AuditRecords and earlier records), and the ODM ``Signature`` of a form or log entry.

A value (``read_item``) is checked for its field (``Reader.stored_value``: its DataType, its CodeList); a form's or
log entry's ``Signature`` and what ``tw:Form`` or ``tw:LogEntry`` says of its signer and time must agree
(``signature_agrees``): a signature is never made up from a state, nor a Signature dropped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from trialwright.domain.forms import FormState
from trialwright.exports.odm import UNSCHEDULED
from trialwright.services.odm_import_common import (
    ImportedForm,
    ImportedVisit,
    OdmImportError,
    Recorded,
    need_attribute,
    odm_tag,
    parse_day,
    parse_moment,
    who,
)

if TYPE_CHECKING:
    from trialwright.services.odm_import_reader import Reader

__all__ = ["read_item", "read_visit", "signature_agrees"]


def read_visit(reader: Reader, elem: ET.Element, parent: str) -> ImportedVisit:
    assert reader.found is not None
    oid = need_attribute(elem, "StudyEventOID", f"{parent}/StudyEventData")
    where = f"{parent}/StudyEventData[@StudyEventOID={oid}]"
    if oid not in reader.found.events:
        raise OdmImportError(f"{parent}/StudyEventData/@StudyEventOID: {oid} is not defined in the metadata")
    key = elem.get("StudyEventRepeatKey")
    if oid == UNSCHEDULED:
        if key is None or not key.isdigit():
            raise OdmImportError(f"{where}/@StudyEventRepeatKey: an unscheduled visit needs its number")
        visit_id = f"unscheduled-{key}"
    else:
        visit_id = reader.expected.visits[oid]
    tw = elem.find(reader.ext_tag("Visit"))
    attrs = dict(tw.attrib) if tw is not None else {}
    day = parse_day(attrs.get("Date"), f"{where}/tw:Visit/@Date")
    if (day is None) == (attrs.get("MissedReason") is None):
        raise OdmImportError(f"{where}/tw:Visit: needs either Date (held) or MissedReason (missed)")
    from trialwright.services.odm_import_elements import LATEST, read_element_history

    recorded = reader.audit_record(elem, where, LATEST["visit"])
    earlier = read_element_history(reader, elem, recorded, "visit", where)
    visit = ImportedVisit(visit_id, day, attrs.get("MissedReason"), attrs.get("Label"), who(recorded),
                          recorded=recorded, earlier=earlier)  # fmt: skip
    for form in elem.findall(odm_tag("FormData")):
        visit.forms.append(_read_form(reader, form, oid, where))
    if visit.missed and visit.forms:
        raise OdmImportError(f"{where}/FormData: a missed visit has no forms")
    ids = [f.form_id for f in visit.forms]
    if len(ids) != len(set(ids)):
        raise OdmImportError(f"{where}/FormData: a form appears twice at one visit")
    return visit


def _read_form(reader: Reader, elem: ET.Element, event: str, parent: str) -> ImportedForm:
    assert reader.found is not None
    oid = need_attribute(elem, "FormOID", f"{parent}/FormData")
    where = f"{parent}/FormData[@FormOID={oid}]"
    if oid not in reader.found.forms:
        raise OdmImportError(f"{parent}/FormData/@FormOID: {oid} is not defined in the metadata (no FormDef)")
    if oid not in reader.found.events[event]:
        raise OdmImportError(f"{parent}/FormData/@FormOID: {oid} is not a FormRef of StudyEventDef {event}")
    tw = elem.find(reader.ext_tag("Form"))
    if tw is None:
        raise OdmImportError(f"{where}/tw:Form: required (state and version of the form record)")
    _form_state(dict(tw.attrib), f"{where}/tw:Form")
    signature_agrees(reader, elem.find(odm_tag("Signature")), dict(tw.attrib), where, "tw:Form")
    from trialwright.services.odm_import_elements import LATEST

    recorded = reader.audit_record(elem, where, LATEST["form"])
    values: dict[str, dict[str, Any]] = {}
    items: dict[str, Recorded] = {}
    history: dict[str, list[dict[str, Any]]] = {}
    for group in elem.findall(odm_tag("ItemGroupData")):
        g_oid = need_attribute(group, "ItemGroupOID", f"{where}/ItemGroupData")
        if g_oid not in reader.found.forms[oid]:
            raise OdmImportError(f"{where}/ItemGroupData/@ItemGroupOID: {g_oid} is not an ItemGroupRef of {oid}")
        for item in group.findall(odm_tag("ItemData")):
            name, stored = read_item(reader, item, g_oid, f"{where}/ItemGroupData[@ItemGroupOID={g_oid}]")
            if name in values:
                raise OdmImportError(f"{where}/ItemData: {name} appears twice")
            values[name] = stored
            item_where = f"{where}/ItemData[@ItemOID={item.get('ItemOID')}]"
            from trialwright.services.odm_import_history import read_history

            item_recorded = reader.audit_record(item, item_where, LATEST["form value"])
            if item_recorded is not None:
                items[name] = item_recorded

            earlier = read_history(reader, item, item_recorded, str(item.get("ItemOID")), item_where,
                                   LATEST["form value"])  # fmt: skip
            if earlier:
                history[name] = earlier
        from trialwright.services.odm_import_elements import no_history, read_removed

        g_where = f"{where}/ItemGroupData[@ItemGroupOID={g_oid}]"
        no_history(reader, group, g_where)  # a form's history is in its FormData
        read_removed(reader, group, g_oid, g_where, values, items, history)
    from trialwright.services.odm_import_elements import read_element_history

    own = read_element_history(reader, elem, recorded, "form", where)
    return ImportedForm(oid.removeprefix("F."), values, dict(tw.attrib), recorded, items, history, own)


def _form_state(tw: dict[str, str], where: str) -> None:
    for name in ("State", "Version", "UpdatedAt", "UpdatedBy"):
        if not tw.get(name):
            raise OdmImportError(f"{where}/@{name}: required")
    for name in ("State", "StateBeforeLock"):
        if name in tw and tw[name] not in {s.value for s in FormState}:
            raise OdmImportError(f"{where}/@{name}: {tw[name]!r} is not a form state")
    if not tw["Version"].isdigit() or int(tw["Version"]) < 1:
        raise OdmImportError(f"{where}/@Version: {tw['Version']!r} is not a positive whole number")
    for name in ("UpdatedAt", "VerifiedAt", "SignedAt", "LockedAt"):
        parse_moment(tw.get(name), f"{where}/@{name}")


def read_item(reader: Reader, elem: ET.Element, group: str, parent: str) -> tuple[str, dict[str, Any]]:
    assert reader.found is not None
    oid = need_attribute(elem, "ItemOID", f"{parent}/ItemData")
    where = f"{parent}/ItemData[@ItemOID={oid}]"
    if oid not in reader.found.items:
        raise OdmImportError(f"{parent}/ItemData/@ItemOID: {oid} is not defined in the metadata (no ItemDef)")
    if oid not in reader.found.groups[group]:
        raise OdmImportError(f"{parent}/ItemData/@ItemOID: {oid} is not an ItemRef of ItemGroupDef {group}")
    return reader.expected.fields[oid][1].id, reader.stored_value(elem, oid, where)


def _signer(reader: Reader, signature: ET.Element, where: str) -> str:
    """An ODM ``Signature`` (at ``where``) whose SignatureDef and user are the AdminData's; the user's OID."""
    ref = signature.find(odm_tag("SignatureRef"))
    sig = ref.get("SignatureOID") if ref is not None else None
    if sig not in reader.signatures:
        raise OdmImportError(f"{where}/SignatureRef/@SignatureOID: {sig} is not a SignatureDef")
    user = signature.find(odm_tag("UserRef"))
    user_oid = user.get("UserOID") if user is not None else None
    if user_oid is None or user_oid not in reader.users:
        raise OdmImportError(f"{where}/UserRef/@UserOID: not a User of the AdminData")
    return user_oid


def signature_agrees(reader: Reader, signature: ET.Element | None, tw: dict[str, str], where: str, owner: str) -> None:
    """A form's or log entry's ODM ``Signature`` and its ``owner`` (``tw:Form``, ``tw:LogEntry``: what the import
    restores) say the same: a record signed by a user of the AdminData has its Signature, by that user at that
    time (the SignatureDef and user the AdminData's), and a record not signed has none. Either half alone is
    refused: a signature is never made up from a state, nor a Signature dropped."""
    by, at = tw.get("SignedBy"), tw.get("SignedAt")
    if bool(by) != bool(at):
        raise OdmImportError(f"{where}/{owner}/@SignedBy: SignedBy and SignedAt come together or not at all")
    if tw.get("State") == "signed" and not by:
        raise OdmImportError(f"{where}/{owner}/@SignedBy: a signed record names its signer and time")
    if signature is None:
        if by and by in reader.users.values():
            raise OdmImportError(f"{where}/Signature: required: {owner} says {by} signed it at {at}, and a "
                                 "signature is restored only with its ODM Signature")  # fmt: skip
        return
    if not by:
        raise OdmImportError(f"{where}/Signature: {owner} is not signed (no SignedBy): a Signature of a record "
                             "not signed is refused")  # fmt: skip
    user_oid = _signer(reader, signature, f"{where}/Signature")
    stamp = signature.find(odm_tag("DateTimeStamp"))
    stamped = parse_moment(stamp.text if stamp is not None else None, f"{where}/Signature/DateTimeStamp")
    if reader.users[user_oid] != by or stamped is None or stamped != parse_moment(at, f"{where}/{owner}/@SignedAt"):
        raise OdmImportError(f"{where}/Signature: the signer and time differ from {owner}'s SignedBy and SignedAt")
