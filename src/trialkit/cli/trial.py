"""``trialkit init`` and ``trialkit start``: create or upgrade a trial database, and the main job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from trialkit.cli.common import DatabaseOption, console, err_console, fail, settings_for

if TYPE_CHECKING:
    from trialkit.services.trial import InitResult

__all__ = ["init", "start"]

ProtocolOption = typer.Option(..., "--protocol", help="The trial's protocol file (YAML).", show_default=False)


def _init(protocol: Path, database: str | None) -> InitResult:
    from trialkit.protocol import ProtocolError, load_protocol
    from trialkit.services.trial import ProtocolVersionConflict, TrialMismatch, init_trial
    from trialkit.store.engine import DatabaseUnavailable, check_connection, make_engine, redact

    settings = settings_for(database)
    try:
        loaded = load_protocol(protocol)
    except (FileNotFoundError, IsADirectoryError):
        fail(f"--protocol: {protocol}: no such file")
    except ProtocolError as exc:
        err_console.print(str(exc), markup=False, highlight=False)
        fail(f"--protocol: {protocol} has {len(exc.problems)} problem(s); `trialkit protocol check` lists them")
    try:
        engine = make_engine(settings.database_url)
        check_connection(engine)
        result = init_trial(engine, loaded)
    except DatabaseUnavailable as exc:
        fail(str(exc))
    except (TrialMismatch, ProtocolVersionConflict) as exc:
        fail(f"{redact(settings.database_url)}: {exc}")
    engine.dispose()
    verb = {"created": "created", "upgraded": "upgraded", "unchanged": "already up to date"}[result.status]
    console.print(
        f"Trial [bold]{result.trial_id}[/] (protocol version {result.protocol_version}) {verb} in "
        f"{redact(settings.database_url)}; schema revision {result.schema_revision}.",
        highlight=False,
    )
    return result


def init(protocol: Path = ProtocolOption, database: DatabaseOption = None) -> None:
    """Create or upgrade a trial database from a protocol file (idempotent)."""
    _init(protocol, database)


def start(protocol: Path = ProtocolOption, database: DatabaseOption = None) -> None:
    """The main job: create or upgrade the trial database, then show the trial's registry record.

    Until the web app lands (issue 3) this is what `./dev start` runs.
    """
    from trialkit.cli.protocol_show import render_record
    from trialkit.domain.calendars import CalendarPreference
    from trialkit.protocol import load_protocol

    _init(protocol, database)
    console.print()
    render_record(console, load_protocol(protocol).protocol, CalendarPreference.BOTH)
    console.print(
        "\nNext: `trialkit protocol check FILE` validates a protocol; `trialkit --help` lists every command.",
        highlight=False,
    )
