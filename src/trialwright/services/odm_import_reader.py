"""Reading an ODM file for the import: its structure, its metadata and admin data, and its AuditRecords.

``Reader`` reads the file once per pass (``odm_import.import_odm`` makes two: the first checks everything and writes
nothing, the second hands each participant to the ``Writer``), streaming one ``SubjectData`` at a time so memory stays
flat: the root (ODM 1.3.2 Snapshot, no DOCTYPE: ``refuse_doctype``), ``Study`` and ``ClinicalData`` of this trial, the
``MetaDataVersion`` checked to outline exactly this protocol's visits, forms, fields, data types and choices, the
``AdminData``'s users, locations and signature definitions, and every AuditRecord as recorded (``audit_record``). A
participant's content is read by ``odm_import_subjects``, its visits and forms by ``odm_import_forms``, and each other
part by its own ``odm_import_*`` module, which is handed this reader (its public methods and attributes).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.parsers import expat

from trialwright.domain.forms import StoredValue
from trialwright.exports.odm import ODM_NS, TW_NS, Outline, from_odm, mdv_oid, outline
from trialwright.exports.odm.ae_outline import AE_EVENT
from trialwright.protocol import Protocol
from trialwright.protocol.forms import FieldType
from trialwright.services.odm_import_common import (
    EXTENSION_NAMESPACES,
    OdmImportError,
    Recorded,
    Subject,
    need_attribute,
    odm_tag,
    parse_moment,
)
from trialwright.services.odm_import_subjects import read_subject

__all__ = ["Reader", "refuse_doctype"]

_EDIT_POINT_ROLES = {"Monitoring": "monitor", "DataManagement": "data_manager"}
#: ``audit:<seq>:<hash>``, or ``masked`` in an export made without the arms (``services.export_audit``).
_SOURCE_ID = re.compile(r"audit:([0-9]+):([0-9a-f]+|masked)")


def _action(record: ET.Element, tag: str, actions: frozenset[str], where: str) -> str | None:
    """The action an AuditRecord's ``tw:Action`` names (None if it has none), refused unless one of ``actions``."""
    found = record.findall(tag)
    if not found:
        return None
    where = f"{where}/tw:Action"
    if not actions:
        raise OdmImportError(f"{where}: the export writes an action only in an element's or value's latest "
                             "AuditRecord (an earlier record's is its tw:Earlier's Action): it cannot be restored here")
    if len(found) > 1 or found[0].attrib or len(found[0]):
        raise OdmImportError(f"{where}: once, the action's name as text and nothing else")
    action = found[0].text or ""
    if action not in actions:
        raise OdmImportError(f"{where}: {action!r} is not an action about this element (one of "
                             f"{', '.join(sorted(actions))})")  # fmt: skip
    return action


def refuse_doctype(path: Path) -> None:
    """A DOCTYPE (and with it any entity definition) is refused before the file is parsed."""

    class _Done(Exception):
        pass

    def doctype(*_: Any) -> None:
        raise OdmImportError("ODM: the file has a DOCTYPE declaration; an ODM file never needs one (refused)")

    def root(*_: Any) -> None:
        raise _Done

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = root
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                parser.Parse(chunk, False)
    except (_Done, expat.ExpatError):
        return  # the root element started, or the real parse will name the error


# --- reading ---------------------------------------------------------------------------------------


