"""``trialwright screening``, ``trialwright consent`` and ``trialwright enrol``: scripting and imports.

Each command acts as a named user (``--as``), whose role and sites apply exactly as on the pages; data
comes as JSON (a file, or - for standard input).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from trialwright.cli.common import (
    DatabaseOption,
    ExitCode,
    JsonOption,
    authenticate_as,
    console,
    emit,
    fail,
    fail_with,
    keywords_of,
    trial_engine,
)

__all__ = ["consent_app", "enrol", "screening_app"]

screening_app = typer.Typer(help="Screen patients and read the screening log.", no_args_is_help=True)
consent_app = typer.Typer(help="Record consents and withdrawals.", no_args_is_help=True)

AsOption = Annotated[
    str,
    typer.Option(
        "--as",
        help="The user acting (their role and sites apply). An unblinded account (unblinded statistician, "
        "pharmacist, DSMB) is acted as by its holder only: its password is asked, or read from the "
        "TRIALWRIGHT_PASSWORD variable.",
    ),
]
DataOption = Annotated[str, typer.Option("--data", help="JSON file with the data, or - for standard input.")]


def _context(user: str, database: str | None, role_rule: Callable[[Any], None] | None = None):  # type: ignore[no-untyped-def]
    """The trial's engine and the acting user. ``role_rule`` (a service's ``may_...``) refuses a role that may never
    do the command with the service's words, before any password is asked."""
    from trialwright.domain.masking import UNBLINDED_ROLES
    from trialwright.services.users import get_user

    engine = trial_engine(database)
    actor = get_user(engine, user)
    if actor is None or not actor.active:
        fail(f"--as: no active user {user!r}", ExitCode.PERMISSION)
    if role_rule is not None:
        try:
            role_rule(actor)
        except Exception as exc:  # the service's refusal, its exit code from EXIT_CODES
            fail_with(exc)
    if actor.role in UNBLINDED_ROLES:
        # An account that reads the arms is acted as by its holder only: the audit trail must name who did it.
        actor = authenticate_as(engine, actor.username, why="unblinded command")
    return engine, actor


