"""What every command shares: the console, the database option, settings, and clean failure."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console

__all__ = ["DatabaseOption", "console", "err_console", "fail", "settings_for"]

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
    """Settings from the environment, with the command line's --database taking precedence."""
    from trialwright.settings import Settings

    return Settings(database_url=database) if database else Settings()
