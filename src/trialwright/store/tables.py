"""The trial database's tables, all on one ``metadata``.

Each capability declares its tables on this ``metadata`` (the core ones are here); the single Alembic
tree in ``trialwright/store/migrations`` creates them. Times are aware and stored in UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from trialwright.store.coltypes import UTCDateTime

__all__ = [
    "audit_checkpoints",
    "audit_entries",
    "audit_keying",
    "metadata",
    "protocol_versions",
    "sites",
    "trial",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: The one trial this database holds.
trial = Table(
    "trial",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("trial_id", String(64), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("current_protocol_version_id", Integer, ForeignKey("protocol_versions.id"), nullable=True),
)

#: Every protocol version the trial has run under: its exact text and SHA-256.
protocol_versions = Table(
    "protocol_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("trial_id", String(64), nullable=False, index=True),
    Column("version", String(32), nullable=False),
    Column("version_date", String(10), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("source_text", Text, nullable=False),
    Column("loaded_at", UTCDateTime(), nullable=False),
    Column("loaded_by", String(128), nullable=False),
)

#: Recruitment centres, copied from the protocol (site-scoped access refers to them).
sites = Table(
    "sites",
    metadata,
    Column("code", String(8), primary_key=True),
    Column("name", Text, nullable=False),
    Column("timezone", String(64), nullable=False),
)

#: The append-only, hash-chained audit trail (see trialwright.domain.audit).
audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("role", String(64), nullable=True),
    Column("site", String(8), nullable=True),
    Column("participant", String(32), nullable=True, index=True),
    Column("form", String(64), nullable=True),
    Column("field", String(64), nullable=True),
    Column("action", String(64), nullable=False, index=True),
    Column("old_value", Text, nullable=True),
    Column("new_value", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("detail", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    # HMAC-SHA256 of the entry with the audit key (held outside the database); empty before keying began.
    Column("mac", String(64), nullable=True),
)

#: Where keying began (the first entry that carries a MAC) and the key's check value (an HMAC of a fixed
#: label, never the key). One row, written once by the first entry signed with a key.
audit_keying = Table(
    "audit_keying",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("keyed_from", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("key_check", String(64), nullable=False),
    Column("keyed_at", UTCDateTime(), nullable=False),
)


#: Entries written in a user's transaction and not chained yet (PostgreSQL): each carries the MAC of its content
#: with the audit key, so it cannot be altered while it waits; the chainer moves it into ``audit_entries`` in the
#: order it finds them (see trialwright.services.audit). Empty between requests; never read by a page.
audit_pending = Table(
    "audit_pending",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("role", String(64), nullable=True),
    Column("site", String(8), nullable=True),
    Column("participant", String(32), nullable=True),
    Column("form", String(64), nullable=True),
    Column("field", String(64), nullable=True),
    Column("action", String(64), nullable=False),
    Column("old_value", Text, nullable=True),
    Column("new_value", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("detail", Text, nullable=True),
    Column("mac", String(64), nullable=True),
    Column("nonce", String(32), nullable=True),  # random, covered by the MAC: a copy is refused as a replay
    # From the sequence audit_order just before the writer's commit: the order the chainer chains transactions in.
    Column("ord", BigInteger().with_variant(Integer, "sqlite"), nullable=True),
)

#: Every nonce the chainer has chained (PostgreSQL): a pending entry whose nonce is here is a replayed copy.
audit_nonces = Table("audit_nonces", metadata, Column("nonce", String(32), primary_key=True))

#: Pending entries the chainer refused (``reason``: ``altered``, ``unsigned`` or ``replayed``), kept as found
#: (``row``, JSON) for the investigation; each is named by an ``audit.pending_rejected`` entry in the chain.
audit_pending_rejected = Table(
    "audit_pending_rejected",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("pending_id", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("rejected_at", UTCDateTime(), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("row", Text, nullable=False),
)


#: Verification checkpoints (see trialwright.services.audit_checkpoints): the chain was verified up to entry ``seq``,
#: whose hash was ``hash``, at ``at`` by ``by``; ``mac`` signs them (and a full verify's outcome) with the audit key,
#: so nobody without the key can move a checkpoint past entries never verified. ``kind`` is ``page`` (the audit
#: page verified the entries after the previous checkpoint) or ``full`` (``trialwright audit verify``: the outcome
#: columns say what it found; ``seq`` and ``hash`` are empty when the chain was not intact).
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=True, index=True),
    Column("hash", String(64), nullable=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("by", String(128), nullable=False),
    Column("chain_ok", Boolean, nullable=True),
    Column("problem", String(16), nullable=True),
    Column("message", Text, nullable=True),
    Column("entries", BigInteger().with_variant(Integer, "sqlite"), nullable=True),
    Column("allocations", Integer, nullable=True),
    Column("replay_ok", Boolean, nullable=True),
    Column("replay_disagreements", Integer, nullable=True),
    Column("replay_rows", BigInteger().with_variant(Integer, "sqlite"), nullable=True),
    Column("mac", String(64), nullable=True),
)
