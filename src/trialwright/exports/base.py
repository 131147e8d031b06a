"""What every export format reads, and the small base a format subclasses.

An ``ExportSource`` is the trial as an exporter may see it: the protocol, and streams of participants,
form records, adverse event reports and audit entries, each in a stable order. It is built by
``trialwright.services.exports`` for one user: the arm of a participant is present only when that user may see
arms and asked for them (``with_arms``); otherwise ``ParticipantRecord.arm`` is None and nothing else in the
source names an arm. Streams are iterators, so a format can write a trial of any size in constant memory.

A format is a subclass of ``Exporter`` with a ``name``, a ``description`` and a ``write`` method that writes
its files into an empty folder and returns their paths (the service writes into a temporary folder and
renames it when the exporter returns, so a half-written export never looks complete).
"""

from __future__ import annotations

import abc
import datetime as dt
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from trialwright.domain.audit import AuditEntry
from trialwright.protocol import Protocol

__all__ = [
    "AdverseEventHistory",
    "AeReportRecord",
    "AeSubmissionRecord",
    "ConsentDetails",
    "ConsentRecord",
    "DsmbDecisionRecord",
    "EventRecord",
    "ExportSource",
    "Exporter",
    "FormRecord",
    "FormRow",
    "FormText",
    "LockRecord",
    "LogRecord",
    "ParticipantRecord",
    "Progress",
    "QueryRecord",
    "ScreeningRecord",
    "StoredJson",
]

#: A stored value as JSON: {"value": ..., "status": "value"|"not_done"|..., "unit", "reason", "limit", ...}
StoredJson = Mapping[str, Any]
#: One form record as the tabular tables read it (``ExportSource.form_rows``): participant id, site, visit id, visit
#: date, form id, state and the values as stored.
FormRow = tuple[str, str, str, dt.date | None, str, str, Mapping[str, StoredJson]]
#: A ``FormRow`` with the record's stored JSON as its text, unparsed (``ExportSource.form_texts``).
FormText = tuple[str, str, str, dt.date | None, str, str, str]
#: Called with the number of records written so far (for a progress bar).
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ConsentDetails:
    """The rest of the consent record a participant was enrolled on (``consents``): its form version and kind, who
    obtained it, the representative and witness (if any), who recorded it and when (UTC), and the child's assent
    recorded with it (protocol ``eligibility.assent``; None where none was sought)."""

    form_version: str
    kind: str
    obtained_by: str
    representative_name: str | None
    representative_relationship: str | None
    witness: str | None
    recorded_at: dt.datetime
    recorded_by: str
    assent: str | None = None  # given, dissent or not_sought
    assent_obtained_by: str | None = None
    assent_obtained_at: dt.datetime | None = None  # UTC
    assent_form_version: str | None = None
    assent_not_sought_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One row of ``consents`` whole (a consent, a refusal, a re-consent, a decision after regaining capacity), with
    the screening it is about: its number, date and values, and the participant it enrolled (None: never enrolled).
    A consent names no arm."""

    id: int
    screening_number: str  # e.g. RAZ-S0001
    site: str
    screened_on: dt.date
    screening_values: Mapping[str, Any]
    participant_id: str | None
    non_enrolment_reason: str | None
    non_enrolment_text: str | None
    form_version: str
    given_by: str  # participant or representative
    representative_name: str | None
    representative_relationship: str | None
    witness: str | None
    obtained_by: str
    obtained_at: dt.datetime  # UTC
    kind: str  # initial, reconsent, regained_capacity
    decision: str  # consent, refuse, continue, withdraw
    recorded_at: dt.datetime  # UTC
    recorded_by: str
    #: The child's assent recorded with a representative's consent (protocol ``eligibility.assent``): given, dissent
    #: or not_sought; None, with the four details, where none was sought.
    assent: str | None = None
    assent_obtained_by: str | None = None
    assent_obtained_at: dt.datetime | None = None  # UTC
    assent_form_version: str | None = None
    assent_not_sought_reason: str | None = None
    #: What was in force when it was recorded (``trialwright.services.export_consents``): the protocol version, the
    #: value of ``eligibility.assent.age_field`` (None where not recorded) and the digest of the assent rule
    #: (``assent_rule_digest``; None where not known); None where the audit trail does not tell.
    in_force: tuple[str, Any, str | None] | None = None


@dataclass(frozen=True, slots=True)
class LockRecord:
    """One row of the trial lock's history (``trial_locks``) or of a site's or participant's soft locks
    (``soft_locks``): locked or lifted, when, by whom, why, the blockers an override left open, the forms withheld
    from a masked locker, and the AuditRecord of its audit entry as recorded (``seq``, ``at`` as text, ``by``,
    ``role``, ``site``, ``reason``, ``hash``, ``action``; None: an imported lock whose file had none). Names no
    arm."""

    scope: str  # trial, site or participant
    target: str | None  # the site code or participant id; None for the trial
    locked: bool
    at: dt.datetime  # UTC
    by: str
    reason: str
    open_blockers: int | None  # the trial lock's override only
    recorded: Mapping[str, Any] | None
    #: The forms kept from a masked data manager who locked the trial (they reveal the arm); the trial lock only
    #: (() none; None: a lock made before migration 0042, whose override count was of every blocker).
    withheld: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ScreeningRecord:
    """A screening never enrolled (``screenings`` without a participant): its number, date, values and why it was not
    enrolled. A screening names no arm."""

    screening_number: str  # e.g. RAZ-S0003
    site: str
    screened_on: dt.date
    screening_values: Mapping[str, Any]
    non_enrolment_reason: str | None
    non_enrolment_text: str | None


@dataclass(frozen=True, slots=True)
class DsmbDecisionRecord:
    """A DSMB decision on the safety pause (``dsmb_decisions``), trial-level, without its reason: the reason is the
    DSMB's free text, which may speak of the arms, so no export that blinded staff read carries it."""

    decision: str  # resume, pause or stop
    related_saes: int  # the count of related SAEs the decision was made on
    decided_at: dt.datetime  # UTC
    decided_by: str


