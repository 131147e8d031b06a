"""Every list is read a page at a time, and paging loses nothing (both databases).

A simulated trial (40 patients screened at two sites, queries, adverse events, randomized participants, its
audit trail) and a few data access requests. For every list, as a trial-wide role and as a site-scoped one:
following the ``next`` cursors from the first page returns each row exactly once, in the list's order, with the right
``start`` on each page and the right ``total`` (counted here straight from the tables); following ``prev``
back from the last page returns them again; filters hold on every page; rows inserted between two page
requests shift nothing (keyset pagination); a malformed cursor or a limit out of range is refused.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, screener, who
from trialwright.domain.paging import Page, PageError
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.audit_trail import page_trail, read_trail
from trialwright.services.forms import close_query, list_queries, page_queries, raise_query
from trialwright.services.randomization import (
    page_participants,
    page_preparation_queue,
    participant_rows,
    preparation_queue,
)
from trialwright.services.safety import list_events, page_events
from trialwright.services.screening import list_screenings, page_screenings, screen
from trialwright.services.sharing import list_requests, page_requests, record_request
from trialwright.services.simulation import simulate
from trialwright.store.data_tables import queries
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.safety_tables import adverse_events
from trialwright.store.screening_tables import participants, screenings
from trialwright.store.sharing_tables import access_requests
from trialwright.store.tables import audit_entries

REQUESTS = 7


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 40, seed=21)
    for n in range(REQUESTS):
        record_request(t.engine, who(t, Role.DATA_MANAGER), requester=f"Researcher {n}", organisation="Uni",
                       email="r@uni.org", purpose="IPD meta-analysis", reasons="Pooling pilot trials.",
                       received_on=dt.date(2026, 1, 5))  # fmt: skip
    yield t
    t.engine.dispose()


@dataclass(frozen=True)
class Listed:
    """A list: its paged use case, the whole list, a row's identity, and the table that holds its rows."""

    name: str
    page: Callable[..., Page[Any]]
    whole: Callable[..., list[Any]]
    ident: Callable[[Any], object]
    count: Callable[[Any, tuple[str, ...] | None], int]
    trial_wide: Role
    scoped: Role | None


def _counter(table: Any, site_column: Any, *where: Any) -> Callable[[Any, tuple[str, ...] | None], int]:
    def count(session: Any, sites: tuple[str, ...] | None) -> int:
        query = select(func.count()).select_from(table).where(*where)
        if sites is not None:
            query = query.where(site_column.in_(sites))
        return int(session.execute(query).scalar_one())

    return count


_queue_table = allocation_entries.join(
    participants, participants.c.participant_id == allocation_entries.c.participant_id
)

#: The audit trail's list, narrowed to one action so that a walk four entries a page stays short.
_AUDITED = "form.completed"


def _page_trail(engine: Any, actor: Any, **kw: Any) -> Page[Any]:
    return page_trail(engine, actor, action_prefix=_AUDITED, **kw)


def _trail(engine: Any, actor: Any) -> list[Any]:
    return read_trail(engine, actor, action_prefix=_AUDITED, limit=10**9)


LISTS = [
    Listed("screenings", page_screenings, list_screenings, lambda s: s.id,
           _counter(screenings, screenings.c.site), Role.ADMINISTRATOR, Role.STUDY_COORDINATOR),
    Listed("queries", page_queries, list_queries, lambda q: q.id,
           _counter(queries, queries.c.site), Role.DATA_MANAGER, Role.MONITOR),
    Listed("adverse events", page_events, list_events, lambda e: e.ae_number,
           _counter(adverse_events, adverse_events.c.site), Role.ADMINISTRATOR, Role.INVESTIGATOR),
    Listed("participants", page_participants, participant_rows, lambda p: p.participant_id,
           _counter(participants, participants.c.site), Role.ADMINISTRATOR, Role.STUDY_COORDINATOR),
    Listed("pharmacy queue", page_preparation_queue, preparation_queue, lambda q: q.preparation_code,
           _counter(_queue_table, participants.c.site, allocation_entries.c.participant_id.is_not(None)),
           Role.UNBLINDED_PHARMACIST, None),
    Listed("data access requests", page_requests, list_requests, lambda r: r.number,
           _counter(access_requests, None), Role.DATA_MANAGER, None),
    Listed("audit trail", _page_trail, _trail, lambda e: e.seq,
           _counter(audit_entries, audit_entries.c.site, audit_entries.c.action == _AUDITED),
           Role.DATA_MANAGER, Role.MONITOR),
]  # fmt: skip
IDS = [x.name for x in LISTS]


