"""``trialwright serve``: the web app and REST API (uvicorn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from trialwright.cli.common import DatabaseOption, console, fail_with, settings_for

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from trialwright.settings import Settings

__all__ = ["bootstrap_admin", "run_server", "serve"]

HostOption = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOption = Annotated[int, typer.Option("--port", help="Port to listen on.")]


def bootstrap_admin(engine: Engine) -> tuple[str, str] | None:
    """Create an ``admin`` administrator with a random password when no account exists yet."""
    from trialwright.services.users import create_user, generate_password, trial_names, user_count

    if user_count(engine) > 0:
        return None
    password = generate_password("admin", trial_names(engine))
    create_user(
        engine, username="admin", password=password, role="administrator", full_name="Administrator", actor="system"
    )
    return "admin", password


WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="Worker processes serving the app (each with its own connections to the one database; see "
        "docs/deployment.md).",
    ),
]


def run_server(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Build the app for ``settings`` and serve it until interrupted, in ``workers`` processes.

    With several workers the app is first built here once (so a database that cannot be reached, or a key that is
    missing, is said before any worker starts); then each worker builds its own from the same settings, handed to
    it through the environment (``trialwright.web.app.app_from_environment``)."""
    import uvicorn

    from trialwright.services.audit import AuditKeyError
    from trialwright.services.trial import TrialNotInitialised
    from trialwright.store.engine import DatabaseUnavailable
    from trialwright.web.app import create_app, environment_of

    try:
        app = create_app(settings)
    except (TrialNotInitialised, DatabaseUnavailable, AuditKeyError) as exc:
        fail_with(exc)
    console.print(
        f"Serving on http://{host}:{port}/{f' with {workers} workers' if workers > 1 else ''} (Ctrl+C stops).",
        highlight=False,
    )
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    import os

    app.state.engine.dispose()
    os.environ.update(environment_of(settings))
    uvicorn.run(
        "trialwright.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    database: DatabaseOption = None,
    workers: WorkersOption = 1,
) -> None:
    """Start the web app and REST API on a trial database made by `trialwright init`."""
    run_server(settings_for(database), host, port, workers)
