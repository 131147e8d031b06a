"""Importing a participant's log entries from an ODM file (``SE.LOGS``: a ``FormData`` per log, an
``ItemGroupData`` per entry, ``ItemGroupRepeatKey`` its sequence).

Each entry is read with its values (each checked for its field, as a form's), ``tw:LogEntry``'s state, version,
removal reason, who added and last changed it and when (and under which protocol version), its review and signature
(``odm_import_forms.signature_agrees``), its coding (``tw:Coding``: dictionary, version, verbatim, code, name, the
path, coder and time) and its and its values' AuditRecords and earlier records. A file written before the export
carried who added an entry is refused naming the attribute; an AuditRecord, Signature or Annotation where the export
writes none is refused, never dropped (``odm_import_common.nothing_else``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from trialwright.exports.odm.outline import LOGS_EVENT
from trialwright.protocol.logs import LogDef
from trialwright.services.odm_import_common import (
    ImportedLogEntry,
    OdmImportError,
    Recorded,
    need_attribute,
    nothing_else,
    odm_tag,
    parse_moment,
)
from trialwright.services.odm_import_forms import read_item, signature_agrees

if TYPE_CHECKING:
    from trialwright.services.odm_import_reader import Reader

__all__ = ["read_logs"]


def read_logs(reader: Reader, elem: ET.Element, parent: str) -> list[ImportedLogEntry]:
    """The participant's log entries (``SE.LOGS``): a ``FormData`` per log, an ``ItemGroupData`` per entry."""
    assert reader.found is not None
    where = f"{parent}/StudyEventData[@StudyEventOID={LOGS_EVENT}]"
    if LOGS_EVENT not in reader.found.events:
        raise OdmImportError(
            f"{parent}/StudyEventData/@StudyEventOID: {LOGS_EVENT} is not defined in the metadata"
        )
    nothing_else(elem, where)
    out: list[ImportedLogEntry] = []
    seen: set[str] = set()
    for form in elem.findall(odm_tag("FormData")):
        oid = need_attribute(form, "FormOID", f"{where}/FormData")
        if oid not in reader.found.events[LOGS_EVENT]:
            raise OdmImportError(f"{where}/FormData/@FormOID: {oid} is not a FormRef of StudyEventDef {LOGS_EVENT}")
        if oid in seen:
            raise OdmImportError(f"{where}/FormData[@FormOID={oid}]: appears twice")
        seen.add(oid)
        f_where = f"{where}/FormData[@FormOID={oid}]"
        nothing_else(form, f_where)
        log = reader.protocol.log(oid.removeprefix("F.LOG."))  # a FormRef of SE.LOGS: a log of the protocol
        sequences: set[int] = set()
        for group in form.findall(odm_tag("ItemGroupData")):
            entry = _log_entry(reader, group, log, oid, f_where)
            if entry.sequence in sequences:
                raise OdmImportError(f"{f_where}/ItemGroupData/@ItemGroupRepeatKey: {entry.sequence} appears twice")
            sequences.add(entry.sequence)
            out.append(entry)
    return out


def _log_entry(reader: Reader, group: ET.Element, log: LogDef, form_oid: str, parent: str) -> ImportedLogEntry:
    assert reader.found is not None
    g_oid = need_attribute(group, "ItemGroupOID", f"{parent}/ItemGroupData")
    if g_oid not in reader.found.forms[form_oid]:
        raise OdmImportError(f"{parent}/ItemGroupData/@ItemGroupOID: {g_oid} is not an ItemGroupRef of {form_oid}")
    key = need_attribute(group, "ItemGroupRepeatKey", f"{parent}/ItemGroupData[@ItemGroupOID={g_oid}]")
    if not key.isdigit() or int(key) < 1:
        raise OdmImportError(f"{parent}/ItemGroupData/@ItemGroupRepeatKey: {key!r} is not an entry's sequence "
                             "(1, 2, ...)")  # fmt: skip
    where = f"{parent}/ItemGroupData[@ItemGroupRepeatKey={key}]"
    if group.find(odm_tag("Annotation")) is not None:
        raise OdmImportError(f"{where}/Annotation: the import does not restore it (never dropped: refused)")
    tw_elem = group.find(reader.ext_tag("LogEntry"))
    if tw_elem is None:
        raise OdmImportError(f"{where}/tw:LogEntry: required (the entry's state, version and review)")
    tw = dict(tw_elem.attrib)
    _entry_state(tw, f"{where}/tw:LogEntry")
    signature_agrees(reader, group.find(odm_tag("Signature")), tw, where, "tw:LogEntry")
    values: dict[str, dict[str, Any]] = {}
    items: dict[str, Recorded] = {}
    history: dict[str, list[dict[str, Any]]] = {}
    for item in group.findall(odm_tag("ItemData")):
        name, stored = read_item(reader, item, g_oid, where)
        if name in values:
            raise OdmImportError(f"{where}/ItemData: {name} appears twice")
        values[name] = stored
        item_where = f"{where}/ItemData[@ItemOID={item.get('ItemOID')}]"
        from trialwright.services.odm_import_elements import LATEST
        from trialwright.services.odm_import_history import read_history

        item_recorded = reader.audit_record(item, item_where, LATEST["log entry value"])
        if item_recorded is not None:
            items[name] = item_recorded

        earlier = read_history(reader, item, item_recorded, str(item.get("ItemOID")), item_where,
                               LATEST["log entry value"])  # fmt: skip
        if earlier:
            history[name] = earlier
    coding = _coding(reader, tw_elem, log, f"{where}/tw:LogEntry/tw:Coding")
    from trialwright.services.odm_import_elements import LATEST, read_element_history, read_removed

    read_removed(reader, group, g_oid, where, values, items, history, actions=LATEST["log entry value"])
    recorded = reader.audit_record(group, where, LATEST["log entry"])
    earlier = read_element_history(reader, group, recorded, "log entry", where)
    return ImportedLogEntry(log.id, int(key), values, tw, coding, recorded, items, history, earlier)


