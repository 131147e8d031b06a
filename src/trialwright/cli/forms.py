"""``trialwright form`` and ``trialwright audit``: data entry and the audit trail from the command line, through the
same services as the pages and the API (the database lock is ``trialwright.cli.lock``)."""

from __future__ import annotations

import json
import sys
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
    trial_engine,
)
from trialwright.cli.screening import AsOption, _context

__all__ = ["audit_app", "form_app"]

form_app = typer.Typer(help="Enter, show and import case report form data.", no_args_is_help=True)
audit_app = typer.Typer(help="Verify and read the audit trail.", no_args_is_help=True)


def _read(source: str, option: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        return json.loads(text)
    except FileNotFoundError:
        fail(f"{option}: {source}: no such file", ExitCode.NOT_FOUND)
    except json.JSONDecodeError as exc:
        fail(f"{option}: not valid JSON ({exc.msg} at line {exc.lineno})", ExitCode.USAGE)


def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    from trialwright.domain.forms import FormValueError
    from trialwright.services.forms import FormError
    from trialwright.services.screening import NotFound

    try:
        return function(*args, **kwargs)
    except FormValueError as exc:
        fail_with(exc, "\n  ".join(["the values were refused, nothing was saved:", *exc.problems]))
    except (FormError, NotFound) as exc:
        fail_with(exc)


def _print_form(view: Any, engine: Any) -> None:
    """The form's values with their units: the canonical unit each value is stored in, and what was typed when
    it was entered in another unit (``37 mmol/L (entered 666.7 mg/dL)``)."""
    from trialwright.services.trial import current_protocol

    form = current_protocol(engine).protocol.form(view.form_id)
    units = {f.id: f.unit for f in form.fields}
    console.print(
        f"{view.participant_id} {view.visit_id} {view.form_id}: [bold]{view.state.value}[/], version {view.version}",
        highlight=False,
    )
    for name, value in view.values.items():
        shown, unit = value.shown(), units.get(name)
        if unit and value.status not in {"not_done", "not_applicable"} and shown:
            shown = f"{shown} {unit}"
            if value.unit and value.unit != unit and value.entered is not None:
                shown += f" (entered {value.entered} {value.unit})"
        extra = f" ({value.reason})" if value.reason else ""
        console.print(f"  {name}: {shown}{extra}", highlight=False)
    if view.missing:
        console.print(f"  still missing: {', '.join(view.missing)}", highlight=False)
    if view.open_queries:
        console.print(f"  open queries: {view.open_queries}", highlight=False)


@form_app.command("save")
def save(
    participant_id: Annotated[str, typer.Argument(help="Participant id, e.g. RAZ-001.")],
    visit_id: Annotated[str, typer.Argument(help="Visit id from the protocol, e.g. day7.")],
    form_id: Annotated[str, typer.Argument(help="Form id from the protocol, e.g. labs.")],
    data: Annotated[str, typer.Option("--data", help="JSON file of field values ('-' for standard input).")],
    user: AsOption,
    reason: Annotated[str | None, typer.Option("--reason", help="Reason for change (once complete).")] = None,
    visit_date: Annotated[str | None, typer.Option("--visit-date", help="The visit's date, YYYY-MM-DD.")] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Enter or change values on one form (same rules as the page and the API)."""
    import datetime as dt

    from trialwright.services.forms import save_form

    values = _read(data, "--data")
    if not isinstance(values, dict):
        fail("--data: must be a JSON object of field values", ExitCode.USAGE)
    try:
        day = dt.date.fromisoformat(visit_date) if visit_date else None
    except ValueError:
        fail("--visit-date: must be a date written YYYY-MM-DD", ExitCode.USAGE)
    engine, actor = _context(user, database)
    view = _run(save_form, engine, actor, participant_id, visit_id, form_id, values, reason=reason, visit_date=day)
    if not emit(view, as_json):
        _print_form(view, engine)


@form_app.command("show")
def show(
    participant_id: Annotated[str, typer.Argument(help="Participant id.")],
    visit_id: Annotated[str, typer.Argument(help="Visit id.")],
    form_id: Annotated[str, typer.Argument(help="Form id.")],
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Show one form's values and state."""
    from trialwright.services.forms import get_form

    engine, actor = _context(user, database)
    view = _run(get_form, engine, actor, participant_id, visit_id, form_id)
    if view is None:
        fail(f"{form_id} at {visit_id} has no data yet", ExitCode.NOT_FOUND)
    if not emit(view, as_json):
        _print_form(view, engine)


@form_app.command("import")
def import_forms(
    data: Annotated[str, typer.Option("--data", help="JSON list of rows {participant, visit, form, values}.")],
    user: AsOption,
    partial: Annotated[
        bool,
        typer.Option("--partial", help="Save the good rows even if some are refused (exit code 1 says some were)."),
    ] = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Import many forms at once; by default one refused row saves nothing."""
    from trialwright.services.forms import import_forms as do_import

    rows = _read(data, "--data")
    if not isinstance(rows, list):
        fail("--data: must be a JSON list of rows", ExitCode.USAGE)
    engine, actor = _context(user, database)
    report = _run(do_import, engine, actor, rows, all_or_nothing=not partial)
    if emit(report, as_json):
        raise typer.Exit(ExitCode.REFUSED if report.rejected else ExitCode.OK)
    for index, problems in report.rejected:
        for problem in problems:
            console.print(f"{data}: row {index}: {problem}", highlight=False, soft_wrap=True)
    console.print(f"{report.saved} saved, {len(report.rejected)} refused.", highlight=False)
    if report.rejected and not partial and len(rows) > len(report.rejected):
        good = len(rows) - len(report.rejected)
        console.print(
            f"The other {good} row{'s are' if good > 1 else ' is'} good but not saved: an import saves all its rows or "
            "none (--partial saves the good ones).",
            highlight=False,
        )
    if report.rejected:
        raise typer.Exit(ExitCode.REFUSED)


def _audit_engine(database: str | None) -> Any:
    return trial_engine(database, check_audit_key=False)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _print_anchor(anchor: Any) -> None:
    signed = f" mac {anchor.mac}" if anchor.mac else " (unsigned: no audit key)"
    console.print(
        f"Anchor: entry {anchor.seq} hash {anchor.hash} at {anchor.at.isoformat(timespec='seconds')}"
        f"{'' if anchor.keyed_from is None else f' keyed from {anchor.keyed_from}'}{signed}",
        highlight=False,
        soft_wrap=True,
    )


@audit_app.command("verify")
def verify(
    database: DatabaseOption = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress bars (over the entries, then the replay).")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Check the audit trail against its key and anchors and the allocation list against its digests; name the
    first entry altered, removed, inserted, unsigned, forged or cut off. Then replay the trail and compare it with
    the data tables (form values and states, visits, randomizations, allocation lists, log entries): name the first
    values that differ, rows the trail says exist but are gone, and rows no entry explains. The outcome is recorded for
    the audit page, with a verification checkpoint at the head when the chain is intact. On success, anchor the
    head."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from trialwright.services import audit
    from trialwright.services.audit_checkpoints import record_full_verify
    from trialwright.services.audit_keys import write_anchor
    from trialwright.services.replay import replay

    engine = _audit_engine(database)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not progress or as_json) as bar:
        chain_task = bar.add_task("Verifying the chain", total=audit.count(engine))
        report = audit.verify(engine, progress=lambda n: bar.advance(chain_task, n))
        replay_task = bar.add_task("Replaying the trail", total=None)
        replayed = replay(engine, limit=10, progress=lambda n: bar.advance(replay_task, n))
        done = next(t.completed for t in bar.tasks if t.id == replay_task)
        bar.update(replay_task, total=done)
    record_full_verify(engine, report, replayed, by=f"cli:{_os_user()}")
    if as_json:
        # Anchor only a trail whose data tables agree with it; a broken one still ends with REFUSED.
        anchor = write_anchor(engine) if report.ok and replayed.ok else None
        emit({"chain": report, "replay": replayed, "anchor": anchor}, as_json)
        raise typer.Exit(ExitCode.OK if report.ok and replayed.ok else ExitCode.REFUSED)
    problems = []
    if report.ok:
        keyed = (
            f", keyed from entry {report.keyed_from}"
            if report.keyed_from is not None
            else " (not keyed: no audit key was configured when they were written)"
        )
        console.print(
            f"The audit trail is intact: {report.count} entries verified{keyed}, against {report.anchors} anchors; "
            f"{report.allocations} allocation entries checked.",
            highlight=False,
        )
    else:
        problems.append(f"the audit trail is broken ({report.problem}): {report.message}")
    if replayed.ok:
        console.print(
            f"The data tables agree with the trail: {replayed.rows} rows checked against {replayed.entries} entries.",
            highlight=False,
        )
    else:
        for found in replayed.disagreements:
            console.print(found.describe(), highlight=False, soft_wrap=True)
        more = f" ({replayed.count - len(replayed.disagreements)} more not shown)" if replayed.count > 10 else ""
        problems.append(
            f"{replayed.count} disagreement(s) between the data tables and the audit trail{more}; "
            f"first: {replayed.disagreements[0].describe()}"
        )
    if problems:
        fail("; ".join(problems))
    # Anchor only a trail whose data tables agree with it.
    anchor = write_anchor(engine)
    if anchor is not None:
        _print_anchor(anchor)


@audit_app.command("anchor")
def anchor_head(as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Append a signed checkpoint of the trail's head (entry, hash, time, MAC) to the anchor file and print it
    (keep the printout: a paper trail)."""
    from trialwright.services.audit_keys import write_anchor

    anchor = write_anchor(_audit_engine(database))
    if anchor is None:
        fail("nothing to anchor: the audit trail is empty or has no anchor file (in-memory database)")
    if not emit(anchor, as_json):
        _print_anchor(anchor)


@audit_app.command("show")
def show_audit(
    user: AsOption,
    participant: Annotated[str | None, typer.Option("--participant", help="Only this participant.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only actions starting with this.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many entries, newest first.")] = 100,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Audit entries, newest first: who, when, what, old and new value, why, and the entry's detail (values that
    could tell an arm show as masked to a blinded reader)."""
    from trialwright.services.audit_trail import AuditReadError, read_trail

    engine, actor = _context(user, database)
    try:
        rows = read_trail(engine, actor, participant=participant, action_prefix=action, limit=limit)
    except AuditReadError as exc:
        fail_with(exc, "--as: the audit trail is for administrators, data managers and monitors")
    if emit(rows, as_json):
        return
    if not rows:
        console.print("No audit entry matches.", highlight=False)
    for e in rows:
        where = " ".join(x for x in (e.participant, e.form, e.field) if x)
        change = f" {e.old_value} -> {e.new_value}" if e.old_value or e.new_value else ""
        why = f' because "{e.reason}"' if e.reason else ""
        detail = f" {e.detail}" if e.detail else ""
        when = e.at.isoformat(timespec="seconds")
        console.print(
            f"#{e.seq} {when} {e.actor} ({e.role or '-'}) {e.action} {where}{change}{why}{detail}",
            highlight=False,
            soft_wrap=True,
        )