def walk(read: Callable[..., Page[Any]], limit: int = 4) -> list[Any]:
    """Every row, following ``next`` from the first page; each page starts where the last one ended."""
    rows: list[Any] = []
    cursor = None
    while True:
        page = read(limit=limit, cursor=cursor)
        assert page.start == len(rows) and len(page.items) <= limit
        assert page.first == (len(rows) + 1 if page.items else 0) and page.last == len(rows) + len(page.items)
        assert (page.prev_cursor is None) == (not rows)
        rows.extend(page.items)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def walk_back(read: Callable[..., Page[Any]], limit: int = 4) -> list[Any]:
    """Every row, from the last page back to the first along ``prev``."""
    page = read(limit=limit)
    while page.next_cursor is not None:
        page = read(limit=limit, cursor=page.next_cursor)
    rows = list(page.items)
    while page.prev_cursor is not None:
        page = read(limit=limit, cursor=page.prev_cursor)
        rows[:0] = page.items
    return rows


def _roles(listed: Listed) -> list[Role]:
    return [listed.trial_wide] + ([listed.scoped] if listed.scoped else [])


@pytest.mark.parametrize("listed", LISTS, ids=IDS)
def test_paging_returns_every_row_once_in_order_with_the_right_total(trial: Trial, listed: Listed) -> None:
    for role in _roles(listed):
        actor = who(trial, role)
        whole = listed.whole(trial.engine, actor)
        with session_scope(trial.engine) as session:
            counted = listed.count(session, tuple(actor.sites) if actor.role.site_scoped else None)
        assert len(whole) == counted > 4  # more than one page of 4
        read = functools.partial(listed.page, trial.engine, actor)
        forward = walk(read)
        assert [listed.ident(r) for r in forward] == [listed.ident(r) for r in whole]
        assert read(limit=4).total == counted
        assert [listed.ident(r) for r in walk_back(read)] == [listed.ident(r) for r in whole]
        assert [listed.ident(r) for r in walk(read, limit=500)] == [listed.ident(r) for r in whole]  # one page
        if actor.role.site_scoped:
            assert {r.site for r in forward if hasattr(r, "site")} <= set(actor.sites)


@pytest.mark.parametrize("listed", [x for x in LISTS if x.scoped], ids=[x.name for x in LISTS if x.scoped])
def test_a_site_scoped_user_never_reaches_another_sites_rows_on_a_later_page(trial: Trial, listed: Listed) -> None:
    everyone = {
        listed.ident(r) for r in walk(lambda **kw: listed.page(trial.engine, who(trial, listed.trial_wide), **kw))
    }
    assert listed.scoped is not None
    actor = who(trial, listed.scoped)
    mine = walk(lambda **kw: listed.page(trial.engine, actor, **kw), limit=3)
    assert {r.site for r in mine} <= set(actor.sites)
    assert {listed.ident(r) for r in mine} < everyone  # the other site has rows, and none of them came through
    # Asking for another site by name gives nothing, on the first page as on any other.
    other = next(iter({"RAZ", "GOL"} - set(actor.sites)))
    if "site" in listed.page.__code__.co_varnames:
        assert listed.page(trial.engine, actor, site=other, limit=3).items == ()


