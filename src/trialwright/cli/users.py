"""``trialwright user``: accounts, roles, sites, API tokens and the two-person rule, from the command line.

Commands act as the named ``--actor`` (default: the operating-system user running them, recorded in the
audit trail as ``cli:NAME``), a label that may not be an account's name: acting as an account (``--as``) takes
its password, and so does every request under the two-person rule and an API token for an unblinded account.
"""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from typing import TYPE_CHECKING, Annotated

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
    settings_for,
    to_jsonable,
    trial_engine,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from trialwright.protocol import Protocol

__all__ = ["app"]

app = typer.Typer(help="Manage user accounts, roles, sites and API tokens.", no_args_is_help=True)

ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who is acting, for the audit trail (default: cli:<os user>).")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input instead of a prompt.")
]


RequesterOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Your own account, whose password is asked (or read from TRIALWRIGHT_PASSWORD / --password-stdin); "
        "needed when the change is a request under the two-person rule.",
    ),
]


def _actor(actor: str | None, engine: Engine | None = None) -> str:
    """The audit trail's label for an unauthenticated command; never an account's name (that needs --as)."""
    if actor and engine is not None:
        from trialwright.services.users import get_user

        if get_user(engine, actor) is not None:
            fail(
                f"--actor: {actor!r} is an account; to act as it, use --as {actor} (its password is asked)",
                ExitCode.USAGE,
            )
    return actor or f"cli:{getpass.getuser()}"


def _acting(engine: Engine, as_: str | None, actor: str | None, password_stdin: bool) -> str:
    if as_ is None:
        return _actor(actor, engine)
    return str(authenticate_as(engine, as_, password_stdin=password_stdin, why="request").username)


def _engine(database: str | None):  # type: ignore[no-untyped-def]
    return trial_engine(database)


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Repeat the password", hide_input=True)
    if first != second:
        fail("password: the two entries differ", ExitCode.USAGE)
    return str(first)


def _utc(moment: dt.datetime) -> dt.datetime:
    """A stored time on the clock the table's heading names (UTC; a naive one is UTC already)."""
    return moment.astimezone(dt.UTC) if moment.tzinfo is not None else moment


def _protocol(engine: Engine) -> Protocol:
    from trialwright.services.trial import current_protocol

    return current_protocol(engine).protocol


def _show_change(change) -> None:  # type: ignore[no-untyped-def]
    if change.pending is not None:
        r = change.pending
        console.print(
            f"Two-person rule: request {r.id} ({r.kind.value} {r.username}, {r.role.value}) waits for a second "
            "person to approve it (`trialwright user requests`, `trialwright user approve`).",
            highlight=False,
        )
    elif change.token is not None:
        t = change.token
        console.print(
            f"Set-password token for {t.username} (shown only this once; hand it to this person only; it works once "
            f"and expires {t.expires_at:%Y-%m-%d %H:%M} UTC). They open {t.path} in the web app or run "
            "`trialwright user set-password --token TOKEN`:",
            highlight=False,
        )
        typer.echo(t.token)


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="The new user's name (letters, digits, . _ -).")],
    role: Annotated[str, typer.Option("--role", help="administrator, investigator, study_coordinator, ...")],
    site: Annotated[list[str] | None, typer.Option("--site", help="A site code; repeat for several.")] = None,
    full_name: Annotated[str | None, typer.Option("--full-name", help="The name shown on pages.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail and the approver.")] = "",
    as_: RequesterOption = None,
    password_stdin: PasswordStdin = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Create a user with a role and sites; prints a one-time set-password token (never a password). An
    unblinded, DSMB or approving account is only requested: a second person approves it (two-person rule).
    As JSON: username, pending (the request, or null) and token (null while pending; the token itself at
    token.token), the shape that user approve prints as JSON too."""
    from trialwright.services.approvals import request_create
    from trialwright.services.users import UserError

    engine = _engine(database)
    try:
        change = request_create(
            engine,
            _protocol(engine),
            actor=_acting(engine, as_, actor, password_stdin),
            username=username,
            role=role,
            sites=site or [],
            full_name=full_name,
            reason=reason,
        )
    except UserError as exc:
        fail_with(exc)
    if emit(change, as_json):
        return
    if change.pending is None:
        console.print(f"Created {change.username}.", highlight=False)
    _show_change(change)


@app.command("list")
def list_(as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """List every user with role, sites and state."""
    from rich.table import Table

    from trialwright.services.users import list_users

    users = list_users(_engine(database))
    if emit(users, as_json):
        return
    table = Table("username", "full name", "role", "sites", "state")
    for u in users:
        table.add_row(u.username, u.full_name, u.role.value, ", ".join(u.sites), "active" if u.active else "disabled")
    console.print(table)


@app.command("disable")
def disable(
    username: Annotated[str, typer.Argument(help="The user to disable.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit trail.")] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Disable a user: their sessions end and their API tokens are revoked."""
    from trialwright.services.users import UserError, disable_user

    try:
        engine = _engine(database)
        user = disable_user(engine, username, actor=_actor(actor, engine), reason=reason)
    except UserError as exc:
        fail_with(exc)
    if not emit(user, as_json):
        console.print(f"Disabled {username}.")


