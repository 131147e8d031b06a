"""``trialwright coding``: loading a MedDRA release, searching it, and coding adverse events (the coder).

MedDRA is licensed: load the release the sponsor holds a licence for (the ``MedAscii`` folder of its
distribution); trialwright ships none of it. See docs/coding.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trialwright.cli.common import DatabaseOption, JsonOption, console, emit, fail_with
from trialwright.cli.screening import AsOption, _context

__all__ = ["coding_app"]

AeNumberArgument = Annotated[str, typer.Argument(help="The adverse event, e.g. AE-0001.")]

coding_app = typer.Typer(
    help="Medical coding: load MedDRA or a WHO ATC index, search, code adverse events and medications.",
    no_args_is_help=True,
)
load_app = typer.Typer(help="Load a coding dictionary.", no_args_is_help=True)
coding_app.add_typer(load_app, name="load")


def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    from trialwright.services.coding import CodingError
    from trialwright.services.screening import NotFound

    try:
        return function(*args, **kwargs)
    except (CodingError, NotFound) as exc:
        fail_with(exc)  # the exit code table: 4 for a role that may not, 3 for what is not found, 1 refused


@load_app.command("meddra")
def load_meddra(
    folder: Annotated[Path, typer.Argument(help="The release's ASCII folder (llt.asc, pt.asc, ..., mdhier.asc).")],
    version: Annotated[str, typer.Option("--version", help="The release's MedDRA version, e.g. 27.1.")],
    user: AsOption,
    encoding: Annotated[str, typer.Option("--encoding", help="The files' text encoding.")] = "utf-8",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load a MedDRA release (coder or data manager): every hierarchy link is checked first, and a broken one
    refuses the whole release, naming the file, line and rule. Audited."""
    from trialwright.services.coding import load_meddra as load

    engine, actor = _context(user, database)
    release = _run(load, engine, actor, folder, version, encoding=encoding)
    if emit(release, as_json):
        return
    counts = ", ".join(f"{n} {level.upper()}" for level, n in release.counts.items() if level != "paths")
    console.print(f"Loaded MedDRA {release.version}: {counts}.", highlight=False)


@coding_app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="Part of a term, any case.")],
    user: AsOption,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Current LLTs of the loaded release whose name contains TEXT, with their PT and primary SOC (coder)."""
    from trialwright.services.coding import search_llts

    engine, actor = _context(user, database)
    found = _run(search_llts, engine, actor, text)
    if emit(found, as_json):
        return
    for m in found.matches:
        console.print(f"{m.llt_code}  {m.llt_name}  (PT {m.pt_code} {m.pt_name}; SOC {m.soc_name})", highlight=False)
    if found.cut:
        console.print(f"The first {len(found.matches)} of {found.total} matching terms: narrow the search.")


@coding_app.command("list")
def to_code(user: AsOption, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """The adverse events to code: not coded, or whose reported term changed since they were coded (coder)."""
    from trialwright.services.coding import to_code as listed

    engine, actor = _context(user, database)
    items = _run(listed, engine, actor)
    if emit(items, as_json):
        return
    for item in items:
        state = f"stale (coded for {item.coding.verbatim!r})" if item.stale and item.coding else "not coded"
        console.print(f"{item.ae_number}  {item.participant_id}  {item.term}  {state}", highlight=False)


@coding_app.command("code")
def code(
    ae_number: AeNumberArgument,
    llt: Annotated[int, typer.Option("--llt", help="The LLT code to code it to.")],
    user: AsOption,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, when recoding (audited).")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Code an adverse event to an LLT and its primary path (coder); recoding needs --reason."""
    from trialwright.services.coding import code_event

    engine, actor = _context(user, database)
    item = _run(code_event, engine, actor, ae_number, llt, reason=reason)
    if emit(item, as_json):
        return
    c = item.coding
    console.print(
        f"{item.ae_number}: {c.llt_name} -> PT {c.pt_name} -> SOC {c.soc_name} (MedDRA {c.version})", highlight=False
    )


