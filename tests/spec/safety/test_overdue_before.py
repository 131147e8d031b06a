"""``overdue_before``: the one instant per site and rule that lets SQL find overdue SUSAR reports.

A SUSAR's report is due at the end of a local calendar day (``end_of_local_day``), so "overdue at ``now``" is
"the clock started before an instant". Checked against ``end_of_local_day`` itself for starts every 20 minutes
over days that hold daylight-saving changes at midnight (Tehran until 2022, Havana, Santiago), for several
``now`` each, including the first instant after a due time.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from trialwright.domain.safety import end_of_local_day, overdue_before

ZONES = {
    "Asia/Tehran": dt.datetime(2021, 3, 18, tzinfo=dt.UTC),  # clocks went 00:00 -> 01:00 on 22 March
    "America/Havana": dt.datetime(2023, 3, 9, tzinfo=dt.UTC),  # 00:00 -> 01:00 on 12 March
    "America/Santiago": dt.datetime(2023, 3, 30, tzinfo=dt.UTC),  # 00:00 -> 23:00 (back) on 2 April
    "UTC": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
}


@pytest.mark.parametrize("zone", sorted(ZONES))
@pytest.mark.parametrize("days", [0, 1, 7, 15])
def test_a_start_is_overdue_exactly_when_it_is_before_the_instant(zone: str, days: int) -> None:
    tz, first = ZoneInfo(zone), ZONES[zone]
    starts = [first + dt.timedelta(minutes=20 * n) for n in range(6 * 72)]
    dues = sorted({end_of_local_day(s, days, tz) for s in starts})
    tick = dt.timedelta(microseconds=1)
    moments = [m for d in dues for m in (d - tick, d, d + tick, d + dt.timedelta(hours=5))]
    for now in moments:
        cut = overdue_before(now, days, tz)
        wrong = [s for s in starts if (now > end_of_local_day(s, days, tz)) != (s < cut)]
        assert wrong == [], (zone, days, now, cut)