@dataclass(frozen=True, slots=True)
class ParticipantRecord:
    """A randomized or enrolled participant with what the exports need about them."""

    participant_id: str
    site: str
    screening_number: str  # e.g. RAZ-S0001
    screened_on: dt.date
    enrolled_at: dt.datetime  # UTC
    consent_given_by: str | None  # participant or representative
    consented_at: dt.datetime | None  # UTC
    randomization_number: int | None
    randomized_at: dt.datetime | None  # UTC
    stratum: str | None
    arm: str | None  # the arm code, only in a source made with_arms by someone who may see arms
    withdrawals: tuple[tuple[str, dt.date, str, str | None], ...]  # (scope, date, reason, cause or None)
    screening_values: Mapping[str, Any]
    consent: ConsentDetails | None = None  # the consent's other details (None: not read by this source)
    #: Who recorded each withdrawal and when (UTC), in the order of ``withdrawals`` (empty: not read by this source).
    withdrawals_recorded: tuple[tuple[dt.datetime, str], ...] = ()
    consent_id: int | None = None  # the id of the consent record ``consent`` is (None: not read by this source)


@dataclass(frozen=True, slots=True)
class FormRecord:
    """One form of one participant at one visit, with its values as stored and its lifecycle."""

    participant_id: str
    site: str
    visit_id: str
    visit_date: dt.date | None
    visit_missed: str | None  # the reason, for a missed visit (then there are no forms)
    form_id: str
    state: str
    version: int
    values: Mapping[str, StoredJson]
    updated_at: dt.datetime
    updated_by: str
    verified_by: str | None = None
    verified_at: dt.datetime | None = None
    signed_by: str | None = None
    signed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One adverse event: its latest assessment and classification, and how many reports it has had."""

    ae_number: str
    participant_id: str
    site: str
    assessment: Mapping[str, Any]  # the latest report's assessment as JSON (term, onset, grade, ...)
    serious: bool
    related: bool
    expected: bool
    susar: bool
    reports: int
    first_reported_at: dt.datetime
    #: The MedDRA coding of the reported term as it is now: ``version``, and ``llt_code``, ``llt_name``, ``pt_code``,
    #: ... ``soc_name`` (the primary path); None when not coded, or coded for a term reported differently since.
    coding: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AeReportRecord:
    """One report about an adverse event as ``ae_reports`` holds it (sequence 0 the initial report)."""

    sequence: int
    assessment: Mapping[str, Any]  # the whole assessment as stored (JSON)
    serious: bool  # the classification as stored with the report
    related: bool
    expected: bool
    susar: bool
    reason: str | None
    reported_at: dt.datetime
    reported_by: str
    protocol_version: str


@dataclass(frozen=True, slots=True)
class AeSubmissionRecord:
    """A due report recorded as sent (``ae_submissions``)."""

    kind: str
    submitted_at: dt.datetime
    note: str | None
    recorded_at: dt.datetime
    recorded_by: str


@dataclass(frozen=True, slots=True)
class AdverseEventHistory:
    """One adverse event whole, for a format that carries it exactly (ODM): its row, every report, the reports due
    (kind and due time, from the reports and the protocol's deadlines), the submissions and the MedDRA coding as
    ``ae_codings`` holds it (stale or not). Never an arm."""

    ae_number: str
    participant_id: str
    site: str
    created_at: dt.datetime
    created_by: str
    reports: tuple[AeReportRecord, ...]
    due: tuple[tuple[str, dt.datetime], ...]
    submissions: tuple[AeSubmissionRecord, ...]
    coding: Mapping[str, Any] | None = None  # dictionary, version, verbatim, llt_code ... soc_name, coded_at, coded_by


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One entry of a participant's log form (``trialwright.protocol.logs``), removed ones included."""

    participant_id: str
    site: str
    log_id: str
    sequence: int
    state: str  # active or removed
    version: int
    values: Mapping[str, StoredJson]
    removed_reason: str | None
    updated_at: dt.datetime
    updated_by: str
    #: The entry's coding as it is now: ``dictionary``, ``version``, ``verbatim``, ``code``, ``name`` and ``path``
    #: (``[{level, code, name}, ...]`` from level 1 down); None when not coded.
    coding: Mapping[str, Any] | None = None
    #: When, by whom and under which protocol version the entry was added, when and by whom it was verified (source
    #: data verification), signed (the investigator) and coded (with ``coding``); None when not done. The ODM export
    #: carries them.
    created_at: dt.datetime | None = None
    created_by: str | None = None
    protocol_version: str | None = None  # the protocol version the entry was added under
    verified_at: dt.datetime | None = None
    verified_by: str | None = None
    signed_at: dt.datetime | None = None
    signed_by: str | None = None
    coded_at: dt.datetime | None = None
    coded_by: str | None = None


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One data query as stored: on a participant, on a form record (``visit_id`` and ``form_id``) or on a log entry
    (``log_id`` and ``sequence``), perhaps on one of its fields; its question, answer and closing note, who raised,
    answered and closed it and when. Never names an arm."""

    query_id: int
    participant_id: str
    site: str
    origin: str  # soft_limit, data_check, manual, system
    text: str
    status: str  # open, answered, closed
    raised_at: dt.datetime
    raised_by: str
    visit_id: str | None = None
    form_id: str | None = None
    log_id: str | None = None
    sequence: int | None = None
    field: str | None = None
    check_id: str | None = None
    answer: str | None = None
    answered_at: dt.datetime | None = None
    answered_by: str | None = None
    closed_at: dt.datetime | None = None
    closed_by: str | None = None
    close_note: str | None = None


@dataclass(frozen=True)
class ExportSource(abc.ABC):
    """The trial as one exporter sees it."""

    protocol: Protocol
    trial_id: str
    protocol_version: str
    taken_at: dt.datetime  # UTC
    with_arms: bool
    notes: tuple[str, ...] = field(default=())

    @abc.abstractmethod
    def participants(self) -> Iterator[ParticipantRecord]:
        """Enrolled participants, by participant id."""

    @abc.abstractmethod
    def forms(self, form_id: str | None = None) -> Iterator[FormRecord]:
        """Form records (of one form, or all), by participant, then visit in schedule order, then form."""

    def form_rows(self, form_id: str) -> Iterator[FormRow]:
        """The records of ``forms(form_id)``, in its order, as ``FormRow`` tuples: for a format that reads only these
        (the tabular tables), without an object per record."""
        for r in self.forms(form_id):
            yield r.participant_id, r.site, r.visit_id, r.visit_date, r.form_id, r.state, r.values

    def form_texts(self, form_id: str) -> Iterator[FormText] | None:
        """``form_rows(form_id)`` with each record's stored JSON as the text stored (for a reader that parses many
        records' texts at once); None for a source that holds no such text (then ``form_rows`` is read)."""
        return None

    def parse_stored(self, texts: list[str]) -> list[Any]:
        """The values of stored JSON texts (of ``form_texts``), each as ``json.loads`` reads it."""
        return [json.loads(t) for t in texts]

    def records_with_status(self, form_id: str, statuses: frozenset[str]) -> Iterator[FormRecord]:
        """The records of one form that may hold a value with one of ``statuses`` (for a format's first pass):
        every record that does, perhaps others (the caller reads each value), in the order of ``forms``."""
        return self.forms(form_id)

    def missed_visits(self) -> Iterator[tuple[str, str, str]]:
        """Visits recorded as missed: (participant id, visit id, reason), by participant; none by default."""
        return iter(())

    def logs(self, log_id: str | None = None) -> Iterator[LogRecord]:
        """Log entries (of one log, or all), by log, participant and sequence; none by default."""
        return iter(())

    def queries(self) -> Iterator[QueryRecord]:
        """Data queries, by participant and query id; none by default."""
        return iter(())

    def dsmb_decisions(self) -> Iterator[DsmbDecisionRecord]:
        """The DSMB's decisions on the safety pause, in the order they were made (no reason); none by default."""
        return iter(())

    def consents(self) -> Iterator[ConsentRecord]:
        """Every consent record (the ``consents`` table whole: refusals and later decisions too), by id; none by
        default."""
        return iter(())

    def locks(self) -> Sequence[LockRecord]:
        """The trial lock's and the soft locks' history, each target's rows in the order made; none by default."""
        return ()

    def screenings_never_enrolled(self) -> Iterator[ScreeningRecord]:
        """Every screening no participant was enrolled from, in the order screened (by id); none by default."""
        return iter(())

    def preparation_arms(self) -> Mapping[str, str]:
        """Each preparation code of the allocation lists (allocated or not) -> its arm code, for the arm actually
        received (SDTM DM ACTARM); only in a source made ``with_arms``, empty otherwise (and by default)."""
        return {}

    @abc.abstractmethod
    def events(self) -> Iterator[EventRecord]:
        """Adverse events, by AE number."""

    def adverse_events(self) -> Iterator[AdverseEventHistory]:
        """Adverse events whole (every report, submission and the coding), by participant and AE number; none by
        default."""
        return iter(())

    @abc.abstractmethod
    def audit(self) -> Iterator[AuditEntry]:
        """Audit entries about participants' data, oldest first."""

    def audit_columns(
        self,
        columns: Sequence[str],
        actions: Collection[str],
        prefixes: Sequence[str] = (),
        only: Mapping[str, Collection[str]] | None = None,
        unnamed: Collection[str] = (),
        part: Literal["all", "unnamed", "named"] = "all",
    ) -> Iterator[tuple[Any, ...]]:
        """The entries of ``audit`` whose action is one of ``actions`` or starts with one of ``prefixes``, as tuples
        of ``columns`` (``AuditEntry`` field names), oldest first and masked as ``audit`` masks them; a column named
        in ``only`` is read only for entries of the actions it lists (None for the others). For a format that reads
        a few columns of many entries, without an object per entry. A source may leave out the entries that name no
        participant except those of a form in ``unnamed`` (a screening's, a consent's). ``part``: every such entry,
        only those naming no participant (``unnamed``), or only those naming a participant of ``participants``
        (``named``), by participant in the order ``participants`` gives them, each participant's oldest first."""
        starts, limited = tuple(prefixes), only or {}
        rows = (
            (e.participant, tuple(getattr(e, c) if c not in limited or e.action in limited[c] else None
                                  for c in columns))
            for e in self.audit()
            if (e.action in actions or e.action.startswith(starts))
            and (part == "all" or (e.participant is None) == (part == "unnamed"))
        )  # fmt: skip
        if part != "named":
            yield from (row for _, row in rows)
            return
        rank = {p.participant_id: n for n, p in enumerate(self.participants())}  # a fallback: held whole
        named = sorted(((rank[who], n, row) for n, (who, row) in enumerate(rows) if who in rank), key=lambda t: t[:2])
        yield from (row for *_, row in named)

    def audit_distinct(
        self,
        columns: Sequence[str],
        actions: Collection[str],
        prefixes: Sequence[str] = (),
        only: Mapping[str, Collection[str]] | None = None,
        unnamed: Collection[str] = (),
        present: Collection[str] = (),
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of ``audit_columns`` (every part) reduced to their distinct values, a column in ``present`` read
        only as whether it is there (True or None), each as ``(newest seq, *values)`` with the newest seq of the
        entries that read so, in the order of that seq. A value may come more than once (each time with its own
        newest seq) where masking makes different entries read alike. What the entries say of a few columns (who
        acted, in which role), without a row per entry."""
        newest: dict[tuple[Any, ...], int] = {}
        for seq, *values in self.audit_columns(("seq", *columns), actions, prefixes, only, unnamed):
            row = tuple(True if c in present and v is not None else (None if c in present else v)
                        for c, v in zip(columns, values, strict=True))  # fmt: skip
            newest[row] = max(seq, newest.get(row, seq))
        for row, seq in sorted(newest.items(), key=lambda kv: kv[1]):
            yield (seq, *row)

    def audit_latest(self) -> dt.datetime | None:
        """The time (aware, UTC) of the newest entry ``audit_columns`` reads for every action (``prefixes=("",)``),
        or None when it reads none: what a format says the database was last changed at. A source may find it
        without reading every entry."""
        times = (at for (at,) in self.audit_columns(("at",), (), ("",)) if at is not None)
        return max((at.astimezone(dt.UTC) if at.tzinfo else at.replace(tzinfo=dt.UTC) for at in times), default=None)

    def count(self) -> int:
        """How many form records there are (for a progress bar's total)."""
        return sum(1 for _ in self.forms())


class Exporter(abc.ABC):
    """One export format: subclass, name it, write the files."""

    #: The format's name on the command line and the page (e.g. csv, odm).
    name: ClassVar[str]
    #: One line for people.
    description: ClassVar[str]
    #: Whether the format can carry the arm (a blinded user's export never does either way).
    carries_arms: ClassVar[bool] = True

    @abc.abstractmethod
    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        """Write this format's files into ``folder`` (empty, existing); return the paths written."""
