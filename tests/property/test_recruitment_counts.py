"""The recruitment curve's cumulative counts are, for each period end, the number of dates on or before it."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from trialwright.domain.recruitment import _cumulative

days = st.dates(min_value=dt.date(2019, 1, 1), max_value=dt.date(2030, 12, 31))


@given(dates=st.lists(st.one_of(st.none(), days), max_size=60), ends=st.lists(days, max_size=20))
def test_each_end_counts_the_known_dates_on_or_before_it(dates: list[dt.date | None], ends: list[dt.date]) -> None:
    expected = [sum(1 for d in dates if d is not None and d <= end) for end in ends]
    assert _cumulative(dates, ends) == expected
