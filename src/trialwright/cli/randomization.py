"""``trialwright randomization``, ``trialwright randomize`` and ``trialwright unblind``.

Each command acts as a named user (``--as``) whose role decides what it may do; only the unblinded
statistician's export shows arms.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer

from trialwright.cli.common import DatabaseOption, JsonOption, console, emit, fail_with, policy_for, read_password
from trialwright.cli.screening import AsOption, _context
from trialwright.domain.text import spreadsheet_values

__all__ = ["randomization_app", "randomize", "unblind"]

randomization_app = typer.Typer(help="Generate, inspect and export the allocation list.", no_args_is_help=True)


def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    from trialwright.services.randomization import RandomizationError
    from trialwright.services.screening import NotFound, ScreeningError

    try:
        return function(*args, **kwargs)
    except (RandomizationError, ScreeningError, NotFound) as exc:
        fail_with(exc)


@randomization_app.command("generate")
def generate(
    user: AsOption,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (default: drawn by the system).")] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Generate and seal the allocation list from the protocol (unblinded statistician, once)."""
    from trialwright.services.randomization import generate_list

    engine, actor = _context(user, database)
    checksum = _run(generate_list, engine, actor, seed=seed)
    if emit({"checksum": checksum}, as_json):
        return
    console.print(f"Allocation list generated and sealed; checksum {checksum}.", highlight=False)


@randomization_app.command("status")
def status(user: AsOption, as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Used and remaining list entries per stratum (no arms; unblinded statistician)."""
    from rich.table import Table

    from trialwright.services.randomization import list_status

    engine, actor = _context(user, database)
    strata = _run(list_status, engine, actor)
    if emit(strata, as_json):
        return
    table = Table("stratum", "randomized", "remaining")
    for s in strata:
        table.add_row(s.stratum, str(s.used), str(s.remaining))
    console.print(table)


@randomization_app.command("extend")
def extend(
    user: AsOption,
    stratum: Annotated[str, typer.Argument(help="The stratum to extend, e.g. site=RAZ.")],
    entries: Annotated[
        int, typer.Option("--entries", help="Entries to add (permuted blocks: rounded up to whole blocks).")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why the list is extended (audited).")],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Extend one stratum with the same method along the same seed chain (unblinded statistician)."""
    from trialwright.services.randomization import extend_list

    engine, actor = _context(user, database)
    checksum = _run(extend_list, engine, actor, stratum, entries=entries, reason=reason)
    if emit({"stratum": stratum, "checksum": checksum}, as_json):
        return
    console.print(f"Stratum {stratum} extended; extension checksum {checksum}.", highlight=False)


@randomization_app.command("report")
def report(user: AsOption, as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """The generation report and every extension: method, generator, seed hash, checksum (no arms)."""
    from trialwright.services.randomization import list_records

    engine, actor = _context(user, database)
    records = _run(list_records, engine, actor)
    if emit(records, as_json):
        return
    for r in records:
        kind = f"{r.kind} {r.extension_number} of {r.stratum}" if r.extension_number else r.kind
        console.print(f"[bold]{kind}[/] by {r.by} at {r.at.isoformat(timespec='seconds')}", highlight=False)
        for label, value in [
            ("entries", r.entries),
            ("method", r.method),
            ("generator", r.generator),
            ("seed sha256", r.seed_sha256),
            ("checksum", r.checksum),
            ("reason", r.reason),
        ]:
            if value is not None:
                console.print(f"  {label}: {value}", highlight=False, soft_wrap=True)


@randomization_app.command("balance")
def balance(user: AsOption, as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """Randomized participants per arm in each stratum (unblinded statistician or DSMB: shows arms)."""
    from rich.table import Table

    from trialwright.services.randomization import balance as stratum_balance

    engine, actor = _context(user, database)
    rows = _run(stratum_balance, engine, actor)
    if emit(rows, as_json):
        return
    arms = list(rows[0].by_arm) if rows else []
    table = Table("stratum", *arms, "imbalance", "worst running", "bound")
    for b in rows:
        bound = "-" if b.bound is None else f"{b.bound:g}"
        table.add_row(b.stratum, *(str(b.by_arm[a]) for a in arms), f"{b.imbalance:g}", f"{b.worst_running:g}", bound)
    console.print(table)


@randomization_app.command("export")
def export(
    user: AsOption,
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Export the whole list with arms to CSV (unblinded statistician only; audited)."""
    from trialwright.services.randomization import export_list

    engine, actor = _context(user, database)
    rows = _run(export_list, engine, actor)
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["stratum"])
        writer.writeheader()
        writer.writerows(spreadsheet_values(r) for r in rows)
    partial.replace(out)  # nothing half-written is left looking complete
    if emit({"file": out, "entries": len(rows)}, as_json):
        return
    console.print(f"Wrote {len(rows)} entries to {out}.", highlight=False)


def randomize(
    participant_id: Annotated[str, typer.Argument(help="The participant, e.g. RAZ-001.")],
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Randomize an enrolled participant; prints the number and preparation code (the arm only if allowed)."""
    from trialwright.domain.preparation import nothing_to_prepare
    from trialwright.services.randomization import randomize as do_randomize
    from trialwright.services.trial import current_protocol

    engine, actor = _context(user, database)
    r = _run(do_randomize, engine, actor, participant_id)
    if emit(r, as_json):
        return
    code = r.preparation_code  # kept: every allocation has its code, whatever the arm
    if nothing_to_prepare(current_protocol(engine).protocol, r.arm):
        code += " (nothing to prepare)"
    console.print(
        f"{r.participant_id}: randomization number {r.number}, preparation code {code}, arm {r.arm}.", highlight=False
    )


def unblind(
    participant_id: Annotated[str, typer.Argument(help="The participant to unblind.")],
    user: AsOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded and sent to the notified roles).")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Emergency unblinding of one participant by an investigator: reason and password required."""
    from trialwright.services.randomization import emergency_unblind, may_unblind

    engine, actor = _context(user, database, may_unblind)
    password = read_password(password_stdin=password_stdin, prompt="Password")
    r = _run(
        emergency_unblind, engine, actor, participant_id, reason=reason, password=password, policy=policy_for(database)
    )
    if emit(r, as_json):
        return
    console.print(
        f"{r.participant_id} is on arm [bold]{r.arm}[/]. This unblinding is recorded and notified.", highlight=False
    )
