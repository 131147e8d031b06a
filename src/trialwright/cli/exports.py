"""``trialwright export``, ``trialwright import odm`` and ``trialwright access``: the trial in standard formats, an ODM
file into a fresh trial, and the register of data access requests with the de-identified IPD issued against
an approved one; through the same services as the pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from trialwright.cli.common import (
    DatabaseOption,
    ExitCode,
    JsonOption,
    console,
    emit,
    fail,
    fail_with,
    policy_for,
    read_engine_of,
    read_password,
)
from trialwright.cli.screening import AsOption, _context

__all__ = ["access_app", "export", "import_app"]

import_app = typer.Typer(help="Import data from a standard format into a fresh trial.", no_args_is_help=True)
access_app = typer.Typer(
    help="Publications, data access requests and the de-identified IPD package.", no_args_is_help=True
)


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)", ExitCode.USAGE)


def _sharing(function: Any, *args: Any, **kwargs: Any) -> Any:
    from trialwright.services.sharing import SharingError

    try:
        return function(*args, **kwargs)
    except SharingError as exc:
        fail_with(exc)


def export(
    fmt: Annotated[
        str,
        typer.Argument(
            metavar="FORMAT", help="csv, parquet, stata, spss, sas, codebook, sdtm, dataset-json, odm, fhir."
        ),
    ],
    user: AsOption,
    out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder to write into.")],
    with_arms: Annotated[
        bool, typer.Option("--with-arms", help="Include each participant's arm (an exporter the trial does not mask).")
    ] = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Export the trial in a standard format into a new folder; recorded in the audit trail."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from trialwright.services.exports import ExportError, export_source, run_export

    engine, actor = _context(user, database)
    read_engine = read_engine_of(engine, database)
    try:
        total = export_source(engine, actor, with_arms=with_arms, read_engine=read_engine).count()
        with Progress(
            TextColumn(f"exporting {fmt}"), BarColumn(), MofNCompleteColumn(), console=console, transient=True,
            disable=as_json,
        ) as bar:
            task = bar.add_task(fmt, total=total)
            result = run_export(
                engine,
                actor,
                fmt,
                out,
                with_arms=with_arms,
                progress=lambda done: bar.update(task, completed=min(done, total)),
                read_engine=read_engine,
            )
    except ExportError as exc:
        fail_with(exc)
    if emit(result, as_json):
        return
    console.print(
        f"{fmt}: {len(result.files)} files in {result.folder}"
        f"{' (with arms)' if result.with_arms else ''}; recorded in the audit trail",
        highlight=False,
    )
    for name in sorted(result.sha256):
        console.print(f"  {name}  sha256 {result.sha256[name][:16]}", highlight=False, markup=False)


@import_app.command("odm")
def import_odm(
    path: Annotated[Path, typer.Argument(help="An ODM 1.3.2 file written by trialwright export odm.")],
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Import an ODM file into a fresh trial of the same protocol (all or nothing).

    Prints a plain summary: what was restored, whether exporting the imported trial gives the file back byte for
    byte, and what an ODM file cannot restore (arms and the audit entries about them; the actions of values' and
    queries' earlier records, and of the latest records in a file written before the export named them). Exits
    with status 1 when the re-export is not byte-identical (the data stays imported; the summary names the first
    line that differs)."""
    from trialwright.services.odm_import import OdmImportError
    from trialwright.services.odm_import import import_odm as run_import

    engine, actor = _context(user, database)
    try:
        report = run_import(engine, actor, path)
    except OdmImportError as exc:
        fail_with(exc)
    if not emit(report, as_json):
        console.print(report.summary(), highlight=False, markup=False)
    if not report.byte_identical:
        raise typer.Exit(ExitCode.REFUSED)


