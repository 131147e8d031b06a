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
the decision is evaluated again), the consent the participant was enrolled on (who gave it and when, who obtained
it, its form version, kind, representative, witness and who recorded it when; a file written before the export
carried those keeps ``obtained_by`` saying so), every other consent record (refusals, re-consents, decisions after
regaining capacity) with the ids the source gave them, and the screenings never enrolled that have consent records
(``trialwright.services.odm_import_consents``), participants with the SAME ids and sites and their enrolment
time, withdrawals (with who recorded them and when), visits held or missed with their dates, form records with the
exact stored JSON, and the DSMB's decisions on the safety pause without their reasons, which the file never holds
(``trialwright.services.odm_import_records``).

Form states are restored, with version, last change, verification, signature (signer, time, the protocol's
signature meaning) and lock: a data manager migrating a trial expects a verified or signed form to stay
verified or signed, not to send every monitor and investigator back over the whole trial.

Users and audit records are kept as recorded, never replaced by the importer: every ``AuditRecord`` of the file (user,
role as its ``EditPoint`` tells it, site, time stamp, reason for change, ``SourceID``, the source trial's audit entry,
and for an element's, value's or query's latest record the action its ``tw:Action`` names, for an earlier record the
action its ``tw:Earlier``'s ``Action`` names, each checked to be one of that element's, value's or query's:
``odm_import_elements.LATEST`` and ``ACTIONS``) goes into the import's own audit entries (``recorded``; ``items`` for a
form's values), one ``import.odm`` entry per participant, visit and form record, each with the file name and SHA-256,
whose actor is the importer; the first participant's entry also keeps the file's users (``AdminData``) and each
participant's its randomization number, time and stratum as the file states them. The ODM export reads them back
(``trialwright.exports.odm.audit_index``), so exporting the imported trial gives the file back: ``import_odm`` checks
that, byte for byte, as of the file's ``AsOfDateTime``, and its report says so or where they differ.

