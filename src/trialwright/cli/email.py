"""``trialwright email``: the e-mail outbox from the command line: its status, sending it, queueing reminders.

Run ``trialwright email due && trialwright email send`` every few minutes from cron or a systemd timer (see
docs/email.md): ``due`` queues the reminders of SAE reporting deadlines, ``send`` delivers what the outbox holds.
"""

from __future__ import annotations

import typer

from trialwright.cli.common import DatabaseOption, console, fail, settings_for

__all__ = ["email_app"]

email_app = typer.Typer(
    help="E-mail notifications: status, sending the outbox, deadline reminders.", no_args_is_help=True
)


def _engine(database: str | None):  # type: ignore[no-untyped-def]
    from trialwright.cli.users import _engine as engine_of

    return engine_of(database)


@email_app.command("status")
def status(database: DatabaseOption = None) -> None:
    """Whether e-mail is on (the mail server), and the outbox's messages by state."""
    from trialwright.services.email import email_status

    for line in email_status(_engine(database), settings_for(database)).lines():
        console.print(line, highlight=False)


@email_app.command("send")
def send(database: DatabaseOption = None) -> None:
    """Send every message whose time has come; a failure is retried later, then recorded as failed. Exit status 2
    (nothing sent) when no mail server is configured."""
    from trialwright.services.email import EmailNotConfigured, send_due

    settings = settings_for(database)
    try:
        report = send_due(_engine(database), settings)
    except EmailNotConfigured as exc:
        fail(str(exc), code=2)
    console.print(f"Sent {report.sent}; to retry {report.retrying}; failed {report.failed}.", highlight=False)


@email_app.command("due")
def due(database: DatabaseOption = None) -> None:
    """Queue the reminders of SAE reporting deadlines due soon or overdue (each once per recipient and stage)."""
    from trialwright.services.email import queue_reminders

    added = queue_reminders(_engine(database), settings_for(database))
    console.print(f"Queued {added} reminder(s).", highlight=False)
