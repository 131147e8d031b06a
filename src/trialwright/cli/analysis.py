"""``trialwright analyse`` and ``trialwright plan``: the protocol's analysis on the current data, written as a study
report, and the sample size of the definitive trial from the pilot; through the same services as the page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialwright.cli.common import DatabaseOption, ExitCode, JsonOption, console, emit, fail, fail_with, read_engine_of
from trialwright.cli.screening import AsOption, _context

__all__ = ["analyse", "plan"]


def analyse(
    user: AsOption,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the report into (created if needed).")],
    unblinded: Annotated[
        bool,
        typer.Option("--unblinded", help="Name the arms: the unblinded statistician only, after the database lock."),
    ] = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Run the protocol's analysis plan and write report.html, report.pdf, results.json, results.csv,
    consort.svg, consort.png and the figures into --out (blinded unless --unblinded)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from trialwright.analysis.report import write_report
    from trialwright.services.analysis import AnalysisError, run_analysis

    engine, actor = _context(user, database)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True,
                  disable=as_json) as bar:  # fmt: skip
        task = bar.add_task("reading the data and running the analysis plan")
        try:
            run = run_analysis(engine, actor, unblinded=unblinded, read_engine=read_engine_of(engine, database))
        except AnalysisError as exc:
            fail_with(exc)
        written = write_report(run.report, out, progress=lambda what: bar.update(task, description=f"writing {what}"))
    r = run.report
    randomized = r.consort.randomized
    summary = {"mode": r.mode, "grouping": r.grouping, "randomized": randomized, "snapshot_sha256": r.snapshot_sha256,
               "audit_seq": r.audit_seq, "outcome_ids": r.outcome_ids, "files": written}  # fmt: skip
    if emit(summary, as_json):  # the results themselves are in results.json
        return
    if r.lock_banner:  # first, as on every report made from a lock with blockers left open
        console.print(r.lock_banner, highlight=False, markup=False)
    console.print(
        f"{r.mode} ({r.grouping}) of {randomized} randomized "
        f"participants; data snapshot {r.snapshot_sha256[:16]}, audit entry {r.audit_seq}.",
        highlight=False,
    )
    console.print(f"{len(r.outcome_ids)} outcomes: {', '.join(r.outcome_ids)}", highlight=False)
    for path in written:
        if path.parent == out:
            console.print(f"  {path}", highlight=False, markup=False)
    console.print(f"  {out / 'figures'} ({sum(1 for p in written if p.parent != out)} files)", highlight=False)


def plan(
    user: AsOption,
    outcome: Annotated[str, typer.Option("--outcome", help="Outcome id from the protocol, e.g. il6.")],
    effect: Annotated[
        float,
        typer.Option("--effect", help="Difference to detect (a ratio of geometric means on a log-scale outcome)."),
    ],
    power: Annotated[float, typer.Option("--power", help="Power wanted.")] = 0.9,
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided significance level.")] = 0.05,
    gamma: Annotated[
        float, typer.Option("--gamma", help="Browne's upper confidence limit of the SD at 100(1-gamma)%.")
    ] = 0.2,
    variable: Annotated[
        str | None, typer.Option("--variable", help="form.field, when the outcome has several (e.g. labs.cd4_abs).")
    ] = None,
    simulations: Annotated[int, typer.Option("--simulations", help="Simulated trials per power estimate.")] = 2000,
    unblinded: Annotated[
        bool,
        typer.Option(
            "--unblinded", help="The SD pooled within arms: the unblinded statistician only, after the database lock."
        ),
    ] = False,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Size the definitive trial from the pilot: per-arm n from the pilot SD and its upper confidence limit
    (Browne 1995), with and without the ANCOVA baseline correlation, and the design's simulated power (the t
    test's, not the normal approximation's)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from trialwright.services.analysis import AnalysisError, plan_definitive_trial

    engine, actor = _context(user, database)
    with Progress(TextColumn("simulating power"), BarColumn(), MofNCompleteColumn(), console=console,
                  transient=True, disable=as_json) as bar:  # fmt: skip
        task = bar.add_task("power", total=2 * simulations)
        try:
            result = plan_definitive_trial(
                engine, actor, outcome, effect, power=power, alpha=alpha, gamma=gamma, variable=variable,
                n_sim=simulations, progress=lambda done, total: bar.update(task, completed=done, total=total),
                unblinded=unblinded, read_engine=read_engine_of(engine, database),
            )  # fmt: skip
        except (AnalysisError, ValueError) as exc:
            fail_with(exc) if isinstance(exc, AnalysisError) else fail(str(exc), ExitCode.USAGE)
    if emit(result, as_json):
        return
    console.print(result.summary(), highlight=False, markup=False)
