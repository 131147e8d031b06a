"""E-mail notifications, on both databases, delivered over real SMTP to a debugging server in the test.

What an event must mail is written to the outbox in the event's own transaction; the sender delivers it, retries a
failure and records it (never loses it, never claims it sent); deadline reminders go once per recipient and stage;
and a recipient the trial masks never receives an arm, checked over the whole MIME text of every message."""

from __future__ import annotations

import datetime as dt
import email
import json
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import jdatetime
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.spec.email.smtp_server import DebugSMTPServer
from tests.spec.forms.conftest import NOW, TEHRAN, enrolled_ten_days_ago
from tests.spec.web.conftest import app, client, csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services.email import EmailNotConfigured, arm_words, email_status, queue_reminders, send_due
from trialwright.services.randomization import emergency_unblind, generate_list, randomize
from trialwright.services.safety import record_submission, report_event
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserError, get_user, set_email, set_preferences
from trialwright.settings import Settings
from trialwright.store.email_tables import email_outbox
from trialwright.store.engine import session_scope
from trialwright.store.safety_tables import adverse_events

#: Words of the first trial's arms, beside those read from the protocol (``arm_words``).
ARM_WORDS = ("EXO", "PBO", "Exos", "Placebo", "hUCMSC", "exosome")


def sae(aware: dt.datetime, **changes: Any) -> dict[str, Any]:
    """A serious, related, unexpected event (a SUSAR) known at ``aware``."""
    return {
        "term": "Acute kidney injury",
        # the day before the sites' date of awareness (not of today: 30 hours ago may already be two days back)
        "onset": (aware.astimezone(TEHRAN).date() - dt.timedelta(days=1)).isoformat(),
        "grade": 3,
        "serious": True,
        "seriousness_criteria": ["hospitalisation"],
        "causality": "possible",
        "action_taken": "not_applicable",
        "outcome": "not_recovered",
        "aware_at": aware.isoformat(),
        **changes,
    }


__all__ = ["app", "client"]  # the web specs' fixtures, used here


def unrelated_sae() -> dict[str, Any]:
    """An SAE known an hour ago, not related (so it begins no safety pause)."""
    return sae(NOW - dt.timedelta(hours=1), causality="unlikely")


def with_addresses(trial: Trial) -> None:
    admin = who(trial, Role.ADMINISTRATOR)
    for role in Role:
        set_email(trial.engine, admin, username(role), f"{username(role)}@hospital.example")


def outbox(trial: Trial) -> list[Any]:
    with session_scope(trial.engine) as session:
        return list(session.execute(select(email_outbox).order_by(email_outbox.c.id)).all())


def smtp(server: DebugSMTPServer | None, **changes: Any) -> Settings:
    values: dict[str, Any] = {"smtp_security": "none", "email_from": "trialwright@hospital.example"}
    if server is not None:
        values.update(smtp_host="127.0.0.1", smtp_port=server.port)
    return Settings(**{**values, **changes})


def mime_texts(server: DebugSMTPServer, address: str) -> list[str]:
    """Every message to ``address``: its headers (decoded) and its decoded subject and body, together (not the raw
    MIME payload, whose base64 letters would match a short word such as ``pbs`` by chance)."""
    out = []
    for r in server.received:
        if address in r.rcpt_to:
            parsed = email.message_from_bytes(r.data, policy=policy.default)
            body = parsed.get_body(preferencelist=("plain",))
            assert body is not None
            headers = "\n".join(f"{k}: {v}" for k, v in parsed.items())
            out.append(f"{headers}\n{parsed['Subject']}\n{body.get_content()}")
    return out


@pytest.fixture
def server() -> Iterator[DebugSMTPServer]:
    with DebugSMTPServer() as s:
        yield s


