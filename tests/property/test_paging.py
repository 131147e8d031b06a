"""Paging a list by keyset cursors returns every row once, in order, whatever the page size and the keys."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from trialwright.domain.paging import decode_cursor, encode_cursor, page_of

keys = st.tuples(st.dates(), st.integers(min_value=-(2**40), max_value=2**40))
rows = st.lists(keys, unique=True, max_size=40)


@given(rows, st.integers(min_value=1, max_value=12))
def test_forward_and_back_every_row_once_in_order(items: list[tuple[dt.date, int]], limit: int) -> None:
    expected = sorted(items, reverse=True)
    got: list[tuple[dt.date, int]] = []
    page = page_of(items, lambda r: r, limit=limit)
    while True:
        assert page.start == len(got) and page.total == len(items) and len(page.items) <= limit
        got += page.items
        if page.next_cursor is None:
            break
        page = page_of(items, lambda r: r, limit=limit, cursor=page.next_cursor)
    assert got == expected
    back = list(page.items)
    while page.prev_cursor is not None:
        page = page_of(items, lambda r: r, limit=limit, cursor=page.prev_cursor)
        back[:0] = page.items
    assert back == expected


@given(rows, st.integers(min_value=1, max_value=12), st.lists(keys, max_size=10))
def test_rows_added_between_pages_never_repeat_or_hide_a_row(
    items: list[tuple[dt.date, int]], limit: int, added: list[tuple[dt.date, int]]
) -> None:
    current = list(items)
    got: list[tuple[dt.date, int]] = []
    page = page_of(current, lambda r: r, limit=limit)
    pending = list(added)
    while True:
        got += page.items
        if page.next_cursor is None:
            break
        if pending:
            new = pending.pop()
            if new not in current:
                current.append(new)
        page = page_of(current, lambda r: r, limit=limit, cursor=page.next_cursor)
    assert len(got) == len(set(got)) and got == sorted(got, reverse=True)
    assert set(items) <= set(got)


@given(st.tuples(st.datetimes(timezones=st.just(dt.UTC)), st.dates(), st.integers(), st.text(), st.booleans()))
def test_a_cursor_carries_its_key_exactly(key: tuple[object, ...]) -> None:
    found = decode_cursor(encode_cursor(key, forward=False), len(key))
    assert found.key == key and found.forward is False