@access_app.command("publication")
def publication(
    user: AsOption,
    citation: Annotated[str, typer.Option("--citation", help="The full citation of the results' publication.")],
    published_on: Annotated[str, typer.Option("--published-on", help="Publication date, YYYY-MM-DD.")],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Record a publication of the results (the access window opens after the sharing plan's delay)."""
    from trialwright.services.sharing import record_publication

    engine, actor = _context(user, database)
    opens = _sharing(record_publication, engine, actor, citation, _date(published_on, "--published-on"))
    if emit({"access_window_opens": opens}, as_json):
        return
    console.print(f"Recorded; the access window opens on {opens}.", highlight=False)


@access_app.command("request")
def request(
    user: AsOption,
    requester: Annotated[str, typer.Option("--requester", help="Who asks.")],
    organisation: Annotated[str, typer.Option("--organisation", help="Their organisation.")],
    email: Annotated[str, typer.Option("--email", help="Their e-mail address.")],
    purpose: Annotated[str, typer.Option("--purpose", help="What the data are for.")],
    reasons: Annotated[str, typer.Option("--reasons", help="The written reasons for needing the data.")],
    received_on: Annotated[str, typer.Option("--received-on", help="When the written request came, YYYY-MM-DD.")],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Register a written data access request."""
    from trialwright.services.sharing import record_request

    engine, actor = _context(user, database)
    r = _sharing(
        record_request,
        engine,
        actor,
        requester=requester,
        organisation=organisation,
        email=email,
        purpose=purpose,
        reasons=reasons,
        received_on=_date(received_on, "--received-on"),
    )
    if emit(r, as_json):
        return
    console.print(f"{r.number}: {r.requester} ({r.organisation}), {r.status}", highlight=False)


@access_app.command("list")
def list_(user: AsOption, as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """The register of data access requests."""
    from rich.table import Table

    from trialwright.services.sharing import access_window_opens, list_requests

    engine, actor = _context(user, database)
    rows = _sharing(list_requests, engine, actor)
    opens = access_window_opens(engine)
    if emit({"requests": rows, "access_window_opens": opens}, as_json):
        return
    table = Table("request", "requester", "received", "status", "decided by", "reason", "issued")
    for r in rows:
        table.add_row(
            r.number,
            f"{r.requester} ({r.organisation})",
            str(r.received_on),
            r.status,
            r.decided_by or "",
            r.decision_reason or "",
            f"{r.issued_at:%Y-%m-%d}" if r.issued_at else "",
        )
    console.print(table)
    console.print(f"Access window: {'opens on ' + str(opens) if opens else 'no publication recorded yet'}")


@access_app.command("decide")
def decide(
    number: Annotated[str, typer.Argument(help="The request, e.g. DAR-0001.")],
    user: AsOption,
    approve: Annotated[bool, typer.Option("--approve/--reject", help="Approve or reject.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Approve or reject a request, signed with your password: asked, or read from the TRIALWRIGHT_PASSWORD
    variable or (with --password-stdin) standard input."""
    from trialwright.services.sharing import decide_request, may_decide_requests

    engine, actor = _context(user, database, may_decide_requests)
    password = read_password(password_stdin=password_stdin)
    r = _sharing(
        decide_request, engine, actor, number, approve=approve, reason=reason, password=password,
        policy=policy_for(database),
    )  # fmt: skip
    if emit(r, as_json):
        return
    console.print(f"{r.number}: {r.status} by {r.decided_by}", highlight=False)


@access_app.command("check")
def check(user: AsOption, as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """The k-anonymity check of the IPD as it would be issued now (no data written)."""
    from trialwright.services.sharing import check_kanonymity

    engine, actor = _context(user, database)
    result = _sharing(check_kanonymity, engine, actor)
    if not emit(result, as_json):
        console.print(result.summary(), highlight=False, markup=False)
    if not result.passes:
        raise typer.Exit(ExitCode.REFUSED)


@access_app.command("issue")
def issue(
    number: Annotated[str, typer.Argument(help="The approved request, e.g. DAR-0001.")],
    user: AsOption,
    out: Annotated[Path, typer.Option("--out", help="A new folder for the package.")],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Write the de-identified IPD package for an approved request (the unblinded statistician)."""
    from trialwright.services.sharing import issue_ipd

    engine, actor = _context(user, database)
    r = _sharing(issue_ipd, engine, actor, number, out)
    if emit(r, as_json):
        return
    console.print(f"{r.number}: issued to {r.requester} in {out} ({len(r.package or {})} files)", highlight=False)