class Reader:
    """Reads and checks an ODM file, yielding one participant at a time (memory stays flat)."""

    def __init__(self, protocol: Protocol, path: Path) -> None:
        self.protocol, self.path = protocol, path
        self.expected: Outline = outline(protocol)
        self.found: Outline | None = None
        self.users: dict[str, str] = {}
        self.user_types: dict[str, str] = {}  # login -> UserType, as the AdminData lists them
        self.locations: set[str] = set()
        self.signatures: dict[str, str] = {}
        self.declared = False
        self.as_of: str | None = None
        self.extension: str = TW_NS  # the namespace of the file's vendor extension, as the file declares it
        self.ae_numbers: set[str] = set()  # the adverse events read so far (an AE number is the trial's)
        self.decisions: list[dict[str, Any]] = []  # the DSMB's decisions (odm_import_records), at ClinicalData's end
        self.details: tuple[str, bool] | None = None  # the first consent/withdrawal detail read: where, whether there
        #: What is done with each screening never enrolled as it is read (odm_import_consents): nothing on the
        #: first reading (only checked), written on the second.
        self.on_screening: Callable[[dict[str, Any]], None] | None = None
        self.consent_ids: Any = None  # odm_import_consents.ConsentIds: what the file said of consent ids so far
        self.locks: list[dict[str, Any]] = []  # the trial lock's and soft locks' changes (odm_import_locks)

    def ext_tag(self, local: str) -> str:
        return f"{{{self.extension}}}{local}"

    def _namespace(self, uri: str) -> None:
        """A file written before the rename declares the old namespace of the extension; both are read, one
        namespace a file."""
        if uri not in EXTENSION_NAMESPACES:
            return
        if uri != self.extension and self.declared:
            raise OdmImportError(
                f"ODM: the file declares the extension namespace twice ({self.extension} and {uri}); "
                "a file written by the export declares one"
            )
        self.extension, self.declared = uri, True

    def subjects(self) -> Iterator[Subject]:
        from trialwright.services.odm_import_queries import QueryReader

        queries = QueryReader(self)
        seen: set[str] = set()
        clinical: ET.Element | None = None
        root: ET.Element | None = None
        self.declared = False
        try:
            for event, item in ET.iterparse(self.path, events=("start-ns", "start", "end")):  # noqa: S314
                if event == "start-ns":  # (prefix, uri); the file has no DOCTYPE (refused before)
                    self._namespace(item[1])
                    continue
                elem = item
                if event == "start":
                    if root is None:
                        root = elem
                        self._root(elem)
                    elif elem.tag == odm_tag("Study"):
                        self._study(elem)
                    elif elem.tag == odm_tag("ClinicalData"):
                        self._clinical_data(elem)
                        clinical = elem
                elif elem.tag == odm_tag("MetaDataVersion"):
                    self._metadata(elem)
                    elem.clear()
                elif elem.tag == odm_tag("AdminData"):
                    self._admin(elem)
                    elem.clear()
                elif elem.tag == odm_tag("SubjectData") and clinical is not None:
                    subject = read_subject(self, elem)
                    if subject.participant_id in seen:
                        raise OdmImportError(f"SubjectData/@SubjectKey: {subject.participant_id} appears twice")
                    seen.add(subject.participant_id)
                    subject.queries = queries.read(elem, subject.participant_id)
                    from trialwright.services.odm_import_locks import read_subject_locks

                    read_subject_locks(self, elem, subject.participant_id)
                    clinical.remove(elem)
                    yield subject
                elif elem.tag == self.ext_tag("Screening") and clinical is not None and elem in clinical:
                    from trialwright.services.odm_import_consents import read_screening

                    screening = read_screening(self, elem)  # streamed: written (or only checked) and dropped
                    if self.on_screening is not None:
                        self.on_screening(screening)
                    clinical.remove(elem)
                elif elem.tag == odm_tag("ClinicalData") and clinical is not None:
                    from trialwright.services.odm_import_records import read_dsmb_decisions

                    self.decisions = read_dsmb_decisions(self, elem)
                    from trialwright.services.odm_import_locks import read_trial_locks

                    read_trial_locks(self, elem)
        except ET.ParseError as exc:
            raise OdmImportError(
                f"XML: {self.path.name} is not well-formed XML ({exc}); nothing was imported"
            ) from None
        if clinical is None:
            raise OdmImportError("ClinicalData: the file has no clinical data")

    def _root(self, elem: ET.Element) -> None:
        self.as_of = elem.get("AsOfDateTime")
        if elem.tag != odm_tag("ODM"):
            raise OdmImportError(f"ODM: the root element is {elem.tag}, not ODM in the namespace {ODM_NS}")
        if elem.get("ODMVersion") != "1.3.2":
            raise OdmImportError(f"ODM/@ODMVersion: {elem.get('ODMVersion')!r}; only ODM 1.3.2 is imported")
        if elem.get("FileType") != "Snapshot":
            raise OdmImportError(f"ODM/@FileType: {elem.get('FileType')!r}; only a Snapshot file is imported")

    def _study(self, elem: ET.Element) -> None:
        if elem.get("OID") != self.protocol.trial_id:
            raise OdmImportError(
                f"Study/@OID: {elem.get('OID')!r} is not this trial ({self.protocol.trial_id}): "
                "an ODM file from another study is not imported"
            )

    def _clinical_data(self, elem: ET.Element) -> None:
        if self.found is None:
            raise OdmImportError("ClinicalData: comes before any MetaDataVersion that defines it")
        if elem.get("StudyOID") != self.protocol.trial_id:
            raise OdmImportError(
                f"ClinicalData/@StudyOID: {elem.get('StudyOID')!r} is not this trial ({self.protocol.trial_id}): "
                "an ODM file from another study is not imported"
            )
        if elem.get("MetaDataVersionOID") != mdv_oid(self.protocol.version.number):
            raise OdmImportError(
                f"ClinicalData/@MetaDataVersionOID: {elem.get('MetaDataVersionOID')!r} does not match this "
                f"trial's protocol version {self.protocol.version.number} ({mdv_oid(self.protocol.version.number)})"
            )

    # --- metadata and admin data ---

    def _metadata(self, mdv: ET.Element) -> None:
        expected_oid = mdv_oid(self.protocol.version.number)
        if mdv.get("OID") != expected_oid:
            raise OdmImportError(
                f"MetaDataVersion/@OID: {mdv.get('OID')!r} does not match this trial's protocol version "
                f"{self.protocol.version.number} (expected {expected_oid})"
            )

        def refs(tag: str, ref: str, attr: str) -> dict[str, tuple[str, ...]]:
            return {
                need_attribute(d, "OID", tag): tuple(
                    need_attribute(r, attr, f"{tag}/{ref}") for r in d.findall(odm_tag(ref))
                )
                for d in mdv.findall(odm_tag(tag))
            }

        items = {
            need_attribute(d, "OID", "ItemDef"): (
                d.get("DataType", ""),
                ref.get("CodeListOID") if (ref := d.find(odm_tag("CodeListRef"))) is not None else None,
            )
            for d in mdv.findall(odm_tag("ItemDef"))
        }
        codelists = {
            need_attribute(d, "OID", "CodeList"): tuple(
                need_attribute(i, "CodedValue", "CodeList/CodeListItem") for i in d.findall(odm_tag("CodeListItem"))
            )
            for d in mdv.findall(odm_tag("CodeList"))
        }
        found = Outline(
            events=refs("StudyEventDef", "FormRef", "FormOID"),
            forms=refs("FormDef", "ItemGroupRef", "ItemGroupOID"),
            groups=refs("ItemGroupDef", "ItemRef", "ItemOID"),
            items=items,
            codelists=codelists,
            visits={},
            fields={},
        )
        exp = self.expected
        if AE_EVENT not in found.events:  # a file written before the export carried adverse events
            from trialwright.services.odm_import_ae import without_adverse_events

            exp = without_adverse_events(exp)
        self._same("StudyEventDef", "FormRef", found.events, exp.events)
        self._same("FormDef", "ItemGroupRef", found.forms, exp.forms)
        self._same("ItemGroupDef", "ItemRef", found.groups, exp.groups)
        self._same("ItemDef", "@DataType and CodeListRef", found.items, exp.items)
        for oid, codes in found.codelists.items():
            if oid not in exp.codelists:
                raise OdmImportError(f"CodeList/@OID: {oid} is not a choice field of the protocol")
            for code in codes:
                if code not in exp.codelists[oid]:
                    raise OdmImportError(
                        f"CodeList[@OID={oid}]/CodeListItem/@CodedValue: {code!r} is not a choice of the protocol "
                        f"(choices: {', '.join(exp.codelists[oid])})"
                    )
        self._same("CodeList", "CodeListItem", found.codelists, exp.codelists)
        self.found = found

    @staticmethod
    def _same(tag: str, part: str, found: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
        for oid, value in found.items():
            if oid not in expected:
                raise OdmImportError(f"{tag}/@OID: {oid} is not in this trial's protocol")
            if value != expected[oid]:
                raise OdmImportError(f"{tag}[@OID={oid}]/{part}: {value} differs from the protocol's {expected[oid]}")
        missing = [oid for oid in expected if oid not in found]
        if missing:
            raise OdmImportError(f"MetaDataVersion: has no {tag} {missing[0]}, which the protocol has")

    def _admin(self, admin: ET.Element) -> None:
        for user in admin.findall(odm_tag("User")):
            login = user.find(odm_tag("LoginName"))
            if login is None or not (login.text or "").strip():
                raise OdmImportError(f"User[@OID={user.get('OID')}]/LoginName: required")
            self.users[need_attribute(user, "OID", "User")] = login.text or ""
            self.user_types[login.text or ""] = user.get("UserType", "Other")
        self.locations |= {need_attribute(loc, "OID", "Location") for loc in admin.findall(odm_tag("Location"))}
        for sig in admin.findall(odm_tag("SignatureDef")):
            meaning = sig.find(odm_tag("Meaning"))
            oid = need_attribute(sig, "OID", "SignatureDef")
            self.signatures[oid] = (meaning.text or "") if meaning is not None else ""

    # --- clinical data ---

    def audit_record(self, elem: ET.Element, where: str, actions: frozenset[str] = frozenset()) -> Recorded | None:
        """An element's AuditRecord as recorded (see ``Recorded``), its references checked; None if it has none.

        ``actions``: the actions the record may name in its ``tw:Action`` (an element's or value's latest record, one
        of that element's actions, kept as ``action``); empty for an earlier record, whose action the export writes on
        its ``tw:Earlier``, never in the AuditRecord. A record without ``tw:Action`` (a file written before the export
        carried it) is kept without ``action``: its action is unknown."""
        record = elem.find(odm_tag("AuditRecord"))
        if record is None:
            return None
        where = f"{where}/AuditRecord"
        action = _action(record, self.ext_tag("Action"), actions, where)
        user = record.find(odm_tag("UserRef"))
        location = record.find(odm_tag("LocationRef"))
        stamp = record.find(odm_tag("DateTimeStamp"))
        if user is None or location is None or stamp is None:
            raise OdmImportError(f"{where}: needs UserRef, LocationRef and DateTimeStamp")
        oid = need_attribute(user, "UserOID", f"{where}/UserRef")
        if oid not in self.users:
            raise OdmImportError(f"{where}/UserRef/@UserOID: {oid} is not a User of the AdminData")
        site = need_attribute(location, "LocationOID", f"{where}/LocationRef")
        if site not in self.locations:
            raise OdmImportError(f"{where}/LocationRef/@LocationOID: {location.get('LocationOID')} is not a Location")
        parse_moment(stamp.text, f"{where}/DateTimeStamp")
        source = record.find(odm_tag("SourceID"))
        found = _SOURCE_ID.fullmatch((source.text or "") if source is not None else "")
        if found is None:
            raise OdmImportError(
                f"{where}/SourceID: {source.text if source is not None else None!r} is not audit:<seq>:<hash> (or "
                ":masked); the import keeps each AuditRecord as recorded and cannot make one up"
            )
        point = record.get("EditPoint")
        reason = record.find(odm_tag("ReasonForChange"))
        kept = {
            "by": self.users[oid], "role": _EDIT_POINT_ROLES.get(point or ""), "site": site, "at": stamp.text,
            "reason": reason.text if reason is not None else None,
            "seq": int(found.group(1)), "hash": found.group(2),
        }  # fmt: skip
        return kept if action is None else {**kept, "action": action}

    def stored_value(self, elem: ET.Element, oid: str, where: str) -> dict[str, Any]:
        """The stored value ``elem`` (an ``ItemData`` or a ``tw:Earlier`` of ItemDef ``oid``) holds, checked for the
        field: its DataType, its CodeList, a stored value that is one."""
        assert self.found is not None
        _, f = self.expected.fields[oid]
        text, null = elem.get("Value"), elem.get("IsNull")
        if (text is None) == (null != "Yes"):
            raise OdmImportError(f'{where}: needs either @Value or @IsNull="Yes", not both or neither')
        tw = elem.find(self.ext_tag("StoredValue"))
        try:
            stored = StoredValue.from_json(from_odm(f, text, dict(tw.attrib) if tw is not None else {})).as_json()
        except (ValueError, TypeError) as exc:
            raise OdmImportError(f"{where}/@Value: {exc}") from None
        codes = self.found.codelists.get(self.found.items[oid][1] or "", ())
        value = stored.get("value")
        if f.type in {FieldType.CHOICE, FieldType.MULTI_CHOICE} and value is not None:
            picked = value if isinstance(value, list) else [value]
            bad = [c for c in picked if c not in codes]
            if bad or (f.type is FieldType.CHOICE) != (not isinstance(value, list)):
                raise OdmImportError(
                    f"{where}/@Value: {bad[0] if bad else value!r} is not a CodeListItem of "
                    f"{self.found.items[oid][1]} (codes: {', '.join(codes)})"
                )
        return stored
