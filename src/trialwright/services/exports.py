"""Exporting the trial: who may, with or without arms, written whole or not at all, and audited.

``export_source`` gives an ``ExportSource`` over the database for one user (streaming: form records are
read in batches, so memory stays flat as the trial grows). ``run_export`` checks the user may make the
export, writes the format into a temporary folder beside the target, renames it into place only when the
format has written everything, and records the export in the audit trail (format, folder, files with their
SHA-256, record counts, and whether arms were included).

Masking: arms are included only when the user asks (``with_arms``) and may see allocations (the unblinded
statistician); for everyone else the source holds no arm at all, so no format can leak one, and its audit
entries hold every value that could tell an arm as ``masked`` (``trialwright.domain.audit_masking``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import shutil
import zipfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine, and_, or_, select, true
from sqlalchemy.orm import Session

from trialwright.domain.audit import AuditEntry
from trialwright.domain.audit_masking import mask_entry
from trialwright.domain.masking import arms_refused, kept_forms, sees_arms
from trialwright.domain.roles import Role
from trialwright.exports.base import (
    AdverseEventHistory,
    ConsentDetails,
    ConsentRecord,
    DsmbDecisionRecord,
    EventRecord,
    Exporter,
    ExportSource,
    FormRecord,
    FormRow,
    FormText,
    LockRecord,
    LogRecord,
    ParticipantRecord,
    Progress,
    QueryRecord,
    ScreeningRecord,
)
from trialwright.exports.sdtm import SdtmExportError
from trialwright.protocol import Protocol
from trialwright.protocol.loader import ProtocolError, load_protocol_text
from trialwright.services import audit, clock
from trialwright.services.audit_keys import checked_allocations
from trialwright.services.coding import codings_by_event
from trialwright.services.errors import denied
from trialwright.services.export_ae import adverse_event_histories
from trialwright.services.export_audit import Part, audit_distinct, audit_rows
from trialwright.services.forms.common import not_on_kept_forms
from trialwright.services.replica import ReplicaRefused, reader
from trialwright.services.stored_json import loads
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.files import file_sha256
from trialwright.store.log_tables import log_codings, log_entries
from trialwright.store.safety_tables import adverse_events, ae_reports, dsmb_decisions
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals
from trialwright.store.tables import audit_entries

__all__ = [
    "EXPORTERS",
    "DatabaseSource",
    "ExportError",
    "ExportResult",
    "check_format",
    "export_source",
    "formats",
    "run_export",
    "zip_folder",
]

#: Who exports data: the data manager and the statisticians (arms: the unblinded statistician only).
EXPORTERS = (Role.DATA_MANAGER, Role.BLINDED_STATISTICIAN, Role.UNBLINDED_STATISTICIAN)

_BATCH = 500


class ExportError(ValueError):
    """An export that may not or cannot be made; the message names the field and the rule."""


def formats() -> dict[str, type[Exporter]]:
    """Every export format by name."""
    from trialwright.exports.registry import FORMATS

    return dict(FORMATS)


@dataclass(frozen=True)
class DatabaseSource(ExportSource):
    """An ``ExportSource`` reading the trial database (within the user's sites)."""

    engine: Any = None
    sites: tuple[str, ...] | None = None  # None: every site
    # The forms kept from the exporter's masked role (``domain.masking.kept_forms``): none of their records, queries
    # or audit entries is read, so no format can hold them.
    kept: frozenset[str] = frozenset()
    batch: int = _BATCH  # rows read from the database at a time
    # The read transaction every read takes while ``snapshot`` holds one (the whole export sees one snapshot).
    _held: list[Session] = dataclasses.field(default_factory=list, compare=False, repr=False)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Within the block, every read of the source is made in one read transaction, so the whole export sees one
        consistent snapshot (PostgreSQL: REPEATABLE READ, READ ONLY; SQLite: one deferred transaction): a row
        written meanwhile is in none of its files, and no file disagrees with another."""
        if self._held:
            yield
            return
        with read_scope(self.engine) as session:
            self._held.append(session)
            try:
                yield
            finally:
                self._held.clear()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """The held snapshot's session, else a read transaction of its own (a source read outside an export)."""
        if self._held:
            yield self._held[0]
            return
        with read_scope(self.engine) as session:
            yield session

    def _site_filter(self, column: Any) -> Any:
        return column.in_(list(self.sites)) if self.sites is not None else column.is_not(None)

    def _audit_filter(self, column: Any) -> Any:
        """The site filter of the audit reads, less every entry about a kept form (``kept``)."""
        if not self.kept:
            return self._site_filter(column)
        form = audit_entries.c.form
        return and_(self._site_filter(column), or_(form.is_(None), form.not_in(sorted(self.kept))))

    def participants(self) -> Iterator[ParticipantRecord]:
        with self._read() as session:  # one snapshot, no write lock while the rows stream
            # Each entry checked against its keyed digest: an export never carries an arm altered in the database.
            alloc: dict[str, Any] = {r.participant_id: r for r in checked_allocations(session)}
            left: dict[str, list[tuple[str, dt.date, str, str | None]]] = {}
            recorded: dict[str, list[tuple[dt.datetime, str]]] = {}
            for w in session.execute(select(withdrawals).order_by(withdrawals.c.id)):
                left.setdefault(w.participant_id, []).append((w.scope, w.withdrawn_on, w.reason, w.cause))
                recorded.setdefault(w.participant_id, []).append((w.recorded_at, w.recorded_by))
            consent: dict[int, Any] = {}
            for given in session.execute(
                select(consents).where(consents.c.decision == "consent").order_by(consents.c.id)
            ):
                consent.setdefault(given.screening_id, given)
            query = (
                select(
                    participants,
                    screenings.c.number.label("s_number"),
                    screenings.c.screened_on,
                    screenings.c.screening_values,
                )
                .join(screenings, screenings.c.id == participants.c.screening_id)
                .where(self._site_filter(participants.c.site))
                .order_by(participants.c.participant_id)
            )
            # Streamed in the snapshot of the lookups above: one batch of rows in memory at a time.
            for row in session.execute(query.execution_options(yield_per=self.batch)):
                r: Any = row
                a = alloc.get(r.participant_id)
                c = consent.get(r.screening_id)
                yield ParticipantRecord(
                    participant_id=r.participant_id,
                    site=r.site,
                    screening_number=f"{r.site}-S{r.s_number:04d}",
                    screened_on=r.screened_on,
                    enrolled_at=r.enrolled_at,
                    consent_given_by=c.given_by if c is not None else None,
                    consented_at=c.obtained_at if c is not None else None,
                    randomization_number=a.randomization_number if a is not None else None,
                    randomized_at=a.randomized_at if a is not None else None,
                    stratum=a.stratum if a is not None else None,
                    arm=a.arm if a is not None and self.with_arms else None,
                    withdrawals=tuple(left.get(r.participant_id, ())),
                    screening_values=json.loads(r.screening_values),
                    consent=None if c is None else ConsentDetails(
                        c.form_version, c.kind, c.obtained_by, c.representative_name, c.representative_relationship,
                        c.witness, c.recorded_at, c.recorded_by, c.assent, c.assent_obtained_by,
                        c.assent_obtained_at, c.assent_form_version, c.assent_not_sought_reason,
                    ),
                    withdrawals_recorded=tuple(recorded.get(r.participant_id, ())),
                    consent_id=None if c is None else c.id,
                )  # fmt: skip

    def forms(self, form_id: str | None = None) -> Iterator[FormRecord]:
        return self._records(form_id)

    def preparation_arms(self) -> Mapping[str, str]:
        if not self.with_arms:  # a blinded source never reads an arm
            return {}
        with self._read() as session:  # each entry checked against its keyed digest, as the analysis
            return {e.preparation_code: e.arm for e in checked_allocations(session, claimed_only=False)}

    def missed_visits(self) -> Iterator[tuple[str, str, str]]:
        query = (
            select(visit_records.c.participant_id, visit_records.c.visit_id, visit_records.c.missed_reason)
            .join(participants, participants.c.participant_id == visit_records.c.participant_id)
            .where(visit_records.c.missed_reason.is_not(None), self._site_filter(participants.c.site))
            .order_by(visit_records.c.participant_id, visit_records.c.id)
        )
        with self._read() as session:
            for r in session.execute(query):
                yield r.participant_id, r.visit_id, r.missed_reason

    def records_with_status(self, form_id: str, statuses: frozenset[str]) -> Iterator[FormRecord]:
        # The stored JSON names a status as its plain text: a record without that text cannot hold it.
        return self._records(form_id, tuple(sorted(statuses)))

    def _record_query(self, columns: Sequence[Any], form_id: str | None, contains: tuple[str, ...] = ()) -> Any:
        """``columns`` of the form records (of one form, or all) in the user's sites, by participant, visit record and
        form record."""
        query = (
            select(*columns)
            .select_from(visit_records)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .join(participants, participants.c.participant_id == visit_records.c.participant_id)
            .where(self._site_filter(participants.c.site))
            .order_by(visit_records.c.participant_id, visit_records.c.id, form_records.c.id)
        )
        if form_id is not None:
            query = query.where(form_records.c.form_id == form_id)
        if self.kept:
            query = query.where(form_records.c.form_id.not_in(sorted(self.kept)))
        if contains:
            query = query.where(or_(*(form_records.c.form_values.contains(t, autoescape=True) for t in contains)))
        return query

    def form_rows(self, form_id: str) -> Iterator[FormRow]:
        # One participant's stored JSON parsed by one call (an array of the records' objects): the same values as a
        # call per record, without the decoder's per-call overhead; by pydantic-core's parser, which gives
        # ``json.loads``'s values (``stored_json``).
        for batch in self._form_batches(form_id):
            values = loads("[" + ",".join([r[6] for r in batch]) + "]")
            for (pid, site, visit, on, form, state, _), stored in zip(batch, values, strict=True):
                yield pid, site, visit, on, form, state, stored

    def form_texts(self, form_id: str) -> Iterator[FormText]:
        # The rows of ``form_rows`` with each record's stored JSON as its text, unparsed.
        for batch in self._form_batches(form_id):
            yield from batch

    def parse_stored(self, texts: list[str]) -> list[Any]:
        # In one call, by pydantic-core's parser: ``json.loads``'s values (``stored_json``).
        return list(loads("[" + ",".join(texts) + "]"))

    def _form_batches(self, form_id: str) -> Iterator[list[Any]]:
        """The seven columns the tables read, as plain tuples (no date-times converted, no record object, the stored
        JSON as text), one participant's rows at a time, sorted as ``_sorted`` sorts them (the order of ``forms``)."""
        order = {v.id: i for i, v in enumerate(self.protocol.visits)}
        v, f = visit_records.c, form_records.c
        query = self._record_query(
            (v.participant_id, participants.c.site, v.visit_id, v.visit_date, f.form_id, f.state, f.form_values),
            form_id,
        )
        last = len(order)

        def key(r: Any) -> tuple[int, str, str]:
            return order.get(r[2], last), r[2], r[4]

        with self._read() as session:
            batch: list[Any] = []
            current = None
            for r in session.execute(query.execution_options(yield_per=self.batch)):
                if r[0] != current and batch:
                    batch.sort(key=key)
                    yield batch
                    batch = []
                current = r[0]
                batch.append(r)
            if batch:
                batch.sort(key=key)
                yield batch

    def _records(self, form_id: str | None, contains: tuple[str, ...] = ()) -> Iterator[FormRecord]:
        order = {v.id: i for i, v in enumerate(self.protocol.visits)}
        v = visit_records.c
        query = self._record_query(
            (v.participant_id, v.visit_id, v.visit_date, v.missed_reason, participants.c.site, form_records),
            form_id,
            contains,
        )
        with self._read() as session:
            batch: list[Any] = []
            current = None
            for r in session.execute(query.execution_options(yield_per=self.batch)):
                if r.participant_id != current and batch:
                    yield from self._sorted(batch, order)
                    batch = []
                current = r.participant_id
                batch.append(r)
            yield from self._sorted(batch, order)

    @staticmethod
    def _sorted(rows: list[Any], order: dict[str, int]) -> Iterator[FormRecord]:
        rows.sort(key=lambda r: (order.get(r.visit_id, len(order)), r.visit_id, r.form_id))
        for r in rows:
            yield FormRecord(
                participant_id=r.participant_id,
                site=r.site,
                visit_id=r.visit_id,
                visit_date=r.visit_date,
                visit_missed=r.missed_reason,
                form_id=r.form_id,
                state=r.state,
                version=r.version,
                values=json.loads(r.form_values),
                updated_at=r.updated_at,
                updated_by=r.updated_by,
                verified_by=r.verified_by,
                verified_at=r.verified_at,
                signed_by=r.signed_by,
                signed_at=r.signed_at,
            )

    def events(self) -> Iterator[EventRecord]:
        with self._read() as session:
            events = session.execute(
                select(adverse_events)
                .where(self._site_filter(adverse_events.c.site))
                .order_by(adverse_events.c.ae_number)
            ).all()
            reports: dict[int, list[Any]] = {}
            for r in session.execute(select(ae_reports).order_by(ae_reports.c.event_id, ae_reports.c.sequence)):
                reports.setdefault(r.event_id, []).append(r)
            coded = {n: i.coding for n, i in codings_by_event(session).items() if i.coded}
        for e in events:
            history = reports.get(e.id)
            if not history:
                continue
            last = history[-1]
            yield EventRecord(
                ae_number=e.ae_number,
                participant_id=e.participant_id,
                site=e.site,
                assessment=json.loads(last.assessment),
                serious=last.serious,
                related=last.related,
                expected=last.expected,
                susar=last.susar,
                reports=len(history),
                first_reported_at=history[0].reported_at,
                coding=dataclasses.asdict(c) if (c := coded.get(e.ae_number)) is not None else None,
            )

    def adverse_events(self) -> Iterator[AdverseEventHistory]:
        with self._read() as session:
            yield from adverse_event_histories(session, self.protocol, self._site_filter(adverse_events.c.site))

    def logs(self, log_id: str | None = None) -> Iterator[LogRecord]:
        query = (
            select(log_entries, participants.c.site, log_codings.c.dictionary, log_codings.c.version.label("c_version"),
                   log_codings.c.verbatim, log_codings.c.code, log_codings.c.name, log_codings.c.path,
                   log_codings.c.coded_at, log_codings.c.coded_by)
            .join(participants, participants.c.participant_id == log_entries.c.participant_id)
            .outerjoin(log_codings, log_codings.c.entry_id == log_entries.c.id)
            .where(self._site_filter(participants.c.site))
            .order_by(log_entries.c.log_id, log_entries.c.participant_id, log_entries.c.sequence)
        )  # fmt: skip
        if log_id is not None:
            query = query.where(log_entries.c.log_id == log_id)
        with self._read() as session:
            for r in session.execute(query.execution_options(yield_per=self.batch)):
                row: Any = r
                coding = None
                if row.code is not None:
                    coding = {"dictionary": row.dictionary, "version": row.c_version, "verbatim": row.verbatim,
                              "code": row.code, "name": row.name, "path": json.loads(row.path)}  # fmt: skip
                yield LogRecord(
                    participant_id=row.participant_id,
                    site=row.site,
                    log_id=row.log_id,
                    sequence=row.sequence,
                    state=row.state,
                    version=row.version,
                    values=json.loads(row.entry_values),
                    removed_reason=row.removed_reason,
                    updated_at=row.updated_at,
                    updated_by=row.updated_by,
                    coding=coding,
                    created_at=row.created_at,
                    created_by=row.created_by,
                    protocol_version=row.protocol_version,
                    verified_at=row.verified_at,
                    verified_by=row.verified_by,
                    signed_at=row.signed_at,
                    signed_by=row.signed_by,
                    coded_at=row.coded_at,
                    coded_by=row.coded_by,
                )

    def queries(self) -> Iterator[QueryRecord]:
        q, f, v, e = queries.c, form_records.c, visit_records.c, log_entries.c
        query = (
            select(queries, v.visit_id, f.form_id, e.log_id, e.sequence)
            .join(participants, participants.c.participant_id == q.participant_id)
            .outerjoin(form_records, f.id == q.form_record_id)
            .outerjoin(visit_records, v.id == f.visit_record_id)
            .outerjoin(log_entries, e.id == q.log_entry_id)
            .where(self._site_filter(participants.c.site), not_on_kept_forms(q.form_record_id, self.kept))
            .order_by(q.participant_id, q.id)
        )
        with self._read() as session:
            for r in session.execute(query.execution_options(yield_per=self.batch)):
                row: Any = r
                if (row.form_record_id is not None and row.form_id is None) or (
                    row.log_entry_id is not None and row.log_id is None
                ):  # a reference the foreign keys hold: never written as a participant's query instead
                    raise ValueError(f"queries: query {row.id} of {row.participant_id} names no form or entry")
                yield QueryRecord(
                    query_id=row.id, participant_id=row.participant_id, site=row.site, origin=row.origin,
                    text=row.text, status=row.status, raised_at=row.raised_at, raised_by=row.raised_by,
                    visit_id=row.visit_id, form_id=row.form_id, log_id=row.log_id, sequence=row.sequence,
                    field=row.field, check_id=row.check_id, answer=row.answer, answered_at=row.answered_at,
                    answered_by=row.answered_by, closed_at=row.closed_at, closed_by=row.closed_by,
                    close_note=row.close_note,
                )  # fmt: skip

    def dsmb_decisions(self) -> Iterator[DsmbDecisionRecord]:
        d = dsmb_decisions.c  # never the reason: the DSMB's words may speak of the arms
        query = select(d.decision, d.related_saes, d.decided_at, d.decided_by).order_by(d.id)
        with self._read() as session:
            for r in session.execute(query):
                yield DsmbDecisionRecord(r.decision, r.related_saes, r.decided_at, r.decided_by)

    def consents(self) -> Iterator[ConsentRecord]:
        c, s = consents.c, screenings.c  # a consent names no arm: nothing to mask
        query = (
            select(consents, s.site, s.number, s.screened_on, s.screening_values, s.non_enrolment_reason,
                   s.non_enrolment_text, participants.c.participant_id)
            .join(screenings, s.id == c.screening_id)
            .outerjoin(participants, participants.c.screening_id == c.screening_id)
            .where(self._site_filter(s.site))
            .order_by(c.id)
        )  # fmt: skip
        from trialwright.services.export_consents import in_force

        with self._read() as session:
            rows: list[Any] = list(session.execute(query))
            held = in_force(session, self.protocol, rows)
            for r in rows:
                yield ConsentRecord(
                    id=r.id, screening_number=f"{r.site}-S{r.number:04d}", site=r.site, screened_on=r.screened_on,
                    screening_values=json.loads(r.screening_values), participant_id=r.participant_id,
                    non_enrolment_reason=r.non_enrolment_reason, non_enrolment_text=r.non_enrolment_text,
                    form_version=r.form_version, given_by=r.given_by, representative_name=r.representative_name,
                    representative_relationship=r.representative_relationship, witness=r.witness,
                    obtained_by=r.obtained_by, obtained_at=r.obtained_at, kind=r.kind, decision=r.decision,
                    recorded_at=r.recorded_at, recorded_by=r.recorded_by, assent=r.assent,
                    assent_obtained_by=r.assent_obtained_by, assent_obtained_at=r.assent_obtained_at,
                    assent_form_version=r.assent_form_version, assent_not_sought_reason=r.assent_not_sought_reason,
                    in_force=held.get(r.id),
                )  # fmt: skip

    def locks(self) -> list[LockRecord]:
        from trialwright.services.export_locks import lock_records

        with self._read() as session:
            return lock_records(session, self.sites, masked=not self.with_arms)

    def screenings_never_enrolled(self) -> Iterator[ScreeningRecord]:
        s = screenings.c  # a screening names no arm: nothing to mask
        query = (
            select(s.site, s.number, s.screened_on, s.screening_values, s.non_enrolment_reason, s.non_enrolment_text)
            .outerjoin(participants, participants.c.screening_id == s.id)
            .where(participants.c.participant_id.is_(None), self._site_filter(s.site))
            .order_by(s.id)
        )  # fmt: skip
        with self._read() as session:
            for r in session.execute(query.execution_options(yield_per=self.batch)):
                yield ScreeningRecord(
                    f"{r.site}-S{r.number:04d}", r.site, r.screened_on, json.loads(r.screening_values),
                    r.non_enrolment_reason, r.non_enrolment_text,
                )  # fmt: skip

    def audit(self) -> Iterator[AuditEntry]:
        query = (
            select(audit_entries)
            .where(audit_entries.c.participant.is_not(None), self._audit_filter(audit_entries.c.site))
            .order_by(audit_entries.c.seq)
        )
        with self._read() as session:
            for r in session.execute(query.execution_options(yield_per=self.batch)):
                entry = AuditEntry(**{c: getattr(r, c) for c in audit_entries.c.keys()})  # noqa: SIM118
                # Without the arms, no entry's hash either (``mask_entry``).
                yield entry if self.with_arms else mask_entry(entry)

    def audit_columns(
        self,
        columns: Sequence[str],
        actions: Collection[str],
        prefixes: Sequence[str] = (),
        only: Mapping[str, Collection[str]] | None = None,
        unnamed: Collection[str] = (),
        part: Part = "all",
    ) -> Iterator[tuple[Any, ...]]:
        # The filter of ``audit`` and the action filter in SQL; only the columns asked for, each masked on its own
        # (``export_audit``), read as plain rows a batch at a time.
        with self._read() as session:
            yield from audit_rows(session, columns, actions, prefixes, only or {}, unnamed,
                                  site_filter=self._audit_filter, with_arms=self.with_arms, batch=self.batch,
                                  part=part)  # fmt: skip

    def audit_distinct(
        self,
        columns: Sequence[str],
        actions: Collection[str],
        prefixes: Sequence[str] = (),
        only: Mapping[str, Collection[str]] | None = None,
        unnamed: Collection[str] = (),
        present: Collection[str] = (),
    ) -> Iterator[tuple[Any, ...]]:
        with self._read() as session:  # grouped by the database (``export_audit``)
            yield from audit_distinct(session, columns, actions, prefixes, only or {}, unnamed, present,
                                      site_filter=self._audit_filter, with_arms=self.with_arms,
                                      batch=self.batch)  # fmt: skip

    def count(self) -> int:
        from sqlalchemy import func

        with self._read() as session:
            return int(
                session.execute(
                    select(func.count())
                    .select_from(form_records)
                    .join(participants, participants.c.participant_id == form_records.c.participant_id)
                    .where(self._site_filter(participants.c.site))
                    .where(form_records.c.form_id.not_in(sorted(self.kept)) if self.kept else true())
                ).scalar_one()
            )


def _check(protocol: Protocol, actor: UserView, with_arms: bool) -> None:
    if actor.role not in EXPORTERS:
        raise denied(ExportError)("role: only the data manager and the statisticians export data")
    if with_arms and not sees_arms(protocol, actor.role):
        # a matter of permission, as the unblinded analysis asked by a masked role is (the CLI's exit code 4)
        raise denied(ExportError)(f"with_arms: {arms_refused(protocol, actor.role, EXPORTERS, 'export the arms')}")


def export_source(
    engine: Engine, actor: UserView, *, with_arms: bool = False, read_engine: Engine | None = None
) -> DatabaseSource:
    """The trial as ``actor`` may export it (arms only for an exporter the trial's masking lets see them: in a
    double-blind trial the unblinded statistician; in an open-label trial every exporter); its data read through
    ``read_engine`` (a read replica, once it holds the primary's audit head: ``trialwright.services.replica``) when
    given."""
    loaded = current_protocol(engine)
    _check(loaded.protocol, actor, with_arms)
    try:
        source = reader(engine, read_engine)
    except ReplicaRefused as exc:
        raise ExportError(str(exc)) from None
    return DatabaseSource(
        protocol=loaded.protocol,
        trial_id=loaded.protocol.trial_id,
        protocol_version=loaded.protocol.version.number,
        taken_at=clock.now().astimezone(dt.UTC),
        with_arms=with_arms,
        engine=source,
        sites=tuple(actor.sites) if actor.role.site_scoped else None,
        kept=kept_forms(loaded.protocol, actor.role),
    )


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    format: str
    folder: Path
    files: tuple[Path, ...]
    with_arms: bool
    sha256: dict[str, str]


def check_format(fmt: str) -> None:
    """Refuse (``ExportError``) a name that is not a format of the general list."""
    if fmt == "ipd":
        raise ExportError("format: the IPD is issued only against an approved data access request (trialwright access)")
    known = formats()
    if fmt not in known:
        raise ExportError(f"format: {fmt!r} is not an export format (known: {', '.join(sorted(known))})")


def zip_folder(folder: Path, into: BinaryIO) -> None:
    """A zip of an export's folder into ``into``: every file under the folder's own name, in name order."""
    with zipfile.ZipFile(into, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder.parent))