@pytest.fixture
def randomized(trial: Trial) -> str:
    pid = enrolled_ten_days_ago(trial)
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    return pid


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def test_an_sae_writes_its_e_mails_in_the_same_transaction_as_the_report(
    trial: Trial, randomized: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    investigator = who(trial, Role.INVESTIGATOR)
    event = report_event(trial.engine, investigator, randomized, unrelated_sae())
    rows = outbox(trial)
    # The SAE's recipients (DSMB, investigator and monitor at the event's site), one message each.
    assert sorted((r.kind, r.recipient) for r in rows) == [
        ("sae", "dsmb-member"), ("sae", "investigator"), ("sae", "monitor")
    ]  # fmt: skip
    assert {r.state for r in rows} == {"pending"} and {r.participant_id for r in rows} == {randomized}
    assert all(event.ae_number in r.dedupe_key for r in rows)
    assert not any(w.lower() in r.params.lower() for r in rows for w in (*ARM_WORDS, "arm"))

    # If the transaction fails after the outbox rows were written, neither the event nor its e-mails remain.
    from trialwright.services.safety import reports

    real = reports.enqueue

    def then_fail(*args: Any, **kwargs: Any) -> int:
        real(*args, **kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(reports, "enqueue", then_fail)
    with pytest.raises(RuntimeError):
        report_event(trial.engine, investigator, randomized, unrelated_sae())
    assert len(outbox(trial)) == 3
    with session_scope(trial.engine) as session:
        assert len(session.execute(select(adverse_events)).all()) == 1


def test_the_sender_delivers_each_message_to_its_recipient_over_smtp(
    trial: Trial, randomized: str, server: DebugSMTPServer
) -> None:
    with_addresses(trial)
    aware = NOW - dt.timedelta(hours=1)
    event = report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, sae(aware, causality="unlikely"))
    report = send_due(trial.engine, smtp(server))
    assert (report.sent, report.retrying, report.failed) == (3, 0, 0)
    assert sorted(a for r in server.received for a in r.rcpt_to) == [
        "dsmb-member@hospital.example", "investigator@hospital.example", "monitor@hospital.example"
    ]  # fmt: skip
    assert {r.mail_from for r in server.received} == {"trialwright@hospital.example"}
    [text] = mime_texts(server, "investigator@hospital.example")
    assert event.ae_number in text and randomized in text
    # The awareness time on the site's clock, the zone named (Tehran: UTC+03:30, no daylight saving since 2022).
    # Its date in the recipient's calendars (the accounts' default: both, as on the pages; jdatetime's Solar Hijri).
    local = aware.astimezone(dt.timezone(dt.timedelta(hours=3, minutes=30)))
    jalali = jdatetime.date.fromgregorian(date=local.date()).strftime("%Y/%m/%d")
    assert f"{local:%Y-%m-%d}, {jalali} {local:%H:%M} Asia/Tehran (+03:30)" in text
    assert {r.state for r in outbox(trial)} == {"sent"} and all(r.sent_at is not None for r in outbox(trial))
    # Sent once: a second run finds nothing to send.
    assert send_due(trial.engine, smtp(server)).sent == 0 and len(server.received) == 3


def test_a_failure_is_retried_and_recorded_not_lost(trial: Trial, randomized: str, server: DebugSMTPServer) -> None:
    with_addresses(trial)
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, unrelated_sae())
    server.refuse(3)  # the mail server answers 451 to all three
    now = dt.datetime.now(dt.UTC)
    first = send_due(trial.engine, smtp(server), now=now)
    assert (first.sent, first.retrying, first.failed) == (0, 3, 0) and server.received == []
    rows = outbox(trial)
    assert {r.state for r in rows} == {"pending"} and {r.attempts for r in rows} == {1}
    assert all("451" in (r.last_error or "") for r in rows)
    assert all(r.next_attempt_at == now + dt.timedelta(minutes=1) for r in rows)  # waits before retrying
    assert send_due(trial.engine, smtp(server), now=now).sent == 0  # not yet: nothing sent twice, nothing early
    second = send_due(trial.engine, smtp(server), now=now + dt.timedelta(minutes=2))
    assert second.sent == 3 and len(server.received) == 3
    assert {(r.state, r.attempts) for r in outbox(trial)} == {("sent", 2)}


def test_a_message_that_keeps_failing_ends_recorded_as_failed(trial: Trial, randomized: str) -> None:
    with_addresses(trial)
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, unrelated_sae())
    nobody = Settings(
        smtp_host="127.0.0.1", smtp_port=9, smtp_security="none", email_from="t@hospital.example", email_max_attempts=2
    )  # fmt: skip  (port 9: nothing listens, the connection is refused)
    now = dt.datetime.now(dt.UTC)
    assert send_due(trial.engine, nobody, now=now).retrying == 3
    assert send_due(trial.engine, nobody, now=now + dt.timedelta(hours=1)).failed == 3
    assert {(r.state, r.attempts) for r in outbox(trial)} == {("failed", 2)}
    assert all(r.last_error and r.sent_at is None for r in outbox(trial))
    assert email_status(trial.engine, nobody).counts == {"failed": 3}


