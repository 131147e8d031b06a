"""``trialwright user``: accounts, roles, sites and API tokens, from the command line.

Commands act as the named ``--actor`` (default: the operating-system user running them, recorded in the
audit trail as ``cli:NAME``).
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from trialwright.cli.common import DatabaseOption, console, fail, settings_for

__all__ = ["app"]

app = typer.Typer(help="Manage user accounts, roles, sites and API tokens.", no_args_is_help=True)

ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who is acting, for the audit trail (default: cli:<os user>).")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input instead of a prompt.")
]


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


def _engine(database: str | None):  # type: ignore[no-untyped-def]
    from trialwright.store.engine import DatabaseUnavailable, check_connection, make_engine

    try:
        engine = make_engine(settings_for(database).database_url)
        check_connection(engine)
    except DatabaseUnavailable as exc:
        fail(str(exc))
    return engine


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Repeat the password", hide_input=True)
    if first != second:
        fail("password: the two entries differ")
    return str(first)


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="The new user's name (letters, digits, . _ -).")],
    role: Annotated[str, typer.Option("--role", help="administrator, investigator, study_coordinator, ...")],
    site: Annotated[list[str] | None, typer.Option("--site", help="A site code; repeat for several.")] = None,
    full_name: Annotated[str | None, typer.Option("--full-name", help="The name shown on pages.")] = None,
    password_stdin: PasswordStdin = False,
    actor: ActorOption = None,
    database: DatabaseOption = None,
) -> None:
    """Create a user with a role and sites (password from a prompt or --password-stdin)."""
    from trialwright.services.users import UserError, create_user

    engine = _engine(database)
    try:
        user = create_user(
            engine,
            username=username,
            password=_password(password_stdin),
            role=role,
            sites=site or [],
            full_name=full_name,
            actor=_actor(actor),
        )
    except UserError as exc:
        fail(str(exc))
    console.print(f"Created {user.username} ({user.role.value}; sites: {', '.join(user.sites) or 'all'}).")


@app.command("list")
def list_(database: DatabaseOption = None) -> None:
    """List every user with role, sites and state."""
    from rich.table import Table

    from trialwright.services.users import list_users

    table = Table("username", "full name", "role", "sites", "state")
    for u in list_users(_engine(database)):
        table.add_row(u.username, u.full_name, u.role.value, ", ".join(u.sites), "active" if u.active else "disabled")
    console.print(table)


@app.command("disable")
def disable(
    username: Annotated[str, typer.Argument(help="The user to disable.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit trail.")] = None,
    actor: ActorOption = None,
    database: DatabaseOption = None,
) -> None:
    """Disable a user: their sessions end and their API tokens are revoked."""
    from trialwright.services.users import UserError, disable_user

    try:
        disable_user(_engine(database), username, actor=_actor(actor), reason=reason)
    except UserError as exc:
        fail(str(exc))
    console.print(f"Disabled {username}.")


@app.command("reset-password")
def reset_password(
    username: Annotated[str, typer.Argument(help="Whose password to reset.")],
    password_stdin: PasswordStdin = False,
    actor: ActorOption = None,
    database: DatabaseOption = None,
) -> None:
    """Set a new password for a user, unlock the account and end its sessions."""
    from trialwright.services.users import UserError, reset_password

    try:
        reset_password(_engine(database), username, _password(password_stdin), actor=_actor(actor))
    except UserError as exc:
        fail(str(exc))
    console.print(f"Password of {username} reset.")


@app.command("token")
def token(
    username: Annotated[str, typer.Argument(help="Whose token to issue.")],
    name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "cli",
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, help="How long the token lives (default and most: the api_token_days setting)."),
    ] = None,
    actor: ActorOption = None,
    database: DatabaseOption = None,
) -> None:
    """Issue an API token for a user; it is printed once and stored only as a hash, and expires."""
    from trialwright.services.tokens import issue_token
    from trialwright.services.users import UserError

    max_days = settings_for(database).api_token_days
    try:
        value, _ = issue_token(
            _engine(database), username, name=name, actor=_actor(actor), days=days, max_days=max_days
        )
    except UserError as exc:
        fail(str(exc))
    typer.echo(value)  # alone on standard output, for scripts; `trialwright user tokens` shows its expiry


@app.command("tokens")
def tokens(
    username: Annotated[str, typer.Argument(help="Whose tokens to list.")],
    database: DatabaseOption = None,
) -> None:
    """List a user's API tokens (never the tokens themselves): id, name, dates and state."""
    from rich.table import Table

    from trialwright.services.tokens import list_tokens
    from trialwright.services.users import UserError

    try:
        found = list_tokens(_engine(database), username)
    except UserError as exc:
        fail(str(exc))
    table = Table("id", "name", "created", "last used", "expires", "state")
    for t in found:
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else ""
        table.add_row(str(t.id), t.name, f"{t.created_at:%Y-%m-%d %H:%M}", used, f"{t.expires_at:%Y-%m-%d %H:%M}",
                      t.state())  # fmt: skip
    console.print(table)


@app.command("revoke-token")
def revoke_token(
    username: Annotated[str, typer.Argument(help="Whose token it is.")],
    token_id: Annotated[
        int, typer.Argument(min=1, max=2**31 - 1, help="The token's id (see: trialwright user tokens USERNAME).")
    ],
    actor: ActorOption = None,
    database: DatabaseOption = None,
) -> None:
    """Revoke one of a user's API tokens: it answers no request from now on."""
    from trialwright.services.tokens import revoke_token

    if not revoke_token(_engine(database), token_id, actor=_actor(actor), owner=username):
        fail(f"token: {username} has no unrevoked token {token_id}")
    console.print(f"Token {token_id} of {username} revoked.")
