"""Delivering the outbox: the SMTP configuration, the sender with its retries, the deadline reminders, the status.

``send_due`` takes every message whose time has come, claims it (so two senders at once never send one message
twice), renders it in the recipient's language on the site's clock and hands it to the mail server. For a recipient
the trial masks, the message leaves out what the audit trail masks (an unblinding's reason) and is withheld, never
sent, should it still name an arm. A failure is recorded on the row (the attempt, the error) and retried later, 1, 2,
4 ... minutes apart (at most 6 hours), until ``email_max_attempts``; then the row is ``failed``, not lost. Without
``smtp_host`` nothing is sent and nothing is claimed sent: ``send_due`` refuses (``EmailNotConfigured``) and the
rows wait.

``queue_reminders`` is the periodic job (``trialwright email due``, from cron or a systemd timer): for every SAE
reporting deadline not yet met it queues a reminder when ``email_reminder_fraction`` of its time is left and another
once it is overdue, each once per recipient and stage (the outbox's ``dedupe_key``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import Engine, func, select, update

from trialwright.domain.masking import masked_roles
from trialwright.domain.roles import Role
from trialwright.domain.safety import DeadlineKind, classify, deadlines
from trialwright.protocol import Protocol
from trialwright.services import clock
from trialwright.services.email.messages import Rendered, render
from trialwright.services.email.outbox import enqueue, recipients
from trialwright.services.safety.common import RESPONSIBLE, _assessment, _tz
from trialwright.services.trial import current_protocol
from trialwright.settings import Settings
from trialwright.store.auth_tables import user_sites, users
from trialwright.store.email_tables import email_outbox
from trialwright.store.engine import read_scope, serialise, session_scope
from trialwright.store.safety_tables import adverse_events, ae_reports, ae_submissions

__all__ = [
    "EmailNotConfigured",
    "EmailStatus",
    "SendReport",
    "SmtpConfig",
    "arm_words",
    "email_status",
    "queue_reminders",
    "send_due",
    "smtp_config",
    "smtp_transport",
]

_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
#: A claimed message is retried after this long if its sender died before recording the outcome.
_CLAIM = dt.timedelta(minutes=10)


class EmailNotConfigured(RuntimeError):
    """No mail server is configured: nothing is sent, nothing is claimed sent."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send: the mail server, its protection, the account and the From address."""

    host: str
    port: int
    security: str
    user: str | None
    password: str | None = field(repr=False)  # never printed, never in --json output
    sender: str

    def describe(self) -> str:
        """One line for status output (never the password)."""
        who = f" as {self.user}" if self.user else ""
        return f"{self.host}:{self.port} ({self.security}){who}, from {self.sender}"


def smtp_config(settings: Settings) -> SmtpConfig | None:
    """The mail server from the settings, or None when ``smtp_host`` is unset. Refuses a half configuration."""
    if not settings.smtp_host:
        return None
    if not settings.email_from:
        raise EmailNotConfigured("email_from: set TRIALWRIGHT_EMAIL_FROM, the From address of every e-mail")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password is not None else None
    if password is None and settings.smtp_password_file is not None:
        try:
            password = settings.smtp_password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise EmailNotConfigured(f"smtp_password_file: cannot read {settings.smtp_password_file}: {exc}") from None
    if password is not None and not settings.smtp_user:
        raise EmailNotConfigured("smtp_user: a password is set but no user to sign in as (TRIALWRIGHT_SMTP_USER)")
    if password is not None and settings.smtp_security == "none":
        raise EmailNotConfigured("smtp_security: none would send the mail password in clear; use starttls or ssl")
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port or _DEFAULT_PORTS[settings.smtp_security],
        security=settings.smtp_security,
        user=settings.smtp_user,
        password=password,
        sender=settings.email_from,
    )


@dataclass(frozen=True)
class EmailStatus:
    """Whether e-mail is on, and the outbox's counts by state."""

    config: SmtpConfig | None
    problem: str | None
    counts: dict[str, int]
    without_address: int  # active accounts with no e-mail address

    def lines(self) -> list[str]:
        """What ``trialwright email status`` and ``trialwright start`` print."""
        if self.config is not None:
            head = f"E-mail: on, through {self.config.describe()}"
        elif self.problem is not None:
            head = f"E-mail: OFF, {self.problem}; nothing is sent"
        else:
            head = (
                "E-mail: OFF (TRIALWRIGHT_SMTP_HOST is not set); notifications are shown in the app only, "
                "nothing is sent"
            )
        counts = ", ".join(f"{n} {state}" for state, n in sorted(self.counts.items())) or "empty"
        return [
            head,
            f"Outbox: {counts}",
            f"Active accounts without an e-mail address: {self.without_address}",
        ]


