"""Importing an ODM file written by trialwright's ODM export into a fresh trial made from the same protocol.

``import_odm(engine, actor, path)`` is how a data manager moves a trial to another database: ``trialwright
init`` the new database with the same protocol, then import the file. The file is read twice. The first
reading checks all of it and writes nothing: well-formed XML without a DOCTYPE, ODM 1.3.2 Snapshot, the
``Study`` OID is this trial's (an ODM file from another study is refused), the ``MetaDataVersion`` is this
trial's protocol version and outlines exactly its visits, forms, fields, data types and choices, and every
reference in the clinical data resolves (``StudyEventOID``, ``FormOID``, ``ItemGroupOID``, ``ItemOID``, a
choice's code in its ``CodeList``, users, sites, the signature definition), and every stored value passes the
rules a save applies (``refused_values``: type, choice, hard limits, dates, and the coherence rules of
``trialwright.domain.coherence``), every breach listed by participant, visit, form and field. Only then, in
one transaction, the second reading writes, and only into a trial that holds no screening or participant yet: all or
nothing. Every refusal is an ``OdmImportError`` naming the element or attribute and the rule.

What is written keeps the source trial's identities and values exactly: screenings (number, date, values;
the decision is evaluated again), the consent (who gave it and when; the rest of the consent record is not
in the export, so ``obtained_by`` says so), participants with the SAME ids and sites and their enrolment
time, withdrawals, visits held or missed with their dates, and form records with the exact stored JSON.

Form states are restored, with version, last change, verification, signature (signer, time, the protocol's
signature meaning) and lock: a data manager migrating a trial expects a verified or signed form to stay
verified or signed, not to send every monitor and investigator back over the whole trial. The audit trail
of the source trial is not copied: each imported form record gets one ``import.odm`` entry (its state and
values, with the file name and SHA-256 as detail), so does each visit record (its date, or why it was missed:
that is how a later ODM export of this trial finds a visit without forms), and the import one summary entry;
the file's ``AuditRecord`` elements and its SHA-256 tie the new trail to the old one. Allocations are not imported
(ODM carries no arm): the randomization list comes from the unblinded statistician, not from this file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.coherence import ParticipantFacts, hard_breaches
from trialwright.domain.eligibility import evaluate
from trialwright.domain.forms import FormState, FormValueError, StoredValue, validate_entries
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, UNSCHEDULED, Outline, from_odm, mdv_oid, outline
from trialwright.legacy import LEGACY_ODM_NS
from trialwright.protocol import Protocol
from trialwright.protocol.forms import FieldType
from trialwright.services import audit, clock
from trialwright.services.screening import WithdrawalCause, _decision_detail, _dump, _typed_values
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.data_tables import form_records, trial_locks, visit_records
from trialwright.store.engine import inserted_id, session_scope
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals

__all__ = ["EXTENSION_NAMESPACES", "OdmImportError", "OdmImportReport", "import_odm"]

#: The vendor extension's namespace, and its namespace in files written before the rename.
EXTENSION_NAMESPACES = (TW_NS, LEGACY_ODM_NS)


class OdmImportError(ValueError):
    """An ODM file that cannot be imported, or a trial it cannot go into; the message names the element or
    attribute and the rule. Nothing was written."""


@dataclass(frozen=True)
class OdmImportReport:
    """What an import wrote."""

    file: str
    sha256: str
    participants: int
    visits: int
    forms: int
    values: int
    states: Mapping[str, int]  # form records by state

    def summary(self) -> str:
        """One line for a person: what was imported from which file."""
        states = ", ".join(f"{n} {state}" for state, n in sorted(self.states.items()))
        return (
            f"Imported {self.file} (SHA-256 {self.sha256[:12]}...): {self.participants} participants, {self.visits} "
            f"visits, {self.forms} forms ({states}), {self.values} values; allocations are not in an ODM file: "
            "the unblinded statistician makes the randomization list for this trial"
        )


# --- what one participant's SubjectData holds ------------------------------------------------------


@dataclass
class _Form:
    form_id: str
    values: dict[str, dict[str, Any]]
    tw: dict[str, str]


@dataclass
class _Visit:
    visit_id: str
    date: dt.date | None
    missed: str | None
    label: str | None
    created: tuple[str, dt.datetime] | None
    forms: list[_Form] = field(default_factory=list)


@dataclass
class _Subject:
    participant_id: str
    site: str
    number: int
    screening_number: int
    enrolment: dict[str, str]
    screening_values: dict[str, Any]
    withdrawals: list[tuple[str, dt.date, str, str | None]]
    enrolled: tuple[str, dt.datetime] | None
    visits: list[_Visit]


def _o(local: str) -> str:
    return f"{{{ODM_NS}}}{local}"


def _need(elem: ET.Element, name: str, where: str) -> str:
    value = elem.get(name)
    if value is None or not value.strip():
        raise OdmImportError(f"{where}/@{name}: required")
    return value


def _moment(text: str | None, where: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise OdmImportError(f"{where}: {text!r} is not a date and time") from None
    if moment.tzinfo is None:
        raise OdmImportError(f"{where}: {text!r} has no time zone")
    return moment.astimezone(dt.UTC)


def _day(text: str | None, where: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise OdmImportError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


def _refuse_doctype(path: Path) -> None:
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


class _Reader:
    """Reads and checks an ODM file, yielding one participant at a time (memory stays flat)."""

    def __init__(self, protocol: Protocol, path: Path) -> None:
        self.protocol, self.path = protocol, path
        self.expected: Outline = outline(protocol)
        self.found: Outline | None = None
        self.users: dict[str, str] = {}
        self.locations: set[str] = set()
        self.signatures: dict[str, str] = {}
        self.declared = False
        self.extension: str = TW_NS  # the namespace of the file's vendor extension, as the file declares it

    def _t(self, local: str) -> str:
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

    def subjects(self) -> Iterator[_Subject]:
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
                    elif elem.tag == _o("Study"):
                        self._study(elem)
                    elif elem.tag == _o("ClinicalData"):
                        self._clinical_data(elem)
                        clinical = elem
                elif elem.tag == _o("MetaDataVersion"):
                    self._metadata(elem)
                    elem.clear()
                elif elem.tag == _o("AdminData"):
                    self._admin(elem)
                    elem.clear()
                elif elem.tag == _o("SubjectData") and clinical is not None:
                    subject = self._subject(elem)
                    if subject.participant_id in seen:
                        raise OdmImportError(f"SubjectData/@SubjectKey: {subject.participant_id} appears twice")
                    seen.add(subject.participant_id)
                    clinical.remove(elem)
                    yield subject
        except ET.ParseError as exc:
            raise OdmImportError(
                f"XML: {self.path.name} is not well-formed XML ({exc}); nothing was imported"
            ) from None
        if clinical is None:
            raise OdmImportError("ClinicalData: the file has no clinical data")

    def _root(self, elem: ET.Element) -> None:
        if elem.tag != _o("ODM"):
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
                _need(d, "OID", tag): tuple(_need(r, attr, f"{tag}/{ref}") for r in d.findall(_o(ref)))
                for d in mdv.findall(_o(tag))
            }

        items = {
            _need(d, "OID", "ItemDef"): (
                d.get("DataType", ""),
                ref.get("CodeListOID") if (ref := d.find(_o("CodeListRef"))) is not None else None,
            )
            for d in mdv.findall(_o("ItemDef"))
        }
        codelists = {
            _need(d, "OID", "CodeList"): tuple(
                _need(i, "CodedValue", "CodeList/CodeListItem") for i in d.findall(_o("CodeListItem"))
            )
            for d in mdv.findall(_o("CodeList"))
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
        for user in admin.findall(_o("User")):
            login = user.find(_o("LoginName"))
            if login is None or not (login.text or "").strip():
                raise OdmImportError(f"User[@OID={user.get('OID')}]/LoginName: required")
            self.users[_need(user, "OID", "User")] = login.text or ""
        self.locations |= {_need(loc, "OID", "Location") for loc in admin.findall(_o("Location"))}
        for sig in admin.findall(_o("SignatureDef")):
            meaning = sig.find(_o("Meaning"))
            self.signatures[_need(sig, "OID", "SignatureDef")] = (meaning.text or "") if meaning is not None else ""

    # --- clinical data ---

    def _audited(self, elem: ET.Element, where: str) -> tuple[str, dt.datetime] | None:
        """Who and when from an element's AuditRecord, with its references checked."""
        record = elem.find(_o("AuditRecord"))
        if record is None:
            return None
        where = f"{where}/AuditRecord"
        user = record.find(_o("UserRef"))
        location = record.find(_o("LocationRef"))
        stamp = record.find(_o("DateTimeStamp"))
        if user is None or location is None or stamp is None:
            raise OdmImportError(f"{where}: needs UserRef, LocationRef and DateTimeStamp")
        oid = _need(user, "UserOID", f"{where}/UserRef")
        if oid not in self.users:
            raise OdmImportError(f"{where}/UserRef/@UserOID: {oid} is not a User of the AdminData")
        if _need(location, "LocationOID", f"{where}/LocationRef") not in self.locations:
            raise OdmImportError(f"{where}/LocationRef/@LocationOID: {location.get('LocationOID')} is not a Location")
        at = _moment(stamp.text, f"{where}/DateTimeStamp")
        assert at is not None
        return self.users[oid], at

    def _subject(self, elem: ET.Element) -> _Subject:
        pid = _need(elem, "SubjectKey", "SubjectData")
        where = f"SubjectData[@SubjectKey={pid}]"
        site_ref = elem.find(_o("SiteRef"))
        if site_ref is None:
            raise OdmImportError(f"{where}/SiteRef: required (the participant's site)")
        site = _need(site_ref, "LocationOID", f"{where}/SiteRef")
        if site not in self.locations or site not in self.protocol.site_codes:
            raise OdmImportError(f"{where}/SiteRef/@LocationOID: {site} is not a site of the protocol")
        prefix, _, number = pid.rpartition("-")
        if prefix != site or not number.isdigit():
            raise OdmImportError(f"{where}/@SubjectKey: {pid} is not a participant id of site {site} ({site}-NNN)")
        enrolment = elem.find(self._t("Enrolment"))
        if enrolment is None:
            raise OdmImportError(f"{where}/tw:Enrolment: required (the file was not written by trialwright's export)")
        tw = dict(enrolment.attrib)
        w = f"{where}/tw:Enrolment"
        for name in ("ScreeningNumber", "ScreenedOn", "EnrolledAt", "ConsentGivenBy", "ConsentedAt"):
            _need(enrolment, name, w)
        s_site, _, s_number = tw["ScreeningNumber"].rpartition("-S")
        if s_site != site or not s_number.isdigit():
            raise OdmImportError(f"{w}/@ScreeningNumber: {tw['ScreeningNumber']} is not a screening of site {site}")
        if tw["ConsentGivenBy"] not in {"participant", "representative"}:
            raise OdmImportError(f"{w}/@ConsentGivenBy: must be participant or representative")
        _day(tw["ScreenedOn"], f"{w}/@ScreenedOn")
        _moment(tw["EnrolledAt"], f"{w}/@EnrolledAt")
        _moment(tw["ConsentedAt"], f"{w}/@ConsentedAt")
        values_elem = enrolment.find(self._t("ScreeningValues"))
        try:
            values = json.loads(values_elem.text or "") if values_elem is not None else None
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, dict):
            raise OdmImportError(f"{w}/tw:ScreeningValues: required, a JSON object")
        left = []
        for x in enrolment.findall(self._t("Withdrawal")):
            on = _day(_need(x, "On", f"{w}/tw:Withdrawal"), f"{w}/tw:Withdrawal/@On")
            assert on is not None
            cause = x.get("Cause")
            if cause is not None and cause not in {c.value for c in WithdrawalCause}:
                raise OdmImportError(
                    f"{w}/tw:Withdrawal/@Cause: {cause!r} is not one of {', '.join(c.value for c in WithdrawalCause)}"
                )
            scope = _need(x, "Scope", f"{w}/tw:Withdrawal")
            left.append((scope, on, _need(x, "Reason", f"{w}/tw:Withdrawal"), cause))
        visits: list[_Visit] = []
        for event in elem.findall(_o("StudyEventData")):
            visits.append(self._visit(event, where))
        held = [v.visit_id for v in visits]
        if len(held) != len(set(held)):
            raise OdmImportError(f"{where}/StudyEventData: a visit appears twice")
        return _Subject(pid, site, int(number), int(s_number), tw, values, left, self._audited(elem, where), visits)

    def _visit(self, elem: ET.Element, parent: str) -> _Visit:
        assert self.found is not None
        oid = _need(elem, "StudyEventOID", f"{parent}/StudyEventData")
        where = f"{parent}/StudyEventData[@StudyEventOID={oid}]"
        if oid not in self.found.events:
            raise OdmImportError(f"{parent}/StudyEventData/@StudyEventOID: {oid} is not defined in the metadata")
        key = elem.get("StudyEventRepeatKey")
        if oid == UNSCHEDULED:
            if key is None or not key.isdigit():
                raise OdmImportError(f"{where}/@StudyEventRepeatKey: an unscheduled visit needs its number")
            visit_id = f"unscheduled-{key}"
        else:
            visit_id = self.expected.visits[oid]
        tw = elem.find(self._t("Visit"))
        attrs = dict(tw.attrib) if tw is not None else {}
        day = _day(attrs.get("Date"), f"{where}/tw:Visit/@Date")
        if (day is None) == (attrs.get("MissedReason") is None):
            raise OdmImportError(f"{where}/tw:Visit: needs either Date (held) or MissedReason (missed)")
        visit = _Visit(visit_id, day, attrs.get("MissedReason"), attrs.get("Label"), self._audited(elem, where))
        for form in elem.findall(_o("FormData")):
            visit.forms.append(self._form(form, oid, where))
        if visit.missed and visit.forms:
            raise OdmImportError(f"{where}/FormData: a missed visit has no forms")
        ids = [f.form_id for f in visit.forms]
        if len(ids) != len(set(ids)):
            raise OdmImportError(f"{where}/FormData: a form appears twice at one visit")
        return visit

    def _form(self, elem: ET.Element, event: str, parent: str) -> _Form:
        assert self.found is not None
        oid = _need(elem, "FormOID", f"{parent}/FormData")
        where = f"{parent}/FormData[@FormOID={oid}]"
        if oid not in self.found.forms:
            raise OdmImportError(f"{parent}/FormData/@FormOID: {oid} is not defined in the metadata (no FormDef)")
        if oid not in self.found.events[event]:
            raise OdmImportError(f"{parent}/FormData/@FormOID: {oid} is not a FormRef of StudyEventDef {event}")
        tw = elem.find(self._t("Form"))
        if tw is None:
            raise OdmImportError(f"{where}/tw:Form: required (state and version of the form record)")
        self._form_state(dict(tw.attrib), f"{where}/tw:Form")
        signature = elem.find(_o("Signature"))
        if signature is not None:
            ref = signature.find(_o("SignatureRef"))
            sig = ref.get("SignatureOID") if ref is not None else None
            if sig not in self.signatures:
                raise OdmImportError(f"{where}/Signature/SignatureRef/@SignatureOID: {sig} is not a SignatureDef")
            user = signature.find(_o("UserRef"))
            if user is None or user.get("UserOID") not in self.users:
                raise OdmImportError(f"{where}/Signature/UserRef/@UserOID: not a User of the AdminData")
        self._audited(elem, where)
        values: dict[str, dict[str, Any]] = {}
        for group in elem.findall(_o("ItemGroupData")):
            g_oid = _need(group, "ItemGroupOID", f"{where}/ItemGroupData")
            if g_oid not in self.found.forms[oid]:
                raise OdmImportError(f"{where}/ItemGroupData/@ItemGroupOID: {g_oid} is not an ItemGroupRef of {oid}")
            for item in group.findall(_o("ItemData")):
                name, stored = self._item(item, g_oid, f"{where}/ItemGroupData[@ItemGroupOID={g_oid}]")
                if name in values:
                    raise OdmImportError(f"{where}/ItemData: {name} appears twice")
                values[name] = stored
        return _Form(oid.removeprefix("F."), values, dict(tw.attrib))

    def _form_state(self, tw: dict[str, str], where: str) -> None:
        for name in ("State", "Version", "UpdatedAt", "UpdatedBy"):
            if not tw.get(name):
                raise OdmImportError(f"{where}/@{name}: required")
        for name in ("State", "StateBeforeLock"):
            if name in tw and tw[name] not in {s.value for s in FormState}:
                raise OdmImportError(f"{where}/@{name}: {tw[name]!r} is not a form state")
        if not tw["Version"].isdigit() or int(tw["Version"]) < 1:
            raise OdmImportError(f"{where}/@Version: {tw['Version']!r} is not a positive whole number")
        for name in ("UpdatedAt", "VerifiedAt", "SignedAt", "LockedAt"):
            _moment(tw.get(name), f"{where}/@{name}")

    def _item(self, elem: ET.Element, group: str, parent: str) -> tuple[str, dict[str, Any]]:
        assert self.found is not None
        oid = _need(elem, "ItemOID", f"{parent}/ItemData")
        where = f"{parent}/ItemData[@ItemOID={oid}]"
        if oid not in self.found.items:
            raise OdmImportError(f"{parent}/ItemData/@ItemOID: {oid} is not defined in the metadata (no ItemDef)")
        if oid not in self.found.groups[group]:
            raise OdmImportError(f"{parent}/ItemData/@ItemOID: {oid} is not an ItemRef of ItemGroupDef {group}")
        _, f = self.expected.fields[oid]
        text, null = elem.get("Value"), elem.get("IsNull")
        if (text is None) == (null != "Yes"):
            raise OdmImportError(f'{where}: needs either @Value or @IsNull="Yes", not both or neither')
        tw = elem.find(self._t("StoredValue"))
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
        return f.id, stored


