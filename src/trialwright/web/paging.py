"""The pager under every list page: "Showing 1–50 of 1,559", with previous and next links.

A list page asks its service for one page (``domain/paging.py``) and hands it to ``pager``, which keeps every
filter and search of the request in the links and swaps only the cursor. A cursor that is not one of this
list's (an edited or stale link) shows the first page rather than an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request

from trialwright.domain.paging import Page, PageError

__all__ = ["Pager", "first_page_if_bad", "pager"]

T = TypeVar("T")


@dataclass(frozen=True)
class Pager:
    """What the pager shows: positions formatted for reading, and the links (None at either end)."""

    first: str
    last: str
    total: str
    prev_url: str | None
    next_url: str | None


def _url(request: Request, path: str, cursor: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return f"{path}?{urlencode([*params, ('cursor', cursor)])}"


def pager(request: Request, page: Page[Any], path: str | None = None) -> Pager:
    """The pager of ``page`` as reached by ``request`` (links to ``path``, by default the request's)."""
    where = path or request.url.path
    return Pager(
        first=f"{page.first:,}",
        last=f"{page.last:,}",
        total=f"{page.total:,}",
        prev_url=_url(request, where, page.prev_cursor) if page.prev_cursor else None,
        next_url=_url(request, where, page.next_cursor) if page.next_cursor else None,
    )


def first_page_if_bad(read: Callable[[str | None], Page[T]], cursor: str | None) -> Page[T]:
    """``read(cursor)``, or the first page when the cursor is malformed."""
    try:
        return read(cursor or None)
    except PageError:
        return read(None)
