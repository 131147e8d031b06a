"""Creating a trial database from its protocol, and reading back the protocol it runs under.

``init_trial`` is idempotent: on an empty database it creates the schema and stores the protocol; on
the same protocol it changes nothing; on a new version of the same trial's protocol (an amendment) it
stores that version; it refuses another trial's protocol, and a changed file that kept its version.

A locked trial database takes no amendment (``AmendmentLocked``): estimands, forms or the analysis would change
after the lock froze them. The one exception is an amendment whose only change is the ``deidentification``
section (how the shared de-identified data set is made, post-lock by nature): the two parsed protocols are
compared with that section, the version and the amendments list left out, and any other difference refuses.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from trialwright.domain.log_undeclared import undeclared
from trialwright.domain.treatment import kit_field
from trialwright.domain.visits import VisitAddition, took_effect, visit_additions
from trialwright.protocol import LoadedProtocol, Protocol, load_protocol_text
from trialwright.services import audit, clock
from trialwright.store.administered import rebuild
from trialwright.store.data_tables import trial_locks
from trialwright.store.engine import inserted_id, read_scope, serialise, session_scope
from trialwright.store.log_tables import log_entries
from trialwright.store.prepared import Prepared
from trialwright.store.tables import protocol_versions, sites, trial

__all__ = [
    "CURRENT_SHA",
    "VERSION_COUNT",
    "AmendmentLocked",
    "InitResult",
    "ProtocolVersionConflict",
    "ProtocolVersionView",
    "TrialMismatch",
    "TrialNotInitialised",
    "current_protocol",
    "init_trial",
    "protocol_by_sha",
    "protocol_history",
    "protocol_in",
    "versions_counted",
    "visit_additions_in",
]


class TrialMismatch(Exception):
    """The database holds another trial than the protocol file describes."""


class ProtocolVersionConflict(Exception):
    """The protocol file changed but kept a version number the database already holds."""


class AmendmentLocked(Exception):
    """A new protocol version changing more than the sharing settings, refused while the database is locked."""


#: What an amendment may change while the trial is locked: the shared data set's settings (and, with them, the
#: version and the amendments list that every amendment changes).
_POST_LOCK = {"deidentification", "version", "amendments"}


def _changed_sections(before: Protocol, after: Protocol) -> list[str]:
    """The top-level protocol sections ``after`` changes, beyond those an amendment may change after the lock."""
    old, new = before.model_dump(exclude=_POST_LOCK), after.model_dump(exclude=_POST_LOCK)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    # The amendments list may only grow: the amendments already made (their dates, reasons, changes) stay as they were.
    if list(after.amendments[: len(before.amendments)]) != list(before.amendments):
        changed.append("amendments (an earlier amendment changed)")
    return changed


def _refuse_while_locked(session: Session, current: Protocol | None, new: Protocol) -> bool:
    """Refuse (``AmendmentLocked``) a new version while the trial is locked unless it changes only the sharing
    settings; whether it was taken while locked. Holds the data lock shared, so no lock commits meanwhile."""
    from trialwright.services.lock import hold_data_lock  # the lock service reads this module's callers

    hold_data_lock(session)
    lock = session.execute(select(trial_locks).order_by(trial_locks.c.id.desc()).limit(1)).first()
    if lock is None or not lock.locked:
        return False
    changed = ["(the stored version cannot be read)"] if current is None else _changed_sections(current, new)
    if changed:
        raise AmendmentLocked(
            f"trial: the database is locked (since {lock.at:%Y-%m-%d %H:%M} UTC, by {lock.by}: {lock.reason}); "
            f"protocol version {new.version.number} changes {', '.join(changed)}, which the lock froze: unlock "
            "it, with a reason, first (`trialwright database unlock`); only an amendment to `deidentification` "
            "(the shared data set) is taken while locked"
        )
    return True


class TrialNotInitialised(Exception):
    """The database holds no trial yet."""


@dataclass(frozen=True)
class InitResult:
    """What ``init_trial`` did."""

    status: Literal["created", "upgraded", "unchanged"]
    trial_id: str
    protocol_version: str
    schema_revision: str
    schema_upgraded: bool
    #: What stored data the new protocol version no longer declares (log entries of a dropped log or field).
    notes: tuple[str, ...] = ()


def init_trial(engine: Engine, loaded: LoadedProtocol, *, actor: str = "system") -> InitResult:
    """Create or upgrade the trial database for this protocol (see the module docstring).

    With an audit key attached to the engine, the trail is keyed from then on: a new trial from its first
    entry, an existing unkeyed one from an ``audit.keyed`` entry written now.
    """
    result = _init_trial(engine, loaded, actor=actor)
    audit.begin_keying(engine, actor=actor)
    return result


def _init_trial(engine: Engine, loaded: LoadedProtocol, *, actor: str) -> InitResult:
    from trialwright.store.migrate import current_revision, upgrade  # Alembic: only for the commands that migrate

    before = current_revision(engine)
    revision = upgrade(engine)
    schema_upgraded = before != revision
    p = loaded.protocol
    now = clock.now()
    with session_scope(engine) as session:
        existing = session.execute(select(trial)).first()
        if existing is not None and existing.trial_id != p.trial_id:
            raise TrialMismatch(
                f"this database holds trial {existing.trial_id}; the protocol file is for trial {p.trial_id}"
            )
        stored = session.execute(select(protocol_versions).where(protocol_versions.c.trial_id == p.trial_id)).all()
        same = next((row for row in stored if row.sha256 == loaded.sha256), None)
        if same is not None and existing is not None:
            if existing.current_protocol_version_id != same.id:
                raise ProtocolVersionConflict(
                    f"protocol version {same.version} was superseded in this database; "
                    "an older protocol cannot become current again"
                )
            status: Literal["created", "upgraded", "unchanged"] = "upgraded" if schema_upgraded else "unchanged"
            if schema_upgraded:
                audit.record(session, actor=actor, action="schema.upgraded", old_value=before, new_value=revision)
            return InitResult(status, p.trial_id, p.version.number, revision, schema_upgraded)
        clash = next((row for row in stored if row.version == p.version.number), None)
        if clash is not None:
            raise ProtocolVersionConflict(
                f"the protocol file differs from stored version {p.version.number} of {p.trial_id} but has "
                "the same version number; a change to the protocol needs a new version (and an amendment)"
            )
        while_locked = False
        if existing is not None:
            current = next((row for row in stored if row.id == existing.current_protocol_version_id), None)
            in_force = _parsed(current.source_text, "<current>").protocol if current is not None else None
            while_locked = _refuse_while_locked(session, in_force, p)
        session.info.pop(_ADDITIONS_KEY, None)  # a new version: the visits amendments added are read anew
        version_id = inserted_id(
            session,
            protocol_versions.insert().values(
                trial_id=p.trial_id,
                version=p.version.number,
                version_date=p.version.date.isoformat(),
                sha256=loaded.sha256,
                source_text=loaded.source_text,
                loaded_at=now,
                loaded_by=actor,
            ),
        )
        if existing is None:
            session.execute(
                trial.insert().values(
                    trial_id=p.trial_id,
                    title=p.trial.titles.scientific,
                    created_at=now,
                    current_protocol_version_id=version_id,
                )
            )
            audit.record(session, actor=actor, action="trial.created", new_value={"trial_id": p.trial_id})
            old_version = None
        else:
            superseded = next((row for row in stored if row.id == existing.current_protocol_version_id), None)
            old_version = superseded.version if superseded is not None else None
            session.execute(trial.update().values(current_protocol_version_id=version_id))
            kit = kit_field(p)
            if superseded is None or kit_field(_parsed(superseded.source_text, "<superseded>").protocol) != kit:
                # The amendment names another form or code field for the kit check: its index is made anew from
                # the records, by the new rule (``store/administered.py``), with the data lock held alone: the saves
                # in flight (which hold it shared) commit first, and none starts until the rebuild has committed.
                from trialwright.services.lock import DATA_LOCK  # the lock service reads this module's callers

                serialise(session, DATA_LOCK)
                rebuild(session.connection(), kit)
        audit.record(
            session,
            actor=actor,
            action="protocol.loaded",
            old_value=old_version,
            new_value={"version": p.version.number, "sha256": loaded.sha256}
            | ({"while_locked": "deidentification only"} if while_locked else {}),
            reason=p.amendments[-1].reason if (old_version is not None and p.amendments) else None,
        )
        _sync_sites(session, loaded, actor)
        notes = () if existing is None else _undeclared_logs(session, p)
    status = "created" if existing is None else "upgraded"
    return InitResult(status, p.trial_id, p.version.number, revision, schema_upgraded, notes)


def _undeclared_logs(session: Session, protocol: Protocol) -> tuple[str, ...]:
    """The stored log entries of a log or field the new version no longer declares, listed (never dropped)."""
    rows = session.execute(select(log_entries.c.log_id, log_entries.c.entry_values))
    return tuple(u.describe() for u in undeclared(protocol, ((r.log_id, json.loads(r.entry_values)) for r in rows)))


def _sync_sites(session: Session, loaded: LoadedProtocol, actor: str) -> None:
    """Make the sites table match the protocol; every addition or change is audited."""
    stored = {row.code: row for row in session.execute(select(sites))}
    for site in loaded.protocol.sites:
        new = {"name": site.name, "timezone": site.timezone}
        row = stored.get(site.code)
        if row is None:
            session.execute(sites.insert().values(code=site.code, **new))
            audit.record(session, actor=actor, action="site.added", site=site.code, new_value=new)
        elif (row.name, row.timezone) != (site.name, site.timezone):
            old = {"name": row.name, "timezone": row.timezone}
            session.execute(sites.update().where(sites.c.code == site.code).values(**new))
            audit.record(session, actor=actor, action="site.changed", site=site.code, old_value=old, new_value=new)
    # A site the new protocol no longer lists is kept: participants and users may refer to it.


_NO_TRIAL = "this database holds no trial yet: run trialwright init --protocol FILE"


def current_protocol(engine: Engine) -> LoadedProtocol:
    """The protocol the trial currently runs under, parsed from the exact stored text.

    One small read per request (which version is current, by its SHA-256); the text is fetched and parsed once per
    version, since a stored version never changes."""
    # Only when the read fails is the schema looked at, for a clear message.
    try:
        with read_scope(engine) as session:
            return protocol_in(session)
    except (OperationalError, ProgrammingError):
        from trialwright.store.migrate import current_revision

        if current_revision(engine) is None:
            raise TrialNotInitialised(_NO_TRIAL) from None
        raise


#: The SHA-256 of the protocol version the trial runs under (NULL before ``init_trial``), as a scalar subquery: a
#: use case reads it in its own first statement, and ``protocol_by_sha`` then gives the protocol from memory.
CURRENT_SHA = (
    select(protocol_versions.c.sha256)
    .join(trial, trial.c.current_protocol_version_id == protocol_versions.c.id)
    .scalar_subquery()
)


def protocol_by_sha(session: Session, sha256: str | None) -> LoadedProtocol:
    """The stored protocol version with this SHA-256 (read from ``CURRENT_SHA`` in the caller's transaction),
    parsed once per version and then kept in memory; ``TrialNotInitialised`` for None."""
    if sha256 is None:
        raise TrialNotInitialised(_NO_TRIAL)
    loaded = _BY_SHA.get(sha256)
    if loaded is None:
        row = session.execute(
            select(protocol_versions.c.source_text, protocol_versions.c.trial_id).where(
                protocol_versions.c.sha256 == sha256
            )
        ).one()
        loaded = _parsed(row.source_text, f"<database: {row.trial_id}>")
        with _BY_SHA_LOCK:
            if len(_BY_SHA) >= 16:
                _BY_SHA.pop(next(iter(_BY_SHA)))
            _BY_SHA[sha256] = loaded
    return loaded


#: ``CURRENT_SHA`` as a statement of its own, compiled once (``Prepared``): every use case's transaction runs it.
_CURRENT_SHA_READ = Prepared(select(CURRENT_SHA.label("sha256")))


def protocol_in(session: Session) -> LoadedProtocol:
    """``current_protocol`` read in the caller's transaction (a request's one transaction): one small statement,
    the text fetched and parsed only for a version not seen before."""
    return protocol_by_sha(session, _CURRENT_SHA_READ.rows(session, {})[0]["sha256"])


#: ``visit_additions_in`` per sequence of stored versions (their SHA-256s, oldest first): versions never change.
_ADDITIONS: dict[tuple[str, ...], dict[str, VisitAddition]] = {}


def visit_additions_in(session: Session) -> dict[str, VisitAddition]:
    """Each visit an amendment added to the trial's protocol, and the day its version took effect
    (``domain.visits.visit_additions`` over the stored versions in the order the trial took them), in the caller's
    transaction: one small read of the versions' digests per transaction (kept in ``session.info``, so a batch of
    saves in one transaction reads them once and its deferred inserts are not flushed row by row), each version
    parsed once per process."""
    kept: dict[str, VisitAddition] | None = session.info.get(_ADDITIONS_KEY)
    if kept is not None:
        return kept
    shas = tuple(session.execute(select(protocol_versions.c.sha256).order_by(protocol_versions.c.id)).scalars())
    found = _additions_of(session, shas)
    session.info[_ADDITIONS_KEY] = found
    return found


#: Where ``visit_additions_in`` keeps its answer for the rest of the session's transaction.
_ADDITIONS_KEY = "trialwright.visit_additions"

#: How many protocol versions the trial holds, as a scalar subquery a use case's own first read can carry: with
#: fewer than two, no amendment has added a visit (``versions_counted``).
VERSION_COUNT = select(func.count()).select_from(protocol_versions).scalar_subquery()


def versions_counted(session: Session, count: int) -> None:
    """Tell ``visit_additions_in`` the number of stored versions read (``VERSION_COUNT``) in this transaction: with
    a single version it answers "none added" without a read of its own (a save's one look-ahead statement)."""
    if count < 2:
        session.info[_ADDITIONS_KEY] = {}


def _additions_of(session: Session, shas: tuple[str, ...]) -> dict[str, VisitAddition]:
    if len(shas) < 2:
        return {}
    found = _ADDITIONS.get(shas)
    if found is None:
        versions = []
        for sha in shas:
            version = protocol_by_sha(session, sha).protocol
            versions.append((version.version.number, took_effect(version), [v.id for v in version.visits]))
        found = visit_additions(versions)
        with _BY_SHA_LOCK:
            if len(_ADDITIONS) >= 16:
                _ADDITIONS.pop(next(iter(_ADDITIONS)))
            _ADDITIONS[shas] = found
    return found


@dataclass(frozen=True)
class ProtocolVersionView:
    """One protocol version the trial has run under (its text stays in the database, unchanged)."""

    version: str
    version_date: str
    sha256: str
    loaded_at: dt.datetime
    loaded_by: str
    current: bool


def protocol_history(engine: Engine) -> tuple[ProtocolVersionView, ...]:
    """Every protocol version the database holds, newest first, the one the trial runs under marked (a few rows:
    one per amendment). Versions hold no allocation."""
    with read_scope(engine) as session:
        current = session.execute(select(trial.c.current_protocol_version_id)).scalar()
        rows = session.execute(
            select(protocol_versions.c.id, protocol_versions.c.version, protocol_versions.c.version_date,
                   protocol_versions.c.sha256, protocol_versions.c.loaded_at, protocol_versions.c.loaded_by)
            .order_by(protocol_versions.c.id.desc())
        ).all()  # fmt: skip
    return tuple(
        ProtocolVersionView(r.version, r.version_date, r.sha256, r.loaded_at, r.loaded_by, r.id == current)
        for r in rows
    )


#: Parsed protocols by the SHA-256 of their stored text (a version's text never changes).
_BY_SHA: dict[str, LoadedProtocol] = {}
_BY_SHA_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _parsed(source_text: str, source: str) -> LoadedProtocol:
    # Parsing the YAML is the slow part of every request; the text is immutable once stored, and the
    # parsed protocol is frozen, so one parse per text serves every request.
    return load_protocol_text(source_text, source=source, stored=True)