def email_status(engine: Engine, settings: Settings) -> EmailStatus:
    """Whether e-mail is configured and what the outbox holds."""
    problem = None
    try:
        config = smtp_config(settings)
    except EmailNotConfigured as exc:
        config, problem = None, str(exc)
    with read_scope(engine) as session:
        counts = {
            r.state: int(r.n)
            for r in session.execute(
                select(email_outbox.c.state, func.count().label("n")).group_by(email_outbox.c.state)
            ).all()
        }
        without = session.execute(
            select(func.count()).select_from(users).where(users.c.active, users.c.email.is_(None))
        ).scalar_one()
    return EmailStatus(config, problem, counts, int(without))


# --- masking ------------------------------------------------------------------------------------------------


def arm_words(protocol: Protocol) -> tuple[str, ...]:
    """Every word that would name an arm: each arm's code, name and intervention's name, and each word of those
    that not every arm shares (``Placebo``, ``PBS``, ``exosomes``; not ``standard`` or ``care``)."""
    phrases: list[set[str]] = []
    whole: set[str] = set()
    for arm in protocol.arms:
        texts = [w for w in (arm.code, arm.name, getattr(arm.intervention, "name", None)) if w]
        whole.update(texts)
        phrases.append({t.lower() for text in texts for t in re.findall(r"\w{3,}", text)})
    shared = set.intersection(*phrases) if phrases else set()
    return tuple(sorted(whole | {t for p in phrases for t in p - shared}))


def _names_an_arm(text: str, words: Sequence[str]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE) for w in words)


# --- sending ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendReport:
    """What one run of the sender did."""

    sent: int
    retrying: int
    failed: int


Transport = Callable[[SmtpConfig, EmailMessage], None]


def smtp_transport(config: SmtpConfig, message: EmailMessage) -> None:
    """Hand one message to the mail server (certificates checked for starttls and ssl)."""
    context = ssl.create_default_context()
    server: smtplib.SMTP
    if config.security == "ssl":
        server = smtplib.SMTP_SSL(config.host, config.port, timeout=30, context=context)
    else:
        server = smtplib.SMTP(config.host, config.port, timeout=30)
    with server:
        if config.security == "starttls":
            server.starttls(context=context)
        if config.user and config.password is not None:
            server.login(config.user, config.password)
        server.send_message(message)


def _timezone(protocol: Protocol, site: str | None, recipient_sites: Sequence[str]) -> str:
    for code in (site, *recipient_sites):
        if code:
            try:
                return protocol.site(code).timezone
            except (KeyError, ValueError):
                continue
    return protocol.sites[0].timezone


def _message(config: SmtpConfig, address: str, rendered: Rendered) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = address
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or None)
    message["Content-Language"] = rendered.language
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.body)
    return message


def _retry_wait(attempts: int) -> dt.timedelta:
    return min(dt.timedelta(minutes=2 ** (attempts - 1)), dt.timedelta(hours=6))


def send_due(
    engine: Engine, settings: Settings, *, now: dt.datetime | None = None, transport: Transport | None = None
) -> SendReport:
    """Send every message whose time has come; record each outcome. Refuses when no mail server is configured."""
    config = smtp_config(settings)
    if config is None:
        raise EmailNotConfigured(
            "e-mail is off: TRIALWRIGHT_SMTP_HOST is not set, so nothing was sent (the outbox keeps every message)"
        )
    send = transport or smtp_transport
    moment = now or clock.now()
    protocol = current_protocol(engine).protocol
    masked = masked_roles(protocol)
    words = arm_words(protocol)
    with session_scope(engine) as session:
        due = session.execute(
            select(email_outbox.c.id)
            .where(email_outbox.c.state.in_(("pending", "sending")), email_outbox.c.next_attempt_at <= moment)
            .order_by(email_outbox.c.id)
        ).scalars().all()  # fmt: skip
    sent = retrying = failed = 0
    for message_id in due:
        with session_scope(engine) as session:  # claim it: a second sender skips it
            claimed = session.execute(
                update(email_outbox)
                .where(email_outbox.c.id == message_id, email_outbox.c.state.in_(("pending", "sending")),
                       email_outbox.c.next_attempt_at <= moment)
                .values(state="sending", next_attempt_at=moment + _CLAIM)
            ).rowcount  # type: ignore[attr-defined]  # fmt: skip
        if claimed != 1:
            continue
        outcome, error, address = _deliver(engine, protocol, config, message_id, masked, words, send)
        with session_scope(engine) as session:
            row = session.execute(select(email_outbox).where(email_outbox.c.id == message_id)).one()
            attempts = row.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "address": address, "last_error": error}
            if outcome == "sent":
                values.update(state="sent", sent_at=clock.now())
                sent += 1
            elif outcome == "withheld" or attempts >= settings.email_max_attempts:
                values.update(state="failed")
                failed += 1
            else:
                values.update(state="pending", next_attempt_at=moment + _retry_wait(attempts))
                retrying += 1
            session.execute(update(email_outbox).where(email_outbox.c.id == message_id).values(**values))
    return SendReport(sent, retrying, failed)


