"""``trialwright protocol``: check a protocol file, show it as the registry record reads, and go to and from a
REDCap data dictionary (``trialwright.cli.protocol_redcap``).

Imports beyond typer happen inside the commands, so ``trialwright --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from trialwright.cli.common import ExitCode, JsonOption, console, emit, err_console, fail
from trialwright.cli.protocol_redcap import from_redcap, to_redcap

if TYPE_CHECKING:
    from trialwright.protocol import LoadedProtocol

__all__ = ["app"]

app = typer.Typer(
    help="Check and show a trial's protocol file; draft one from a REDCap data dictionary, or write its dictionary.",
    no_args_is_help=True,
)

FileArgument = typer.Argument(..., help="The protocol file (YAML).", show_default=False)


def _load(path: Path, as_json: bool = False) -> LoadedProtocol:
    from trialwright.protocol import ProtocolError, load_protocol

    try:
        return load_protocol(path)
    except FileNotFoundError:
        fail(f"{path}: no such file", ExitCode.NOT_FOUND)
    except IsADirectoryError:
        fail(f"{path}: is a folder, not a protocol file", ExitCode.USAGE)
    except ProtocolError as exc:
        if emit({"path": path, "valid": False, "problems": exc.problems}, as_json):
            raise typer.Exit(ExitCode.REFUSED) from None
        count = len(exc.problems)
        err_console.print(f"[bold red]{path}: {count} problem{'s' if count != 1 else ''}[/]", highlight=False)
        for problem in exc.problems:
            err_console.print(problem.render(str(path)), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(ExitCode.REFUSED) from None


@app.command("check")
def check(path: Path = FileArgument, as_json: JsonOption = False) -> None:
    """Validate a protocol file: exit 0 when it is valid, 1 listing every problem with its line.

    A valid file's notes say which exports will be incomplete and why (fields without standard codes), and which
    derived fields have no value at some visits (an input's form is not collected there), and when the arms of a
    blinded trial are given by different routes (the blind needs a double-dummy or a matching administration), and
    when no ``calendars`` are declared (dates then show in both calendars), and when a composite value takes the
    place of a field that declares no hard_limits (nothing can check that the field could hold it)."""
    from trialwright.protocol.codes import export_gaps
    from trialwright.protocol.ct_checks import ct_extensions
    from trialwright.protocol.derivation_visits import derivation_gaps
    from trialwright.protocol.estimand_checks import composite_limit_notes
    from trialwright.protocol.masking_checks import route_notes
    from trialwright.protocol.translation_checks import calendar_notes

    p = _load(path, as_json).protocol
    notes = (*calendar_notes(p), *route_notes(p), *derivation_gaps(p), *composite_limit_notes(p), *export_gaps(p),
             *ct_extensions(p))  # fmt: skip
    criteria = len(p.eligibility.inclusion) + len(p.eligibility.exclusion)
    counts = {"sites": len(p.sites), "arms": len(p.arms), "criteria": criteria, "visits": len(p.visits),
              "forms": len(p.forms), "outcomes": len(p.outcomes)}  # fmt: skip
    summary = {"path": path, "valid": True, "trial_id": p.trial_id, "version": p.version.number, "counts": counts,
               "notes": notes}  # fmt: skip
    if emit(summary, as_json):
        return
    console.print(
        f"[green]OK[/] {path}: trial {p.trial_id}, protocol version {p.version.number}; "
        f"{_count(len(p.sites), 'site')}, {_count(len(p.arms), 'arm')}, "
        f"{_count(criteria, 'criterion', 'criteria')}, {_count(len(p.visits), 'visit')}, "
        f"{_count(len(p.forms), 'form')}, {_count(len(p.outcomes), 'outcome')}",
        highlight=False,
    )
    for note in notes:
        console.print(f"Note: {note}", highlight=False, markup=False, soft_wrap=True)


@app.command("show")
def show(
    path: Path = FileArgument,
    calendar: str = typer.Option(
        "both", "--calendar", help="Show dates in gregorian, jalali (Solar Hijri) or both calendars."
    ),
    as_json: JsonOption = False,
) -> None:
    """Print the trial's registry record from its protocol file, every date in both calendars."""
    from trialwright.cli.protocol_show import render_record
    from trialwright.domain.calendars import CalendarPreference

    try:
        preference = CalendarPreference(calendar)
    except ValueError:
        fail(f"--calendar: must be one of gregorian, jalali, both (got {calendar!r})", ExitCode.USAGE)
    protocol = _load(path, as_json).protocol
    if emit(protocol, as_json):  # the whole protocol, as its model reads it (dates in ISO 8601)
        return
    render_record(console, protocol, preference)


app.command("from-redcap")(from_redcap)
app.command("to-redcap")(to_redcap)


def _count(n: int, one: str, many: str | None = None) -> str:
    """``1 outcome``, ``2 outcomes``."""
    return f"{n} {one if n == 1 else many or one + 's'}"