@coding_app.command("query")
def query(
    ae_number: AeNumberArgument,
    text: Annotated[str, typer.Option("--text", help="The question to the site.")],
    user: AsOption,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the site to clarify an adverse event's reported term (a query they answer; coder)."""
    from trialwright.services.coding import query_event

    engine, actor = _context(user, database)
    query_id = _run(query_event, engine, actor, ae_number, text)
    if emit({"query_id": query_id, "ae_number": ae_number}, as_json):
        return
    console.print(f"Query {query_id} raised.", highlight=False)


@coding_app.command("queries")
def queries(
    ae_number: AeNumberArgument,
    user: AsOption,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """The questions asked about an adverse event's reported term, with their status and the site's answer (coder)."""
    from trialwright.services.coding import event_queries

    engine, actor = _context(user, database)
    found = _run(event_queries, engine, actor, ae_number)
    if emit(found, as_json):
        return
    for q in found:
        answer = f"  answer: {q.answer} ({q.answered_by})" if q.answer else ""
        console.print(f"{q.id}  {q.status}  {q.text}  ({q.raised_by}){answer}", highlight=False)


@coding_app.command("close-query")
def close_query(
    ae_number: AeNumberArgument,
    query_id: Annotated[int, typer.Argument(help="The query's number (trialwright coding queries AE-0001).")],
    user: AsOption,
    note: Annotated[str, typer.Option("--note", help="A closing note (audited).")] = "",
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close a question you asked about an adverse event (coder; only its raiser may); audited."""
    from trialwright.services.coding import close_event_query

    engine, actor = _context(user, database)
    closed = _run(close_event_query, engine, actor, ae_number, query_id, note)
    if emit(closed, as_json):
        return
    console.print(f"Query {closed.id} closed.", highlight=False)


@load_app.command("atc")
def load_atc(
    path: Annotated[Path, typer.Argument(help="The index as CSV: atc_code,level,name (docs/coding.md).")],
    version: Annotated[str, typer.Option("--version", help="The index's version, e.g. 2026.")],
    user: AsOption,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load a WHO ATC index (coder or data manager): every code's shape, level and parent is checked first, and a
    broken one refuses the whole index, naming the line. Audited with the file's SHA-256."""
    from trialwright.services.medication_coding import load_atc as load

    engine, actor = _context(user, database)
    release = _run(load, engine, actor, path, version)
    if emit(release, as_json):
        return
    counts = ", ".join(f"{n} at {level.replace('level', 'level ')}" for level, n in release.counts.items())
    console.print(f"Loaded ATC {release.version}: {counts}.", highlight=False)


@coding_app.command("medications")
def medications(user: AsOption, database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """Medication log entries not coded to ATC yet (coder)."""
    from trialwright.services.medication_coding import medications_to_code

    engine, actor = _context(user, database)
    items = _run(medications_to_code, engine, actor)
    if emit(items, as_json):
        return
    for item in items:
        console.print(f"{item.participant_id}  {item.log_id} #{item.sequence}  {item.verbatim}", highlight=False)


@coding_app.command("code-medication")
def code_medication(
    participant_id: Annotated[str, typer.Argument(help="Participant id, e.g. RAZ-001.")],
    log_id: Annotated[str, typer.Argument(help="The medication log, e.g. conmeds.")],
    sequence: Annotated[int, typer.Argument(help="The entry's sequence number in the log.")],
    atc: Annotated[str, typer.Option("--atc", help="The level-5 ATC code, e.g. B01AB05.")],
    user: AsOption,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, when recoding (audited).")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Code a medication entry to a level-5 ATC code and its levels 1-4 (coder); recoding needs --reason."""
    from trialwright.services.medication_coding import code_medication as code_it

    engine, actor = _context(user, database)
    coding = _run(code_it, engine, actor, participant_id, log_id, sequence, atc, reason=reason)
    if emit(coding, as_json):
        return
    path = " > ".join(f"{p['code']} {p['name']}" for p in coding["path"])
    console.print(f"{participant_id} {log_id} #{sequence}: {path} (ATC {coding['version']})", highlight=False)


@coding_app.command("code-history")
def code_history(
    participant_id: Annotated[str, typer.Argument(help="Participant id, e.g. RAZ-001.")],
    log_id: Annotated[str, typer.Argument(help="The medical history log, e.g. medical_history.")],
    sequence: Annotated[int, typer.Argument(help="The entry's sequence number in the log.")],
    llt: Annotated[int, typer.Option("--llt", help="The MedDRA LLT code to code it to.")],
    user: AsOption,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, when recoding (audited).")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Code a medical history entry to a MedDRA LLT and its primary path (coder); recoding needs --reason."""
    from trialwright.services.medication_coding import code_history as code_it

    engine, actor = _context(user, database)
    coding = _run(code_it, engine, actor, participant_id, log_id, sequence, llt, reason=reason)
    if emit(coding, as_json):
        return
    at = {p["level"]: p for p in coding["path"]}
    console.print(f"{participant_id} {log_id} #{sequence}: {coding['name']} -> PT {at[4]['name']} -> SOC "
                  f"{at[1]['name']} (MedDRA {coding['version']})", highlight=False)  # fmt: skip
