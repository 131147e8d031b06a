"""Log forms' entries (concomitant medications, medical history), the WHO ATC index the sponsor loaded, and each
entry's coding.

A log entry is one row per participant, log and sequence (1, 2, ... in the order added, never reused); its values are
one JSON document (field id -> stored value), as a form's are. An amendment rewrites the document and bumps the
version; a removal keeps the row with state ``removed`` and the reason: nothing is deleted, and the audit trail holds
every earlier value.

An ATC index is loaded whole (``atc_releases``: its version, who loaded it, when, the file's SHA-256) into
``atc_codes`` (code, level 1-5, name). An entry's coding (``log_codings``, one row per entry, replaced on recoding)
copies the code, name and the whole path (levels 1 to 5) with the release's version and the verbatim text coded,
so that the exports read it without the dictionary.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, PrimaryKeyConstraint, String, Table, Text, UniqueConstraint

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = ["atc_codes", "atc_releases", "log_codings", "log_entries"]

#: One entry of a log form of one participant.
log_entries = Table(
    "log_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("participant_id", String(32), ForeignKey("participants.participant_id"), nullable=False, index=True),
    Column("log_id", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("entry_values", Text, nullable=False),  # JSON: field id -> stored value
    Column("state", String(16), nullable=False),  # active or removed
    Column("version", Integer, nullable=False),
    Column("protocol_version", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("removed_reason", Text, nullable=True),
    # Source data verification and the investigator's signature (the casebook's); an amendment or removal clears both.
    Column("verified_at", UTCDateTime(), nullable=True),
    Column("verified_by", String(64), nullable=True),
    Column("signed_at", UTCDateTime(), nullable=True),
    Column("signed_by", String(64), nullable=True),
    Column("signature_meaning", Text, nullable=True),
    UniqueConstraint("participant_id", "log_id", "sequence", name="uq_log_entries_participant_log_sequence"),
)

#: A WHO ATC index loaded by the sponsor: its version (e.g. 2026) and file.
atc_releases = Table(
    "atc_releases",
    metadata,
    Column("version", String(16), primary_key=True),
    Column("loaded_at", UTCDateTime(), nullable=False),
    Column("loaded_by", String(64), nullable=False),
    Column("files", Text, nullable=False),  # JSON: file name -> SHA-256
    Column("counts", Text, nullable=False),  # JSON: level -> codes
)

#: One code of an ATC index: level 1 (anatomical main group) to 5 (chemical substance).
atc_codes = Table(
    "atc_codes",
    metadata,
    Column("version", String(16), ForeignKey("atc_releases.version"), nullable=False),
    Column("code", String(7), nullable=False),
    Column("level", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("search_name", String(200), nullable=False),  # the name in lower case, for searching
    PrimaryKeyConstraint("version", "code", name="pk_atc_codes"),
)

#: A log entry's current coding: the dictionary, its version, the verbatim text coded and the path (JSON).
log_codings = Table(
    "log_codings",
    metadata,
    Column("entry_id", Integer, ForeignKey("log_entries.id"), primary_key=True),
    Column("dictionary", String(16), nullable=False),  # ATC
    Column("version", String(16), nullable=False),
    Column("verbatim", Text, nullable=False),
    Column("code", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("path", Text, nullable=False),  # JSON: [{level, code, name}, ...] from level 1 down to the code
    Column("coded_at", UTCDateTime(), nullable=False),
    Column("coded_by", String(64), nullable=False),
)
