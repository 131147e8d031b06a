"""Data sharing: the trial's publications (the access window opens after the first) and the register of
requests for the de-identified individual participant data, with their decisions and issued packages."""

from __future__ import annotations

from sqlalchemy import Column, Date, Integer, String, Table, Text

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = ["access_requests", "publications"]

#: A publication of the trial's results (citation and date), as the data manager records it.
publications = Table(
    "publications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("citation", Text, nullable=False),
    Column("published_on", Date, nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(64), nullable=False),
)

#: A written request for the IPD: who asks, why, the decision and who made it, and the package issued.
access_requests = Table(
    "access_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(16), nullable=False, unique=True),  # DAR-0001
    Column("requester", Text, nullable=False),
    Column("organisation", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("reasons", Text, nullable=False),  # the written reasons for needing the data
    Column("received_on", Date, nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pending, approved, rejected, issued
    Column("decision_reason", Text, nullable=True),
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("issued_at", UTCDateTime(), nullable=True),
    Column("issued_by", String(64), nullable=True),
    Column("package_sha256", Text, nullable=True),  # JSON {file: sha256} of the package issued
)