def test_without_a_mail_server_nothing_is_sent_or_claimed_sent(trial: Trial, randomized: str) -> None:
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, unrelated_sae())
    off = Settings()
    with pytest.raises(EmailNotConfigured, match="TRIALWRIGHT_SMTP_HOST is not set"):
        send_due(trial.engine, off)
    assert {(r.state, r.attempts) for r in outbox(trial)} == {("pending", 0)}
    lines = email_status(trial.engine, off).lines()
    assert lines[0].startswith("E-mail: OFF") and "nothing is sent" in lines[0]
    assert lines[1] == "Outbox: 3 pending"
    # A host without a From address is refused too, not half-configured.
    half = Settings(smtp_host="mail.hospital.example")
    with pytest.raises(EmailNotConfigured, match="email_from"):
        send_due(trial.engine, half)
    in_clear = smtp(None, smtp_host="mail.hospital.example", smtp_user="tw", smtp_password="pw")
    with pytest.raises(EmailNotConfigured, match="password in clear"):
        send_due(trial.engine, in_clear)
    # The command says so and leaves with status 2.
    from trialwright.cli.main import app

    result = CliRunner().invoke(app, ["email", "send", "--database", trial.url], env={"TRIALWRIGHT_SMTP_HOST": ""})
    assert result.exit_code == 2 and "nothing was sent" in result.output
    assert {r.state for r in outbox(trial)} == {"pending"}


def test_deadline_reminders_are_queued_once_per_recipient_and_stage(trial: Trial, randomized: str) -> None:
    aware = NOW - dt.timedelta(hours=30)  # its deadline passed 6 hours ago: the reminders are queued "back then"
    event = report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, sae(aware, causality="unlikely"))
    due = aware + dt.timedelta(hours=24)  # the protocol's 24 hours to the sponsor
    settings = Settings()  # reminders are queued whether or not e-mail is on
    assert queue_reminders(trial.engine, settings, now=due - dt.timedelta(hours=7)) == 0  # a quarter is 6 hours
    # "screener" is the tests' study coordinator at every site, who enrolled the participant (tests.trialfixtures).
    responsible = ["data-manager", "investigator", "monitor", "screener", "study-coordinator"]
    assert queue_reminders(trial.engine, settings, now=due - dt.timedelta(hours=5)) == 5
    assert queue_reminders(trial.engine, settings, now=due - dt.timedelta(hours=1)) == 0  # once
    soon = [r for r in outbox(trial) if r.kind == "deadline_due_soon"]
    assert sorted(r.recipient for r in soon) == responsible
    assert {json.loads(r.params)["at"] for r in soon} == {due.isoformat()}
    assert queue_reminders(trial.engine, settings, now=due + dt.timedelta(minutes=1)) == 5  # now overdue
    assert queue_reminders(trial.engine, settings, now=due + dt.timedelta(hours=3)) == 0
    # Submitted: no more reminders for it, however late.
    record_submission(
        trial.engine,
        who(trial, Role.INVESTIGATOR),
        event.ae_number,
        "sae_to_sponsor",
        submitted_at=(due + dt.timedelta(hours=4)).isoformat(),
    )  # fmt: skip (late, in the past)
    before = len(outbox(trial))
    queue_reminders(trial.engine, settings, now=due + dt.timedelta(days=30))
    assert not [r for r in outbox(trial)[before:] if "sae_to_sponsor" in r.dedupe_key]


def _notify_a_blinded_role(tmp_path: Path, database_url: str) -> Trial:
    raw = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    raw["masking"]["unblinding_notify"] = ["unblinded_statistician", "dsmb_member", "monitor"]
    path = tmp_path / "notify-monitor.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return make_trial(database_url, load_protocol(path))


def test_an_unblinding_e_mail_names_no_arm_to_anyone(
    tmp_path: Path, database_url: str, server: DebugSMTPServer
) -> None:
    trial = _notify_a_blinded_role(tmp_path, database_url)
    try:
        with_addresses(trial)
        set_preferences(trial.engine, "monitor", language="fa")
        pid = enrolled_ten_days_ago(trial)
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
        revealed = emergency_unblind(
            trial.engine, who(trial, Role.INVESTIGATOR), pid, reason="anaphylaxis", password=PASSWORD
        )
        assert send_due(trial.engine, smtp(server)).sent == 3
        protocol = current_protocol(trial.engine).protocol
        words = {*arm_words(protocol), *ARM_WORDS, revealed.arm, revealed.preparation_code}
        for role in ("monitor", "unblinded-statistician", "dsmb-member"):
            [text] = mime_texts(server, f"{role}@hospital.example")
            assert pid in text and "investigator" in text  # whom, by whom
            named = [w for w in words if w.lower() in text.lower()]
            assert named == [], f"{role}'s e-mail names {named}"
        # The reason is arm-revealing in the audit trail (docs/roles.md): the masked monitor does not get it.
        [persian] = mime_texts(server, "monitor@hospital.example")
        assert "anaphylaxis" not in persian and "پوشیده" in persian
        assert "رمزگشایی اضطراری" in persian and "Asia/Tehran" in persian
        for role in ("unblinded-statistician", "dsmb-member"):
            [text] = mime_texts(server, f"{role}@hospital.example")
            assert "Reason given: anaphylaxis" in text
    finally:
        trial.engine.dispose()


