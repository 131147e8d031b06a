"""``trialwright safety``: report adverse events and follow-ups, list them with their deadlines, export the
line listing, print the safety tables, record submissions and DSMB decisions; through the same services
as the pages and the API."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from trialwright.cli.common import (
    DatabaseOption,
    ExitCode,
    JsonOption,
    console,
    emit,
    fail,
    fail_with,
    policy_for,
    read_password,
)
from trialwright.cli.forms import _read
from trialwright.cli.screening import AsOption, _context
from trialwright.domain.text import spreadsheet_values

__all__ = ["safety_app"]

safety_app = typer.Typer(help="Adverse events, reporting deadlines, safety tables and the DSMB pause.",
                         no_args_is_help=True)  # fmt: skip


def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    from trialwright.domain.safety import SafetyInputError
    from trialwright.services.safety import SafetyError
    from trialwright.services.screening import NotFound

    try:
        return function(*args, **kwargs)
    except SafetyInputError as exc:
        fail_with(exc, "\n  ".join(["the report was refused, nothing was saved:",
                                     *(f"{f}: {r}" for f, r in exc.problems)]))  # fmt: skip
    except (SafetyError, NotFound) as exc:
        fail_with(exc)


def _print_event(e: Any, as_json: bool = False) -> None:
    if emit(e, as_json):
        return
    c = e.classification
    kinds = [k for k, on in (("serious", c.serious), ("related", c.related), ("expected", c.expected),
                             ("SUSAR", c.susar)) if on]  # fmt: skip
    console.print(
        f"{e.ae_number} {e.participant_id} ({e.site}): {e.current.term}, grade {e.current.grade}"
        f"{' [' + ', '.join(kinds) + ']' if kinds else ''}, {len(e.reports)} report(s)",
        highlight=False,
        markup=False,
    )
    for d in e.deadlines:
        from zoneinfo import ZoneInfo

        local = d.due_at.astimezone(ZoneInfo(e.timezone))
        console.print(
            f"  {d.kind.value}: due {local:%Y-%m-%d %H:%M %Z} ({e.timezone}), {d.state.value}", highlight=False
        )


@safety_app.command("report")
def report(
    participant_id: Annotated[str, typer.Argument(help="Participant id, e.g. RAZ-001.")],
    data: Annotated[str, typer.Option("--data", help="JSON file of the report's fields ('-' for standard input).")],
    user: AsOption,
    follow_up: Annotated[
        str | None, typer.Option("--follow-up", help="The event this report follows up, e.g. AE-0001.")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="What a follow-up adds.")] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Report an adverse event, or a follow-up of one (fields: see docs/safety.md)."""
    from trialwright.services.safety import follow_up as follow
    from trialwright.services.safety import report_event

    values = _read(data, "--data")
    if not isinstance(values, dict):
        fail("--data: must be a JSON object of the report's fields", ExitCode.USAGE)
    engine, actor = _context(user, database)
    if follow_up:
        event = _run(follow, engine, actor, follow_up, values, reason)
    else:
        event = _run(report_event, engine, actor, participant_id, values)
    _print_event(event, as_json)


@safety_app.command("list")
def list_(
    user: AsOption,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only events with an overdue report.")] = False,
    serious: Annotated[bool, typer.Option("--serious", help="Only serious events.")] = False,
    participant: Annotated[str | None, typer.Option("--participant", help="Only this participant.")] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Adverse events within the user's sites, with their deadlines and states."""
    from trialwright.services.safety import list_events

    engine, actor = _context(user, database)
    found = _run(list_events, engine, actor, participant_id=participant, overdue_only=overdue, serious_only=serious)
    if emit(found, as_json):
        return
    if not found:
        console.print("no adverse events")
    for e in found:
        _print_event(e)


@safety_app.command("export")
def export(
    user: AsOption,
    out: Annotated[Path, typer.Option("--out", help="CSV file to write (the line listing).")],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Write the line listing as CSV (arms only for the DSMB and the unblinded statistician); audited."""
    from trialwright.services.safety import export_listing

    engine, actor = _context(user, database)
    rows = _run(export_listing, engine, actor)
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        if rows:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(spreadsheet_values(r) for r in rows)
    partial.replace(out)
    if not emit({"file": out, "adverse_events": len(rows)}, as_json):
        console.print(f"wrote {len(rows)} adverse events to {out}", highlight=False)


@safety_app.command("tables")
def tables(user: AsOption, as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Participants with at least one AE / SAE: pooled for the team, by arm for the DSMB."""
    from trialwright.services.safety import safety_tables

    engine, actor = _context(user, database)
    t = _run(safety_tables, engine, actor)
    if emit(t, as_json):
        return
    table = Table(title=f"Safety ({t.grouping.replace('_', ' ')}; {t.participants} randomized)")
    table.add_column("Participants with at least one")
    for g in t.groups:
        table.add_column(f"{g} (N={t.rows[0].totals[g] if t.rows else 0})", justify="right")
    for r in t.rows:
        table.add_row(r.label, *(r.cell(g) for g in t.groups))
    console.print(table)
    terms = Table(title="By MedDRA SOC and PT: participants n (%) [events]")
    terms.add_column("System organ class / preferred term")
    for g in t.groups:
        terms.add_column(f"{g} (N={t.rows[0].totals[g] if t.rows else 0})", justify="right")
    for term in t.terms:
        terms.add_row(f"  {term.label}" if term.level == "pt" else term.label, *(term.cell(g) for g in t.groups))
    console.print(terms)


@safety_app.command("submit")
def submit(
    ae_number: Annotated[str, typer.Argument(help="The event, e.g. AE-0001.")],
    kind: Annotated[str, typer.Option("--kind", help="sae_to_sponsor, susar_initial or susar_complete.")],
    at: Annotated[
        str,
        typer.Option("--at", help="When it was sent, with its UTC offset, e.g. 2021-06-02T09:30+04:30 (a time "
                     "without one is refused)."),
    ],
    user: AsOption,
    note: Annotated[str | None, typer.Option("--note", help="e.g. the sponsor's case number.")] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Record that a due report was sent."""
    from trialwright.services.safety import record_submission

    engine, actor = _context(user, database)
    _print_event(_run(record_submission, engine, actor, ae_number, kind, at, note), as_json)


@safety_app.command("pause")
def pause_(as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Whether the safety pause holds new randomizations."""
    from trialwright.cli.common import settings_for
    from trialwright.services.audit_keys import engine_for
    from trialwright.services.safety import pause

    state = pause(engine_for(settings_for(database)))
    if not emit(state, as_json):
        console.print(state.message, highlight=False)


@safety_app.command("decide")
def decide(
    decision: Annotated[str, typer.Argument(help="resume, pause or stop.")],
    reason: Annotated[str, typer.Option("--reason", help="The DSMB's reason.")],
    user: AsOption,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Record a DSMB decision on the safety pause (DSMB member; password required)."""
    from trialwright.services.safety import may_decide, record_decision

    engine, actor = _context(user, database, may_decide)
    password = read_password(password_stdin=password_stdin, prompt="Password")
    state = _run(record_decision, engine, actor, decision, reason, password, policy=policy_for(database))
    if not emit(state, as_json):
        console.print(state.message, highlight=False)
