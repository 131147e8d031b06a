"""``trialwright serve``: the web app and REST API (uvicorn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from trialwright.cli.common import DatabaseOption, console, fail, settings_for

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from trialwright.settings import Settings

__all__ = ["bootstrap_admin", "run_server", "serve"]

HostOption = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOption = Annotated[int, typer.Option("--port", help="Port to listen on.")]


def bootstrap_admin(engine: Engine) -> tuple[str, str] | None:
    """Create an ``admin`` administrator with a random password when no account exists yet."""
    from trialwright.services.users import create_user, generate_password, user_count

    if user_count(engine) > 0:
        return None
    password = generate_password()
    create_user(
        engine, username="admin", password=password, role="administrator", full_name="Administrator", actor="system"
    )
    return "admin", password


def run_server(settings: Settings, host: str, port: int) -> None:
    """Build the app for ``settings`` and serve it until interrupted."""
    import uvicorn

    from trialwright.services.audit import AuditKeyError
    from trialwright.services.trial import TrialNotInitialised
    from trialwright.store.engine import DatabaseUnavailable
    from trialwright.web.app import create_app

    try:
        app = create_app(settings)
    except (TrialNotInitialised, DatabaseUnavailable, AuditKeyError) as exc:
        fail(str(exc))
    console.print(f"Serving on http://{host}:{port}/ (Ctrl+C stops).", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def serve(host: HostOption = "127.0.0.1", port: PortOption = 8000, database: DatabaseOption = None) -> None:
    """Start the web app and REST API on a trial database made by `trialwright init`."""
    run_server(settings_for(database), host, port)