def test_a_reason_naming_an_arm_reaches_only_the_unblinded_roles(
    tmp_path: Path, database_url: str, server: DebugSMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial = _notify_a_blinded_role(tmp_path, database_url)
    try:
        with_addresses(trial)
        pid = enrolled_ten_days_ago(trial)
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
        reason = "suspected reaction to placebo or exosomes"
        emergency_unblind(trial.engine, who(trial, Role.INVESTIGATOR), pid, reason=reason, password=PASSWORD)
        # The second line of defence: were a masked recipient's message still to name an arm, it is withheld.
        from trialwright.services.email import sender

        real = sender.render

        def leaky(*args: Any, **kwargs: Any) -> Any:
            kwargs["masked"] = False  # as if the reason were not masked
            return real(*args, **kwargs)

        monkeypatch.setattr(sender, "render", leaky)
        report = send_due(trial.engine, smtp(server))
        assert (report.sent, report.failed) == (2, 1)
        assert mime_texts(server, "monitor@hospital.example") == []
        [withheld] = [r for r in outbox(trial) if r.recipient == "monitor"]
        assert withheld.state == "failed" and "would name an arm" in (withheld.last_error or "")
        assert all(reason in t for t in mime_texts(server, "dsmb-member@hospital.example"))
    finally:
        trial.engine.dispose()


def test_an_sae_e_mail_to_blinded_staff_names_no_arm(trial: Trial, randomized: str, server: DebugSMTPServer) -> None:
    with_addresses(trial)
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), randomized, sae(NOW - dt.timedelta(hours=1)))  # related
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    queue_reminders(trial.engine, Settings(), now=later)
    assert send_due(trial.engine, smtp(server), now=later).failed == 0
    protocol = current_protocol(trial.engine).protocol
    words = {*arm_words(protocol), *ARM_WORDS}
    texts = [t for role in ("investigator", "monitor", "study-coordinator", "data-manager")
             for t in mime_texts(server, f"{role}@hospital.example")]  # fmt: skip
    kinds = {r.kind for r in outbox(trial) if r.recipient == "investigator"}
    assert kinds == {"sae", "pause", "deadline_overdue"}  # the related SAE also began the safety pause
    # A related unexpected SAE is a SUSAR: two deadlines overdue (to the sponsor, the SUSAR's initial report), so
    # investigator 4 (sae, pause, 2 reminders), monitor 3 (sae, 2), coordinator 3 (pause, 2), data manager 2.
    assert len(texts) == 12
    for text in texts:
        assert [w for w in words if w.lower() in text.lower()] == []