def _deliver(
    engine: Engine,
    protocol: Protocol,
    config: SmtpConfig,
    message_id: int,
    masked: frozenset[Role],
    words: Sequence[str],
    send: Transport,
) -> tuple[str, str | None, str | None]:
    """Render and send one message: ("sent" | "retry" | "withheld", error, address)."""
    with read_scope(engine) as session:
        row = session.execute(select(email_outbox).where(email_outbox.c.id == message_id)).one()
        user = session.execute(select(users).where(users.c.username == row.recipient)).first()
        sites = (
            session.execute(select(user_sites.c.site_code).where(user_sites.c.user_id == user.id)).scalars().all()
            if user is not None
            else []
        )
    if user is None or not user.active:
        return "withheld", "the recipient's account is disabled or gone", None
    if not user.email:
        return "retry", "the recipient has no e-mail address (set one on the profile page)", None
    blinded = Role(user.role) in masked
    timezone = _timezone(protocol, row.site, sites)
    rendered = render(row.kind, json.loads(row.params), user.language, timezone, masked=blinded,
                      calendar=user.calendar)
    if blinded and _names_an_arm(f"{rendered.subject}\n{rendered.body}", words):
        # The params never hold an arm and the arm-revealing ones are masked: a second line of defence.
        return "withheld", "withheld: the message would name an arm to a recipient the trial masks", user.email
    try:
        send(config, _message(config, user.email, rendered))
    except (OSError, smtplib.SMTPException) as exc:
        return "retry", f"{type(exc).__name__}: {exc}"[:500], user.email
    return "sent", None, user.email


# --- deadline reminders -------------------------------------------------------------------------------------


def queue_reminders(engine: Engine, settings: Settings, *, now: dt.datetime | None = None) -> int:
    """Queue a reminder for every SAE reporting deadline not met that is due soon or overdue (once per recipient
    and stage); returns how many messages were queued. Works whether or not e-mail is configured."""
    moment = now or clock.now()
    protocol = current_protocol(engine).protocol
    added = 0
    with session_scope(engine) as session:
        serialise(session, "email_outbox")
        serious = select(ae_reports.c.event_id).where(ae_reports.c.serious)
        events = session.execute(select(adverse_events).where(adverse_events.c.id.in_(serious))).all()
        for event in events:
            reports = session.execute(
                select(ae_reports).where(ae_reports.c.event_id == event.id).order_by(ae_reports.c.sequence)
            ).all()
            submitted = {
                DeadlineKind(s.kind): s.submitted_at
                for s in session.execute(select(ae_submissions).where(ae_submissions.c.event_id == event.id)).all()
            }
            history = [(a, classify(a, protocol.safety)) for a in (_assessment(r.assessment) for r in reports)]
            for d in deadlines(history, protocol.safety, _tz(protocol, event.site), submitted):
                if d.kind in submitted:
                    continue
                lead = (d.due_at - d.clock_start) * settings.email_reminder_fraction
                stage = "overdue" if moment > d.due_at else "due_soon" if moment >= d.due_at - lead else None
                if stage is None:
                    continue
                added += enqueue(
                    session,
                    f"deadline_{stage}",
                    recipients(session, RESPONSIBLE, event.site),
                    {"ae_number": event.ae_number, "participant_id": event.participant_id, "site": event.site,
                     "deadline": d.kind.value, "at": d.due_at.isoformat()},
                    key=f"deadline:{event.ae_number}:{d.kind.value}:{stage}",
                    site=event.site,
                    participant_id=event.participant_id,
                    at=moment,
                )  # fmt: skip
    return added