# --- writing ---------------------------------------------------------------------------------------


class _Writer:
    """Writes checked participants into the trial, in the caller's transaction."""

    def __init__(self, session: Session, protocol: Protocol, actor: UserView, file: str, sha256: str) -> None:
        self.session, self.protocol, self.actor = session, protocol, actor
        self.detail = {"file": file, "sha256": sha256}
        self.now = clock.now()
        self.counts: Counter[str] = Counter()
        self.states: Counter[str] = Counter()
        self.meaning = protocol.signature_meaning

    def add(self, s: _Subject) -> None:
        p, tw, session = self.protocol, s.enrolment, self.session
        screened_on = dt.date.fromisoformat(tw["ScreenedOn"])
        decision = evaluate(p, _typed_values(p, s.screening_values))
        screening_id = inserted_id(
            session,
            screenings.insert().values(
                site=s.site, number=s.screening_number, screened_on=screened_on,
                screening_values=_dump(s.screening_values), decision=decision.decision.value,
                decision_detail=_dump(_decision_detail(decision)), protocol_version=p.version.number,
                created_at=self.now, created_by=self.actor.username, updated_at=self.now,
            ),
        )  # fmt: skip
        consented_at = dt.datetime.fromisoformat(tw["ConsentedAt"])
        consented_on = local_date(consented_at, p.site(s.site).timezone, "ConsentedAt")
        in_use = [v for v in p.consent_versions if v.effective_from <= consented_on]
        version = max(in_use or p.consent_versions[:1], key=lambda v: v.effective_from)
        session.execute(
            consents.insert().values(
                screening_id=screening_id, form_version=version.version, given_by=tw["ConsentGivenBy"],
                obtained_by="not in the ODM export (imported)", obtained_at=consented_at, kind="initial",
                decision="consent", recorded_at=self.now, recorded_by=self.actor.username,
            )
        )  # fmt: skip
        enrolled_by, _ = s.enrolled or (self.actor.username, None)
        session.execute(
            participants.insert().values(
                participant_id=s.participant_id, site=s.site, number=s.number, screening_id=screening_id,
                enrolled_at=dt.datetime.fromisoformat(tw["EnrolledAt"]), enrolled_by=enrolled_by,
            )
        )  # fmt: skip
        for scope, on, reason, cause in s.withdrawals:
            session.execute(
                withdrawals.insert().values(
                    participant_id=s.participant_id, scope=scope, reason=reason, cause=cause, withdrawn_on=on,
                    recorded_at=self.now, recorded_by=self.actor.username,
                )
            )  # fmt: skip
        self.counts["participants"] += 1
        for v in s.visits:
            self._visit(s, v)

    def _visit(self, s: _Subject, v: _Visit) -> None:
        by, at = v.created or (self.actor.username, self.now)
        visit_id = inserted_id(
            self.session,
            visit_records.insert().values(
                participant_id=s.participant_id, visit_id=v.visit_id, visit_date=v.date, missed_reason=v.missed,
                unscheduled=v.visit_id.startswith("unscheduled-"), label=v.label, created_at=at, created_by=by,
            ),
        )  # fmt: skip
        audit.record(
            self.session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
            participant=s.participant_id, action="import.odm", reason=v.missed,
            new_value={"visit_date": v.date.isoformat() if v.date else None, "label": v.label},
            detail={**self.detail, "visit": v.visit_id},
        )  # fmt: skip
        self.counts["visits"] += 1
        for form in v.forms:
            tw = form.tw
            moments = {k: dt.datetime.fromisoformat(tw[k]) if tw.get(k) else None
                       for k in ("UpdatedAt", "VerifiedAt", "SignedAt", "LockedAt")}  # fmt: skip
            values = json.dumps(form.values, sort_keys=True, ensure_ascii=False)  # as trialwright.services.forms stores
            lock = {}
            if tw["State"] == "locked" and tw.get("LockedBy"):
                lock = {"lock": {"by": tw["LockedBy"], "at": tw.get("LockedAt"), "before": tw.get("StateBeforeLock")}}
            self.session.execute(
                form_records.insert().values(
                    participant_id=s.participant_id, visit_record_id=visit_id, form_id=form.form_id,
                    state=tw["State"], state_before_lock=tw.get("StateBeforeLock"), form_values=values,
                    version=int(tw["Version"]), protocol_version=self.protocol.version.number,
                    updated_at=moments["UpdatedAt"], updated_by=tw["UpdatedBy"],
                    verified_at=moments["VerifiedAt"], verified_by=tw.get("VerifiedBy"),
                    signed_at=moments["SignedAt"], signed_by=tw.get("SignedBy"),
                    signature_meaning=self.meaning if tw.get("SignedBy") else None,
                    locked_at=moments["LockedAt"], locked_by=tw.get("LockedBy"),
                )
            )  # fmt: skip
            audit.record(
                self.session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
                participant=s.participant_id, form=form.form_id, action="import.odm",
                new_value={"state": tw["State"], "version": int(tw["Version"]), "values": form.values, **lock},
                detail={**self.detail, "visit": v.visit_id},
            )  # fmt: skip
            self.counts["forms"] += 1
            self.counts["values"] += len(form.values)
            self.states[tw["State"]] += 1