def _entry_state(tw: dict[str, str], where: str) -> None:
    for name in ("State", "Version", "UpdatedAt", "UpdatedBy", "CreatedAt", "CreatedBy", "ProtocolVersion"):
        if not tw.get(name):
            raise OdmImportError(
                f"{where}/@{name}: required (a file written before the export carried who added an entry, when "
                "and under which protocol version cannot restore it exactly, so it is refused)"
                if name.startswith(("Created", "Protocol")) else f"{where}/@{name}: required"
            )  # fmt: skip
    if tw["State"] not in {"active", "removed"}:
        raise OdmImportError(f"{where}/@State: {tw['State']!r} is not active or removed")
    if not tw["Version"].isdigit() or int(tw["Version"]) < 1:
        raise OdmImportError(f"{where}/@Version: {tw['Version']!r} is not a positive whole number")
    if (tw["State"] == "removed") != bool(tw.get("RemovedReason")):
        raise OdmImportError(f"{where}/@RemovedReason: a removed entry has its reason, an active one none")
    for by, at in (("VerifiedBy", "VerifiedAt"), ("SignedBy", "SignedAt")):
        if bool(tw.get(by)) != bool(tw.get(at)):
            raise OdmImportError(f"{where}/@{by}: {by} and {at} come together or not at all")
    for name in ("UpdatedAt", "CreatedAt", "VerifiedAt", "SignedAt"):
        parse_moment(tw.get(name), f"{where}/@{name}")


def _coding(reader: Reader, entry: ET.Element, log: LogDef, where: str) -> dict[str, Any] | None:
    """The entry's coding, as ``log_codings`` holds it; None when the file has none."""
    found = entry.findall(reader.ext_tag("Coding"))
    if not found:
        return None
    if len(found) > 1:
        raise OdmImportError(f"{where}: an entry has one coding")
    (elem,) = found
    domain = log.sdtm.domain if log.sdtm is not None else None
    dictionary = {"CM": "ATC", "MH": "MedDRA"}.get(domain or "")
    tw = dict(elem.attrib)
    if tw.get("Dictionary") != dictionary:
        raise OdmImportError(
            f"{where}/@Dictionary: {tw.get('Dictionary')!r}; the entries of log {log.id} are coded to "
            f"{dictionary or 'no dictionary'} (SDTM {domain or 'none'})"
        )
    for name in ("Version", "Verbatim", "Code", "Name", "CodedAt", "CodedBy"):
        if name not in tw or (name != "Verbatim" and not tw[name].strip()):
            raise OdmImportError(f"{where}/@{name}: required")
    parse_moment(tw["CodedAt"], f"{where}/@CodedAt")
    path = []
    for level in elem.findall(reader.ext_tag("Level")):
        number = need_attribute(level, "Level", f"{where}/tw:Level")
        if not re.fullmatch(r"[1-9][0-9]*", number):  # ASCII digits, no leading zero: as the export writes it
            raise OdmImportError(f"{where}/tw:Level/@Level: {number!r} is not a level (1, 2, ...)")
        path.append({"level": int(number), "code": need_attribute(level, "Code", f"{where}/tw:Level"),
                     "name": need_attribute(level, "Name", f"{where}/tw:Level")})  # fmt: skip
    if not path or path[-1]["code"] != tw["Code"]:
        raise OdmImportError(f"{where}/tw:Level: the path ends at the code coded ({tw['Code']})")
    return {"dictionary": tw["Dictionary"], "version": tw["Version"], "verbatim": tw["Verbatim"],
            "code": tw["Code"], "name": tw["Name"], "path": path, "coded_at": tw["CodedAt"],
            "coded_by": tw["CodedBy"]}  # fmt: skip
