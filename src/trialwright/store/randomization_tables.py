"""The sealed allocation list and its generation record.

Arms live only here and are read only through the randomization service, which applies the masking
policy; no page, export or log reads this table directly.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = [
    "allocation_checkpoints",
    "allocation_entries",
    "allocation_lists",
    "notifications",
    "preparations",
    "unblindings",
    "verified_allocations",
]

allocation_lists = Table(
    "allocation_lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("method", Text, nullable=False),
    Column("generator", Text, nullable=False),
    Column("seed_sha256", String(64), nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("report", Text, nullable=False),
    Column("generated_at", UTCDateTime(), nullable=False),
    Column("generated_by", String(64), nullable=False),
    # generated (the first list), extension (of one stratum) or minimization (no entries in advance).
    Column("kind", String(16), nullable=False, server_default="generated"),
    # Sealed like the arms: needed to extend a stratum along the same seed chain; never shown.
    Column("seed", Text, nullable=True),
    Column("extends", Integer, ForeignKey("allocation_lists.id"), nullable=True),
    Column("stratum", String(128), nullable=True),
    Column("extension_number", Integer, nullable=True),
    Column("reason", Text, nullable=True),
)

allocation_entries = Table(
    "allocation_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("list_id", Integer, ForeignKey("allocation_lists.id"), nullable=False),
    Column("stratum", String(128), nullable=False),
    Column("sequence", Integer, nullable=False),
    # Block, block size and position: permuted blocks only (empty under minimization).
    Column("block", Integer, nullable=True),
    Column("block_size", Integer, nullable=True),
    Column("position", Integer, nullable=True),
    Column("arm", String(8), nullable=False),
    Column("preparation_code", String(16), nullable=False, unique=True),
    Column("participant_id", String(32), ForeignKey("participants.participant_id"), nullable=True, unique=True),
    Column("randomization_number", Integer, nullable=True, unique=True),
    Column("randomized_at", UTCDateTime(), nullable=True),
    Column("randomized_by", String(64), nullable=True),
    # Minimization: the G value of each arm, the preferred arms and the draw (JSON), to replay the choice.
    Column("decision", Text, nullable=True),
    # HMAC-SHA256 with the audit key over the entry (list, stratum, sequence, block, arm, code and, once
    # claimed, participant and number): checked before the entry is handed out and by `audit verify`.
    Column("digest", String(64), nullable=True),
    UniqueConstraint("stratum", "sequence", name="uq_allocation_entries_stratum_sequence"),
)

#: The allocation entries as a table by arm last verified them (every column the digest covers, and the digest):
#: a load verifies again only the entries that differ from their copy here, or have none
#: (``trialwright.services.allocation_checkpoints``). Trusted only under a checkpoint that holds.
verified_allocations = Table(
    "verified_allocations",
    metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=False),
    Column("list_id", Integer, nullable=False),
    Column("stratum", String(128), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("block", Integer, nullable=True),
    Column("block_size", Integer, nullable=True),
    Column("position", Integer, nullable=True),
    Column("arm", String(8), nullable=False),
    Column("preparation_code", String(16), nullable=False),
    Column("participant_id", String(32), nullable=True),
    Column("randomization_number", Integer, nullable=True),
    Column("decision", Text, nullable=True),
    Column("digest", String(64), nullable=True),
)

#: Keyed checkpoints of the verified allocations: the trail's ``participant.randomized`` entries up to ``seq`` were
#: each matched to an entry, signed with the audit key (``mac``) so that no one without it can move it on.
allocation_checkpoints = Table(
    "allocation_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("mac", String(64), nullable=True),
)

#: What the unblinded pharmacist prepared for each preparation code.
preparations = Table(
    "preparations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "preparation_code", String(16), ForeignKey("allocation_entries.preparation_code"), nullable=False, unique=True
    ),
    # The values the arm's protocol declares (attribute id -> value), as JSON: read by the unblinded pharmacist
    # only, never written to the audit trail (lots and volumes can differ by arm).
    Column("attributes", Text, nullable=False),
    Column("prepared_at", UTCDateTime(), nullable=False),
    Column("prepared_by", String(64), nullable=False),
)

#: Emergency unblindings: who, when, why, whom. The arm is never stored here.
unblindings = Table(
    "unblindings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("participant_id", String(32), ForeignKey("participants.participant_id"), nullable=False, index=True),
    Column("unblinded_by", String(64), nullable=False),
    Column("unblinded_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
)

#: Notifications to roles (e.g. of an emergency unblinding); never carry an arm.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("role", String(32), nullable=False, index=True),
    Column("subject", Text, nullable=False),
    Column("participant_id", String(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)