def _json(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        fail(f"--data: {source}: no such file", ExitCode.NOT_FOUND)
    except json.JSONDecodeError as exc:
        fail(f"--data: not valid JSON ({exc.msg} at line {exc.lineno})", ExitCode.USAGE)
    if not isinstance(data, dict):
        fail("--data: must be a JSON object", ExitCode.USAGE)
    return data


def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    from trialwright.domain.eligibility import ScreeningValueError
    from trialwright.services.screening import NotFound, ScreeningError

    try:
        return function(*args, **kwargs)
    except ScreeningValueError as exc:
        fail_with(exc, "; ".join(exc.problems))
    except (ScreeningError, NotFound) as exc:
        fail_with(exc)
    except TypeError as exc:
        fail(f"--data: {exc}", ExitCode.USAGE)


def _consent_line(n: int, c: Any) -> str:
    """One consent record: its kind, decision, who gave it (a representative with name and relationship), when (UTC)
    and by whom it was obtained, and on which form version."""
    given = c.given_by
    if c.representative_name or c.representative_relationship:
        named = ", ".join(p for p in (c.representative_name, c.representative_relationship) if p)
        given = f"{given} ({named})"
    at = c.obtained_at.astimezone(dt.UTC) if c.obtained_at.tzinfo is not None else c.obtained_at  # naive: UTC
    witness = f", witness {c.witness}" if c.witness else ""
    assent = ""
    if getattr(c, "assent", None) == "not_sought":
        assent = f"; assent not sought ({c.assent_not_sought_reason})"
    elif getattr(c, "assent", None) is not None:
        when = c.assent_obtained_at.astimezone(dt.UTC) if c.assent_obtained_at.tzinfo else c.assent_obtained_at
        form = f", assent form {c.assent_form_version}" if c.assent_form_version else ""
        assent = f"; assent: {c.assent}, sought {when:%Y-%m-%d %H:%M} UTC by {c.assent_obtained_by}{form}"
    return (f"  consent {n}: {c.kind}, {c.decision}, given by {given}, obtained {at:%Y-%m-%d %H:%M} UTC by "
            f"{c.obtained_by}{witness}, form {c.form_version}{assent}")  # fmt: skip


def _show(s: Any, as_json: bool = False) -> None:
    if emit(s, as_json):
        return
    console.print(f"[bold]{s.label}[/] ({s.site}, {s.screened_on.isoformat()}): {s.decision.value}", highlight=False)
    for f in s.failed:
        shown = ", ".join(f"{name} {value}" for name, value in f["values"].items())
        console.print(f"  fails {f['id']} {f['text']}: {shown}", highlight=False)
    if s.missing:
        console.print(f"  missing: {', '.join(s.missing)}", highlight=False)
    for n, c in enumerate(s.consents, 1):  # every consent record, in the order recorded (as --json lists them)
        console.print(_consent_line(n, c), highlight=False)
    if s.non_enrolment_reason:
        console.print(f"  not enrolled: {s.non_enrolment_reason} {s.non_enrolment_text or ''}", highlight=False)
    if s.participant:
        console.print(f"  participant: {s.participant.participant_id}", highlight=False)


@screening_app.command("add")
def add(
    user: AsOption,
    site: Annotated[str, typer.Option("--site", help="Site code.")],
    data: DataOption = "-",
    date: Annotated[
        str | None, typer.Option("--date", help="Screening date, YYYY-MM-DD (default today at the site).")
    ] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Screen a patient from a JSON object of screening values; prints the decision."""
    from trialwright.services.screening import screen

    engine, actor = _context(user, database)
    try:
        on = dt.date.fromisoformat(date) if date else None  # None: today at the site
    except ValueError:
        fail("--date: must be YYYY-MM-DD", ExitCode.USAGE)
    _show(_run(screen, engine, actor, site=site, screened_on=on, values=_json(data)), as_json)


@screening_app.command("list")
def list_(
    user: AsOption,
    site: Annotated[str | None, typer.Option("--site", help="Only this site.")] = None,
    decision: Annotated[str | None, typer.Option("--decision", help="eligible, not_eligible or incomplete.")] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """The screening log, within the user's sites."""
    from rich.table import Table

    from trialwright.services.screening import list_screenings

    engine, actor = _context(user, database)
    screenings = _run(list_screenings, engine, actor, site=site, decision=decision)
    if emit(screenings, as_json):
        return
    table = Table("screening", "date", "decision", "failed", "consent", "participant")
    for s in screenings:
        table.add_row(
            s.label,
            s.screened_on.isoformat(),
            s.decision.value,
            " ".join(f["id"] for f in s.failed),
            s.consents[-1].given_by if s.consents else "",
            s.participant.participant_id if s.participant else "",
        )
    console.print(table)


def _resolve(engine: Any, actor: Any, reference: str) -> int:
    from trialwright.services.screening import screening_id_of

    result: int = _run(screening_id_of, engine, actor, reference)
    return result


@screening_app.command("show")
def show(
    screening_id: Annotated[str, typer.Argument(help="The screening, as listed (e.g. RAZ-S0001) or its number.")],
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """One screening with its decision, consents and participant."""
    from trialwright.services.screening import get_screening

    engine, actor = _context(user, database)
    _show(_run(get_screening, engine, actor, _resolve(engine, actor, screening_id)), as_json)


@consent_app.command("record")
def record(
    screening_id: Annotated[str, typer.Argument(help="The screening, as listed (e.g. RAZ-S0001) or its number.")],
    user: AsOption,
    data: DataOption = "-",
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Record a consent from JSON: form_version, given_by (participant or representative), obtained_by,
    obtained_at (with zone), and for a representative representative_name and representative_relationship;
    optional witness, kind (initial, the default; reconsent; regained_capacity, the participant's own decision
    after a representative's consent) and decision (consent, the default, or refuse; after regained capacity:
    continue or withdraw); where the protocol seeks the participant's assent (eligibility.assent), assent (given,
    dissent or not_sought) with assent_obtained_by, assent_obtained_at (with zone) and assent_form_version, or
    assent_not_sought_reason."""
    from trialwright.services.screening import record_consent

    engine, actor = _context(user, database)
    body = keywords_of(record_consent, _json(data))
    try:
        body["obtained_at"] = dt.datetime.fromisoformat(str(body.get("obtained_at", "")))
    except ValueError:
        fail("obtained_at: must be an ISO date and time with its zone, e.g. 2021-05-20T10:30:00+03:30", ExitCode.USAGE)
    if body.get("assent_obtained_at") is not None:
        try:
            body["assent_obtained_at"] = dt.datetime.fromisoformat(str(body["assent_obtained_at"]))
        except ValueError:
            fail("assent_obtained_at: must be an ISO date and time with its zone", ExitCode.USAGE)
    _show(_run(record_consent, engine, actor, _resolve(engine, actor, screening_id), **body), as_json)


@consent_app.command("withdraw")
def withdraw(
    participant_id: Annotated[str, typer.Argument(help="The participant, e.g. RAZ-001.")],
    user: AsOption,
    scope: Annotated[str, typer.Option("--scope", help="intervention, follow_up or data_use.")],
    cause: Annotated[
        str,
        typer.Option(
            "--cause",
            help="withdrew_consent, lost_to_follow_up, investigator_decision, adverse_event or other.",
        ),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why, in words.")],
    date: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD (default today at the participant's site).")
    ] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Record a participant's withdrawal from one scope."""
    from trialwright.services.screening import withdraw as do_withdraw

    engine, actor = _context(user, database)
    try:
        on = dt.date.fromisoformat(date) if date else None  # None: today at the participant's site
    except ValueError:
        fail("--date: must be YYYY-MM-DD", ExitCode.USAGE)
    p = _run(do_withdraw, engine, actor, participant_id, scope=scope, cause=cause, reason=reason, withdrawn_on=on)
    if emit(p, as_json):
        return
    console.print(f"{p.participant_id} withdrawn from: {', '.join(p.withdrawn_scopes)}", highlight=False)


@consent_app.command("dissent-decision")
def dissent_decision(
    participant_id: Annotated[str, typer.Argument(help="The participant, e.g. RAZ-001.")],
    user: AsOption,
    decision: Annotated[str, typer.Option("--decision", help="withdraw or continue.")],
    reason: Annotated[
        str, typer.Option("--reason", help="continue: the ethics committee's reason; withdraw: why, in words.")
    ],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Record the investigator's decision on a child's dissent recorded with a re-consent after enrolment (ICH
    E11): withdraw (a withdrawal from the intervention, cause withdrew_consent, today at the site) or continue, with
    the ethics committee's reason. Until then the participant is on the investigator's work list."""
    from trialwright.services.screening.dissent import record_dissent_decision

    engine, actor = _context(user, database)
    d = _run(record_dissent_decision, engine, actor, participant_id, decision=decision, reason=reason)
    if emit({"participant_id": d.participant_id, "consent_id": d.consent_id, "decision": decision}, as_json):
        return
    console.print(f"{d.participant_id}: the dissent's decision recorded ({decision}).", highlight=False)


def enrol(
    screening_id: Annotated[str, typer.Argument(help="The screening, as listed (e.g. RAZ-S0001) or its number.")],
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Enrol an eligible, consented patient; prints the new participant id."""
    from trialwright.services.screening import enrol as do_enrol

    engine, actor = _context(user, database)
    s = _run(do_enrol, engine, actor, _resolve(engine, actor, screening_id))
    if emit(s, as_json):
        return
    console.print(f"Enrolled {s.label} as [bold]{s.participant.participant_id}[/].", highlight=False)