def test_an_address_is_set_by_its_owner_or_an_administrator_and_audited(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    set_email(trial.engine, coordinator, "study-coordinator", "sc@hospital.example")
    with pytest.raises(UserError, match="your own e-mail address"):
        set_email(trial.engine, coordinator, "monitor", "m@hospital.example")
    with pytest.raises(UserError, match="not an e-mail address"):
        set_email(trial.engine, coordinator, "study-coordinator", "sc at hospital")
    changed = set_email(trial.engine, who(trial, Role.ADMINISTRATOR), "study-coordinator", "coord@hospital.example")
    assert changed.email == "coord@hospital.example"
    entries = audit.entries(trial.engine, action_prefix="user.email_changed")
    assert sorted((e.actor, json.loads(e.new_value or "{}")["email"]) for e in entries) == [
        ("administrator", "coord@hospital.example"), ("study-coordinator", "sc@hospital.example")
    ]  # fmt: skip


def test_the_profile_page_sets_ones_own_address_and_the_users_page_anyones(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.MONITOR)
    page = client.get("/profile")
    assert 'id="email-address"' in page.text
    refused = client.post("/profile/email", data={"email": "not an address", "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 400 and 'value="not an address"' in refused.text  # what was typed is kept
    done = client.post("/profile/email", data={"email": "m@hospital.example", "csrf_token": csrf_of(page.text)},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/profile"
    monitor = get_user(trial.engine, "monitor")
    assert monitor is not None and monitor.email == "m@hospital.example"
    # The page after saving says so, once (a reload shows the page without it).
    after = client.get("/profile").text
    assert 'data-testid="email-saved">Your e-mail address is saved: <bdi>m@hospital.example</bdi>' in after
    assert 'data-testid="email-saved"' not in client.get("/profile").text
    cleared = client.post("/profile/email", data={"email": "", "csrf_token": csrf_of(page.text)})
    assert cleared.status_code == 303 and "no e-mail is sent to you" in client.get("/profile").text
    # Another's address: an administrator's work (the route is theirs alone).
    assert client.post("/admin/users/investigator/email", data={"email": "x@hospital.example",
                       "csrf_token": csrf_of(page.text)}).status_code == 403  # fmt: skip
    client.cookies.clear()
    sign_in(client, Role.ADMINISTRATOR)
    users_page = client.get("/admin/users")
    saved = client.post("/admin/users/investigator/email",
                        data={"email": "pi@hospital.example", "csrf_token": csrf_of(users_page.text)})  # fmt: skip
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/users"
    after = client.get("/admin/users").text
    assert 'value="pi@hospital.example"' in after
    assert 'data-testid="email-saved">E-mail address saved: investigator · <bdi>pi@hospital.example</bdi>' in after
    assert 'data-testid="email-saved"' not in client.get("/admin/users").text
    investigator = get_user(trial.engine, "investigator")
    assert investigator is not None and investigator.email == "pi@hospital.example"


@pytest.mark.parametrize(
    ("environment", "said"),
    [
        ({}, "E-mail: OFF (TRIALWRIGHT_SMTP_HOST is not set)"),
        ({"TRIALWRIGHT_SMTP_HOST": "mail.hospital.example"}, "E-mail: OFF, email_from: set TRIALWRIGHT_EMAIL_FROM"),
        (
            {
                "TRIALWRIGHT_SMTP_HOST": "mail.hospital.example",
                "TRIALWRIGHT_EMAIL_FROM": "t@hospital.example",
                "TRIALWRIGHT_SMTP_USER": "tw",
                "TRIALWRIGHT_SMTP_PASSWORD": "s3cret-smtp",
            },
            "E-mail: on, through mail.hospital.example:587 (starttls) as tw, from t@hospital.example",
        ),
    ],
    ids=["off", "half", "on"],
)
def test_start_says_whether_e_mail_is_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], said: str
) -> None:
    from trialwright.cli import serve
    from trialwright.cli.main import app

    monkeypatch.setattr(serve, "run_server", lambda *args, **kwargs: None)  # everything but serving
    for name in (
        "TRIALWRIGHT_SMTP_HOST",
        "TRIALWRIGHT_EMAIL_FROM",
        "TRIALWRIGHT_SMTP_USER",
        "TRIALWRIGHT_SMTP_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    database = f"sqlite:///{tmp_path / 'trial.db'}"
    result = CliRunner().invoke(
        app, ["start", "--protocol", str(FIRST_PROTOCOL), "--database", database], env=environment
    )
    assert result.exit_code == 0, result.output
    assert said in " ".join(result.output.split())
    assert "s3cret-smtp" not in result.output


def test_start_sends_in_the_background_only_when_e_mail_is_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trialwright.cli import serve
    from trialwright.cli.main import app

    monkeypatch.setattr(serve, "run_server", lambda *args, **kwargs: None)
    monkeypatch.delenv("TRIALWRIGHT_SMTP_HOST", raising=False)
    command = ["start", "--protocol", str(FIRST_PROTOCOL), "--database", f"sqlite:///{tmp_path / 'trial.db'}"]
    off = CliRunner().invoke(app, [*command, "--email-every", "5"])
    assert off.exit_code == 1 and "--email-every: e-mail is off" in " ".join(off.output.split())
    on = CliRunner().invoke(
        app,
        [*command, "--email-every", "5"],
        env={"TRIALWRIGHT_SMTP_HOST": "127.0.0.1", "TRIALWRIGHT_EMAIL_FROM": "t@hospital.example"},
    )
    assert on.exit_code == 0 and "the outbox is sent every 5 minute(s)" in on.output
