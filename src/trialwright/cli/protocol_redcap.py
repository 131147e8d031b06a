"""``trialwright protocol from-redcap`` and ``to-redcap``: a REDCap data dictionary as a protocol draft, and a
protocol's data dictionary (the one the REDCap-compatible API's ``metadata`` answers with).

Thin: the mapping is ``trialwright.domain.redcap_dictionary``, the dictionary ``trialwright.domain.redcap``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trialwright.cli.common import DatabaseOption, ExitCode, JsonOption, console, emit, err_console, fail, fail_with

__all__ = ["from_redcap", "to_redcap"]

OutputOption = Annotated[
    Path | None, typer.Option("--output", help="Write to this new file (an existing file is refused), not stdout.")
]


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail(f"{path}: no such file", ExitCode.NOT_FOUND)
    except IsADirectoryError:
        fail(f"{path}: is a folder, not {what}", ExitCode.USAGE)
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text ({what} is a UTF-8 CSV file)", ExitCode.REFUSED)


def _write(output: Path, text: str) -> None:
    try:
        with output.open("x", encoding="utf-8", newline="") as out:
            out.write(text)
    except FileExistsError:
        fail(f"--output: {output} exists; name a new file (nothing is overwritten)", ExitCode.USAGE)
    except OSError as exc:
        fail(f"--output: {output}: {exc.strerror}", ExitCode.USAGE)


def from_redcap(
    dictionary: Annotated[Path, typer.Argument(help="The REDCap data dictionary (CSV, as REDCap exports it).")],
    instrument_event_mapping: Annotated[
        Path | None,
        typer.Option(
            "--instrument-event-mapping",
            help="REDCap's instrument-event mapping (CSV: arm_num, "
            "unique_event_name, form): its events become the draft's visits.",
        ),
    ] = None,
    output: OutputOption = None,
    as_json: JsonOption = False,
) -> None:
    """Turn a REDCap data dictionary into a protocol draft: forms, fields, types, limits, choices, calculations.

    Every part that does not map is listed (variable, column, reason), and so are the trial-level sections no
    dictionary holds (arms, sites, randomization, ...): `trialwright protocol check` names each one to write.
    The draft goes to --output, or to standard output (the list then goes to standard error)."""
    from trialwright.domain.redcap import RedcapError
    from trialwright.domain.redcap_dictionary import draft, draft_yaml, read_dictionary, read_event_mapping

    try:
        rows = read_dictionary(_read(dictionary, "a data dictionary"))
        mapping = None
        if instrument_event_mapping is not None:
            mapping = read_event_mapping(_read(instrument_event_mapping, "an instrument-event mapping"))
        result = draft(rows, mapping)
    except RedcapError as exc:
        fail_with(exc)
    text = draft_yaml(result, dictionary.name)
    if output is not None:
        _write(output, text)
    summary: dict[str, Any] = {
        "output": output, "forms": len(result.forms), "fields": result.field_count, "visits": len(result.visits),
        "unmapped": result.unmapped, "to_write": result.to_write,
    }  # fmt: skip
    if emit(summary if output is not None else {**summary, "draft": text}, as_json):
        return
    if output is None:
        typer.echo(text, nl=False)
    said = console if output is not None else err_console
    said.print(
        f"Draft{f' {output}' if output else ''}: {len(result.forms)} forms, {result.field_count} fields, "
        f"{len(result.visits)} visits. Still to write: {', '.join(result.to_write)}.",
        highlight=False, markup=False, soft_wrap=True,
    )  # fmt: skip
    said.print(f"Not mapped ({len(result.unmapped)}):", highlight=False, markup=False)
    for u in result.unmapped:
        value = " ".join(u.value.split())
        said.print(f"  {u.variable}, {u.column}: {value!r}: {u.reason}", highlight=False, markup=False, soft_wrap=True)


def to_redcap(
    protocol: Annotated[
        Path | None,
        typer.Argument(
            help="The protocol file (YAML); without it, the trial database's current protocol.", show_default=False
        ),
    ] = None,
    output: OutputOption = None,
    instrument_event_mapping: Annotated[
        Path | None,
        typer.Option("--instrument-event-mapping", help="Also write REDCap's instrument-event mapping (CSV) here."),
    ] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Write the protocol's REDCap data dictionary (CSV, REDCap's columns): the one the REDCap-compatible API's
    metadata answers with. --json prints its rows as JSON instead."""
    import csv
    import io

    from trialwright.domain.redcap import RedcapError, dictionary, event_mapping
    from trialwright.domain.redcap_dictionary import MAPPING_COLUMNS, dictionary_csv

    if protocol is not None:
        from trialwright.cli.protocol import _load

        loaded = _load(protocol, as_json).protocol
    else:
        loaded = _current(database)
    try:
        rows = dictionary(loaded).rows
    except RedcapError as exc:
        fail_with(exc)
    events = event_mapping(loaded)
    for path in (output, instrument_event_mapping):  # both written, or neither
        if path is not None and path.exists():
            fail(f"{path} exists; name a new file (nothing is overwritten)", ExitCode.USAGE)
    if output is not None:
        _write(output, dictionary_csv(rows))
    if instrument_event_mapping is not None:
        table = io.StringIO()
        writer = csv.DictWriter(table, MAPPING_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(events)
        _write(instrument_event_mapping, table.getvalue())
    if emit({"output": output, "instrument_event_mapping": instrument_event_mapping, "rows": rows,
             "events": events}, as_json):  # fmt: skip
        return
    if output is None:
        typer.echo(dictionary_csv(rows), nl=False)
        return
    forms = len({r["form_name"] for r in rows})
    console.print(f"{output}: {len(rows)} variables in {forms} instruments", highlight=False, markup=False)


def _current(database: str | None) -> Any:
    from trialwright.cli.common import existing_trial_settings
    from trialwright.services.audit import AuditKeyError
    from trialwright.services.audit_keys import engine_for
    from trialwright.services.trial import TrialNotInitialised, current_protocol
    from trialwright.store.engine import DatabaseUnavailable, check_connection

    try:
        engine = engine_for(existing_trial_settings(database))
        check_connection(engine)
        return current_protocol(engine).protocol
    except (DatabaseUnavailable, AuditKeyError, TrialNotInitialised) as exc:
        fail_with(exc)
