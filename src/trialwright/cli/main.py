"""The ``trialwright`` command. Each capability registers one sub-command group here.

Sub-command modules import only typer at module level, so ``trialwright --help`` stays fast; the
services they call are imported inside each command. Every command is wrapped here, once, by
:func:`trialwright.cli.common.guarded`: a service's refusal ends it with one line and the exit code of
:data:`trialwright.cli.common.EXIT_CODES`. ``trialwright --install-completion`` installs shell completion.
"""

from __future__ import annotations

import os

import typer

from trialwright import __version__
from trialwright.cli import analysis as analysis_cli
from trialwright.cli import backup as backup_cli
from trialwright.cli import coding as coding_cli
from trialwright.cli import email as email_cli
from trialwright.cli import exports as exports_cli
from trialwright.cli import forms as forms_cli
from trialwright.cli import lock as lock_cli
from trialwright.cli import logs as logs_cli
from trialwright.cli import protocol as protocol_cli
from trialwright.cli import queries as queries_cli
from trialwright.cli import randomization as randomization_cli
from trialwright.cli import recruitment as recruitment_cli
from trialwright.cli import safety as safety_cli
from trialwright.cli import screening as screening_cli
from trialwright.cli import serve as serve_cli
from trialwright.cli import simulate as simulate_cli
from trialwright.cli import trial as trial_cli
from trialwright.cli import users as users_cli
from trialwright.cli import validation as validation_cli
from trialwright.cli.common import guarded

__all__ = ["app", "main"]

app = typer.Typer(
    name="trialwright",
    help="Run a randomized controlled trial from its protocol file to its shared data set.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"trialwright {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", help="Show the version and exit.", callback=_show_version, is_eager=True
    ),
) -> None:
    """Run a randomized controlled trial from its protocol file to its shared data set."""
    # Every file a command writes (exports with participant data or arms, lists, reports, backups) is its
    # owner's alone: readable by no other account on the machine, whatever the shell's umask.
    os.umask(0o077)


app.add_typer(protocol_cli.app, name="protocol")
app.command("init")(trial_cli.init)
app.command("start")(trial_cli.start)
app.command("serve")(serve_cli.serve)
app.command("simulate")(simulate_cli.simulate)
app.command("demo")(simulate_cli.demo)
app.add_typer(users_cli.app, name="user")
app.add_typer(screening_cli.screening_app, name="screening")
app.add_typer(screening_cli.consent_app, name="consent")
app.command("enrol")(screening_cli.enrol)
app.add_typer(randomization_cli.randomization_app, name="randomization")
app.command("randomize")(randomization_cli.randomize)
app.command("unblind")(randomization_cli.unblind)
app.add_typer(forms_cli.form_app, name="form")
app.add_typer(queries_cli.query_app, name="query")
app.add_typer(forms_cli.audit_app, name="audit")
app.add_typer(logs_cli.log_app, name="log")
app.add_typer(lock_cli.database_app, name="database")
app.add_typer(safety_cli.safety_app, name="safety")
app.add_typer(coding_cli.coding_app, name="coding")
app.add_typer(email_cli.email_app, name="email")
app.add_typer(recruitment_cli.recruitment_app, name="recruitment")
app.command("analyse")(analysis_cli.analyse)
app.command("plan")(analysis_cli.plan)
app.command("export")(exports_cli.export)
app.add_typer(exports_cli.import_app, name="import")
app.add_typer(exports_cli.access_app, name="access")
app.command("backup")(backup_cli.backup)
app.command("restore")(backup_cli.restore)
app.command("validation-report")(validation_cli.validation_report)


def _guard_every_command(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.callback is not None and not getattr(info.callback, "guarded", False):
            info.callback = guarded(info.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _guard_every_command(group.typer_instance)


_guard_every_command(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # python -m trialwright.cli.main
    main()