_BATCH = 200  # participants whose audit entries one INSERT writes
_SHOWN = 50  # refused values listed in the error; the count is always the whole


def refused_values(protocol: Protocol, subject: _Subject) -> list[str]:
    """Every stored value of the subject's forms that the save path would refuse (type, choice, hard limits,
    text rules, dates, and the coherence rules), as ``participant P, visit V, form F: field: rule``. A form is
    checked as it is saved: its entered values as entries, its derived values as the rules read them."""
    tz = ZoneInfo(protocol.site(subject.site).timezone)
    consented = subject.enrolment.get("ConsentedAt")
    enrolled = subject.enrolment.get("EnrolledAt")
    facts = ParticipantFacts(
        timezone=tz,
        consented_at=dt.datetime.fromisoformat(consented) if consented else None,
        enrolled_at=dt.datetime.fromisoformat(enrolled) if enrolled else None,
    )
    today = local_date(clock.now(), tz)
    enrolled_on = local_date(facts.enrolled_at, tz) if facts.enrolled_at else None
    out: list[str] = []
    for visit in subject.visits:
        visit_forms = {f.form_id: {k: StoredValue.from_json(v) for k, v in f.values.items()} for f in visit.forms}
        for form in visit.forms:
            where = f"participant {subject.participant_id}, visit {visit.visit_id}, form {form.form_id}"
            definition = protocol.form(form.form_id)
            entries = {name: _entry(value) for name, value in form.values.items()
                       if value.get("status") != "derived" and definition.field(name).derived is None}  # fmt: skip
            try:
                validate_entries(definition, entries, today=today, enrolled_on=enrolled_on, timezone=tz.key)
            except FormValueError as exc:
                out += [f"{where}: {problem}" for problem in exc.problems]
            for breach in hard_breaches(protocol, form.form_id, visit_forms, facts):
                line = f"{where}: {breach.message}"
                if line not in out and breach.fields[0].startswith(f"{form.form_id}."):
                    out.append(line)  # each breach once, under the form of the field it names first
    return out


