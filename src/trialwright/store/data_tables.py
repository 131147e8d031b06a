"""Visits held, case report forms, queries, and the trial (database) lock.

A form's values are one JSON document per form instance (field id -> stored value); every change to a
field is also an audit entry with the old and new value, so the document is the current state and the
audit trail is its history.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = [
    "administered_codes",
    "field_verifications",
    "form_records",
    "queries",
    "soft_locks",
    "trial_locks",
    "visit_records",
    "withheld_reviews",
]

#: A visit as held (or missed) for one participant; unscheduled visits too.
visit_records = Table(
    "visit_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("participant_id", String(32), ForeignKey("participants.participant_id"), nullable=False, index=True),
    Column("visit_id", String(64), nullable=False),  # a protocol visit id, or unscheduled-N
    Column("visit_date", Date, nullable=True),
    Column("missed_reason", Text, nullable=True),
    Column("unscheduled", Boolean, nullable=False, default=False),
    Column("label", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
    UniqueConstraint("participant_id", "visit_id", name="uq_visit_records_participant_visit"),
)

#: One form at one visit of one participant, with its values and lifecycle.
form_records = Table(
    "form_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("participant_id", String(32), ForeignKey("participants.participant_id"), nullable=False, index=True),
    Column("visit_record_id", Integer, ForeignKey("visit_records.id"), nullable=False, index=True),
    # Indexed: the kit check reads the administration form's records of other participants by it (not the whole
    # table at every administration saved; docs/benchmarks.md, simulation at scale).
    Column("form_id", String(64), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("state_before_lock", String(16), nullable=True),
    Column("form_values", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("protocol_version", String(32), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("verified_at", UTCDateTime(), nullable=True),
    Column("verified_by", String(64), nullable=True),
    Column("signed_at", UTCDateTime(), nullable=True),
    Column("signed_by", String(64), nullable=True),
    Column("signature_meaning", Text, nullable=True),
    Column("locked_at", UTCDateTime(), nullable=True),
    Column("locked_by", String(64), nullable=True),
    UniqueConstraint("visit_record_id", "form_id", name="uq_form_records_visit_form"),
)

#: The preparation codes the administration records hold (the protocol's ``analysis_plan.treatment`` form and
#: ``code_field``): one row per form record whose code field holds a value, written in the transaction that saves
#: the record (``store/administered.py``), so that the kit check finds who holds a code by its index instead of
#: reading every administration record. ``claim`` holds the code on exactly one row of each code (the earliest
#: record), NULL on the others: its unique index makes a second participant's save of a code another transaction is
#: saving wait for that one and then find it taken. Several rows of one code are one participant's records, or
#: data from before the kit check (an import, a legacy record), which the check then refuses to add to.
administered_codes = Table(
    "administered_codes",
    metadata,
    Column("form_record_id", Integer, ForeignKey("form_records.id"), primary_key=True, autoincrement=False),
    Column("preparation_code", Text, nullable=False, index=True),
    Column("participant_id", String(32), ForeignKey("participants.participant_id"), nullable=False),
    Column("form_id", String(64), nullable=False),
    Column("claim", Text, nullable=True, unique=True),
)

#: Source data verification of one field of one form by the monitor: the stored value it verified (the field's
#: stored JSON). It stands while the field still holds that value; a form is verified when every required field
#: stands verified (``services/forms/casebook.py``). Re-verifying a field replaces its row; the trail is the audit.
field_verifications = Table(
    "field_verifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("form_record_id", Integer, ForeignKey("form_records.id"), nullable=False, index=True),
    Column("field", String(64), nullable=False),
    Column("verified_value", Text, nullable=False),
    Column("verified_at", UTCDateTime(), nullable=False),
    Column("verified_by", String(64), nullable=False),
    UniqueConstraint("form_record_id", "field", name="uq_field_verifications_form_field"),
)

#: A data query: raised automatically (soft limit, data check) or by hand; answered; closed.
queries = Table(
    "queries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("participant_id", String(32), ForeignKey("participants.participant_id"), nullable=False, index=True),
    Column("site", String(8), nullable=False, index=True),
    Column("form_record_id", Integer, ForeignKey("form_records.id"), nullable=True, index=True),
    Column("log_entry_id", Integer, ForeignKey("log_entries.id"), nullable=True, index=True),  # or a log entry's
    Column("field", String(64), nullable=True),
    Column("origin", String(16), nullable=False),  # soft_limit, data_check, manual, system
    Column("check_id", String(64), nullable=True),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),  # open, answered, closed
    Column("raised_at", UTCDateTime(), nullable=False),
    Column("raised_by", String(64), nullable=False),
    Column("answer", Text, nullable=True),
    Column("answered_at", UTCDateTime(), nullable=True),
    Column("answered_by", String(64), nullable=True),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("closed_by", String(64), nullable=True),
    Column("close_note", Text, nullable=True),
)

#: Locks and unlocks of the whole trial database, newest last; the last row is the current state.
trial_locks = Table(
    "trial_locks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("locked", Boolean, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("by", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    # A lock made while things still blocked it (the data manager's override): how many; NULL otherwise.
    Column("open_blockers", Integer, nullable=True),
    # A lock under a protocol with forms that reveal the arm: the forms kept from a masked locker, comma-joined, ''
    # none (its open_blockers leave those forms out). NULL: no such forms, or a lock made before migration 0042 or
    # read from a file without Withheld, whose open_blockers counted every blocker (services.lock.state_of).
    Column("withheld", Text, nullable=True),
)

#: An unmasked reviewer's finding that the forms kept from a masked reader of the lock readiness (they reveal the
#: arm) are ready, newest last (``services.readiness.review_withheld``). It stands while ``digest`` still matches
#: those forms (their records, the queries on them and the visits that hold them): a SHA-256 over them and
#: ``nonce``, a random salt, so the stored digest cannot be matched by trying form states.
withheld_reviews = Table(
    "withheld_reviews",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("by", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("forms", Text, nullable=False),  # the forms reviewed, comma-joined
    Column("protocol_version", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("nonce", String(32), nullable=False),
    Column("digest", String(64), nullable=False),
)

#: Soft locks and unlocks of one site or one participant (e.g. for an interim analysis), newest last; the last
#: row of a (scope, target) is its current state. Data saves there are refused while it is locked.
soft_locks = Table(
    "soft_locks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(16), nullable=False),  # site or participant
    Column("target", String(32), nullable=False, index=True),  # the site code or participant id
    Column("locked", Boolean, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("by", String(64), nullable=False),
    Column("reason", Text, nullable=False),
)
