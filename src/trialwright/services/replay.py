"""Replaying the audit trail against the data tables (the second half of ``trialwright audit verify``).

The trail is read in sequence order, in batches, and only the actions the replay understands
(``trialwright.domain.replay.REPLAYED_ACTIONS``); the data tables are then read in batches and each row checked
against the state the trail implies. Memory follows the current data (one expected value per stored value),
not the length of the trail.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select

from trialwright.domain.log_replay import LOG_ACTIONS, LogReplay
from trialwright.domain.randomization import allocation_seal
from trialwright.domain.replay import (
    REPLAYED_ACTIONS,
    ChecksumBuilder,
    Disagreement,
    Replay,
    ReplayReport,
    TrailEntry,
)
from trialwright.services.audit_keys import ticking
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.log_tables import log_entries
from trialwright.store.randomization_tables import allocation_entries, allocation_lists
from trialwright.store.tables import audit_entries

__all__ = ["Disagreement", "ReplayReport", "replay"]

_TRAIL = (
    select(
        audit_entries.c.seq,
        audit_entries.c.action,
        audit_entries.c.participant,
        audit_entries.c.form,
        audit_entries.c.field,
        audit_entries.c.new_value,
        audit_entries.c.reason,
        audit_entries.c.detail,
        audit_entries.c.actor,
    )
    .where(audit_entries.c.action.in_(sorted(REPLAYED_ACTIONS | LOG_ACTIONS)))
    .order_by(audit_entries.c.seq)
)


class _Findings:
    """Counts every disagreement, keeps the first ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.kept: list[Disagreement] = []

    def add(self, found: Disagreement) -> None:
        self.count += 1
        if len(self.kept) < self.limit:
            self.kept.append(found)


def replay(
    engine: Engine, *, batch: int = 5000, limit: int = 100, progress: Callable[[int], None] | None = None
) -> ReplayReport:
    """Replay the whole trail and compare it with the stored forms, visits, randomizations, allocation lists and
    log entries.

    ``limit`` bounds the disagreements kept in the report (all are counted). ``progress`` is called with the
    number of trail entries replayed since its last call.
    """
    state = Replay()
    logs = LogReplay()
    found = _Findings(limit)
    rows = 0
    with engine.connect() as conn:
        for r in ticking(conn.execution_options(yield_per=batch).execute(_TRAIL), progress):
            entry = TrailEntry(r.seq, r.action, r.participant, r.form, r.field, r.new_value, r.reason, r.detail,
                               r.actor)  # fmt: skip
            bad = logs.apply(entry) if logs.takes(r.action, r.form, r.detail) else state.apply(entry)
            if bad is not None:
                found.add(bad)
        rows += _forms(conn, state, found, batch)
        rows += _visits(conn, state, found, batch)
        rows += _allocations(conn, state, found, batch)
        rows += _lists(conn, state, found, batch)
        rows += _logs(conn, logs, found, batch)
    for missing in (*state.leftovers(), *logs.leftovers()):
        found.add(missing)
    entries = state.entries + logs.entries
    if found.count:
        first = "; ".join(d.describe() for d in found.kept[:3])
        message = f"{found.count} disagreement(s) between the data tables and the audit trail"
        message += f", first: {first}" if first else ""
    else:
        message = f"the data tables agree with the audit trail: {rows} rows checked against {entries} entries"
    return ReplayReport(found.count == 0, entries, rows, found.count, tuple(found.kept), message)


def _forms(conn: Connection, state: Replay, found: _Findings, batch: int) -> int:
    query = (
        select(form_records.c.participant_id, visit_records.c.visit_id, form_records.c.form_id, form_records.c.state,
               form_records.c.form_values)
        .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
        .order_by(form_records.c.id)
    )  # fmt: skip
    n = 0
    for r in conn.execution_options(yield_per=batch).execute(query):
        n += 1
        for d in state.check_form(r.participant_id, r.visit_id, r.form_id, r.state, json.loads(r.form_values)):
            found.add(d)
    return n