Log entries (``SE.LOGS``: a ``FormData`` per log, an ``ItemGroupData`` per entry, ``ItemGroupRepeatKey`` its
sequence) are restored with their sequence, values (checked as a log entry's save checks them), state, version,
removal reason, who added and last changed them and when (and under which protocol version), their source data
verification and signature, and their coding (``tw:Coding``: dictionary, version, verbatim, code, name, the path,
coder and time), each with one ``import.odm`` entry (``form`` the log, the detail its ``sequence``) keeping its and
its values' AuditRecords as recorded; ``audit verify`` replays the entry from it. A file written before the export
carried who added an entry (``CreatedAt``, ``CreatedBy``, ``ProtocolVersion``) is refused naming the attribute; an
AuditRecord, Signature or Annotation where the export writes none (on ``SE.LOGS``, a log's ``FormData``) is
refused, never dropped.

Data queries (``tw:Query`` on the ``SubjectData``, a form's or a log entry's ``ItemGroupData``) are restored with
their numbers, field, origin, text, status, answer and closing note, who raised, answered and closed them and when,
each with one ``import.odm`` entry keeping its AuditRecord as recorded (``trialwright.services.odm_import_queries``,
which also names what it refuses).
Adverse events (``SE.AE``: one ``ItemGroupData`` per event, ``ItemGroupRepeatKey`` its AE number) are read and written
by ``odm_import_ae``: every report, the submissions and the MedDRA coding as recorded, each event with one
``import.odm`` entry (``form`` ``adverse_event:<AE number>``) keeping its and its fields' AuditRecords.

What cannot be restored is refused or listed (``NOT_RESTORED``), never made up: an AuditRecord without its
``SourceID`` is refused; arms and allocation list entries are not in an ODM file (the sealed
list stays with the source trial, and which entry a participant took is not in the file), so a participant
randomized there keeps its number, time and stratum as recorded and is never randomized again here
(``imported_randomization``); the source trial's audit trail before each element's latest AuditRecord is in the file
(``tw:History``): a value's (a form's, a log entry's, an adverse event report's field), which ``odm_import_history``
reads and keeps with the value and action of each record (``history`` in the form's, entry's or event's entry), a
query's, kept with each record's action (``history`` in the query's entry), and an element's own (a participant's, a
visit's, a form's, a log entry's, an adverse event's), which ``odm_import_elements`` reads and keeps (``earlier``), as
it does a value removed by its latest change (``tw:RemovedItemData``: ``items`` and ``history`` without a value).

The trial lock and the soft locks (``tw:TrialLock``, ``tw:SoftLock``) are restored last, after all the data, by
``odm_import_locks``: every change with its AuditRecord as recorded, so a locked source gives a locked trial.

The ``odm_import_*`` modules share ``OdmImportError``, ``Recorded`` and the small readers of tags, attributes, times
and a history's order through ``odm_import_common`` (public names: none imports a private name of another); the
reader and writer they are handed are this module's ``Reader`` and ``Writer``, and a participant's content its
``Subject``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import json
import re
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, Select, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.coherence import ParticipantFacts, hard_breaches
from trialwright.domain.eligibility import evaluate
from trialwright.domain.forms import FormState, FormValueError, StoredValue, validate_entries
from trialwright.domain.logs import entry_problems
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, UNSCHEDULED, Outline, from_odm, mdv_oid, outline
from trialwright.exports.odm.ae_outline import AE_EVENT
from trialwright.exports.odm.outline import LOGS_EVENT
from trialwright.legacy import LEGACY_ODM_NS
from trialwright.protocol import Protocol
from trialwright.protocol.forms import FieldType
from trialwright.protocol.logs import LogDef
from trialwright.services import audit, clock
from trialwright.services.bulk_writes import deferred_insert, deferring
from trialwright.services.errors import denied
from trialwright.services.odm_import_common import (
    OdmImportError,
    Recorded,
    need_attribute,
    odm_tag,
    parse_day,
    parse_moment,
)
from trialwright.services.screening import WithdrawalCause, _decision_detail, _dump, _typed_values
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.data_tables import form_records, trial_locks, visit_records
from trialwright.store.engine import inserted_id, session_scope
from trialwright.store.files import file_sha256
from trialwright.store.log_tables import log_codings, log_entries
from trialwright.store.safety_tables import dsmb_decisions
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals

__all__ = [
    "EXTENSION_NAMESPACES",
    "NOT_RESTORED",
    "OdmImportError",
    "OdmImportReport",
    "import_odm",
    "imported_randomization",
    "imported_randomization_entries",
    "imported_randomizations",
]

#: The vendor extension's namespace, and its namespace in files written before the rename.
EXTENSION_NAMESPACES = (TW_NS, LEGACY_ODM_NS)


#: What an import does not restore, however exact the rest: said by every report and in docs/exports.md.
NOT_RESTORED = (
    "arms and allocation list entries (preparation codes): ODM carries no arm, so the sealed list stays with the "
    "source trial; a randomized participant's number, time and stratum are kept as the file states them (in the "
    "import's audit entry) and this trial refuses to randomize that participant again, and refuses an analysis, "
    "which would leave them out (it runs in the source trial)",
    "the source trial's audit trail beyond what the file holds: the file holds every audit entry about a "
    "participant, visit, form, log entry, query, adverse event and value (the latest as the AuditRecord, the earlier "
    "ones, oldest first, in tw:History, each with the action it recorded and a value's with the value it set; a "
    "value removed by its latest change in tw:RemovedItemData), each kept as recorded (user, role, site, time, "
    "reason, source entry, and its action: a latest record's as its tw:Action names it, an earlier record's as its "
    "tw:Earlier's Action names it) in the import's audit entries; a file written before the export named them "
    "holds no actions of the latest records, and one written before the export named them on every tw:Earlier "
    "none of a value's and a query's earlier records (each such record kept without one: unknown, and after a "
    "change here such a latest record is in its element's or value's history without an Action); the entries "
    "about a participant's randomization, preparation and emergency unblinding are never written (ODM carries no "
    "arm), so they stay in the source database",
    "what the ODM file does not hold: users' accounts (the AdminData names them; accounts are made by the "
    "administrator), the ATC index and MedDRA release themselves (each coding carries its version and path; load them "
    "again to code here), the reasons the DSMB gave for its decisions on the safety pause (its words may speak of the "
    "arms, so no ODM file carries them: each imported decision says so), and the SAE notifications "
    "and e-mails the source trial sent when its adverse events were reported (an imported event sends none)",
    "in a file written before the export carried them: who obtained a consent and its other details, and who "
    "recorded a withdrawal and when (the consent says it was not in the export; the withdrawal names the importer), "
    "and the audit entries about a participant's screening made before it was enrolled (its creation, changes and "
    "consent decisions: they name no participant, and such a file has no tw:History in tw:Enrolment)",
)


@dataclass(frozen=True)
class OdmImportReport:
    """What an import wrote, and whether exporting the imported trial gives the file back byte for byte."""

    file: str
    sha256: str
    participants: int
    visits: int
    forms: int
    values: int
    states: Mapping[str, int]  # form records by state
    randomized: int = 0  # participants whose randomization (number, time, stratum) the file states
    audit_records: int = 0  # AuditRecords kept as recorded (the latest about each thing)
    earlier_records: int = 0  # earlier AuditRecords of values (with their values), queries and elements (tw:History)
    users: int = 0  # users the file's AdminData names
    log_entries: int = 0  # log entries (removed ones included), each with its review and AuditRecords
    codings: int = 0  # log entries' codings (ATC, MedDRA)
    queries: int = 0  # data queries (on participants, forms and log entries), every state
    adverse_events: int = 0  # adverse events, each with its reports, submissions, coding and AuditRecords
    dsmb_decisions: int = 0  # the DSMB's decisions on the safety pause (no reason: never in the file)
    consents: int = 0  # consent records, every one (refusals, re-consents, later decisions), with their ids
    screenings: int = 0  # screenings never enrolled, restored with their consent records and audit records
    locks: int = 0  # the trial lock's and soft locks' changes (each with its AuditRecord), restored after the data
    reexport_difference: str | None = None  # None: the re-export is byte-identical to the file
    not_restored: tuple[str, ...] = NOT_RESTORED

    @property
    def byte_identical(self) -> bool:
        return self.reexport_difference is None

    def summary(self) -> str:
        """For a person: what was imported from which file, and whether the re-export is byte-identical."""
        states = ", ".join(f"{n} {state}" for state, n in sorted(self.states.items())) or "none"
        check = "yes" if self.byte_identical else f"NO ({self.reexport_difference})"
        lines = [
            f"Imported {self.file} (SHA-256 {self.sha256})",
            f"  participants:   {self.participants} ({self.randomized} randomized: number, time and stratum as "
            "recorded, no arm)",
            f"  visits:         {self.visits}",
            f"  forms:          {self.forms} ({states})",
            f"  values:         {self.values}",
            f"  log entries:    {self.log_entries} ({self.codings} coded; removals, verification and signatures as "
            "recorded)",
            f"  queries:        {self.queries} (open, answered and closed, with who and when, as recorded)",
            f"  adverse events: {self.adverse_events} (every report, submission and MedDRA coding as recorded)",
            f"  DSMB decisions: {self.dsmb_decisions} (decision, related SAEs, who and when; the reason is not in the "
            "file)",
            f"  consents:       {self.consents} (every consent record, refusals and later decisions too, with its id)",
            f"  screenings:     {self.screenings} never enrolled (number, date, values, why not enrolled, consent "
            "records and audit records as recorded)",
            f"  locks:          {self.locks} changes of the trial lock and soft locks (who, when, why, an override's "
            "open blockers, as recorded; restored after the data: a locked source gives a locked trial)",
            f"  audit records:  {self.audit_records} kept as recorded, naming {self.users} users",
            f"  audit history:  {self.earlier_records} earlier records of changed values (forms, log entries, adverse "
            "event reports; with the value each set), of data queries and of the participants, visits, forms, log "
            "entries and adverse events themselves and of their screenings before enrolment (with the action each "
            "recorded), kept as recorded",
            f"  byte-identical re-export: {check}",
            "  not restored:",
            *(f"    - {line}" for line in self.not_restored),
        ]
        return "\n".join(lines)


# --- what one participant's SubjectData holds ------------------------------------------------------


_EDIT_POINT_ROLES = {"Monitoring": "monitor", "DataManagement": "data_manager"}
_SOURCE_ID = re.compile(r"audit:([0-9]+):([0-9a-f]+)")


@dataclass
class _Form:
    form_id: str
    values: dict[str, dict[str, Any]]
    tw: dict[str, str]
    recorded: Recorded | None = None
    items: dict[str, Recorded] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # field -> earlier (odm_import_history)
    earlier: list[Recorded] = field(default_factory=list)  # the form's own earlier records (odm_import_elements)


@dataclass
class _Visit:
    visit_id: str
    date: dt.date | None
    missed: str | None
    label: str | None
    created: tuple[str, dt.datetime] | None
    forms: list[_Form] = field(default_factory=list)
    recorded: Recorded | None = None
    earlier: list[Recorded] = field(default_factory=list)  # the visit's own earlier records (odm_import_elements)


@dataclass
class Subject:
    participant_id: str
    site: str
    number: int
    screening_number: int
    enrolment: dict[str, str]
    screening_values: dict[str, Any]
    withdrawals: list[tuple[str, dt.date, str, str | None]]
    enrolled: tuple[str, dt.datetime] | None
    visits: list[_Visit]
    recorded: Recorded | None = None
    randomization: dict[str, str] | None = None  # the file's RandomizationNumber, RandomizedAt, Stratum, as text
    entries: list[_LogEntry] = field(default_factory=list)
    queries: list[Any] = field(default_factory=list)  # ImportedQuery (trialwright.services.odm_import_queries)
    adverse_events: list[Any] = field(default_factory=list)  # odm_import_ae.ImportedEvent
    consent: dict[str, Any] | None = None  # the consent's other details (odm_import_records), None in an older file
    withdrawn: list[tuple[dt.datetime, str] | None] = field(default_factory=list)  # who recorded each withdrawal, when
    earlier: list[Recorded] = field(default_factory=list)  # the participant's own earlier records (odm_import_elements)
    consent_id: int | None = None  # the id of the consent it was enrolled on (None in an older file)
    later_consents: list[dict[str, Any]] = field(default_factory=list)  # its other consents (odm_import_consents)
    screening_earlier: list[Recorded] = field(default_factory=list)  # its screening's entries before enrolment


@dataclass
class _LogEntry:
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


def _who(recorded: Recorded | None) -> tuple[str, dt.datetime] | None:
    """Who and when (UTC) of an AuditRecord as recorded (its time checked when it was read)."""
    if recorded is None:
        return None
    return str(recorded["by"]), dt.datetime.fromisoformat(str(recorded["at"])).astimezone(dt.UTC)


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
                    subject = self._subject(elem)
                    if subject.participant_id in seen:
                        raise OdmImportError(f"SubjectData/@SubjectKey: {subject.participant_id} appears twice")
                    seen.add(subject.participant_id)
                    subject.queries = queries.read(elem, subject.participant_id)
                    from trialwright.services.odm_import_locks import read_subject_locks

                    read_subject_locks(self, elem, subject.participant_id)
                    clinical.remove(elem)
                    yield subject
                elif elem.tag == self._t("Screening") and clinical is not None and elem in clinical:
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

    def _recorded(self, elem: ET.Element, where: str, actions: frozenset[str] = frozenset()) -> Recorded | None:
        """An element's AuditRecord as recorded (see ``Recorded``), its references checked; None if it has none.

        ``actions``: the actions the record may name in its ``tw:Action`` (an element's or value's latest record, one
        of that element's actions, kept as ``action``); empty for an earlier record, whose action the export writes on
        its ``tw:Earlier``, never in the AuditRecord. A record without ``tw:Action`` (a file written before the export
        carried it) is kept without ``action``: its action is unknown."""
        record = elem.find(odm_tag("AuditRecord"))
        if record is None:
            return None
        where = f"{where}/AuditRecord"
        action = _action(record, self._t("Action"), actions, where)
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
                f"{where}/SourceID: {source.text if source is not None else None!r} is not audit:<seq>:<hash>; the "
                "import keeps each AuditRecord as recorded and cannot make one up"
            )
        point = record.get("EditPoint")
        reason = record.find(odm_tag("ReasonForChange"))
        kept = {
            "by": self.users[oid], "role": _EDIT_POINT_ROLES.get(point or ""), "site": site, "at": stamp.text,
            "reason": reason.text if reason is not None else None,
            "seq": int(found.group(1)), "hash": found.group(2),
        }  # fmt: skip
        return kept if action is None else {**kept, "action": action}

    def _subject(self, elem: ET.Element) -> Subject:
        pid = need_attribute(elem, "SubjectKey", "SubjectData")
        where = f"SubjectData[@SubjectKey={pid}]"
        site_ref = elem.find(odm_tag("SiteRef"))
        if site_ref is None:
            raise OdmImportError(f"{where}/SiteRef: required (the participant's site)")
        site = need_attribute(site_ref, "LocationOID", f"{where}/SiteRef")
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
            need_attribute(enrolment, name, w)
        s_site, _, s_number = tw["ScreeningNumber"].rpartition("-S")
        if s_site != site or not s_number.isdigit():
            raise OdmImportError(f"{w}/@ScreeningNumber: {tw['ScreeningNumber']} is not a screening of site {site}")
        if tw["ConsentGivenBy"] not in {"participant", "representative"}:
            raise OdmImportError(f"{w}/@ConsentGivenBy: must be participant or representative")
        parse_day(tw["ScreenedOn"], f"{w}/@ScreenedOn")
        parse_moment(tw["EnrolledAt"], f"{w}/@EnrolledAt")
        parse_moment(tw["ConsentedAt"], f"{w}/@ConsentedAt")
        values_elem = enrolment.find(self._t("ScreeningValues"))
        try:
            values = json.loads(values_elem.text or "") if values_elem is not None else None
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, dict):
            raise OdmImportError(f"{w}/tw:ScreeningValues: required, a JSON object")
        from trialwright.services.odm_import_records import read_consent, read_withdrawal, same_generation

        consent = read_consent(self.protocol, tw, w)
        left = []
        withdrawn: list[tuple[dt.datetime, str] | None] = []
        for x in enrolment.findall(self._t("Withdrawal")):
            on = parse_day(need_attribute(x, "On", f"{w}/tw:Withdrawal"), f"{w}/tw:Withdrawal/@On")
            assert on is not None
            cause = x.get("Cause")
            if cause is not None and cause not in {c.value for c in WithdrawalCause}:
                raise OdmImportError(
                    f"{w}/tw:Withdrawal/@Cause: {cause!r} is not one of {', '.join(c.value for c in WithdrawalCause)}"
                )
            scope = need_attribute(x, "Scope", f"{w}/tw:Withdrawal")
            left.append((scope, on, need_attribute(x, "Reason", f"{w}/tw:Withdrawal"), cause))
            withdrawn.append(read_withdrawal(x, f"{w}/tw:Withdrawal[{len(left)}]"))
        same_generation(self, consent, withdrawn, w)
        from trialwright.services.odm_import_consents import read_later

        consent_id, later = read_later(self, enrolment, w, consent, tw["ScreeningNumber"])
        visits: list[_Visit] = []
        entries: list[_LogEntry] | None = None
        events: list[Any] | None = None
        for event in elem.findall(odm_tag("StudyEventData")):
            if event.get("StudyEventOID") == AE_EVENT:  # adverse events: ``odm_import_ae``
                from trialwright.services.odm_import_ae import read_adverse_events

                if events is not None:
                    raise OdmImportError(f"{where}/StudyEventData[@StudyEventOID={AE_EVENT}]: appears twice")
                events = read_adverse_events(self, event, where, site)
            elif event.get("StudyEventOID") != LOGS_EVENT:
                visits.append(self._visit(event, where))
            elif entries is None:
                entries = self._logs(event, where)
            else:
                raise OdmImportError(f"{where}/StudyEventData[@StudyEventOID={LOGS_EVENT}]: appears twice")
        held = [v.visit_id for v in visits]
        if len(held) != len(set(held)):
            raise OdmImportError(f"{where}/StudyEventData: a visit appears twice")
        kinds = ("RandomizationNumber", "RandomizedAt", "Stratum")
        randomization: dict[str, str] = {k: tw[k] for k in kinds if k in tw}
        if randomization:
            if set(randomization) != {"RandomizationNumber", "RandomizedAt", "Stratum"}:
                raise OdmImportError(f"{w}: RandomizationNumber, RandomizedAt and Stratum come together or not at all")
            if not randomization["RandomizationNumber"].isdigit():
                number_text = randomization["RandomizationNumber"]
                raise OdmImportError(f"{w}/@RandomizationNumber: {number_text!r} is not a number")
            parse_moment(randomization["RandomizedAt"], f"{w}/@RandomizedAt")
        from trialwright.services.odm_import_elements import LATEST, read_element_history

        recorded = self._recorded(elem, where, LATEST["participant"])
        earlier = read_element_history(self, elem, recorded, "participant", where)
        # The entries about its screening before it was enrolled (they name no participant): no latest after them.
        before = read_element_history(self, enrolment, None, "screening", w, alone=True)
        # Who enrolled the participant: the record of its enrolment (the latest if the history names none).
        enrolment_record = next((r for r in earlier if r["action"] == "participant.enrolled"), recorded)
        return Subject(
            pid, site, int(number), int(s_number), tw, values, left, _who(enrolment_record), visits, recorded,
            randomization or None, entries or [], adverse_events=events or [], consent=consent, withdrawn=withdrawn,
            earlier=earlier, consent_id=consent_id, later_consents=later, screening_earlier=before,
        )  # fmt: skip

    def _logs(self, elem: ET.Element, parent: str) -> list[_LogEntry]:
        """The participant's log entries (``SE.LOGS``): a ``FormData`` per log, an ``ItemGroupData`` per entry."""
        assert self.found is not None
        where = f"{parent}/StudyEventData[@StudyEventOID={LOGS_EVENT}]"
        if LOGS_EVENT not in self.found.events:
            raise OdmImportError(
                f"{parent}/StudyEventData/@StudyEventOID: {LOGS_EVENT} is not defined in the metadata"
            )
        self._nothing_else(elem, where)
        out: list[_LogEntry] = []
        seen: set[str] = set()
        for form in elem.findall(odm_tag("FormData")):
            oid = need_attribute(form, "FormOID", f"{where}/FormData")
            if oid not in self.found.events[LOGS_EVENT]:
                raise OdmImportError(f"{where}/FormData/@FormOID: {oid} is not a FormRef of StudyEventDef {LOGS_EVENT}")
            if oid in seen:
                raise OdmImportError(f"{where}/FormData[@FormOID={oid}]: appears twice")
            seen.add(oid)
            f_where = f"{where}/FormData[@FormOID={oid}]"
            self._nothing_else(form, f_where)
            log = self.protocol.log(oid.removeprefix("F.LOG."))  # a FormRef of SE.LOGS: a log of the protocol
            sequences: set[int] = set()
            for group in form.findall(odm_tag("ItemGroupData")):
                entry = self._log_entry(group, log, oid, f_where)
                if entry.sequence in sequences:
                    raise OdmImportError(f"{f_where}/ItemGroupData/@ItemGroupRepeatKey: {entry.sequence} appears twice")
                sequences.add(entry.sequence)
                out.append(entry)
        return out

    @staticmethod
    def _nothing_else(elem: ET.Element, where: str) -> None:
        """The export writes no AuditRecord, Signature or Annotation on the logs' study event or a log's FormData:
        one there could not be restored, so it is refused rather than dropped."""
        for part in ("AuditRecord", "Signature", "Annotation", f"{{{TW_NS}}}History"):
            if elem.find(part if part.startswith("{") else odm_tag(part)) is not None:
                raise OdmImportError(f"{where}/{part.replace(f'{{{TW_NS}}}', 'tw:')}: the import does not restore it "
                                     "here (never dropped: refused)")

    def _log_entry(self, group: ET.Element, log: LogDef, form_oid: str, parent: str) -> _LogEntry:
        assert self.found is not None
        g_oid = need_attribute(group, "ItemGroupOID", f"{parent}/ItemGroupData")
        if g_oid not in self.found.forms[form_oid]:
            raise OdmImportError(f"{parent}/ItemGroupData/@ItemGroupOID: {g_oid} is not an ItemGroupRef of {form_oid}")
        key = need_attribute(group, "ItemGroupRepeatKey", f"{parent}/ItemGroupData[@ItemGroupOID={g_oid}]")
        if not key.isdigit() or int(key) < 1:
            raise OdmImportError(f"{parent}/ItemGroupData/@ItemGroupRepeatKey: {key!r} is not an entry's sequence "
                                 "(1, 2, ...)")  # fmt: skip
        where = f"{parent}/ItemGroupData[@ItemGroupRepeatKey={key}]"
        if group.find(odm_tag("Annotation")) is not None:
            raise OdmImportError(f"{where}/Annotation: the import does not restore it (never dropped: refused)")
        tw_elem = group.find(self._t("LogEntry"))
        if tw_elem is None:
            raise OdmImportError(f"{where}/tw:LogEntry: required (the entry's state, version and review)")
        tw = dict(tw_elem.attrib)
        self._entry_state(tw, f"{where}/tw:LogEntry")
        self._signature_agrees(group.find(odm_tag("Signature")), tw, where, "tw:LogEntry")
        values: dict[str, dict[str, Any]] = {}
        items: dict[str, Recorded] = {}
        history: dict[str, list[dict[str, Any]]] = {}
        for item in group.findall(odm_tag("ItemData")):
            name, stored = self._item(item, g_oid, where)
            if name in values:
                raise OdmImportError(f"{where}/ItemData: {name} appears twice")
            values[name] = stored
            item_where = f"{where}/ItemData[@ItemOID={item.get('ItemOID')}]"
            from trialwright.services.odm_import_elements import LATEST
            from trialwright.services.odm_import_history import read_history

            item_recorded = self._recorded(item, item_where, LATEST["log entry value"])
            if item_recorded is not None:
                items[name] = item_recorded

            earlier = read_history(self, item, item_recorded, str(item.get("ItemOID")), item_where,
                                   LATEST["log entry value"])  # fmt: skip
            if earlier:
                history[name] = earlier
        coding = self._coding(tw_elem, log, f"{where}/tw:LogEntry/tw:Coding")
        from trialwright.services.odm_import_elements import LATEST, read_element_history, read_removed

        read_removed(self, group, g_oid, where, values, items, history, actions=LATEST["log entry value"])
        recorded = self._recorded(group, where, LATEST["log entry"])
        earlier = read_element_history(self, group, recorded, "log entry", where)
        return _LogEntry(log.id, int(key), values, tw, coding, recorded, items, history, earlier)

    @staticmethod
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

    def _signer(self, signature: ET.Element, where: str) -> str:
        """An ODM ``Signature`` (at ``where``) whose SignatureDef and user are the AdminData's; the user's OID."""
        ref = signature.find(odm_tag("SignatureRef"))
        sig = ref.get("SignatureOID") if ref is not None else None
        if sig not in self.signatures:
            raise OdmImportError(f"{where}/SignatureRef/@SignatureOID: {sig} is not a SignatureDef")
        user = signature.find(odm_tag("UserRef"))
        user_oid = user.get("UserOID") if user is not None else None
        if user_oid is None or user_oid not in self.users:
            raise OdmImportError(f"{where}/UserRef/@UserOID: not a User of the AdminData")
        return user_oid

    def _signature_agrees(self, signature: ET.Element | None, tw: dict[str, str], where: str, owner: str) -> None:
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
            if by and by in self.users.values():
                raise OdmImportError(f"{where}/Signature: required: {owner} says {by} signed it at {at}, and a "
                                     "signature is restored only with its ODM Signature")  # fmt: skip
            return
        if not by:
            raise OdmImportError(f"{where}/Signature: {owner} is not signed (no SignedBy): a Signature of a record "
                                 "not signed is refused")  # fmt: skip
        user_oid = self._signer(signature, f"{where}/Signature")
        stamp = signature.find(odm_tag("DateTimeStamp"))
        stamped = parse_moment(stamp.text if stamp is not None else None, f"{where}/Signature/DateTimeStamp")
        if self.users[user_oid] != by or stamped is None or stamped != parse_moment(at, f"{where}/{owner}/@SignedAt"):
            raise OdmImportError(f"{where}/Signature: the signer and time differ from {owner}'s SignedBy and SignedAt")

    def _coding(self, entry: ET.Element, log: LogDef, where: str) -> dict[str, Any] | None:
        """The entry's coding, as ``log_codings`` holds it; None when the file has none."""
        found = entry.findall(self._t("Coding"))
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
        for level in elem.findall(self._t("Level")):
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

    def _visit(self, elem: ET.Element, parent: str) -> _Visit:
        assert self.found is not None
        oid = need_attribute(elem, "StudyEventOID", f"{parent}/StudyEventData")
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
        day = parse_day(attrs.get("Date"), f"{where}/tw:Visit/@Date")
        if (day is None) == (attrs.get("MissedReason") is None):
            raise OdmImportError(f"{where}/tw:Visit: needs either Date (held) or MissedReason (missed)")
        from trialwright.services.odm_import_elements import LATEST, read_element_history

        recorded = self._recorded(elem, where, LATEST["visit"])
        earlier = read_element_history(self, elem, recorded, "visit", where)
        visit = _Visit(visit_id, day, attrs.get("MissedReason"), attrs.get("Label"), _who(recorded), recorded=recorded,
                       earlier=earlier)  # fmt: skip
        for form in elem.findall(odm_tag("FormData")):
            visit.forms.append(self._form(form, oid, where))
        if visit.missed and visit.forms:
            raise OdmImportError(f"{where}/FormData: a missed visit has no forms")
        ids = [f.form_id for f in visit.forms]
        if len(ids) != len(set(ids)):
            raise OdmImportError(f"{where}/FormData: a form appears twice at one visit")
        return visit

    def _form(self, elem: ET.Element, event: str, parent: str) -> _Form:
        assert self.found is not None
        oid = need_attribute(elem, "FormOID", f"{parent}/FormData")
        where = f"{parent}/FormData[@FormOID={oid}]"
        if oid not in self.found.forms:
            raise OdmImportError(f"{parent}/FormData/@FormOID: {oid} is not defined in the metadata (no FormDef)")
        if oid not in self.found.events[event]:
            raise OdmImportError(f"{parent}/FormData/@FormOID: {oid} is not a FormRef of StudyEventDef {event}")
        tw = elem.find(self._t("Form"))
        if tw is None:
            raise OdmImportError(f"{where}/tw:Form: required (state and version of the form record)")
        self._form_state(dict(tw.attrib), f"{where}/tw:Form")
        self._signature_agrees(elem.find(odm_tag("Signature")), dict(tw.attrib), where, "tw:Form")
        from trialwright.services.odm_import_elements import LATEST

        recorded = self._recorded(elem, where, LATEST["form"])
        values: dict[str, dict[str, Any]] = {}
        items: dict[str, Recorded] = {}
        history: dict[str, list[dict[str, Any]]] = {}
        for group in elem.findall(odm_tag("ItemGroupData")):
            g_oid = need_attribute(group, "ItemGroupOID", f"{where}/ItemGroupData")
            if g_oid not in self.found.forms[oid]:
                raise OdmImportError(f"{where}/ItemGroupData/@ItemGroupOID: {g_oid} is not an ItemGroupRef of {oid}")
            for item in group.findall(odm_tag("ItemData")):
                name, stored = self._item(item, g_oid, f"{where}/ItemGroupData[@ItemGroupOID={g_oid}]")
                if name in values:
                    raise OdmImportError(f"{where}/ItemData: {name} appears twice")
                values[name] = stored
                item_where = f"{where}/ItemData[@ItemOID={item.get('ItemOID')}]"
                from trialwright.services.odm_import_history import read_history

                item_recorded = self._recorded(item, item_where, LATEST["form value"])
                if item_recorded is not None:
                    items[name] = item_recorded

                earlier = read_history(self, item, item_recorded, str(item.get("ItemOID")), item_where,
                                       LATEST["form value"])  # fmt: skip
                if earlier:
                    history[name] = earlier
            from trialwright.services.odm_import_elements import no_history, read_removed

            g_where = f"{where}/ItemGroupData[@ItemGroupOID={g_oid}]"
            no_history(self, group, g_where)  # a form's history is in its FormData
            read_removed(self, group, g_oid, g_where, values, items, history)
        from trialwright.services.odm_import_elements import read_element_history

        own = read_element_history(self, elem, recorded, "form", where)
        return _Form(oid.removeprefix("F."), values, dict(tw.attrib), recorded, items, history, own)

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
            parse_moment(tw.get(name), f"{where}/@{name}")

    def _item(self, elem: ET.Element, group: str, parent: str) -> tuple[str, dict[str, Any]]:
        assert self.found is not None
        oid = need_attribute(elem, "ItemOID", f"{parent}/ItemData")
        where = f"{parent}/ItemData[@ItemOID={oid}]"
        if oid not in self.found.items:
            raise OdmImportError(f"{parent}/ItemData/@ItemOID: {oid} is not defined in the metadata (no ItemDef)")
        if oid not in self.found.groups[group]:
            raise OdmImportError(f"{parent}/ItemData/@ItemOID: {oid} is not an ItemRef of ItemGroupDef {group}")
        return self.expected.fields[oid][1].id, self.stored_value(elem, oid, where)

    def stored_value(self, elem: ET.Element, oid: str, where: str) -> dict[str, Any]:
        """The stored value ``elem`` (an ``ItemData`` or a ``tw:Earlier`` of ItemDef ``oid``) holds, checked for the
        field: its DataType, its CodeList, a stored value that is one."""
        assert self.found is not None
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
        return stored


# --- writing ---------------------------------------------------------------------------------------


class Writer:
    """Writes checked participants into the trial, in the caller's transaction."""

    def __init__(
        self, session: Session, protocol: Protocol, actor: UserView, file: str, sha256: str, users: Mapping[str, str]
    ) -> None:
        self.session, self.protocol, self.actor = session, protocol, actor
        self.users: Mapping[str, str] | None = users  # the AdminData's users, kept with the first participant
        self.detail = {"file": file, "sha256": sha256}
        self.now = clock.now()
        self.counts: Counter[str] = Counter()
        self.states: Counter[str] = Counter()
        self.meaning = protocol.signature_meaning

    def add(self, s: Subject) -> None:
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
        from trialwright.services.odm_import_records import NOT_IN_FILE

        consent = s.consent or {  # a file written before the export carried the consent's details
            "form_version": version.version, "kind": "initial", "obtained_by": NOT_IN_FILE, "recorded_at": self.now,
            "recorded_by": self.actor.username,
        }  # fmt: skip
        ids = {} if s.consent_id is None else {"id": s.consent_id}  # the source's id (odm_import_consents)
        session.execute(
            consents.insert().values(
                screening_id=screening_id, given_by=tw["ConsentGivenBy"], obtained_at=consented_at,
                decision="consent", **consent, **ids,
            )
        )  # fmt: skip
        self.counts["consents"] += 1
        if s.later_consents:
            from trialwright.services.odm_import_consents import write_later

            write_later(self, screening_id, s.later_consents)
        enrolled_by, _ = s.enrolled or (self.actor.username, None)
        session.execute(
            participants.insert().values(
                participant_id=s.participant_id, site=s.site, number=s.number, screening_id=screening_id,
                enrolled_at=dt.datetime.fromisoformat(tw["EnrolledAt"]), enrolled_by=enrolled_by,
            )
        )  # fmt: skip
        withdrawn = s.withdrawn or [None] * len(s.withdrawals)
        for (scope, on, reason, cause), recorded in zip(s.withdrawals, withdrawn, strict=True):
            at, by = recorded or (self.now, self.actor.username)  # the importer: a file from before the export had it
            session.execute(
                withdrawals.insert().values(
                    participant_id=s.participant_id, scope=scope, reason=reason, cause=cause, withdrawn_on=on,
                    recorded_at=at, recorded_by=by,
                )
            )  # fmt: skip
        # The participant's own entry: its AuditRecord as recorded and its randomization as the file states it (a
        # number, time and stratum; no arm, no list entry). The first also keeps the file's users (AdminData).
        kept: dict[str, Any] = {"recorded": s.recorded, **({"earlier": s.earlier} if s.earlier else {})}
        if s.randomization:
            kept["randomization"] = s.randomization
            self.counts["randomized"] += 1
        if s.consent is not None:  # the consent's details and who recorded the withdrawals, as restored
            kept["consent"] = {**s.consent, "recorded_at": s.consent["recorded_at"].isoformat()}
            kept["withdrawals"] = [{"recorded_at": at.isoformat(), "recorded_by": by} for at, by in
                                   (r for r in s.withdrawn if r is not None)]  # fmt: skip
        if s.later_consents:  # the participant's other consent records, as restored
            from trialwright.services.odm_import_consents import kept as consents_kept

            kept["consents"] = consents_kept(s.later_consents)
        if s.screening_earlier:  # the entries about its screening before enrolment, keyed by it (audit_index)
            kept["screening_earlier"] = {"screening": s.enrolment["ScreeningNumber"], "records": s.screening_earlier}
        if self.users is not None:
            kept["users"] = dict(self.users)
            self.users = None
        audit.record(
            session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
            participant=s.participant_id, action="import.odm", new_value=kept, detail=dict(self.detail),
        )  # fmt: skip
        self.counts["participants"] += 1
        self.counts["records"] += s.recorded is not None
        self.counts["earlier"] += len(s.earlier) + len(s.screening_earlier)
        for v in s.visits:
            self._visit(s, v)
        for e in s.entries:
            self._log_entry(s, e)
        if s.adverse_events:
            from trialwright.services.odm_import_ae import write_adverse_event

            for event in s.adverse_events:
                write_adverse_event(self, s, event)
        if s.queries:
            from trialwright.services.odm_import_queries import restore_queries

            restore_queries(self, s, s.queries)

    def _log_entry(self, s: Subject, e: _LogEntry) -> None:
        """A log entry as the file has it (its row, its coding) and its import entry: state, version, values,
        removal reason, review and coding, and its and its values' AuditRecords as recorded (``recorded``,
        ``items``), which the ODM export and ``audit verify`` read back."""
        tw = e.tw
        at = {k: dt.datetime.fromisoformat(tw[k]) if tw.get(k) else None
              for k in ("CreatedAt", "UpdatedAt", "VerifiedAt", "SignedAt")}  # fmt: skip
        values = json.dumps(e.values, ensure_ascii=False, sort_keys=True)  # as trialwright.services.logs stores them
        entry_id = inserted_id(
            self.session,
            log_entries.insert().values(
                participant_id=s.participant_id, log_id=e.log_id, sequence=e.sequence, entry_values=values,
                state=tw["State"], version=int(tw["Version"]), protocol_version=tw["ProtocolVersion"],
                created_at=at["CreatedAt"], created_by=tw["CreatedBy"], updated_at=at["UpdatedAt"],
                updated_by=tw["UpdatedBy"], removed_reason=tw.get("RemovedReason"),
                verified_at=at["VerifiedAt"], verified_by=tw.get("VerifiedBy"),
                signed_at=at["SignedAt"], signed_by=tw.get("SignedBy"),
                signature_meaning=self.meaning if tw.get("SignedBy") else None,
            ),
        )  # fmt: skip
        coding = e.coding
        if coding is not None:
            self.session.execute(
                log_codings.insert().values(
                    entry_id=entry_id, **{k: coding[k] for k in ("dictionary", "version", "verbatim", "code", "name",
                                                                 "coded_by")},
                    path=json.dumps(coding["path"]), coded_at=dt.datetime.fromisoformat(coding["coded_at"]),
                )
            )  # fmt: skip
            self.counts["codings"] += 1
        audit.record(
            self.session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
            participant=s.participant_id, form=e.log_id, action="import.odm",
            new_value={"state": tw["State"], "version": int(tw["Version"]), "values": e.values,
                       "removed_reason": tw.get("RemovedReason"),
                       "review": {"verified_by": tw.get("VerifiedBy"), "signed_by": tw.get("SignedBy")},
                       "coding": coding, "recorded": e.recorded, "items": e.items,
                       **({"history": e.history} if e.history else {}),
                       **({"earlier": e.earlier} if e.earlier else {})},
            detail={**self.detail, "sequence": e.sequence},
        )  # fmt: skip
        self.counts["log_entries"] += 1
        self.counts["records"] += (e.recorded is not None) + len(e.items)
        self.counts["earlier"] += sum(len(records) for records in e.history.values()) + len(e.earlier)

    def _visit(self, s: Subject, v: _Visit) -> None:
        by, at = v.created or (self.actor.username, self.now)
        visit_id = deferred_insert(  # the visits and forms of a batch written together (``bulk_writes``)
            self.session, visit_records,
            dict(participant_id=s.participant_id, visit_id=v.visit_id, visit_date=v.date, missed_reason=v.missed,
                 unscheduled=v.visit_id.startswith("unscheduled-"), label=v.label, created_at=at, created_by=by),
        ).id  # fmt: skip
        audit.record(
            self.session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
            participant=s.participant_id, action="import.odm", reason=v.missed,
            new_value={"visit_date": v.date.isoformat() if v.date else None, "label": v.label, "recorded": v.recorded,
                       **({"earlier": v.earlier} if v.earlier else {})},
            detail={**self.detail, "visit": v.visit_id},
        )  # fmt: skip
        self.counts["visits"] += 1
        self.counts["records"] += v.recorded is not None
        self.counts["earlier"] += len(v.earlier)
        for form in v.forms:
            tw = form.tw
            moments = {k: dt.datetime.fromisoformat(tw[k]) if tw.get(k) else None
                       for k in ("UpdatedAt", "VerifiedAt", "SignedAt", "LockedAt")}  # fmt: skip
            values = json.dumps(form.values, sort_keys=True, ensure_ascii=False)  # as trialwright.services.forms stores
            lock = {}
            if tw["State"] == "locked" and tw.get("LockedBy"):
                lock = {"lock": {"by": tw["LockedBy"], "at": tw.get("LockedAt"), "before": tw.get("StateBeforeLock")}}
            deferred_insert(
                self.session, form_records,
                dict(participant_id=s.participant_id, visit_record_id=visit_id, form_id=form.form_id,
                     state=tw["State"], state_before_lock=tw.get("StateBeforeLock"), form_values=values,
                     version=int(tw["Version"]), protocol_version=self.protocol.version.number,
                     updated_at=moments["UpdatedAt"], updated_by=tw["UpdatedBy"],
                     verified_at=moments["VerifiedAt"], verified_by=tw.get("VerifiedBy"),
                     signed_at=moments["SignedAt"], signed_by=tw.get("SignedBy"),
                     signature_meaning=self.meaning if tw.get("SignedBy") else None,
                     locked_at=moments["LockedAt"], locked_by=tw.get("LockedBy")),
            )  # fmt: skip
            audit.record(
                self.session, actor=self.actor.username, role=self.actor.role.value, site=s.site,
                participant=s.participant_id, form=form.form_id, action="import.odm",
                new_value={"state": tw["State"], "version": int(tw["Version"]), "values": form.values, **lock,
                           "recorded": form.recorded, "items": form.items,
                           **({"history": form.history} if form.history else {}),
                           **({"earlier": form.earlier} if form.earlier else {})},
                detail={**self.detail, "visit": v.visit_id},
            )  # fmt: skip
            self.counts["forms"] += 1
            self.counts["records"] += (form.recorded is not None) + len(form.items)
            self.counts["earlier"] += sum(len(records) for records in form.history.values()) + len(form.earlier)
            self.counts["values"] += len(form.values)
            self.states[tw["State"]] += 1


_BATCH = 200  # participants whose audit entries one INSERT writes
_SHOWN = 50  # refused values listed in the error; the count is always the whole


def refused_values(protocol: Protocol, subject: Subject) -> list[str]:
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
    now = clock.now()
    today = local_date(now, tz)
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
                validate_entries(definition, entries, today=today, enrolled_on=enrolled_on, timezone=tz.key, now=now)
            except FormValueError as exc:
                out += [f"{where}: {problem}" for problem in exc.problems]
            for breach in hard_breaches(protocol, form.form_id, visit_forms, facts):
                line = f"{where}: {breach.message}"
                if line not in out and breach.fields[0].startswith(f"{form.form_id}."):
                    out.append(line)  # each breach once, under the form of the field it names first
    for e in subject.entries:  # a log's fields are form fields, checked as a log entry's save checks them
        where = f"participant {subject.participant_id}, log {e.log_id}, entry {e.sequence}"
        try:
            validate_entries(protocol.log(e.log_id), {name: _entry(value) for name, value in e.values.items()},
                             today=today, enrolled_on=enrolled_on, timezone=tz.key, now=now)  # fmt: skip
        except FormValueError as exc:
            out += [f"{where}: {problem}" for problem in exc.problems]
        log = protocol.log(e.log_id)  # and the whole entry's rules, as its save checks them (domain.logs)
        declared = {f.id for f in log.fields}
        stored = {k: StoredValue.from_json(v) for k, v in e.values.items() if k in declared}
        out += [f"{where}: {problem}" for problem in entry_problems(log, stored)]
    return out


def _entry(stored: Mapping[str, Any]) -> Any:
    """A stored value as the save path takes it: the canonical value, or its status with reason or limit."""
    status = stored.get("status", "value")
    if status == "value":
        return stored.get("value")
    if status in {"below_lloq", "above_uloq"}:
        return {status: stored.get("limit")}  # the limit in the canonical unit
    return {status: stored.get("reason")}


_SAFE_NAME = re.compile(r"[^\w.\- ]")


def imported_randomization_entries(participant_id: str | ColumnElement[str]) -> Select[str]:
    """The import entries that may hold a kept randomization of the participant (``imported_randomization`` reads
    them; a caller may first ask whether any exists, in one statement with its other facts)."""
    from trialwright.store.tables import audit_entries

    t = audit_entries.c
    return select(t.new_value).where(
        t.participant == participant_id,
        t.action == "import.odm",
        t.form.is_(None),
        t.new_value.contains('"randomization"'),
    )


def imported_randomizations(session: Session) -> int:
    """How many participants an ODM import kept a randomization for (randomized in the source trial, arm there)."""
    from trialwright.store.tables import audit_entries

    t = audit_entries.c
    kept = (t.action == "import.odm", t.form.is_(None), t.participant.is_not(None),
            t.new_value.contains('"randomization"'))  # fmt: skip
    return int(session.execute(select(func.count(t.participant.distinct())).where(*kept)).scalar_one())


def imported_randomization(session: Session, participant_id: str) -> dict[str, str] | None:
    """The randomization an ODM import kept for a participant (``RandomizationNumber``, ``RandomizedAt``,
    ``Stratum`` as the file states them), or None: such a participant was randomized in the source trial, whose
    sealed list holds the arm, and is never randomized again here."""
    for (text,) in session.execute(imported_randomization_entries(participant_id)):
        kept = json.loads(text or "{}").get("randomization")
        if isinstance(kept, dict):
            return {str(k): str(v) for k, v in kept.items()}
    return None


def import_odm(engine: Engine, actor: UserView, path: Path) -> OdmImportReport:
    """Import an ODM file from trialwright's ODM export into this fresh trial (see the module docstring)."""
    if actor.role is not Role.DATA_MANAGER:
        raise denied(OdmImportError)("role: only the data manager imports an ODM file")
    path = Path(path)
    if not path.is_file():
        raise OdmImportError(f"file: {path} is not a file")
    protocol = current_protocol(engine).protocol
    _refuse_doctype(path)
    sha256 = file_sha256(path)
    refused: list[str] = []
    first = Reader(protocol, path)
    for subject in first.subjects():  # the first reading checks everything, writes nothing
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
            "decisions": session.execute(select(func.count()).select_from(dsmb_decisions)).scalar_one(),
        }
        if any(held.values()):
            raise OdmImportError(
                f"trial: this trial already holds {held['participants']} participants, {held['screenings']} "
                f"screenings and {held['decisions']} DSMB decisions; an ODM file is imported only into a fresh trial "
                "(trialwright init with the same protocol)"
            )
        lock = session.execute(select(trial_locks).order_by(trial_locks.c.id.desc()).limit(1)).first()
        if lock is not None and lock.locked:
            raise OdmImportError("trial: the database is locked; the data manager unlocks it first")
        writer = Writer(session, protocol, actor, name, sha256, first.user_types)
        imported: list[str] = []
        from trialwright.services.odm_import_consents import consent_ids_past, write_screening

        second = Reader(protocol, path)
        second.on_screening = functools.partial(write_screening, writer)  # after the participants, as the file has
        subjects = iter(second.subjects())
        while chunk := list(itertools.islice(subjects, _BATCH)):
            # The entries of _BATCH participants with one INSERT, in order; their visits and forms by executemany.
            with audit.batched(session), deferring(session):
                for subject in chunk:
                    writer.add(subject)
                    imported.append(subject.participant_id)
        from trialwright.services.odm_import_queries import advance_query_numbers

        advance_query_numbers(writer)
        from trialwright.services.odm_import_records import write_dsmb_decisions

        write_dsmb_decisions(writer, first.decisions)
        consent_ids_past(writer)

        from trialwright.services.odm_import_locks import write_locks

        write_locks(writer, first.locks)  # last: no lock it restores refuses the import's own data
        if file_sha256(path) != sha256:
            raise OdmImportError(f"file: {name} changed while it was being imported; nothing was imported")
        counts = writer.counts
        audit.record(
            session, actor=actor.username, role=actor.role.value, action="import.odm",
            new_value={"participants": imported},
            detail={**writer.detail, **{k: counts[k] for k in ("participants", "visits", "forms", "values",
                                                                "log_entries", "queries", "adverse_events",
                                                                "dsmb_decisions", "locks")},
                    "states": dict(writer.states)},
        )  # fmt: skip
    difference = _reexport_difference(engine, actor, path, first.as_of)
    return OdmImportReport(
        name, sha256, counts["participants"], counts["visits"], counts["forms"], counts["values"], dict(writer.states),
        randomized=counts["randomized"], audit_records=counts["records"], earlier_records=counts["earlier"],
        users=len(first.user_types),
        log_entries=counts["log_entries"], codings=counts["codings"], queries=counts["queries"],
        adverse_events=counts["adverse_events"], dsmb_decisions=counts["dsmb_decisions"],
        consents=counts["consents"], screenings=counts["screenings"], locks=counts["locks"],
        reexport_difference=difference,
    )  # fmt: skip


