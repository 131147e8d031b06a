"""Tables of the two-person rule and of set-password tokens.

An ``account_requests`` row is a change to a guarded account (an unblinded, DSMB or approving role) that waits
for a second person; a ``set_password_tokens`` row lets one person choose their own password once, before it
expires. Tokens are stored only as SHA-256 digests.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = ["account_requests", "set_password_tokens"]

account_requests = Table(
    "account_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # create, reset, enable
    Column("username", String(64), nullable=False, index=True),
    Column("role", String(32), nullable=False),
    Column("sites", Text, nullable=False),  # comma-separated site codes
    Column("full_name", Text, nullable=True),
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("state", String(16), nullable=False, index=True),  # pending, approved, rejected
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("decision_reason", Text, nullable=True),
)

set_password_tokens = Table(
    "set_password_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("issued_by", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
)
