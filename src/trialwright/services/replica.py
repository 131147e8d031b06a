"""Reading the analysis and the exports from a read replica of the trial database, never from stale data.

A deployment that outgrows one database server may name a PostgreSQL read replica (``read_database_url``); the
analysis and the exports then read their data there, and everything else (every write, the audit entries of the
runs and exports, sign-in, the lock) stays on the primary. Without the setting the reader is the primary itself.

A replica lags. Before reading, ``reader`` takes the primary's audit head (sequence and hash) and waits until the
replica holds that very entry: the replica then holds every change audited before the read began (each change is
audited in its own transaction), and it is a copy of this trial's database, not another's (the hashes match).
A replica that does not catch up within ``wait`` seconds, or holds another chain, is refused (``ReplicaRefused``)
rather than read.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, select

from trialwright.settings import Settings
from trialwright.store.audit_keys import key_of
from trialwright.store.engine import make_engine, read_scope, redact
from trialwright.store.tables import audit_entries

__all__ = ["ReplicaRefused", "read_engine_for", "reader"]

#: How long a read waits for the replica to replay the primary's audit head.
WAIT_SECONDS = 10.0


class ReplicaRefused(Exception):
    """The read replica may not be read: behind the primary for too long, or not a copy of this trial."""


def read_engine_for(settings: Settings, primary: Engine) -> Engine:
    """The engine the analysis and the exports read through: the read replica the settings name, signing with
    (and checking allocations against) the primary's audit key; else the primary itself."""
    url = settings.read_database_url
    if not url:
        return primary
    return make_engine(url, audit_key=key_of(primary))


def _head(engine: Engine) -> tuple[int, str] | None:
    with read_scope(engine) as session:
        row = session.execute(
            select(audit_entries.c.seq, audit_entries.c.hash).order_by(audit_entries.c.seq.desc()).limit(1)
        ).first()
    return None if row is None else (int(row.seq), str(row.hash))


def _hash_at(engine: Engine, seq: int) -> str | None:
    with read_scope(engine) as session:
        return session.execute(select(audit_entries.c.hash).where(audit_entries.c.seq == seq)).scalar_one_or_none()


def reader(primary: Engine, replica: Engine | None, *, wait: float = WAIT_SECONDS) -> Engine:
    """The engine to read from now: ``replica`` once it holds the primary's audit head, the primary when there is
    no replica (or it is the primary). Raises ``ReplicaRefused`` (see the module)."""
    if replica is None or replica is primary:
        return primary
    head = _head(primary)
    if head is None:
        return replica  # an empty trail: nothing audited yet for the replica to be behind on
    seq, digest = head
    deadline = time.monotonic() + wait
    while True:
        found = _hash_at(replica, seq)
        if found is not None:
            if found != digest:
                raise ReplicaRefused(
                    f"the read replica {redact(str(replica.url))} is not a copy of this trial's database: its audit "
                    f"entry {seq} differs from the primary's"
                )
            return replica
        if time.monotonic() >= deadline:
            raise ReplicaRefused(
                f"the read replica {redact(str(replica.url))} has not replayed audit entry {seq} after {wait:g} "
                "seconds; try again, or read from the primary (unset TRIALWRIGHT_READ_DATABASE_URL)"
            )
        time.sleep(0.05)
