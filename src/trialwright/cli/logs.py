"""``trialwright log``: a participant's log entries (concomitant medications, medical history) from the command line,
through the same service as the page and the API (``trialwright.services.logs``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from trialwright.cli.common import DatabaseOption, ExitCode, JsonOption, console, emit, fail
from trialwright.cli.forms import _read, _run
from trialwright.cli.screening import AsOption, _context

__all__ = ["log_app"]

log_app = typer.Typer(
    help="Add, amend, remove and list a participant's log entries (concomitant medications, medical history); "
    "verify one against source, raise a query on one.",
    no_args_is_help=True,
)

ParticipantArg = Annotated[str, typer.Argument(help="Participant id, e.g. RAZ-001.")]
LogArg = Annotated[str, typer.Argument(help="Log id from the protocol's logs, e.g. conmeds.")]
SequenceArg = Annotated[int, typer.Argument(help="The entry's sequence number in its log (1, 2, ...).")]
DataOption = Annotated[str, typer.Option("--data", help="JSON file of field values ('-' for standard input).")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (required).")]
VersionOption = Annotated[
    int,
    typer.Option(
        "--entry-version",
        help="The entry's version the change is made from (as `log list` shows it): refused if it changed since.",
    ),
]


def _values(data: str) -> dict[str, Any]:
    values = _read(data, "--data")
    if not isinstance(values, dict):
        fail("--data: must be a JSON object of field values", ExitCode.USAGE)
    return values


def _print(entry: Any) -> None:
    state = "removed" if entry.removed else "active"
    console.print(
        f"{entry.participant_id} {entry.log_id} #{entry.sequence}: [bold]{state}[/], version {entry.version}"
        + (f" ({entry.removed_reason})" if entry.removed_reason else ""),
        highlight=False,
    )
    for name, value in entry.values.items():
        extra = f" ({value.reason})" if value.reason else ""
        console.print(f"  {name}: {value.shown()}{extra}", highlight=False)
    if entry.coding is not None:
        console.print(f"  coded: {entry.coding.code} {entry.coding.name} ({entry.coding.dictionary} "
                      f"{entry.coding.version})", highlight=False)  # fmt: skip
    if entry.verified_by:
        console.print(f"  verified by {entry.verified_by} at {entry.verified_at:%Y-%m-%d %H:%M} UTC", highlight=False)
    if entry.signed_by:
        console.print(f"  signed by {entry.signed_by} at {entry.signed_at:%Y-%m-%d %H:%M} UTC", highlight=False)


@log_app.command("add")
def add(
    participant_id: ParticipantArg,
    log_id: LogArg,
    data: DataOption,
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Add an entry to a participant's log (validated like a form's values)."""
    from trialwright.services.logs import add_entry

    engine, actor = _context(user, database)
    entry = _run(add_entry, engine, actor, participant_id, log_id, _values(data))
    if not emit(entry, as_json):
        _print(entry)


@log_app.command("amend")
def amend(
    participant_id: ParticipantArg,
    log_id: LogArg,
    sequence: SequenceArg,
    data: DataOption,
    reason: ReasonOption,
    entry_version: VersionOption,
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Change an entry's values, with a reason (each change audited with the old and new value)."""
    from trialwright.services.logs import amend_entry

    engine, actor = _context(user, database)
    entry = _run(amend_entry, engine, actor, participant_id, log_id, sequence, _values(data), reason=reason,
                 version=entry_version)  # fmt: skip
    if not emit(entry, as_json):
        _print(entry)


@log_app.command("remove")
def remove(
    participant_id: ParticipantArg,
    log_id: LogArg,
    sequence: SequenceArg,
    reason: ReasonOption,
    entry_version: VersionOption,
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Remove an entry, with a reason: it is kept, marked removed, and left out of SDTM."""
    from trialwright.services.logs import remove_entry

    engine, actor = _context(user, database)
    entry = _run(remove_entry, engine, actor, participant_id, log_id, sequence, reason=reason, version=entry_version)
    if not emit(entry, as_json):
        _print(entry)


@log_app.command("list")
def list_(
    participant_id: ParticipantArg,
    user: AsOption,
    log_id: Annotated[str | None, typer.Option("--log", help="Only this log.")] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """A participant's log entries, removed ones included."""
    from trialwright.services.logs import list_entries

    engine, actor = _context(user, database)
    entries = _run(list_entries, engine, actor, participant_id, log_id)
    if emit(entries, as_json):
        return
    if not entries:
        console.print(f"{participant_id} has no log entries.", highlight=False)
    for entry in entries:
        _print(entry)


@log_app.command("verify")
def verify(
    participant_id: ParticipantArg,
    log_id: LogArg,
    sequence: SequenceArg,
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Source data verification of an entry (monitor); a later amendment or removal voids it."""
    from trialwright.services.forms.log_review import verify_entry

    engine, actor = _context(user, database)
    entry = _run(verify_entry, engine, actor, participant_id, log_id, sequence)
    if not emit(entry, as_json):
        _print(entry)


@log_app.command("query")
def query(
    participant_id: ParticipantArg,
    log_id: LogArg,
    sequence: SequenceArg,
    text: Annotated[str, typer.Option("--text", help="The question.")],
    user: AsOption,
    field: Annotated[str | None, typer.Option("--field", help="One field of the entry (default: the entry).")] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Raise a query on an entry or one of its fields (monitor, data manager); answered and closed as any query."""
    from trialwright.services.forms import raise_query

    engine, actor = _context(user, database)
    raised = _run(raise_query, engine, actor, participant_id, text, log_id=log_id, sequence=sequence, field_id=field)
    if not emit(raised, as_json):
        console.print(f"query {raised.id} on {participant_id} {log_id} #{sequence}"
                      + (f" {field}" if field else "") + f": {raised.text}", highlight=False)  # fmt: skip