@app.command("sites")
def sites(
    username: Annotated[str, typer.Argument(help="The user whose sites change.")],
    site: Annotated[list[str], typer.Option("--site", help="A site code they now work at; repeat for several.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Move a site-scoped user to other sites (audited with the old and new sites and the reason); what they see
    changes at their next request. An unblinded account may lose sites this way but gains none."""
    from trialwright.domain.approvals import guarded_roles
    from trialwright.services.users import UserError, set_sites

    try:
        engine = _engine(database)
        guarded = guarded_roles(_protocol(engine).masking.account_approvers)
        user = set_sites(engine, username, site, actor=_actor(actor, engine), reason=reason, guarded=guarded)
    except UserError as exc:
        fail_with(exc)
    if not emit(user, as_json):
        console.print(f"{username} now works at {', '.join(user.sites)}.")


@app.command("reset-password")
def reset_password(
    username: Annotated[str, typer.Argument(help="Whose password to reset.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail and the approver.")] = "",
    as_: RequesterOption = None,
    password_stdin: PasswordStdin = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Retire a user's password and print a one-time set-password token; for an unblinded, DSMB or approving
    account, only a request that a second person approves."""
    from trialwright.services.approvals import request_reset
    from trialwright.services.users import UserError

    engine = _engine(database)
    try:
        change = request_reset(
            engine, _protocol(engine), username, actor=_acting(engine, as_, actor, password_stdin), reason=reason
        )
    except UserError as exc:
        fail_with(exc)
    if emit(change, as_json):
        return
    if change.pending is None:
        console.print(f"Password of {change.username} reset: it no longer works.", highlight=False)
    _show_change(change)


@app.command("enable")
def enable(
    username: Annotated[str, typer.Argument(help="The disabled user to re-enable.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail and the approver.")] = "",
    as_: RequesterOption = None,
    password_stdin: PasswordStdin = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Re-enable a disabled user; for an unblinded, DSMB or approving account, only a request."""
    from trialwright.services.approvals import enable as enable_account
    from trialwright.services.users import UserError

    engine = _engine(database)
    try:
        change = enable_account(
            engine, _protocol(engine), username, actor=_acting(engine, as_, actor, password_stdin), reason=reason
        )
    except UserError as exc:
        fail_with(exc)
    if emit(change, as_json):
        return
    if change.pending is None:
        console.print(f"Enabled {change.username}.", highlight=False)
    _show_change(change)


@app.command("requests")
def requests(as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """List the requests waiting for a second person (two-person rule)."""
    from rich.table import Table

    from trialwright.services.approvals import pending_requests

    table = Table("id", "request", "username", "role", "sites", "requested by", "at (UTC)", "reason")
    rows = pending_requests(_engine(database))
    if emit(rows, as_json):
        return
    for r in rows:
        table.add_row(
            str(r.id), r.kind.value, r.username, r.role.value, ", ".join(r.sites), r.requested_by,
            f"{_utc(r.requested_at):%Y-%m-%d %H:%M}", r.reason,
        )  # fmt: skip
    console.print(table if rows else "No request is waiting.")


AsOption = Annotated[
    str, typer.Option("--as", help="Your own account (an approving role); your password is asked to confirm.")
]


def _approver(engine, username: str, password_stdin: bool):  # type: ignore[no-untyped-def]
    return authenticate_as(engine, username, password_stdin=password_stdin, why="approve")


@app.command("approve")
def approve(
    request_id: Annotated[int, typer.Argument(help="The request's id (see `trialwright user requests`).")],
    as_: AsOption,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")] = "",
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Approve a request as a second person of an approving role (never your own request or account); prints
    the set-password token of a new account or reset once. As JSON: the document that user add prints
    (username, pending, token, the token itself at token.token) with the request's id (request) and
    approved_by."""
    from trialwright.services.approvals import approve as approve_request
    from trialwright.services.users import UserError

    engine = _engine(database)
    approver = _approver(engine, as_, password_stdin)
    try:
        change = approve_request(engine, _protocol(engine), request_id, approver, reason=reason)
    except UserError as exc:
        fail_with(exc)
    # One shape with `user add`, `reset-password` and `enable` (username, pending, token: the set-password token
    # at token.token), plus which request and who approved it.
    if emit({**to_jsonable(change), "request": request_id, "approved_by": approver.username}, as_json):
        return
    console.print(f"Request {request_id} approved by {approver.username}.", highlight=False)
    _show_change(change)


@app.command("reject")
def reject(
    request_id: Annotated[int, typer.Argument(help="The request's id (see `trialwright user requests`).")],
    as_: AsOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Reject a request (an approver), or withdraw your own."""
    from trialwright.services.approvals import reject as reject_request
    from trialwright.services.users import UserError

    engine = _engine(database)
    approver = _approver(engine, as_, password_stdin)
    try:
        rejected = reject_request(engine, _protocol(engine), request_id, approver, reason=reason)
    except UserError as exc:
        fail_with(exc)
    if not emit({"request": rejected, "rejected_by": approver.username}, as_json):
        console.print(f"Request {request_id} rejected by {approver.username}.", highlight=False)


@app.command("set-password")
def set_password(
    token: Annotated[str, typer.Option("--token", help="The one-time set-password token you were given.")],
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Choose your own password with a one-time set-password token."""
    from trialwright.services.credentials import set_password as set_with_token
    from trialwright.services.users import UserError

    engine = _engine(database)
    try:
        username = set_with_token(engine, token, _password(password_stdin))
    except UserError as exc:
        fail_with(exc)
    if not emit({"username": username, "password_set": True}, as_json):
        console.print(f"Password of {username} set; sign in with it.", highlight=False)


@app.command("notices")
def notices(as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """What the two-person rule addressed to the sponsor contact, newest first (to forward to them)."""
    from trialwright.services.approvals import sponsor_notices

    found = sponsor_notices(_engine(database))
    if emit([{"at": at, "subject": subject} for at, subject in found], as_json):
        return
    for at, subject in found:
        console.print(f"{at:%Y-%m-%d %H:%M} UTC  {subject}", highlight=False)


@app.command("token")
def token(
    username: Annotated[str, typer.Argument(help="Whose token to issue.")],
    name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "cli",
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, help="How long the token lives (default and most: the api_token_days setting)."),
    ] = None,
    redcap: Annotated[
        bool, typer.Option("--redcap", help="A REDCap-style token (32 uppercase hex characters) for /redcap/api/.")
    ] = False,
    password_stdin: PasswordStdin = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Issue an API token for a user; it is printed once and stored only as a hash, and expires. A token for an
    unblinded account (it reads the arms) is issued to its holder only: their password is asked."""
    from trialwright.domain.masking import UNBLINDED_ROLES
    from trialwright.services.tokens import issue_token
    from trialwright.services.users import UserError, get_user

    max_days = settings_for(database).api_token_days
    engine = _engine(database)
    holder = get_user(engine, username)
    if holder is not None and holder.role in UNBLINDED_ROLES:
        acting = str(authenticate_as(engine, holder.username, password_stdin=password_stdin, why="token").username)
    else:
        acting = _actor(actor, engine)
    try:
        value, issued = issue_token(
            engine, username, name=name, actor=acting, days=days, max_days=max_days, redcap=redcap
        )
    except UserError as exc:
        fail_with(exc)
    if emit({"token": value, **to_jsonable(issued), "state": issued.state()}, as_json):
        return
    typer.echo(value)  # alone on standard output, for scripts; `trialwright user tokens` shows its expiry


@app.command("tokens")
def tokens(
    username: Annotated[str, typer.Argument(help="Whose tokens to list.")],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """List a user's API tokens (never the tokens themselves): id, name, dates and state."""
    from rich.table import Table

    from trialwright.services.tokens import list_tokens
    from trialwright.services.users import UserError

    try:
        found = list_tokens(_engine(database), username)
    except UserError as exc:
        fail_with(exc)
    if emit([{**to_jsonable(t), "state": t.state()} for t in found], as_json):
        return
    table = Table("id", "name", "created (UTC)", "last used (UTC)", "expires (UTC)", "state")
    for t in found:
        used = f"{_utc(t.last_used_at):%Y-%m-%d %H:%M}" if t.last_used_at else ""
        table.add_row(str(t.id), t.name, f"{_utc(t.created_at):%Y-%m-%d %H:%M}", used,
                      f"{_utc(t.expires_at):%Y-%m-%d %H:%M}", t.state())  # fmt: skip
    console.print(table)


@app.command("revoke-token")
def revoke_token(
    username: Annotated[str, typer.Argument(help="Whose token it is.")],
    token_id: Annotated[
        int, typer.Argument(min=1, max=2**31 - 1, help="The token's id (see: trialwright user tokens USERNAME).")
    ],
    actor: ActorOption = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Revoke one of a user's API tokens: it answers no request from now on."""
    from trialwright.services.tokens import revoke_token

    engine = _engine(database)
    if not revoke_token(engine, token_id, actor=_actor(actor, engine), owner=username):
        fail(f"token: {username} has no unrevoked token {token_id}", ExitCode.NOT_FOUND)
    if not emit({"username": username, "token_id": token_id, "revoked": True}, as_json):
        console.print(f"Token {token_id} of {username} revoked.")


@app.command("email")
def email(
    username: Annotated[str, typer.Argument(help="Whose address to set (your own, or anyone's as an administrator).")],
    address: Annotated[str, typer.Argument(help='The e-mail address notifications go to; "" removes it.')],
    as_: Annotated[str, typer.Option("--as", help="Your own account; your password is asked to confirm.")],
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Set the e-mail address an account's notifications are sent to (audited)."""
    from trialwright.services.users import UserError, set_email

    engine = _engine(database)
    actor = authenticate_as(engine, as_, password_stdin=password_stdin, why="change an e-mail address")
    try:
        user = set_email(engine, actor, username, address)
    except UserError as exc:
        fail_with(exc)
    if not emit(user, as_json):
        console.print(f"E-mail address of {user.username}: {user.email or 'none'}", highlight=False)