def _entry(stored: Mapping[str, Any]) -> Any:
    """A stored value as the save path takes it: the canonical value, or its status with reason or limit."""
    status = stored.get("status", "value")
    if status == "value":
        return stored.get("value")
    if status in {"below_lloq", "above_uloq"}:
        return {status: stored.get("limit")}  # the limit in the canonical unit
    return {status: stored.get("reason")}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_SAFE_NAME = re.compile(r"[^\w.\- ]")


def import_odm(engine: Engine, actor: UserView, path: Path) -> OdmImportReport:
    """Import an ODM file from trialwright's ODM export into this fresh trial (see the module docstring)."""
    if actor.role is not Role.DATA_MANAGER:
        raise OdmImportError("role: only the data manager imports an ODM file")
    path = Path(path)
    if not path.is_file():
        raise OdmImportError(f"file: {path} is not a file")
    protocol = current_protocol(engine).protocol
    _refuse_doctype(path)
    sha256 = _sha256(path)
    refused: list[str] = []
    for subject in _Reader(protocol, path).subjects():  # the first reading checks everything, writes nothing
        refused += refused_values(protocol, subject)
    if refused:
        shown = "\n".join(f"  {line}" for line in refused[:_SHOWN])
        more = f"\n  ... and {len(refused) - _SHOWN} more" if len(refused) > _SHOWN else ""
        raise OdmImportError(
            f"values: {len(refused)} stored values break the protocol's rules; nothing was imported:\n{shown}{more}"
        )
    name = _SAFE_NAME.sub("_", path.name)
    with session_scope(engine) as session:
        held = {
            "participants": session.execute(select(func.count()).select_from(participants)).scalar_one(),
            "screenings": session.execute(select(func.count()).select_from(screenings)).scalar_one(),
        }
        if any(held.values()):
            raise OdmImportError(
                f"trial: this trial already holds {held['participants']} participants and {held['screenings']} "
                "screenings; an ODM file is imported only into a fresh trial (trialwright init with the same protocol)"
            )
        lock = session.execute(select(trial_locks).order_by(trial_locks.c.id.desc()).limit(1)).first()
        if lock is not None and lock.locked:
            raise OdmImportError("trial: the database is locked; the data manager unlocks it first")
        writer = _Writer(session, protocol, actor, name, sha256)
        imported: list[str] = []
        subjects = iter(_Reader(protocol, path).subjects())
        while chunk := list(itertools.islice(subjects, _BATCH)):
            with audit.batched(session):  # the entries of _BATCH participants with one INSERT, in order
                for subject in chunk:
                    writer.add(subject)
                    imported.append(subject.participant_id)
        if _sha256(path) != sha256:
            raise OdmImportError(f"file: {name} changed while it was being imported; nothing was imported")
        counts = writer.counts
        audit.record(
            session, actor=actor.username, role=actor.role.value, action="import.odm",
            new_value={"participants": imported},
            detail={**writer.detail, **{k: counts[k] for k in ("participants", "visits", "forms", "values")},
                    "states": dict(writer.states)},
        )  # fmt: skip
    return OdmImportReport(
        name, sha256, counts["participants"], counts["visits"], counts["forms"], counts["values"], dict(writer.states)
    )