def test_filters_hold_on_every_page(trial: Trial) -> None:
    admin, monitor = who(trial, Role.ADMINISTRATOR), who(trial, Role.MONITOR)
    eligible = walk(lambda **kw: page_screenings(trial.engine, admin, decision="eligible", **kw), limit=3)
    assert [s.id for s in eligible] == [
        s.id for s in list_screenings(trial.engine, admin) if s.decision.value == "eligible"
    ]
    for q in [q for q in list_queries(trial.engine, monitor) if q.status != "closed" and q.automatic][:3]:
        close_query(trial.engine, monitor, q.id, "resolved at the source")
    closed = walk(lambda **kw: page_queries(trial.engine, monitor, status="closed", **kw), limit=2)
    assert len(closed) >= 3 and page_queries(trial.engine, monitor).total > len(closed)
    assert closed and [q.id for q in closed] == [
        q.id for q in list_queries(trial.engine, monitor) if q.status == "closed"
    ]
    raz = walk(lambda **kw: page_participants(trial.engine, admin, search="RAZ", **kw), limit=3)
    assert raz and all(p.participant_id.startswith("RAZ") for p in raz)
    assert [p.participant_id for p in raz] == [
        p.participant_id for p in participant_rows(trial.engine, admin) if p.site == "RAZ"
    ]
    assert page_participants(trial.engine, admin, search="RAZ%").total == 0  # a search is text, not a pattern
    gol = walk(lambda **kw: page_screenings(trial.engine, admin, site="GOL", **kw), limit=3)
    assert gol and {s.site for s in gol} == {"GOL"}
    serious = walk(lambda **kw: page_events(trial.engine, admin, serious_only=True, **kw), limit=1)
    assert [e.ae_number for e in serious] == [
        e.ae_number for e in list_events(trial.engine, admin) if e.classification.serious
    ]
    pending = walk(
        lambda **kw: page_requests(trial.engine, admin, status="pending", search="Researcher", **kw), limit=2
    )
    assert len(pending) == REQUESTS and page_requests(trial.engine, admin, search="Researcher 3").total == 1
    first = page_screenings(trial.engine, admin, decision="eligible", limit=3)
    assert first.total == len(eligible)  # the total is the filter's, on every page
    later = page_screenings(trial.engine, admin, decision="eligible", limit=3, cursor=first.next_cursor)
    assert later.total == len(eligible)


def test_rows_inserted_between_pages_shift_nothing(trial: Trial) -> None:
    admin, monitor = who(trial, Role.ADMINISTRATOR), who(trial, Role.MONITOR)
    before = [s.id for s in list_screenings(trial.engine, admin)]
    seen: list[int] = []
    page = page_screenings(trial.engine, admin, limit=5)
    inserted: list[int] = []
    while True:
        seen += [s.id for s in page.items]
        if page.next_cursor is None:
            break
        # A patient screened today (before the cursor: never shown) and one screened long ago (after it: shown
        # once, at the end), between every two page requests.
        inserted.append(screen(trial.engine, screener(trial.engine), site="RAZ", screened_on=None, values={}).id)
        old = screen(trial.engine, screener(trial.engine), site="GOL", screened_on=dt.date(2019, 1, 1), values={})
        inserted.append(old.id)
        page = page_screenings(trial.engine, admin, limit=5, cursor=page.next_cursor)
    assert len(seen) == len(set(seen))  # nothing twice
    assert [i for i in seen if i in before] == before  # every row that was there, once, in order
    assert set(seen) - set(before) <= set(inserted)
    # Queries raised meanwhile (the newest, so before the cursor) do not push rows onto a second showing.
    first = page_queries(trial.engine, monitor, limit=3)
    pid = first.items[0].participant_id
    rows = list(first.items)
    cursor = first.next_cursor
    while cursor is not None:
        raise_query(trial.engine, monitor, pid, "Please check the source document.")
        page_ = page_queries(trial.engine, monitor, limit=3, cursor=cursor)
        rows += page_.items
        cursor = page_.next_cursor
    ids = [q.id for q in rows]
    assert len(ids) == len(set(ids))
    assert len(ids) == first.total  # the rows there when paging began, each once


def test_audit_entries_written_between_pages_shift_nothing(trial: Trial) -> None:
    manager = who(trial, Role.DATA_MANAGER)
    before = [e.seq for e in read_trail(trial.engine, manager, limit=10**9)]
    seen: list[int] = []
    page = page_trail(trial.engine, manager, limit=40)
    while True:
        seen += [e.seq for e in page.items]
        if page.next_cursor is None:
            break
        with session_scope(trial.engine) as session:  # newer than every cursor: never shown
            audit.record_many(session, [{"actor": "tester", "action": "test.meanwhile"} for _ in range(3)])
        page = page_trail(trial.engine, manager, limit=40, cursor=page.next_cursor)
    assert len(before) > 40 * 3  # several pages
    assert seen == before  # every entry that was there, once, newest first; none written meanwhile


def test_a_malformed_cursor_or_a_limit_out_of_range_is_refused(trial: Trial) -> None:
    admin = who(trial, Role.ADMINISTRATOR)
    for bad in ("nonsense", "e30", page_requests(trial.engine, admin, limit=2).next_cursor):
        with pytest.raises(PageError, match="cursor"):
            page_screenings(trial.engine, admin, cursor=bad)  # the last: a cursor of another list (one key, not two)
    for limit in (0, 501):
        with pytest.raises(PageError, match="limit"):
            page_participants(trial.engine, admin, limit=limit)
    assert page_participants(trial.engine, admin).limit == 50
