"""``trialwright query``: the data queries (a monitor's or data manager's question on a value, answered by the site)
from the command line, through the services the query inbox and ``/api/v1/queries`` call
(``trialwright.services.forms.queries``): the same role rules, sites, masking and audit trail. Nothing is decided
here: a command parses its input, asks the service's role rule before an unblinded account's password (as every
command does), calls one service and prints its result.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer

from trialwright.cli.common import DatabaseOption, JsonOption, console, emit
from trialwright.cli.forms import _run
from trialwright.cli.screening import AsOption, _context

__all__ = ["query_app"]

query_app = typer.Typer(
    help="List, show, raise, answer and close data queries (as the query inbox and the API do).",
    no_args_is_help=True,
)

QueryArg = Annotated[int, typer.Argument(help="The query's number (as `trialwright query list` shows it).")]


class Status(enum.StrEnum):
    """A query's status, as the inbox filters it."""

    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


def _line(q: Any) -> str:
    """One query on one line: number, status, where, the question, who asked, and the answer and closing note."""
    where = " ".join(p for p in (q.participant_id, f"({q.site})", q.on, q.field or "") if p)
    line = f"#{q.id} {q.status} {where}: {q.text} (raised by {q.raised_by}"
    line += f" on {q.raised_at.isoformat(timespec='seconds')})"
    if q.answer is not None:
        line += f"; answer by {q.answered_by}: {q.answer}"
    if q.status == "closed":
        line += f"; closed by {q.closed_by}" + (f": {q.close_note}" if q.close_note else "")
    return line


def _print(q: Any) -> None:
    console.print(_line(q), highlight=False, soft_wrap=True)


@query_app.command("list")
def list_(
    user: AsOption,
    status: Annotated[Status | None, typer.Option("--status", help="Only queries in this status.")] = None,
    site: Annotated[str | None, typer.Option("--site", help="Only this site (within your sites).")] = None,
    participant: Annotated[str | None, typer.Option("--participant", help="Only this participant's.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Queries on one page (1 to 500).")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Where the page starts: the cursor the page before it printed.")
    ] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """A page of the query inbox within your sites, open and answered first, then closed, newest first (as `GET
    /api/v1/queries` pages it); when the list is cut, the last line says which part is shown and the --cursor of the
    next page. With --json: the page's items, total, limit and the next and previous cursors."""
    from trialwright.services.forms import may_read_queries, page_queries

    engine, actor = _context(user, database, may_read_queries)
    page = _run(
        page_queries,
        engine,
        actor,
        status=status.value if status is not None else None,
        site=site,
        participant_id=participant,
        limit=limit,
        cursor=cursor,
    )
    if emit(page, as_json):
        return
    for q in page.items:
        _print(q)
    if not page.total:
        console.print("No query matches.", highlight=False)
    elif page.next_cursor is None and page.prev_cursor is None:
        console.print(f"{page.total} {'query' if page.total == 1 else 'queries'}.", highlight=False)
    else:
        console.print(
            f"Queries {page.first}-{page.last} of {page.total} shown (--limit {page.limit}).", highlight=False
        )
        for which, cursor in (("next", page.next_cursor), ("previous", page.prev_cursor)):
            if cursor is not None:  # on a line of its own, nothing after it: copied as it is
                console.print(f"The {which} page: --cursor {cursor}", highlight=False, soft_wrap=True)


@query_app.command("show")
def show(query_id: QueryArg, user: AsOption, as_json: JsonOption = False, database: DatabaseOption = None) -> None:
    """One query: where it is, the question, the answer and who closed it (one outside your sites, or that your
    role may not read, is not found)."""
    from trialwright.services.forms import get_query, may_read_queries

    engine, actor = _context(user, database, may_read_queries)
    q = _run(get_query, engine, actor, query_id)
    if not emit(q, as_json):
        _print(q)


@query_app.command("raise")
def raise_(
    participant_id: Annotated[str, typer.Argument(help="Participant id, e.g. RAZ-001.")],
    text: Annotated[str, typer.Argument(help="The question.")],
    user: AsOption,
    visit: Annotated[str | None, typer.Option("--visit", help="The visit of the form, e.g. day7.")] = None,
    form: Annotated[str | None, typer.Option("--form", help="The form, e.g. labs (with --visit).")] = None,
    field: Annotated[str | None, typer.Option("--field", help="One field of the form or log entry.")] = None,
    log: Annotated[str | None, typer.Option("--log", help="A log entry's log, e.g. conmeds (no form then).")] = None,
    sequence: Annotated[int | None, typer.Option("--sequence", help="The log entry's sequence (with --log).")] = None,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Raise a query by hand (monitor, data manager): on the participant, a form (--visit, --form) or a log entry
    (--log, --sequence), and optionally one of its fields (--field). Audited as query.raised."""
    from trialwright.services.forms import may_raise_queries, raise_query

    engine, actor = _context(user, database, may_raise_queries)
    q = _run(
        raise_query, engine, actor, participant_id, text,
        visit_id=visit, form_id=form, field_id=field, log_id=log, sequence=sequence,
    )  # fmt: skip
    if not emit(q, as_json):
        _print(q)


@query_app.command("answer")
def answer(
    query_id: QueryArg,
    text: Annotated[str, typer.Argument(help="The answer.")],
    user: AsOption,
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Answer an open query (site staff: investigator, study coordinator, outcome assessor). Audited as
    query.answered."""
    from trialwright.services.forms import answer_query, may_read_queries

    engine, actor = _context(user, database, may_read_queries)
    q = _run(answer_query, engine, actor, query_id, text)
    if not emit(q, as_json):
        _print(q)


@query_app.command("close")
def close(
    query_id: QueryArg,
    user: AsOption,
    note: Annotated[str, typer.Option("--note", help="A closing note (audited).")] = "",
    as_json: JsonOption = False,
    database: DatabaseOption = None,
) -> None:
    """Close a query: whoever raised it (a monitor or data manager for an automatic one). Audited as query.closed."""
    from trialwright.services.forms import close_query, may_read_queries

    engine, actor = _context(user, database, may_read_queries)
    q = _run(close_query, engine, actor, query_id, note)
    if not emit(q, as_json):
        _print(q)
