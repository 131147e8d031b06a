"""E-mail notifications: the outbox written with each event, the messages in the recipient's language, and the
sender that delivers them through the configured mail server (see docs/email.md).

``outbox`` (``enqueue``, called inside the services' transactions), ``messages`` (what each message says, English
and Persian) and ``sender`` (the SMTP configuration, delivery with retries, the deadline reminders, the status).
"""

from __future__ import annotations

from trialwright.services.email.messages import ARM_REVEALING, KINDS, Rendered, local_time, render
from trialwright.services.email.outbox import FORBIDDEN_PARAMS, enqueue, recipients
from trialwright.services.email.sender import (
    EmailNotConfigured,
    EmailStatus,
    SendReport,
    SmtpConfig,
    arm_words,
    email_status,
    queue_reminders,
    send_due,
    smtp_config,
    smtp_transport,
)

__all__ = [
    "ARM_REVEALING",
    "FORBIDDEN_PARAMS",
    "KINDS",
    "EmailNotConfigured",
    "EmailStatus",
    "Rendered",
    "SendReport",
    "SmtpConfig",
    "arm_words",
    "email_status",
    "enqueue",
    "local_time",
    "queue_reminders",
    "recipients",
    "render",
    "send_due",
    "smtp_config",
    "smtp_transport",
]
