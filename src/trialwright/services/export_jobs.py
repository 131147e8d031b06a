"""Export jobs: an export asked for now and written in the background, its file kept for download.

The REST API's exports (``POST /api/v1/exports``) are jobs over the one export service: ``request_export`` checks
the request exactly as ``run_export`` will (the role, arms only for a user the trial lets see them, a known
format) and records the job, ``queued``, with its audit entry; ``run_job`` (in the background, in the worker that
took the request) marks it ``running``, calls ``trialwright.services.exports.run_export`` (which writes, audits
``export.written`` and refuses as it does for the CLI and the page), keeps the result as one zip of its folder
(laid out as the exports page's zip: every format writes several files) and marks it ``done``, or
``failed`` with the rule that refused it. Each state change is its own transaction, so every worker sees it.

Dead workers: from the moment the worker that took the request queues a job (``keep_alive``) until the job ends,
that worker renews ``heartbeat_at`` every ``HEARTBEAT`` seconds, so a job waiting behind others in a busy worker
is not mistaken for an abandoned one; a job queued or running whose heartbeat is older than ``STALE_AFTER`` is
failed ("worker: ...") the next time anyone reads it. A job queued for longer than ``QUEUE_LIMIT`` without starting
stops being kept alive, and is failed as stale ``STALE_AFTER`` later.

Files: in ``job_folder(settings)`` (the setting ``export_dir``; by default beside a SQLite file, or under
``$XDG_DATA_HOME/trialwright/exports`` for PostgreSQL), one folder per job, readable by its owner only. A job and
its file are deleted by ``delete_job`` (its requester), and by ``expire_jobs`` once the job ended more than
``export_retention_hours`` ago (run whenever a job is asked for or listed). Every step is audited.

Who: the requester only, in the role they asked in (the file is what that role may see); nobody else learns the
job exists (``JobNotFound``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Row, and_, delete, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.services import audit, clock
from trialwright.services.exports import ExportError, check_format, export_source, run_export, zip_folder
from trialwright.services.paging import keyset_page
from trialwright.services.users import UserView
from trialwright.settings import Settings
from trialwright.store.audit_keys import default_key_file
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.export_tables import export_jobs
from trialwright.store.files import file_sha256

__all__ = [
    "HEARTBEAT",
    "MEDIA_TYPE",
    "QUEUE_LIMIT",
    "STALE_AFTER",
    "Download",
    "ExportJob",
    "JobNotFound",
    "JobNotReady",
    "delete_job",
    "download",
    "expire_jobs",
    "get_job",
    "job_folder",
    "keep_alive",
    "page_jobs",
    "request_export",
    "run_job",
]

log = logging.getLogger(__name__)

#: How often a running job's worker renews its heartbeat.
HEARTBEAT = dt.timedelta(seconds=30)
#: A queued or running job with no heartbeat for this long is failed: its worker stopped.
STALE_AFTER = dt.timedelta(minutes=5)
#: A job still queued after this long is no longer kept alive by its worker (it would wait forever otherwise).
QUEUE_LIMIT = dt.timedelta(hours=1)

#: Every format writes several files (its README, schemas, define.xml, ...): a job keeps them as one zip.
MEDIA_TYPE = "application/zip"


class JobNotFound(LookupError):
    """No such job for this user (another user's job is not found either)."""


class JobNotReady(ValueError):
    """A job whose file is not there to download (queued, running or failed); the message says which."""


@dataclass(frozen=True)
class ExportJob:
    """One export job as its requester sees it."""

    id: str
    format: str
    with_arms: bool
    state: str  # queued, running, done, failed
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    expires_at: dt.datetime | None  # when the file and the job are deleted (a job that ended)
    file_name: str | None
    media_type: str | None
    size: int | None
    sha256: str | None
    error: str | None


@dataclass(frozen=True)
class Download:
    """A done job's file, to send."""

    path: Path
    file_name: str
    media_type: str


def job_folder(settings: Settings) -> Path:
    """The folder export jobs write into (``export_dir``, else beside the database: see the module docstring)."""
    if settings.export_dir is not None:
        return settings.export_dir
    key = default_key_file(settings.database_url)
    if key is None:
        raise ExportError("export_dir: an in-memory database has no folder beside it; set TRIALWRIGHT_EXPORT_DIR")
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        return key.with_suffix(".exports")
    return key.parent.parent / "exports" / key.stem


def _view(row: Any, retention: dt.timedelta) -> ExportJob:
    return ExportJob(
        id=row.job_id,
        format=row.format,
        with_arms=row.with_arms,
        state=row.state,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expires_at=row.finished_at + retention if row.finished_at is not None else None,
        file_name=row.file_name,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        error=row.error,
    )


def _stale(now: dt.datetime) -> Any:
    return and_(export_jobs.c.state.in_(["queued", "running"]), export_jobs.c.heartbeat_at < now - STALE_AFTER)


def _fail_stale(engine: Engine) -> None:
    """Fail every job whose worker stopped renewing its heartbeat (one transaction, audited per job)."""
    now = clock.now()
    with read_scope(engine) as session:  # the common case, nothing stale, takes no write lock
        if session.execute(select(export_jobs.c.seq).where(_stale(now)).limit(1)).first() is None:
            return
    with session_scope(engine) as session:
        rows = session.execute(select(export_jobs).where(_stale(now)).with_for_update()).all()
        for r in rows:
            since = f"{r.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
            if r.state == "running":
                rule = f"worker: the process running this export stopped (no heartbeat since {since})"
            else:  # queued: its worker stopped before starting it, or it waited past QUEUE_LIMIT
                rule = (
                    f"worker: the export was never started (its worker stopped or was busy; no heartbeat since {since})"
                )
            session.execute(
                update(export_jobs)
                .where(export_jobs.c.seq == r.seq)
                .values(state="failed", finished_at=now, error=rule)
            )
            audit.record(  # the system failed it, whoever's read found it stale; the job names its requester
                session, actor="system", action="export.failed",
                new_value={"job": r.job_id, "format": r.format, "error": rule, "requested_by": r.created_by},
            )  # fmt: skip


def expire_jobs(engine: Engine, folder: Path, retention: dt.timedelta) -> list[str]:
    """Delete the jobs (and files) that ended more than ``retention`` ago; their ids."""
    _fail_stale(engine)
    now = clock.now()
    ended = and_(export_jobs.c.finished_at.is_not(None), export_jobs.c.finished_at < now - retention)
    with read_scope(engine) as session:
        if session.execute(select(export_jobs.c.seq).where(ended).limit(1)).first() is None:
            return []
    with session_scope(engine) as session:
        rows = session.execute(select(export_jobs.c.seq, export_jobs.c.job_id).where(ended).with_for_update()).all()
        if not rows:
            return []
        ids = [r.job_id for r in rows]
        session.execute(delete(export_jobs).where(export_jobs.c.seq.in_([r.seq for r in rows])))
        audit.record(
            session, actor="system", action="export.expired",
            new_value={"jobs": ids, "retention_hours": retention.total_seconds() / 3600},
        )  # fmt: skip
    for job_id in ids:
        shutil.rmtree(folder / job_id, ignore_errors=True)
    return ids


def request_export(engine: Engine, actor: UserView, fmt: str, *, with_arms: bool, retention: dt.timedelta) -> ExportJob:
    """A new job, ``queued``: refused now (``ExportError``) if ``run_export`` would refuse who asks or what."""
    check_format(fmt)
    export_source(engine, actor, with_arms=with_arms)  # who may, and arms only for whom the trial lets see them
    now = clock.now()
    job_id = secrets.token_hex(16)
    with session_scope(engine) as session:
        session.execute(
            export_jobs.insert().values(
                job_id=job_id, format=fmt, with_arms=with_arms, state="queued", created_by=actor.username,
                role=actor.role.value, created_at=now, heartbeat_at=now,
            )
        )  # fmt: skip
        audit.record(
            session, actor=actor.username, role=actor.role.value, action="export.requested",
            new_value={"job": job_id, "format": fmt, "with_arms": with_arms},
        )  # fmt: skip
        row = session.execute(select(export_jobs).where(export_jobs.c.job_id == job_id)).one()
    return _view(row, retention)


def _mine(actor: UserView) -> Any:
    return and_(export_jobs.c.created_by == actor.username, export_jobs.c.role == actor.role.value)


def _row(session: Session, actor: UserView, job_id: str) -> Row[Any]:
    row = session.execute(select(export_jobs).where(export_jobs.c.job_id == job_id, _mine(actor))).first()
    if row is None:
        raise JobNotFound(job_id)
    return row


def get_job(engine: Engine, actor: UserView, job_id: str, *, retention: dt.timedelta) -> ExportJob:
    """The actor's job (``JobNotFound`` for anyone else's, or none)."""
    _fail_stale(engine)
    with read_scope(engine) as session:
        return _view(_row(session, actor, job_id), retention)


def page_jobs(
    engine: Engine, actor: UserView, *, retention: dt.timedelta, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[ExportJob]:
    """A page of the actor's jobs (asked for in their current role), newest first."""
    _fail_stale(engine)
    query = select(export_jobs).where(_mine(actor))

    def convert(_: Session, rows: Sequence[Row[Any]]) -> list[ExportJob]:
        return [_view(r, retention) for r in rows]

    with read_scope(engine) as session:
        return keyset_page(session, query, [export_jobs.c.seq], convert, limit=limit, cursor=cursor)


def download(engine: Engine, actor: UserView, job_id: str, folder: Path) -> Download:
    """The done job's file, for its requester; the download audited."""
    _fail_stale(engine)
    with session_scope(engine) as session:
        row = _row(session, actor, job_id)
        if row.state != "done":
            why = f": {row.error}" if row.state == "failed" else ""
            raise JobNotReady(f"state: the export is {row.state}{why}; only a done export is downloaded")
        path = folder / row.job_id / row.file_name
        if not path.is_file():
            raise JobNotReady(f"file: {row.file_name} is no longer in the export folder")
        audit.record(
            session, actor=actor.username, role=actor.role.value, action="export.downloaded",
            new_value={"job": row.job_id, "format": row.format, "file": row.file_name, "sha256": row.sha256},
        )  # fmt: skip
    return Download(path, row.file_name, row.media_type or "application/octet-stream")


def delete_job(engine: Engine, actor: UserView, job_id: str, folder: Path) -> None:
    """Delete the actor's job and its file (a job still running is refused: ``JobNotReady``); audited."""
    with session_scope(engine) as session:
        row = _row(session, actor, job_id)
        if row.state in {"queued", "running"} and not row.heartbeat_at < clock.now() - STALE_AFTER:
            raise JobNotReady(f"state: the export is {row.state}; delete it once it is done or failed")
        session.execute(delete(export_jobs).where(export_jobs.c.seq == row.seq))
        audit.record(
            session, actor=actor.username, role=actor.role.value, action="export.deleted",
            new_value={"job": row.job_id, "format": row.format, "state": row.state},
        )  # fmt: skip
    shutil.rmtree(folder / job_id, ignore_errors=True)


def _running(job_id: str) -> Any:
    """The job while its worker still holds it (not failed meanwhile as stale)."""
    return and_(export_jobs.c.job_id == job_id, export_jobs.c.state == "running")


def _live(job_id: str) -> Any:
    """The job while it waits or is written (not ended, nor failed as stale, nor deleted)."""
    return and_(export_jobs.c.job_id == job_id, export_jobs.c.state.in_(["queued", "running"]))


def keep_alive(engine: Engine, job_id: str, *, queue_limit: bool = True) -> threading.Event:
    """Renew the job's heartbeat every ``HEARTBEAT`` from a thread of this worker, from now until the job ends (or
    is failed or deleted meanwhile) or the returned event is set; with ``queue_limit``, also once it has waited
    ``QUEUE_LIMIT`` without starting (a job this worker is writing is kept alive by ``run_job``'s own beat, which
    has no limit). The worker that queues a job calls it, so that its wait behind others is not taken for a dead
    worker."""
    stop = threading.Event()
    given_up_at = time.monotonic() + (QUEUE_LIMIT.total_seconds() if queue_limit else float("inf"))

    def beat() -> None:
        while not stop.wait(HEARTBEAT.total_seconds()):
            try:
                with session_scope(engine) as session:
                    waiting = time.monotonic() > given_up_at
                    alive = _running(job_id) if waiting else _live(job_id)
                    renewed: Any = session.execute(update(export_jobs).where(alive).values(heartbeat_at=clock.now()))
                if not renewed.rowcount:
                    return  # ended, failed, deleted, or queued past QUEUE_LIMIT: nothing more to keep alive
            except Exception:  # a missed beat is retried; STALE_AFTER allows ten of them
                log.exception("export job %s: heartbeat not recorded", job_id)
                if time.monotonic() > given_up_at:
                    return

    threading.Thread(target=beat, name=f"export-{job_id}", daemon=True).start()
    return stop


@contextlib.contextmanager
def _heartbeat(engine: Engine, job_id: str) -> Iterator[None]:
    """Renew the job's heartbeat while the block runs (a thread of this worker)."""
    stop = keep_alive(engine, job_id, queue_limit=False)
    try:
        yield
    finally:
        stop.set()


def _keep(out: Path, job_dir: Path) -> Path:
    """The file to download: a zip of the export's folder, laid out as the exports page's zip."""
    target = job_dir / f"{out.name}.zip"
    with target.open("wb") as f:
        zip_folder(out, f)
    target.chmod(0o600)
    shutil.rmtree(out, ignore_errors=True)
    return target


def run_job(
    engine: Engine,
    actor: UserView,
    job_id: str,
    folder: Path,
    *,
    read_engine: Engine | None = None,
    kept_alive: threading.Event | None = None,
) -> None:
    """Write the job (in the background): ``running``, then ``done`` or ``failed``; never raises. ``kept_alive`` is
    the event ``keep_alive`` gave when the job was queued: set when the job ends, so its thread stops then."""
    try:
        _run_job(engine, actor, job_id, folder, read_engine=read_engine)
    finally:
        if kept_alive is not None:
            kept_alive.set()


def _run_job(engine: Engine, actor: UserView, job_id: str, folder: Path, *, read_engine: Engine | None) -> None:
    now = clock.now()
    with session_scope(engine) as session:
        claiming: Any = session.execute(
            update(export_jobs)
            .where(export_jobs.c.job_id == job_id, export_jobs.c.state == "queued")
            .values(state="running", started_at=now, heartbeat_at=now)
        )
        claimed = claiming.rowcount
        fmt, with_arms = session.execute(
            select(export_jobs.c.format, export_jobs.c.with_arms).where(export_jobs.c.job_id == job_id)
        ).one()
    if not claimed:
        return  # already taken (or failed as stale): never written twice
    job_dir = folder / job_id
    try:
        with _heartbeat(engine, job_id):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            job_dir.mkdir(mode=0o700)
            out = job_dir / f"{fmt}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
            run_export(engine, actor, fmt, out, with_arms=with_arms, read_engine=read_engine)
            kept = _keep(out, job_dir)
        size, sha256 = kept.stat().st_size, file_sha256(kept)
        with session_scope(engine) as session:
            done: Any = session.execute(
                update(export_jobs).where(_running(job_id)).values(
                    state="done", finished_at=clock.now(), file_name=kept.name, media_type=MEDIA_TYPE,
                    size=size, sha256=sha256,
                )
            )  # fmt: skip
            if done.rowcount:
                audit.record(
                    session, actor=actor.username, role=actor.role.value, action="export.done",
                    new_value={"job": job_id, "format": fmt, "file": kept.name, "sha256": sha256},
                )  # fmt: skip
            else:  # failed as stale (or deleted) while it was written: the file is not kept for anyone
                audit.record(
                    session, actor="system", action="export.discarded",
                    new_value={"job": job_id, "format": fmt, "reason": "the job had ended before its file was ready"},
                )  # fmt: skip
        if not done.rowcount:
            shutil.rmtree(job_dir, ignore_errors=True)
    except Exception as exc:
        shutil.rmtree(job_dir, ignore_errors=True)
        if isinstance(exc, ExportError):
            error = str(exc)  # the rule, as the CLI and the page say it (never an arm)
        else:
            log.exception("export job %s failed", job_id)
            error = f"export: the export stopped on an unexpected error ({type(exc).__name__}); see the server log"
        with session_scope(engine) as session:
            failed: Any = session.execute(
                update(export_jobs).where(_running(job_id)).values(state="failed", finished_at=clock.now(), error=error)
            )
            if failed.rowcount:  # a job already failed as stale has its entry
                audit.record(
                    session, actor=actor.username, role=actor.role.value, action="export.failed",
                    new_value={"job": job_id, "format": fmt, "error": error},
                )  # fmt: skip
