"""Tables of screening, consent and enrolment: the screening log, consents, participants, withdrawals."""

from __future__ import annotations

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = ["consents", "participants", "screenings", "withdrawals"]

#: Every patient assessed for eligibility, numbered per site; values and the decision as JSON.
screenings = Table(
    "screenings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site", String(8), ForeignKey("sites.code"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("screened_on", Date, nullable=False),
    Column("screening_values", Text, nullable=False),
    Column("decision", String(16), nullable=False, index=True),
    Column("decision_detail", Text, nullable=False),
    Column("protocol_version", String(32), nullable=False),
    Column("non_enrolment_reason", String(32), nullable=True),
    Column("non_enrolment_text", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("site", "number", name="uq_screenings_site_number"),
    Index("ix_screenings_screened_on_id", "screened_on", "id"),  # the log's order (keyset pages)
)

#: Consents and consent decisions: by the participant or a legally authorised representative.
consents = Table(
    "consents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("screening_id", Integer, ForeignKey("screenings.id"), nullable=False, index=True),
    Column("form_version", String(32), nullable=False),
    Column("given_by", String(16), nullable=False),
    Column("representative_name", Text, nullable=True),
    Column("representative_relationship", Text, nullable=True),
    Column("witness", Text, nullable=True),
    Column("obtained_by", Text, nullable=False),
    Column("obtained_at", UTCDateTime(), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    # The child's assent beside a representative's consent (protocol eligibility.assent; revision 0039):
    # given, dissent or not_sought; null where assent is not sought (or the record predates it).
    Column("assent", String(16), nullable=True),
    Column("assent_obtained_by", Text, nullable=True),
    Column("assent_obtained_at", UTCDateTime(), nullable=True),
    Column("assent_form_version", String(32), nullable=True),
    Column("assent_not_sought_reason", Text, nullable=True),
)

#: Enrolled participants: the id is issued at enrolment (site code and sequence, e.g. RAZ-001).
participants = Table(
    "participants",
    metadata,
    Column("participant_id", String(32), primary_key=True),
    Column("site", String(8), ForeignKey("sites.code"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("screening_id", Integer, ForeignKey("screenings.id"), nullable=False, unique=True),
    Column("enrolled_at", UTCDateTime(), nullable=False),
    Column("enrolled_by", String(64), nullable=False),
    UniqueConstraint("site", "number", name="uq_participants_site_number"),
)

#: Withdrawals, each of one scope (intervention, follow_up or data_use) with its cause and the reason in words.
withdrawals = Table(
    "withdrawals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("participant_id", String(32), ForeignKey("participants.participant_id"), nullable=False, index=True),
    Column("scope", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("cause", String(24), nullable=True),  # WithdrawalCause; NULL only for withdrawals recorded before 0010
    Column("withdrawn_on", Date, nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(64), nullable=False),
)
