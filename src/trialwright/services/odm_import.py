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

The ``odm_import_*`` modules share ``OdmImportError``, ``Recorded``, a participant's content as read (``Subject``)
and the small readers of tags, attributes, times and a history's order through ``odm_import_common`` (public names:
none imports a private name of another); the reader and writer they are handed are ``odm_import_reader.Reader`` (the
file's structure, metadata, admin data and AuditRecords) and ``odm_import_writer.Writer``; a participant is read by
``odm_import_subjects`` (which also checks its values: ``refused_values``), its visits and forms by
``odm_import_forms`` and its log entries by ``odm_import_logs``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, Select, func, select
from sqlalchemy.orm import Session

from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.bulk_writes import deferring
from trialwright.services.errors import denied
from trialwright.services.odm_import_common import EXTENSION_NAMESPACES, OdmImportError, parse_moment
from trialwright.services.odm_import_reader import Reader, refuse_doctype
from trialwright.services.odm_import_subjects import refused_values
from trialwright.services.odm_import_writer import Writer
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.data_tables import trial_locks
from trialwright.store.engine import session_scope
from trialwright.store.files import file_sha256
from trialwright.store.safety_tables import dsmb_decisions
from trialwright.store.screening_tables import participants, screenings

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


_BATCH = 200  # participants whose audit entries one INSERT writes
_SHOWN = 50  # refused values listed in the error; the count is always the whole

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
    refuse_doctype(path)
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
                writer.write_holds()  # the batch's administered codes: one read, one executemany
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
