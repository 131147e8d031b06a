"""Export jobs of the REST API: one row per export asked for, so that every web worker sees every job.

A job is ``queued`` when asked for, ``running`` while a worker writes it (``heartbeat_at`` renewed every half
minute), then ``done`` (its file kept in the export folder: ``file_name``, ``size``, ``sha256``) or ``failed``
(``error``: the rule that refused it, or that its worker stopped). ``role`` is the requester's role when asked:
the file is what that role may see, and is handed only to the same user in the same role.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, String, Table, Text

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = ["export_jobs"]

export_jobs = Table(
    "export_jobs",
    metadata,
    Column("seq", Integer, primary_key=True),  # the list's order
    Column("job_id", String(32), nullable=False, unique=True),  # random: the id in the API's URLs
    Column("format", String(32), nullable=False),
    Column("with_arms", Boolean, nullable=False),
    Column("state", String(16), nullable=False, index=True),  # queued, running, done, failed
    Column("created_by", String(64), nullable=False, index=True),
    Column("role", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("file_name", String(255), nullable=True),
    Column("media_type", String(100), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("error", Text, nullable=True),
)
