"""``trialwright email``: the e-mail outbox from the command line: its status, sending it, queueing reminders.

Run ``trialwright email due && trialwright email send`` every few minutes from cron or a systemd timer (see
docs/email.md): ``due`` queues the reminders of SAE reporting deadlines, ``send`` delivers what the outbox holds.
"""

from __future__ import annotations

import typer

from trialwright.cli.common import DatabaseOption, JsonOption, console, emit, fail_with, settings_for

__all__ = ["email_app"]

email_app = typer.Typer(
    help="E-mail notifications: status, sending the outbox, deadline reminders.", no_args_is_help=True
)


def _engine(database: str | None):  # type: ignore[no-untyped-def]
    from trialwright.cli.users import _engine as engine_of

    return engine_of(database)


@email_app.command("status")
def status(as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Whether e-mail is on (the mail server), and the outbox's messages by state."""
    from trialwright.services.email import email_status

    state = email_status(_engine(database), settings_for(database))
    if emit(state, as_json):  # the mail server's password is never in it (kept out of repr, so out of JSON)
        return
    for line in state.lines():
        console.print(line, highlight=False)


@email_app.command("send")
def send(as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Send every message whose time has come; a failure is retried later, then recorded as failed. Exit status 2
    (nothing sent) when no mail server is configured."""
    from trialwright.services.email import EmailNotConfigured, send_due

    settings = settings_for(database)
    try:
        report = send_due(_engine(database), settings)
    except EmailNotConfigured as exc:
        fail_with(exc)
    if emit(report, as_json):
        return
    console.print(f"Sent {report.sent}; to retry {report.retrying}; failed {report.failed}.", highlight=False)


@email_app.command("due")
def due(as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Queue the reminders of SAE reporting deadlines due soon or overdue (each once per recipient and stage)."""
    from trialwright.services.email import queue_reminders

    added = queue_reminders(_engine(database), settings_for(database))
    if emit({"queued": added}, as_json):
        return
    console.print(f"Queued {added} reminder(s).", highlight=False)
