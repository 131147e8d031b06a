"""``trialwright init`` and ``trialwright start``: create or upgrade a trial database, and the main job."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trialwright.cli.common import (
    DatabaseOption,
    ExitCode,
    JsonOption,
    console,
    emit,
    err_console,
    fail,
    fail_with,
    settings_for,
)

if TYPE_CHECKING:
    from trialwright.services.trial import InitResult
    from trialwright.settings import Settings

__all__ = ["init", "start"]

ProtocolOption = typer.Option(..., "--protocol", help="The trial's protocol file (YAML).", show_default=False)


def _init(protocol: Path, settings: Settings, *, quiet: bool = False, new_audit_files: bool = False) -> InitResult:
    from trialwright.protocol import ProtocolError, load_protocol
    from trialwright.services.audit_files import AuditFilesOfAnotherTrial, claim_audit_files
    from trialwright.services.audit_keys import engine_for
    from trialwright.services.trial import AmendmentLocked, ProtocolVersionConflict, TrialMismatch, init_trial
    from trialwright.store.engine import DatabaseUnavailable, check_connection, redact

    try:
        loaded = load_protocol(protocol)
    except (FileNotFoundError, IsADirectoryError):
        fail(f"--protocol: {protocol}: no such file", ExitCode.NOT_FOUND)
    except ProtocolError as exc:
        err_console.print(str(exc), markup=False, highlight=False)
        fail(f"--protocol: {protocol} has {len(exc.problems)} problem(s); `trialwright protocol check` lists them")
    from trialwright.services.audit import AuditKeyError
    from trialwright.services.audit_keys import write_anchor

    try:
        said = claim_audit_files(settings, move_aside=new_audit_files)
        engine = engine_for(settings, create_key=True)
        check_connection(engine)
        result = init_trial(engine, loaded)
    except (DatabaseUnavailable, AuditKeyError, AuditFilesOfAnotherTrial) as exc:
        fail_with(exc)
    except (TrialMismatch, ProtocolVersionConflict, AmendmentLocked) as exc:
        fail_with(exc, f"{redact(settings.database_url)}: {exc}")
    # An anchor on every init: the first records, outside the database, where keying began.
    write_anchor(engine)
    engine.dispose()
    if said:
        result = replace(result, notes=(*said, *result.notes))
    if quiet:
        return result
    verb = {"created": "created", "upgraded": "upgraded", "unchanged": "already up to date"}[result.status]
    console.print(
        f"Trial [bold]{result.trial_id}[/] (protocol version {result.protocol_version}) {verb} in "
        f"{redact(settings.database_url)}; schema revision {result.schema_revision}.",
        highlight=False,
    )
    for note in result.notes:
        console.print(f"Note: {note}", highlight=False, markup=False, soft_wrap=True)
    return result


def init(
    protocol: Path = ProtocolOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
    new_audit_files: Annotated[
        bool,
        typer.Option(
            "--new-audit-files",
            help="Creating a new trial where another trial's audit key and anchor files were left (its database "
            "deleted): rename them aside with a timestamp (said) and start new ones. Without it, init refuses while "
            "the anchor file holds anchors.",
        ),
    ] = False,
) -> None:
    """Create or upgrade a trial database from a protocol file (idempotent)."""
    emit(_init(protocol, settings_for(database), quiet=as_json, new_audit_files=new_audit_files), as_json)


def _email_in_background(settings: Settings, minutes: int) -> None:
    """Queue the reminders and send the outbox every ``minutes``, in a daemon thread of this process; a failure is
    said on stderr and the next round tries again (the outbox keeps every message)."""
    import threading

    from trialwright.services.audit_keys import engine_for
    from trialwright.services.email import queue_reminders, send_due

    def rounds() -> None:
        engine = engine_for(settings)
        stop = threading.Event()
        while not stop.wait(minutes * 60):
            try:
                queue_reminders(engine, settings)
                report = send_due(engine, settings)
                if report.sent or report.failed:
                    console.print(f"E-mail: sent {report.sent}, failed {report.failed}", highlight=False)
            except Exception as exc:  # said on stderr; the next round tries again
                err_console.print(f"E-mail: this round failed: {exc}", highlight=False)

    threading.Thread(target=rounds, name="trialwright-email", daemon=True).start()
    console.print(f"E-mail: the outbox is sent every {minutes} minute(s) by this process.", highlight=False)


def start(
    protocol: Path = ProtocolOption,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    database: DatabaseOption = None,
    email_every: Annotated[
        int,
        typer.Option(
            "--email-every",
            min=0,
            help="Also queue the deadline reminders and send the e-mail outbox every this many minutes, in the "
            "background (0: not here; run `trialwright email due && trialwright email send` from cron instead).",
        ),
    ] = 0,
) -> None:
    """The main job: create or upgrade the trial database, ensure an administrator, serve the web app."""
    from trialwright.cli.serve import bootstrap_admin, run_server
    from trialwright.services.audit_keys import engine_for

    settings = settings_for(database)
    _init(protocol, settings)
    engine = engine_for(settings)
    credentials = bootstrap_admin(engine)
    from trialwright.services.email import email_status

    status = email_status(engine, settings)
    for line in status.lines():
        console.print(line, highlight=False)
    engine.dispose()
    if email_every:
        if status.config is None:
            fail("--email-every: e-mail is off (see `trialwright email status`); nothing would be sent")
        _email_in_background(settings, email_every)
    if credentials is not None:
        console.print(
            "\n[bold]An administrator account was created. Its password is shown only this once:[/]\n"
            f"  username: [bold]{credentials[0]}[/]\n  password: [bold]{credentials[1]}[/]\n"
            "Add the trial team's accounts on the Users page or with `trialwright user add`.\n"
        )
    run_server(settings, host, port)
