"""``trialwright simulate`` and ``trialwright demo``: a synthetic trial through the real services, and the demo
that serves one (the README's main job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from trialwright.cli.common import DatabaseOption, ExitCode, JsonOption, console, emit, fail, fail_with, settings_for
from trialwright.cli.trial import ProtocolOption, _init

__all__ = ["demo", "simulate"]

DemoProtocolOption = typer.Option(
    ..., "--protocol", show_default=False,
    help="The trial's protocol file (YAML); NAME.simulation.yaml beside it says how the demo data are drawn.",
)  # fmt: skip


def _run(engine: Any, protocol: Path, participants: int | None, seed: int, quiet: bool = False, **kwargs: Any) -> Any:
    from trialwright.services.simulation import SimulationError
    from trialwright.services.simulation import simulate as run

    columns = (TextColumn("screening"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("screening", total=participants)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            return run(engine, protocol, participants, seed, progress=tick, **kwargs)
        except SimulationError as exc:
            fail_with(exc)


def _summary(s: Any) -> None:
    from trialwright.services.simulation import refusal_lines

    table = Table(title="Simulated trial", show_header=False)
    reasons = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(s.not_enrolled.items())) or "none"
    for label, value in [
        ("screened", s.screened),
        ("not enrolled", f"{s.screened - s.enrolled} ({reasons})"),
        ("enrolled", f"{s.enrolled} ({s.by_representative} consented by a representative)"),
        ("randomized", s.randomized),
        ("withdrawn from follow-up", s.withdrawn),
        ("forms saved", f"{s.forms_saved} ({s.forms_completed} completed, {s.forms_signed} signed)"),
        ("visits missed", s.visits_missed),
        ("adverse events", f"{s.adverse_events} ({s.serious} serious, {s.deaths} deaths)"),
        ("SAE and SUSAR reports sent", f"{s.reports_submitted} ({s.reports_late} late)"),
        ("safety pauses lifted by the DSMB", s.pauses_resumed),
        ("allocation list extensions", s.list_extensions),
        ("values a rule refused", s.refused),
        *(("", line) for line in refusal_lines(s)),  # each rule with whom it refused
        ("time", f"{s.seconds:.1f} s ({s.rate:.1f} screened per second)"),
    ]:
        table.add_row(label, str(value))
    console.print(table)


def simulate(
    protocol: Path = ProtocolOption,
    participants: Annotated[int, typer.Option("--participants", min=1, help="How many patients to screen.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="The same seed gives the same trial.")] = 1,
    effect: Annotated[
        list[str] | None,
        typer.Option("--effect", help="FORM.FIELD=VALUE added at follow-up visits in the experimental arm."),
    ] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Create a synthetic trial through the real services (values drawn as NAME.simulation.yaml says)."""
    from trialwright.services.audit_keys import engine_for
    from trialwright.services.simulation import SimulationError, check_plan, parse_effects

    try:
        effects = parse_effects(effect or [])
        check_plan(protocol, effects)
    except SimulationError as exc:
        fail_with(exc)
    settings = settings_for(database)
    _init(protocol, settings, quiet=as_json)
    engine = engine_for(settings)
    summary = _run(engine, protocol, participants, seed, effects=effects, quiet=as_json)
    if not emit(summary, as_json):
        _summary(summary)


def demo(
    protocol: Path = DemoProtocolOption,
    seed: Annotated[int, typer.Option("--seed", help="The same seed gives the same demo trial.")] = 1,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    database: Annotated[str, typer.Option("--database", help="Where to create the demo trial (replaced).")] = (
        "sqlite:///demo.db"
    ),
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the web app afterwards.")] = True,
) -> None:
    """A fresh demo trial: the protocol's planned size simulated across its sites, one demo user per role
    (passwords printed once), and the web app.

    The demo data are drawn as NAME.simulation.yaml, the simulation file beside the protocol file, says.
    It sets the recruitment (start, length, site rates), screening values and failures, consent, withdrawals,
    missed visits, form values and how far forms get, adverse events and deaths (docs/simulation.md).
    It is read and checked before anything is created: a missing or wrong file is refused.
    The same --seed gives the same trial."""
    from trialwright.cli.serve import run_server
    from trialwright.domain.roles import Role
    from trialwright.protocol import load_protocol
    from trialwright.services.audit_keys import engine_for
    from trialwright.services.simulation import SimulationError, check_plan, ensure_users

    try:
        check_plan(protocol)
    except SimulationError as exc:
        fail_with(exc)
    if database.startswith("sqlite:///"):
        path = Path(database.removeprefix("sqlite:///"))
        # The demo trial is replaced, and its anchors with it (they checkpoint the old trail); its key is kept.
        leftovers = ("", "-wal", "-shm", ".anchors")
        for leftover in (path.with_name(path.name + suffix) for suffix in leftovers):
            leftover.unlink(missing_ok=True)
    else:
        fail(
            "--database: the demo creates a fresh embedded SQLite file (sqlite:///FILE); use simulate for others",
            ExitCode.USAGE,
        )
    settings = settings_for(database)
    _init(protocol, settings)
    target = load_protocol(protocol).protocol.sample_size.target
    engine = engine_for(settings)
    summary = _run(engine, protocol, None, seed, enrolled=target)
    _summary(summary)
    accounts = ensure_users(engine, load_protocol(protocol).protocol, prefix="")
    engine.dispose()
    table = Table(title="Demo accounts (passwords shown only this once)")
    for column in ("role", "username", "password"):
        table.add_column(column)
    for role in Role:
        user, password = accounts[role]
        table.add_row(role.label, user.username, password)
    console.print(table)
    if serve:
        run_server(settings, host, port)
