"""The report's general rule for numbers, written again for the specs from Python's own formatting: 3 significant
digits with trailing zeros kept (``format(x, '#.3g')``, without the point '#' leaves after a whole number), a number
of 4 or more integer digits as a whole number rounded half away from zero, 0 as 0 (docs/analysis.md, Table 1)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

__all__ = ["three_significant"]


def three_significant(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 999.5:  # '#.3g' would write 1.00e+03: the whole number instead
        return str(Decimal(repr(float(x))).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    shown = format(float(x), "#.3g")
    return shown[:-1] if shown.endswith(".") else shown
