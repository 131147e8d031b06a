"""Pages in the REST API: every list endpoint takes ``limit`` and ``cursor`` and answers a ``PageOut``.

The body holds the page's ``items``, the ``total`` matching the filter, and the cursors of the ``next`` and
``prev`` pages (null at the ends); the same two links are in the ``Link`` header (RFC 8288), with every
filter of the request kept. A client reads a whole list by following ``next`` until it is null; rows
inserted meanwhile never shift the pages (keyset pagination, see ``domain/paging.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

from fastapi import HTTPException, Query, Request, Response

from trialwright.api.schemas import PageOut
from trialwright.domain.paging import DEFAULT_LIMIT, MAX_LIMIT, Page, PageError

__all__ = ["CursorParam", "LimitParam", "PageOut", "cursor_checked", "page_out"]

V = TypeVar("V")
T = TypeVar("T")

LimitParam = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Rows per page (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).")
]
CursorParam = Annotated[
    str | None,
    Query(max_length=1024, description="Where the page starts: the `next` (or `prev`) of the page before it."),
]


@contextmanager
def cursor_checked() -> Iterator[None]:
    """A malformed cursor or limit answers 422 naming the parameter."""
    try:
        yield
    except PageError as exc:
        field, _, rule = str(exc).partition(": ")
        raise HTTPException(status_code=422, detail=[{"field": field, "rule": rule}]) from None


def page_out(request: Request, response: Response, page: Page[V], convert: Callable[[V], T]) -> PageOut[T]:
    """The body of a page, with the ``Link`` header of its neighbours set on ``response``."""
    links = []
    for rel, cursor in (("next", page.next_cursor), ("prev", page.prev_cursor)):
        if cursor is not None:
            links.append(f'<{request.url.include_query_params(cursor=cursor)}>; rel="{rel}"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return PageOut[T](
        items=[convert(i) for i in page.items],
        total=page.total,
        limit=page.limit,
        next=page.next_cursor,
        prev=page.prev_cursor,
    )
