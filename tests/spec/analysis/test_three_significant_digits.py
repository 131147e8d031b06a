"""The report's general rule for numbers (Table 1's field without declared decimals, the estimates' tables): exactly
3 significant digits, trailing zeros kept (walk 7 F6: an SD of 1.70379 was shown 1.7 beside a median of 4.88), each
checked against Python's own ``format(x, '#.3g')`` (``tests.significant``), a number of 4 or more integer digits as a
whole number, 0 as 0, ties rounded half away from zero once taken to 12 significant digits (9.995 is 10.0)."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from tests.significant import three_significant
from trialwright.analysis.results import TimepointSummary, fmt_number

#: The walk's Table 1 row screening.edss (LUM): SD 1.70379 shown 1.7, median 4.88 right
CASES = [
    (1.70379, "1.70"),
    (4.88, "4.88"),
    (3.51, "3.51"),
    (1.7, "1.70"),
    (0.5, "0.500"),
    (2.0, "2.00"),
    (12.0, "12.0"),
    (0.000123, "0.000123"),
    (0.0001, "0.000100"),
    (1.234e-05, "1.23e-05"),
    (123.45, "123"),
    (99.95, "100"),
    (999.4, "999"),
    (999.5, "1000"),
    (1234.5, "1235"),
    (-1234.5, "-1235"),
    (0.0, "0"),
    (-0.0, "0"),
    (-1.70379, "-1.70"),
    (-0.05, "-0.0500"),
    (9.995, "10.0"),  # 9.99499999... in binary: '#.3g' says 9.99; the decimal half away from zero, 10.0
    (2.675, "2.68"),
    (None, "NA"),
    (float("nan"), "NA"),
    (float("inf"), "NA"),
]


@pytest.mark.parametrize(("x", "shown"), CASES)
def test_three_significant_digits_keep_their_trailing_zeros(x: float | None, shown: str) -> None:
    assert fmt_number(x) == shown


def test_three_significant_digits_equal_pythons_format_over_many_magnitudes() -> None:
    rng = np.random.default_rng(7)
    values = rng.uniform(1, 10, 3000) * 10.0 ** rng.integers(-4, 6, 3000) * rng.choice([-1, 1], 3000)
    values = np.append(values, rng.integers(0, 2000, 200))  # whole numbers: 7 is 7.00, 1500 is 1500
    assert [fmt_number(float(x)) for x in values] == [three_significant(float(x)) for x in values]


def test_the_walks_table_one_numbers_keep_the_sd_at_three_digits() -> None:
    """mean (SD); median (IQR) of a group's values, as the report's summaries write them, from ``statistics``."""
    values = [1.0, 1.5, 2.0, 2.5, 3.5, 4.0, 4.5, 5.0, 6.5]
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    summary = TimepointSummary("LUM", "baseline", "value", len(values), 0, mean, sd, median, q1, q3, None, None)
    expected = [three_significant(x) for x in (mean, sd, median, q1, q3)]
    assert summary.text() == f"n=9; {expected[0]} ({expected[1]}); {expected[2]} ({expected[3]} to {expected[4]})"
    assert expected[1] == "1.80"  # stdev 1.8027756...: the trailing zero is a digit of the three
