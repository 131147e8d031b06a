"""What every command shares: the console, the database option, settings, and clean failure."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console

__all__ = [
    "PASSWORD_VARIABLE",
    "DatabaseOption",
    "authenticate_as",
    "console",
    "err_console",
    "fail",
    "policy_for",
    "read_engine_of",
    "settings_for",
]

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="TRIALWRIGHT_DATABASE_URL",
        help="Database URL (default: the embedded SQLite file trialwright.db; "
        "PostgreSQL: postgresql+psycopg://USER@HOST:PORT/DB).",
        show_default=False,
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line (no traceback) and leave with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_for(database: str | None = None):  # type: ignore[no-untyped-def]
    """Settings from the environment, with the command line's --database taking precedence.

    A variable read under its old name (from before the rename) is said on stderr, naming the new one. When
    the default embedded database would be used but only the old default file is in this folder, the
    command refuses and says how to rename it, instead of silently starting a new, empty trial."""
    import warnings
    from pathlib import Path

    from trialwright.legacy import DeprecatedNameWarning, stale_default_database
    from trialwright.settings import DEFAULT_DATABASE_FILE, DEFAULT_DATABASE_URL, Settings

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", DeprecatedNameWarning)
        settings = Settings(database_url=database) if database else Settings()
    for warning in said:
        if issubclass(warning.category, DeprecatedNameWarning):
            err_console.print(f"[bold yellow]warning:[/] {warning.message}", highlight=False, soft_wrap=True)
        else:  # not ours: passed on as it came
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if settings.database_url == DEFAULT_DATABASE_URL:
        old = stale_default_database(Path.cwd() / DEFAULT_DATABASE_FILE)
        if old is not None:
            fail(
                f"{old.name} is in this folder: it is a trial database from before the project was renamed, and "
                f"the default database is now {DEFAULT_DATABASE_FILE}. Rename it (with its -wal and -shm files, "
                f"if any): mv {old.name} {DEFAULT_DATABASE_FILE}; or name it: --database sqlite:///{old.name}"
            )
    return settings


def policy_for(database: str | None = None):  # type: ignore[no-untyped-def]
    """The lockout policy the settings ask for (a password re-entered on the command line counts toward it)."""
    from trialwright.services.reauth import access_policy

    return access_policy(settings_for(database))


def read_engine_of(engine, database: str | None = None):  # type: ignore[no-untyped-def]
    """The engine the analysis and the exports read through: the read replica TRIALWRIGHT_READ_DATABASE_URL names
    (checked to hold ``engine``'s audit head before each read), else ``engine`` itself."""
    from trialwright.services.replica import read_engine_for

    return read_engine_for(settings_for(database), engine)


#: Where a script gives the password of the account it acts as (``--as``), when no prompt can be answered.
PASSWORD_VARIABLE = "TRIALWRIGHT_PASSWORD"  # noqa: S105 - the variable's name, not a password


def authenticate_as(engine, username: str, *, password_stdin: bool = False, why: str = "confirm"):  # type: ignore[no-untyped-def]
    """The active account ``username`` once its password is given: from standard input with
    ``password_stdin``, else from the TRIALWRIGHT_PASSWORD variable, else a hidden prompt. A wrong password counts
    toward the account's lockout, like a wrong re-entry on the web (21 CFR 11.300)."""
    import os
    import sys

    from trialwright.services.users import confirm_password, get_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get(PASSWORD_VARIABLE) is not None:
        password = os.environ[PASSWORD_VARIABLE]
    else:
        password = typer.prompt(f"Password of {username}", hide_input=True)
    user = get_user(engine, username)
    if user is None or not user.active or not confirm_password(engine, user.username, password, purpose=why):
        fail("--as: wrong username or password, or the account is disabled or locked")
    return user