def _visits(conn: Connection, state: Replay, found: _Findings, batch: int) -> int:
    query = select(
        visit_records.c.participant_id, visit_records.c.visit_id, visit_records.c.visit_date,
        visit_records.c.missed_reason,
    ).order_by(visit_records.c.id)  # fmt: skip
    n = 0
    for r in conn.execution_options(yield_per=batch).execute(query):
        n += 1
        day = r.visit_date.isoformat() if r.visit_date is not None else None
        for d in state.check_visit(r.participant_id, r.visit_id, day, r.missed_reason):
            found.add(d)
    return n


def _allocations(conn: Connection, state: Replay, found: _Findings, batch: int) -> int:
    """Every claimed allocation entry; its seal is recomputed with the first list's seed, as ``randomize`` made
    it (the seed and the arm stay in this function: a disagreement shows digests only)."""
    seed = conn.execute(select(allocation_lists.c.seed).order_by(allocation_lists.c.id).limit(1)).scalar()
    c = allocation_entries.c
    # Only the columns the replay reads: a database not yet upgraded (no ``digest``) replays as well.
    query = (
        select(c.participant_id, c.randomization_number, c.preparation_code, c.stratum, c.sequence, c.arm)
        .where(allocation_entries.c.participant_id.is_not(None))
        .order_by(allocation_entries.c.id)
    )
    n = 0
    for r in conn.execution_options(yield_per=batch).execute(query):
        n += 1
        seal = ""
        if seed is not None and state.expects_seal(r.participant_id):
            seal = allocation_seal(
                seed, r.participant_id, r.randomization_number, r.preparation_code, r.stratum, r.sequence, r.arm
            )
        for d in state.check_allocation(r.participant_id, r.randomization_number, r.preparation_code, r.stratum, seal):
            found.add(d)
    return n


def _lists(conn: Connection, state: Replay, found: _Findings, batch: int) -> int:
    """Every allocation list: its stored checksum, and the checksum of its entries recomputed as they stand
    (under minimization the entries are made one randomization at a time, so the seals check them instead)."""
    n = 0
    for lst in conn.execute(select(allocation_lists).order_by(allocation_lists.c.id)).all():
        n += 1
        recomputed = None
        if lst.kind != "minimization":
            builder = ChecksumBuilder()
            query = (
                select(allocation_entries.c.stratum, allocation_entries.c.sequence, allocation_entries.c.block,
                       allocation_entries.c.block_size, allocation_entries.c.position, allocation_entries.c.arm)
                .where(allocation_entries.c.list_id == lst.id)
                .order_by(allocation_entries.c.id)
            )  # fmt: skip
            for e in conn.execution_options(yield_per=batch).execute(query):
                builder.add(e.stratum, e.sequence, e.block, e.block_size, e.position, e.arm)
            recomputed = builder.hexdigest()
        stratum = lst.stratum if lst.kind == "extension" else None
        number = lst.extension_number if lst.kind == "extension" else None
        for d in state.check_list(stratum, number, lst.checksum, recomputed):
            found.add(d)
    return n


def _logs(conn: Connection, logs: LogReplay, found: _Findings, batch: int) -> int:
    """Every log entry, removed ones included (a removal keeps the row)."""
    # A database not yet upgraded (``trialwright init`` migrates) may hold no log table, or one without the review
    # columns: it is read as it is; a log entry the trail names that no table holds is then said missing.
    schema = inspect(conn)
    if not schema.has_table("log_entries"):
        return 0
    found_columns = {col["name"] for col in schema.get_columns("log_entries")}
    reviewed = {"verified_by", "signed_by"} <= found_columns
    c = log_entries.c
    columns = [c.participant_id, c.log_id, c.sequence, c.state, c.removed_reason, c.entry_values]
    query = select(*columns, *((c.verified_by, c.signed_by) if reviewed else ())).order_by(c.id)
    n = 0
    for r in conn.execution_options(yield_per=batch).execute(query):
        n += 1
        values = json.loads(r.entry_values)
        review = {"verified_by": r.verified_by, "signed_by": r.signed_by} if reviewed else None
        for d in logs.check(r.participant_id, r.log_id, r.sequence, r.state, r.removed_reason, values, review):
            found.add(d)
    return n
