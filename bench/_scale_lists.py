"""The lists of bench/scale.py: each list page and API list, first page and a deep page, against raw SQL.

Each list is read as the role that works with it, through the real app (``create_app`` and Starlette's
TestClient, in the forked child of ``_scale_steps.measured``; a browser session cookie for the page, an API token
for the API). Before timing, the child walks the list through its service, as that user, with pages of up to
500 rows, to the cursor of its last full page (the deep page: the list's last 50 rows, where a keyset page's count
of the rows before it is largest; the second half of a list shorter than two pages); the audit trail's total
grows as it is read (the page and the token are audited), so its API total is checked as at least the service's.
Each request is made once untimed
(templates, the audit page's verification of entries written since the last checkpoint), then ``requests`` times;
p50 and p95 are nearest-rank.

The raw baseline of a list, in the same child: the same number of rows of the list's table by plain SQL (the
primary key descending, ``LIMIT``, after the key at the deep page's depth) with a ``count(*)``, through the same
engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from _common import percentile
from _scale_steps import user_of
from fastapi.testclient import TestClient
from sqlalchemy import ColumnElement, Engine, Table, func, select

from trialwright.domain.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from trialwright.services.audit_trail import page_trail
from trialwright.services.forms import page_queries
from trialwright.services.randomization import PreparationState, page_participants, page_preparation_queue
from trialwright.services.reauth import access_policy
from trialwright.services.safety import page_events
from trialwright.services.screening import page_screenings
from trialwright.services.sharing import page_requests
from trialwright.services.tokens import issue_token
from trialwright.services.users import UserView, start_session
from trialwright.settings import Settings
from trialwright.store.data_tables import queries
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.safety_tables import adverse_events
from trialwright.store.screening_tables import participants, screenings
from trialwright.store.sharing_tables import access_requests
from trialwright.store.tables import audit_entries
from trialwright.web.app import create_app
from trialwright.web.security import SESSION_COOKIE

__all__ = ["LISTS", "ListSpec", "list_step", "summary"]



@dataclass(frozen=True)
class ListSpec:
    """A list: who reads it, its page and API paths (None: none), its service pager and its raw table."""

    name: str
    username: str
    page: str
    api: str | None
    pager: Callable[..., Page[Any]]
    table: Table
    key: ColumnElement[Any]
    where: ColumnElement[bool] | None = None
    grows: bool = False  # the audit trail: reading it (and the token made for it) adds entries
    params: tuple[tuple[str, str], ...] = ()  # the page's own filter (the pharmacy's state), sent with every page


LISTS = (
    ListSpec("participants", "sim-study-coordinator", "/participants", "/api/v1/participants", page_participants,
             participants, participants.c.participant_id),
    ListSpec("screening log", "sim-study-coordinator", "/screening", "/api/v1/screenings", page_screenings,
             screenings, screenings.c.id),
    ListSpec("queries", "sim-data-manager", "/queries", "/api/v1/queries", page_queries, queries, queries.c.id),
    ListSpec("adverse events", "sim-investigator", "/safety", "/api/v1/adverse-events", page_events,
             adverse_events, adverse_events.c.id),
    ListSpec("audit", "sim-data-manager", "/admin/audit", "/api/v1/audit", page_trail, audit_entries,
             audit_entries.c.seq, grows=True),
    # The pharmacy page lists one state at a time; a simulated trial's doses were prepared on earlier days.
    ListSpec("pharmacy", "sim-unblinded-pharmacist", "/pharmacy", None,
             partial(page_preparation_queue, state=PreparationState.DONE), allocation_entries,
             allocation_entries.c.id, allocation_entries.c.participant_id.is_not(None), params=(("state", "done"),)),
    ListSpec("data access", "sim-data-manager", "/data-access", None, page_requests, access_requests,
             access_requests.c.id),
)  # fmt: skip


def _deep(engine: Engine, user: UserView, spec: ListSpec) -> tuple[dict[str, Any] | None, int, int]:
    """The deep page's query parameters (None when the list has at most one row), its depth and the total."""
    total = spec.pager(engine, user, limit=1).total
    depth = max(total - DEFAULT_LIMIT, total // 2)  # the last full page (or the second half of a short list)
    cursor, walked = None, 0
    while walked < depth and (walked == 0 or cursor is not None):
        found = spec.pager(engine, user, limit=min(MAX_LIMIT, depth - walked), cursor=cursor)
        cursor, walked = found.next_cursor, walked + len(found.items)
    return ({"cursor": cursor}, walked, total) if depth and cursor is not None else (None, 0, total)


def _raw(engine: Engine, spec: ListSpec, depth: int, limit: int) -> Callable[[], None]:
    """One raw read of the list's page at ``depth``: the rows by key, and the count."""
    query = select(spec.table)
    counting = select(func.count()).select_from(spec.table)
    if spec.where is not None:
        query, counting = query.where(spec.where), counting.where(spec.where)
    keys = select(spec.key) if spec.where is None else select(spec.key).where(spec.where)
    with engine.connect() as conn:
        after = conn.execute(keys.order_by(spec.key.desc()).offset(depth - 1).limit(1)).scalar() if depth else None
    if after is not None:
        query = query.where(spec.key < after)
    query = query.order_by(spec.key.desc()).limit(limit)

    def read() -> None:
        with engine.connect() as conn:
            conn.execute(query).all()
            conn.execute(counting).scalar_one()

    return read


def _timed(call: Callable[[], Any], requests: int) -> list[float]:
    call()  # untimed: the first of its kind
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return times


def _get(client: TestClient, path: str, params: dict[str, Any], headers: dict[str, str], spec: ListSpec) -> Any:
    answer = client.get(path, params=params, headers=headers)
    if answer.status_code != 200:
        raise RuntimeError(f"{spec.name}: GET {path} {params} answered {answer.status_code}: {answer.text[:500]}")
    return answer


def _get_plain(client: TestClient, path: str, headers: dict[str, str]) -> Any:
    """A GET that must answer 200 (the pages by arm: no list, no parameters)."""
    answer = client.get(path, headers=headers)
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path} answered {answer.status_code}: {answer.text[:500]}")
    return answer


