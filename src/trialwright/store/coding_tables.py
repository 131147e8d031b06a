"""Medical coding: the MedDRA releases the sponsor loaded, their terms and hierarchy paths, and each adverse
event's coding.

A release is loaded whole (``meddra_releases`` records its version, who loaded it, when, and each file's SHA-256).
Its SOCs, HLGTs, HLTs, PTs and LLTs are rows of ``meddra_terms`` keyed by (version, level, code); each PT's paths up
to its SOCs are rows of ``meddra_paths``, one flagged primary. An adverse event's coding (``ae_codings``, one row
per event, replaced on recoding; the audit trail holds every earlier coding) copies the names and codes of the
whole primary path, with the release's version and the verbatim term it coded, so that exports read it without
the dictionary and a later release never changes what was coded.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, PrimaryKeyConstraint, String, Table, Text

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = ["ae_codings", "meddra_paths", "meddra_releases", "meddra_terms"]

#: A MedDRA release loaded by the sponsor: its version (e.g. 27.1) and files.
meddra_releases = Table(
    "meddra_releases",
    metadata,
    Column("version", String(16), primary_key=True),
    Column("loaded_at", UTCDateTime(), nullable=False),
    Column("loaded_by", String(64), nullable=False),
    Column("files", Text, nullable=False),  # JSON: file name -> SHA-256
    Column("counts", Text, nullable=False),  # JSON: level -> terms
)

#: One term of a release: level soc, hlgt, hlt, pt or llt. An LLT names its PT and whether it is current.
meddra_terms = Table(
    "meddra_terms",
    metadata,
    Column("version", String(16), ForeignKey("meddra_releases.version"), nullable=False),
    Column("level", String(4), nullable=False),
    Column("code", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    Column("search_name", String(100), nullable=False),  # the name in lower case, for searching
    Column("pt_code", Integer, nullable=True),  # LLTs: their PT
    Column("current", Boolean, nullable=True),  # LLTs: current (Y) or kept for old data (N)
    Column("abbrev", String(16), nullable=True),  # SOCs: the abbreviation
    PrimaryKeyConstraint("version", "level", "code", name="pk_meddra_terms"),
)

#: One path of a PT up to a SOC (mdhier.asc), ``is_primary`` for the PT's primary SOC.
meddra_paths = Table(
    "meddra_paths",
    metadata,
    Column("version", String(16), ForeignKey("meddra_releases.version"), nullable=False),
    Column("pt_code", Integer, nullable=False),
    Column("hlt_code", Integer, nullable=False),
    Column("hlgt_code", Integer, nullable=False),
    Column("soc_code", Integer, nullable=False),
    Column("is_primary", Boolean, nullable=False),
    PrimaryKeyConstraint("version", "pt_code", "hlt_code", "hlgt_code", "soc_code", name="pk_meddra_paths"),
)

#: An adverse event's current coding: the LLT chosen and its primary path, with the release and the term coded.
ae_codings = Table(
    "ae_codings",
    metadata,
    Column("event_id", Integer, ForeignKey("adverse_events.id"), primary_key=True),
    Column("dictionary", String(16), nullable=False),  # MedDRA
    Column("version", String(16), nullable=False),
    Column("verbatim", Text, nullable=False),  # the reported term this coding is for
    Column("llt_code", Integer, nullable=False),
    Column("llt_name", String(100), nullable=False),
    Column("pt_code", Integer, nullable=False),
    Column("pt_name", String(100), nullable=False),
    Column("hlt_code", Integer, nullable=False),
    Column("hlt_name", String(100), nullable=False),
    Column("hlgt_code", Integer, nullable=False),
    Column("hlgt_name", String(100), nullable=False),
    Column("soc_code", Integer, nullable=False),
    Column("soc_name", String(100), nullable=False),
    Column("coded_at", UTCDateTime(), nullable=False),
    Column("coded_by", String(64), nullable=False),
)
