"""REST endpoints for exports: an export is a job, asked for, written in the background, then downloaded.

Thin over ``trialwright.services.export_jobs``, which runs the one export service (``services.exports.run_export``,
as ``trialwright export`` and the exports page do): the same roles (the data manager and the statisticians), the
same formats, arms only for a user the trial lets see them (``with_arms``), the same masking, the same
``export.written`` audit entry. ``POST /api/v1/exports`` answers 202 with the job and its ``Location``; the job is
``queued``, ``running``, then ``done`` (download it) or ``failed`` (``error`` says the rule). A job is its
requester's only: anyone else's is 404. Refusals answer as the other endpoints do (403 role, 404, 409 state,
422 field and rule). See docs/api.md, "Exports and analysis".
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from trialwright.api.paging import CursorParam, LimitParam, PageOut, cursor_checked, page_out
from trialwright.domain.paging import DEFAULT_LIMIT
from trialwright.exports.registry import FORMATS
from trialwright.services import export_jobs as jobs
from trialwright.services.errors import AccessDenied
from trialwright.services.exports import EXPORTERS, ExportError
from trialwright.services.users import UserView
from trialwright.settings import Settings
from trialwright.web.deps import EngineDep, ReadEngineDep, SettingsDep, require_api_roles

__all__ = ["ExportFormat", "ExportIn", "ExportJobOut", "router"]

router = APIRouter(prefix="/api/v1", tags=["exports"])
Exporter = Annotated[UserView, Depends(require_api_roles(*EXPORTERS))]
JobId = Annotated[str, Path(min_length=1, max_length=64, description="The job's id, as POST answered it.")]

#: Every format of ``trialwright export`` (the IPD is issued only against an approved data access request).
ExportFormat = StrEnum("ExportFormat", {name: name for name in sorted(FORMATS)})  # type: ignore[misc]


class ExportIn(BaseModel):
    """An export to make: the format, and whether to include each participant's arm."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat = Field(
        description="; ".join(f"{name}: {FORMATS[name].description}" for name in sorted(FORMATS))
    )
    with_arms: bool = Field(
        default=False,
        description="Include each participant's arm: only for an exporter the trial's masking lets see the arms "
        "(in a double-blind trial the unblinded statistician); anyone else is refused (403).",
    )


class ExportJobOut(BaseModel):
    """An export job as its requester sees it."""

    id: str
    format: str
    with_arms: bool
    state: str = Field(description="queued, running, done or failed.")
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    expires_at: dt.datetime | None = Field(description="When the file and the job are deleted (retention).")
    file_name: str | None = Field(description="The file to download: a zip of the files the format wrote.")
    media_type: str | None
    size: int | None = Field(description="The file's size in bytes.")
    sha256: str | None = Field(description="The file's SHA-256.")
    error: str | None = Field(description="Why a failed job failed: the field and the rule.")


def _out(job: jobs.ExportJob) -> ExportJobOut:
    return ExportJobOut(**job.__dict__)


def _retention(settings: Settings) -> dt.timedelta:
    return dt.timedelta(hours=settings.export_retention_hours)


def _folder(settings: Settings) -> FilePath:
    try:
        return jobs.job_folder(settings)
    except ExportError as exc:
        raise HTTPException(status_code=409, detail=[{"field": "export_dir", "rule": str(exc)}]) from None


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail="no such export job")


@router.post("/exports", response_model=ExportJobOut, status_code=202)
def request_export(
    body: ExportIn,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    user: Exporter,
    engine: EngineDep,
    read_engine: ReadEngineDep,
    settings: SettingsDep,
) -> ExportJobOut:
    """Ask for an export: checked now as the export will be (role, format, arms), then written in the background.
    Answers 202 with the job (``queued``) and its URL in ``Location``; poll it until ``done`` or ``failed``."""
    folder = _folder(settings)
    jobs.expire_jobs(engine, folder, _retention(settings))
    try:
        job = jobs.request_export(
            engine, user, body.format.value, with_arms=body.with_arms, retention=_retention(settings)
        )
    except ExportError as exc:
        status = 403 if isinstance(exc, AccessDenied) else 422
        field, _, rule = str(exc).partition(": ")
        raise HTTPException(status_code=status, detail=[{"field": field, "rule": rule}]) from None
    held = jobs.keep_alive(engine, job.id)  # this worker holds the job from now: waiting behind others is not stale
    background.add_task(jobs.run_job, engine, user, job.id, folder, read_engine=read_engine, kept_alive=held)
    response.headers["Location"] = str(request.url_for("get_export_job", job_id=job.id).path)
    return _out(job)


@router.get("/exports", response_model=PageOut[ExportJobOut])
def list_export_jobs(
    request: Request,
    response: Response,
    user: Exporter,
    engine: EngineDep,
    settings: SettingsDep,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> PageOut[ExportJobOut]:
    """A page of the caller's export jobs (asked for in their current role), newest first."""
    jobs.expire_jobs(engine, _folder(settings), _retention(settings))
    with cursor_checked():
        found = jobs.page_jobs(engine, user, retention=_retention(settings), limit=limit, cursor=cursor)
    return page_out(request, response, found, _out)


@router.get("/exports/{job_id}", response_model=ExportJobOut)
def get_export_job(job_id: JobId, user: Exporter, engine: EngineDep, settings: SettingsDep) -> ExportJobOut:
    """One of the caller's export jobs (404 for anyone else's)."""
    try:
        return _out(jobs.get_job(engine, user, job_id, retention=_retention(settings)))
    except jobs.JobNotFound:
        raise _not_found() from None


@router.get(
    "/exports/{job_id}/download",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The export's zip, as an attachment.",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def download_export(job_id: JobId, user: Exporter, engine: EngineDep, settings: SettingsDep) -> FileResponse:
    """The file of one of the caller's done export jobs (409 while it is not done; 404 for anyone else's);
    the download is audited."""
    try:
        found = jobs.download(engine, user, job_id, _folder(settings))
    except jobs.JobNotFound:
        raise _not_found() from None
    except jobs.JobNotReady as exc:
        field, _, rule = str(exc).partition(": ")
        raise HTTPException(status_code=409, detail=[{"field": field, "rule": rule}]) from None
    return FileResponse(found.path, media_type=found.media_type, filename=found.file_name)


@router.delete("/exports/{job_id}", status_code=204)
def delete_export(job_id: JobId, user: Exporter, engine: EngineDep, settings: SettingsDep) -> Response:
    """Delete one of the caller's export jobs and its file now (409 while it runs); audited."""
    try:
        jobs.delete_job(engine, user, job_id, _folder(settings))
    except jobs.JobNotFound:
        raise _not_found() from None
    except jobs.JobNotReady as exc:
        field, _, rule = str(exc).partition(": ")
        raise HTTPException(status_code=409, detail=[{"field": field, "rule": rule}]) from None
    return Response(status_code=204)
