"""What every command shares: the console, the database option, settings, and clean failure."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console

__all__ = ["DatabaseOption", "console", "err_console", "fail", "policy_for", "settings_for"]

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
