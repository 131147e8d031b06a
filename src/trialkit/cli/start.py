"""``trialkit start``: the main job a newcomer runs first.

It creates (or upgrades) the trial database from a protocol file, makes sure an administrator exists
(printing a new one's password once), and serves the web app. Every step is a service call; running it
again on the same database changes nothing but starting the server.
"""

from __future__ import annotations

from pathlib import Path

import typer

from trialkit.cli.common import DatabaseOption, console, fail, settings_for

__all__ = ["start"]


def start(
    protocol: Path = typer.Option(
        ..., "--protocol", help="The trial's protocol file (YAML).", exists=False, dir_okay=False
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    database: DatabaseOption = None,
) -> None:
    """Create or upgrade the trial database from PROTOCOL, ensure an administrator, serve the web app."""
    from trialkit.cli.serve import bootstrap_admin, run_server
    from trialkit.protocol import ProtocolError, load_protocol
    from trialkit.services.trial import TrialMismatch, init_trial
    from trialkit.store.engine import DatabaseUnavailable, check_connection, make_engine

    settings = settings_for(database)
    try:
        loaded = load_protocol(protocol)
    except FileNotFoundError:
        fail(f"protocol file {protocol} does not exist")
    except ProtocolError as exc:
        fail(f"the protocol file has problems:\n{exc}")
    engine = make_engine(settings.database_url)
    try:
        check_connection(engine)
        result = init_trial(engine, loaded)
    except DatabaseUnavailable as exc:
        fail(str(exc))
    except TrialMismatch as exc:
        fail(str(exc))
    console.print(f"Trial [bold]{result.trial_id}[/], protocol version {result.protocol_version}: "
                  f"{result.status}.")
    credentials = bootstrap_admin(engine)
    if credentials is not None:
        username, password = credentials
        console.print(
            "\n[bold]An administrator account was created. Its password is shown only this once:[/]\n"
            f"  username: [bold]{username}[/]\n  password: [bold]{password}[/]\n"
        )
    engine.dispose()
    console.print(f"Open http://{host}:{port}/ in a browser (Ctrl+C stops the server).")
    run_server(settings, host=host, port=port)