def _check(said: dict[str, Any], spec: ListSpec, which: str, total: int) -> None:
    """An API page agrees with the service: the same total (the audit trail's may have grown since it was counted),
    a full first page, a deep page not empty."""
    items = said["items"]
    first = min(said["total"], DEFAULT_LIMIT)
    same = said["total"] >= total if spec.grows else said["total"] == total
    if not same or (len(items) != first if which == "first" else not items):
        raise RuntimeError(f"{spec.name}: the API's {which} page says {said['total']} rows and shows {len(items)}; "
                           f"the service counts {total}")  # fmt: skip


def list_step(url: str, spec: ListSpec, requests: int) -> Callable[[], dict[str, Any]]:
    """The list's page and API, first and deep page, ``requests`` times each, and the raw reads beside them."""

    def work() -> dict[str, Any]:
        settings = Settings(database_url=url)
        app = create_app(settings)
        engine: Engine = app.state.engine
        user = user_of(engine, spec.username)
        cookie, _ = start_session(engine, user, access_policy(settings))
        token, _ = issue_token(engine, spec.username, name="bench scale", actor="bench")  # audited: before the total
        deep, depth, total = _deep(engine, user, spec)
        bearer = {"Authorization": f"Bearer {token}"}
        figures: dict[str, Any] = {"total": total, "depth": depth, "seconds": 0.0}
        with TestClient(app, follow_redirects=False) as client:
            client.cookies.set(SESSION_COOKIE, cookie)
            own = dict(spec.params)
            pages = {"first": own, "deep": None if deep is None else {**own, **deep}}
            for where, path, headers in (("api", spec.api, bearer), ("page", spec.page, {})):  # the page audits
                if path is None:
                    continue
                for which, given in pages.items():
                    if given is None:
                        continue
                    if where == "api":
                        _check(_get(client, path, given, headers, spec).json(), spec, which, total)
                    times = _timed(lambda p=path, q=given, h=headers: _get(client, p, q, h, spec), requests)
                    figures[f"{where} {which}"] = times
        limit = DEFAULT_LIMIT
        for which, at in (("first", 0), ("deep", depth)):
            if which == "first" or deep is not None:
                figures[f"raw {which}"] = _timed(_raw(engine, spec, at, limit), requests)
        engine.dispose()
        return figures

    return work


def summary(times: list[float]) -> tuple[float, float]:
    """p50 and p95 (nearest rank) in milliseconds."""
    return percentile(times, 50) * 1000, percentile(times, 95) * 1000
