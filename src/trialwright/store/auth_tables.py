"""Tables of people and their access: users, their sites, browser sessions and API tokens.

Passwords are stored only as argon2 hashes; session and API tokens only as SHA-256 hashes.

``rate_limits`` holds the counts of the rate limits (``trialwright.services.ratelimit``) so that every worker
process, and every host, on one database counts into the same window: one row per limiter and key (the SHA-256 of
the key, never the address or username itself), its window's start (seconds since the epoch) and its count.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Integer, String, Table, Text

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = ["api_tokens", "rate_limits", "user_sites", "users", "web_sessions"]

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),  # stored lower-case
    Column("full_name", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("language", String(8), nullable=False),
    Column("calendar", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("password_changed_at", UTCDateTime(), nullable=False),
    # Where e-mail notifications go (revision 0028); none: the account gets no e-mail.
    Column("email", String(254), nullable=True),
)

user_sites = Table(
    "user_sites",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("site_code", String(8), ForeignKey("sites.code"), primary_key=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    # A token answers no request from this time on (revision 0015; earlier tokens got created_at + 90 days).
    Column("expires_at", UTCDateTime(), nullable=False),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("limiter", String(32), primary_key=True),
    Column("key", String(64), primary_key=True),  # SHA-256 (hex) of the key
    Column("window_start", Float, nullable=False),  # seconds since the epoch
    Column("count", Integer, nullable=False),
    Column("detail", Text, nullable=True),  # JSON: what an aggregated audit entry needs (refused tokens)
)