def _reexport_difference(engine: Engine, actor: UserView, path: Path, as_of: str | None) -> str | None:
    """Export the trial just imported as of the file's own ``AsOfDateTime`` and compare it with the file byte for
    byte: None if they are identical, else where they first differ."""
    from trialwright.exports.odm import OdmExporter
    from trialwright.services.exports import export_source

    taken_at = parse_moment(as_of, "ODM/@AsOfDateTime")
    if taken_at is None:
        return "the file has no AsOfDateTime to export the trial as of"
    source = dataclasses.replace(export_source(engine, actor), taken_at=taken_at)
    with tempfile.TemporaryDirectory(prefix="trialwright-odm-check-") as tmp:
        again = OdmExporter().write(source, Path(tmp))[0]
        with path.open("rb") as one, again.open("rb") as other:
            for n, (a, b) in enumerate(itertools.zip_longest(one, other), start=1):
                if a != b:
                    return f"line {n}: the file has {_shown(a)}, the re-export {_shown(b)}"
    return None


def _shown(line: bytes | None) -> str:
    """A line of the file or the re-export as the summary shows it: its text without the indentation, cut at 120
    characters; a line of blanks said so (stripped, it would read as an empty string)."""
    if line is None:
        return "(end of file)"
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    if not text.strip():
        return f"a line of {len(text)} blanks" if text else "an empty line"
    return repr(text.strip()[:120])
