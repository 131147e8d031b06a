"""``trialwright database``: the lock readiness report, the trial lock (refused while anything blocks it, unless
overridden with a reason and the data manager's password) and the soft locks of a site or participant."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from trialwright.cli.common import (
    DatabaseOption,
    ExitCode,
    JsonOption,
    console,
    emit,
    fail_with,
    policy_for,
    read_password,
)
from trialwright.cli.screening import AsOption, _context

__all__ = ["database_app"]

database_app = typer.Typer(
    help="Lock readiness, the trial lock and soft locks of a site or participant (data manager).", no_args_is_help=True
)
SiteOption = Annotated[str | None, typer.Option("--site", help="A site code, e.g. RAZ.")]
ParticipantOption = Annotated[str | None, typer.Option("--participant", help="A participant id, e.g. RAZ-001.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (audited).")]


def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    from trialwright.services.errors import FormError
    from trialwright.services.lock import LockBlocked

    try:
        return function(*args, **kwargs)
    except LockBlocked as exc:
        console.print(exc.readiness.summary(limit=20), highlight=False, markup=False)
        fail_with(exc, str(exc).split(". First:", 1)[0] + ".")
    except FormError as exc:
        fail_with(exc)


@database_app.command("readiness")
def readiness(
    user: AsOption,
    site: SiteOption = None,
    limit: Annotated[int, typer.Option("--limit", help="Blockers listed one by one (0: all).")] = 50,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """What blocks the lock, per site and participant; exit status 0 when nothing does, 1 when something does."""
    from trialwright.services.lock import lock_state
    from trialwright.services.readiness import lock_readiness

    engine, actor = _context(user, database)
    report = _run(lock_readiness, engine, actor, site)
    summary = {"ready": report.ready, "counts": report.counts(), "by_site": report.by_site(), "report": report}
    if not emit(summary, as_json):
        state = lock_state(engine)
        if state.locked:  # said first: the blockers below are those the lock stands over, never a lock still to make
            console.print(f"The trial database is locked since {state.at:%Y-%m-%d %H:%M} UTC by {state.by}: "
                          f"{state.reason}", highlight=False, markup=False)  # fmt: skip
        console.print(report.summary(limit=limit or None), highlight=False, markup=False)
    if not report.ready:
        raise typer.Exit(ExitCode.REFUSED)


@database_app.command("review")
def review(
    user: AsOption,
    reason: Annotated[
        str, typer.Option("--reason", help="What you reviewed and found (audited; masked readers never read it).")
    ],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Record that the forms kept from masked readers (they reveal the arm) are ready: an unmasked data manager or
    monitor of every site, with your password. Refused, naming the rule, when the trial masks you, when no form is
    withheld, or when those forms are not ready as you see them (the blockers on them are listed)."""
    from trialwright.services.readiness import review_withheld

    engine, actor = _context(user, database)
    password = read_password(password_stdin=password_stdin, prompt="Password")
    done = _run(review_withheld, engine, actor, reason, password=password, policy=policy_for(database))
    if not emit(done, as_json):
        console.print(f"Recorded: {', '.join(done.forms)} {done.said()}.", highlight=False, markup=False)


@database_app.command("lock")
def lock(
    user: AsOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the database is locked.")],
    override: Annotated[
        bool, typer.Option("--override", help="Lock although things block it (asks for your password; audited).")
    ] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Lock the trial database: afterwards no page, API call, import or command can change data. Refused while the
    readiness report lists anything, unless --override with your password."""
    from trialwright.services.lock import lock_trial, may_lock

    engine, actor = _context(user, database, may_lock)
    password = None
    if override:
        password = read_password(password_stdin=password_stdin, prompt="Password")
    state = _run(lock_trial, engine, actor, reason, password=password, policy=policy_for(database))
    if emit(state, as_json):
        return
    console.print("The trial database is locked.")
    if state.banner:
        console.print(state.banner, highlight=False, markup=False)


@database_app.command("unlock")
def unlock(user: AsOption, reason: ReasonOption, as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Unlock the trial database (audited with the reason)."""
    from trialwright.services.lock import unlock_trial

    engine, actor = _context(user, database)
    state = _run(unlock_trial, engine, actor, reason)
    if not emit(state, as_json):
        console.print("The trial database is unlocked.")


@database_app.command("soft-lock")
def soft_lock(
    user: AsOption,
    reason: ReasonOption,
    site: SiteOption = None,
    participant: ParticipantOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Soft-lock one site or one participant (e.g. for an interim analysis): their data cannot change."""
    from trialwright.services.lock import soft_lock as lock_one

    engine, actor = _context(user, database)
    done = _run(lock_one, engine, actor, reason, site=site, participant_id=participant)
    if not emit(done, as_json):
        console.print(f"The {done.scope} {done.target} is soft-locked.", highlight=False, markup=False)


@database_app.command("soft-unlock")
def soft_unlock(
    user: AsOption,
    reason: ReasonOption,
    site: SiteOption = None,
    participant: ParticipantOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Lift the soft lock of one site or one participant (audited with the reason)."""
    from trialwright.services.lock import soft_unlock as unlock_one

    engine, actor = _context(user, database)
    _run(unlock_one, engine, actor, reason, site=site, participant_id=participant)
    lifted = {"scope": "site" if site else "participant", "target": site or participant, "soft_locked": False}
    if not emit(lifted, as_json):
        console.print(f"The {lifted['scope']} {lifted['target']} is no longer soft-locked.", highlight=False,
                      markup=False)


@database_app.command("status")
def status(user: AsOption, as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """The trial lock and the soft locks now."""
    from trialwright.services.lock import lock_state, may_read_locks, soft_locks_for

    engine, actor = _context(user, database, may_read_locks)
    state = lock_state(engine)
    held = soft_locks_for(engine, actor)
    if emit({"lock": state, "soft_locks": held}, as_json):
        return
    if state.locked:
        console.print(f"The trial database is locked since {state.at:%Y-%m-%d %H:%M} UTC by {state.by}: {state.reason}",
                      highlight=False, markup=False)  # a reason is free text, never markup
        if state.banner:
            console.print(state.banner, highlight=False, markup=False)
    else:
        console.print("The trial database is open.")
    for s in held:
        console.print(f"Soft-locked {s.scope} {s.target} since {s.at:%Y-%m-%d %H:%M} UTC by {s.by}: {s.reason}",
                      highlight=False, markup=False)
