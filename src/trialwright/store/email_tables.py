"""The e-mail outbox: one row per message to one recipient, written in the same transaction as the event it tells
of (an SAE, an emergency unblinding, a safety pause, a request under the two-person rule, a reporting deadline), so
that nothing is lost while the mail server is down; the sender (``trialwright.services.email``) delivers the rows
and records each attempt.

A row names its recipient by username, never by address: the address, language and time zone are read when the
message is sent. ``params`` holds what the message says (JSON), and never an arm. ``dedupe_key`` makes each
message once per recipient: a deadline reminder is ``deadline:AE-0001:sae_initial:due_soon:investigator``.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = ["email_outbox"]

email_outbox = Table(
    "email_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("recipient", String(64), nullable=False),  # a username
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("params", Text, nullable=False),  # JSON: what the message says; never an arm
    Column("site", String(32), nullable=True),
    Column("participant_id", String(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("state", String(16), nullable=False, index=True),  # pending, sending, sent, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("address", Text, nullable=True),  # where it was last sent (or tried)
    Column("sent_at", UTCDateTime(), nullable=True),
)
