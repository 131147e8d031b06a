"""``trialwright protocol``: check a protocol file, and show it as the registry record reads.

Imports beyond typer happen inside the commands, so ``trialwright --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from trialwright.cli.common import console, err_console, fail

if TYPE_CHECKING:
    from trialwright.protocol import LoadedProtocol

__all__ = ["app"]

app = typer.Typer(help="Check and show a trial's protocol file.", no_args_is_help=True)

FileArgument = typer.Argument(..., help="The protocol file (YAML).", show_default=False)


def _load(path: Path) -> LoadedProtocol:
    from trialwright.protocol import ProtocolError, load_protocol

    try:
        return load_protocol(path)
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path}: is a folder, not a protocol file")
    except ProtocolError as exc:
        count = len(exc.problems)
        err_console.print(f"[bold red]{path}: {count} problem{'s' if count != 1 else ''}[/]", highlight=False)
        for problem in exc.problems:
            err_console.print(problem.render(str(path)), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command("check")
def check(path: Path = FileArgument) -> None:
    """Validate a protocol file: exit 0 when it is valid, 1 listing every problem with its line.

    A valid file's notes say which exports will be incomplete and why (fields without standard codes)."""
    from trialwright.protocol.codes import export_gaps

    p = _load(path).protocol
    criteria = len(p.eligibility.inclusion) + len(p.eligibility.exclusion)
    console.print(
        f"[green]OK[/] {path}: trial {p.trial_id}, protocol version {p.version.number}; "
        f"{len(p.sites)} sites, {len(p.arms)} arms, {criteria} criteria, {len(p.visits)} visits, "
        f"{len(p.forms)} forms, {len(p.outcomes)} outcomes",
        highlight=False,
    )
    for note in export_gaps(p):
        console.print(f"Note: {note}", highlight=False, markup=False, soft_wrap=True)


@app.command("show")
def show(
    path: Path = FileArgument,
    calendar: str = typer.Option(
        "both", "--calendar", help="Show dates in gregorian, jalali (Solar Hijri) or both calendars."
    ),
) -> None:
    """Print the trial's registry record from its protocol file, every date in both calendars."""
    from trialwright.cli.protocol_show import render_record
    from trialwright.domain.calendars import CalendarPreference

    try:
        preference = CalendarPreference(calendar)
    except ValueError:
        fail(f"--calendar: must be one of gregorian, jalali, both (got {calendar!r})")
    render_record(console, _load(path).protocol, preference)