def _current_rules(engine: Engine) -> None:
    """The protocol the trial runs under, read back as stored, under today's rules: a text stored before a rule that
    guards an export (a dose's unit, CM's CT terms, coding column names, an ASCII SDTM unit) was accepted and runs
    the trial's pages, but no export is written from it until an amendment declares what the rule asks."""
    loaded = current_protocol(engine)
    problem = _newer_rules_problem(loaded.source_text, loaded.protocol.version.number)
    if problem is not None:
        raise ExportError(
            f"protocol: {problem}; these rules were added after this version was stored: amend the protocol (a new "
            "version declaring what they ask) before exporting"
        )


@functools.lru_cache(maxsize=8)
def _newer_rules_problem(text: str, version: str) -> str | None:
    try:
        load_protocol_text(text, f"the stored protocol version {version}")
    except ProtocolError as exc:
        return str(exc)
    return None


def run_export(
    engine: Engine,
    actor: UserView,
    fmt: str,
    out: Path,
    *,
    with_arms: bool = False,
    progress: Progress | None = None,
    exporter: Exporter | None = None,
    read_engine: Engine | None = None,
) -> ExportResult:
    """Write one format into the folder ``out`` (which must not exist yet, or be empty); audited.

    ``exporter`` is for the services that make a format not on the general list (the IPD package, which is
    issued only against an approved data access request: ``trialwright.services.sharing.issue_ipd``)."""
    known = formats()
    if exporter is None:
        check_format(fmt)
    _current_rules(engine)
    source = export_source(engine, actor, with_arms=with_arms, read_engine=read_engine)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"out: {out} exists and is not an empty folder; choose a new folder")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with source.snapshot():  # every file of the export from one snapshot of the database
            written = (exporter or known[fmt]()).write(source, partial, progress)
    except SdtmExportError as exc:  # what the protocol must declare first: said like any refused export
        shutil.rmtree(partial, ignore_errors=True)
        raise ExportError(str(exc)) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    sums = {str(p.relative_to(partial)): file_sha256(p) for p in written}
    # The folder takes its name inside the transaction that audits it: if the audit entry cannot be written,
    # the export is removed, so no complete export exists without its entry.
    renamed = False
    try:
        with session_scope(engine) as session:
            audit.record(
                session,
                actor=actor.username,
                role=actor.role.value,
                action="export.written",
                new_value={
                    "format": fmt,
                    "folder": out.name,
                    "files": sums,
                    "with_arms": with_arms,
                    **({"withheld": sorted(source.kept)} if source.kept else {}),
                },
            )
            if out.exists():
                out.rmdir()
            partial.rename(out)
            renamed = True
    except BaseException:
        shutil.rmtree(out if renamed else partial, ignore_errors=True)
        raise
    files = tuple(out / p.relative_to(partial) for p in written)
    return ExportResult(fmt, out, files, with_arms, sums)
