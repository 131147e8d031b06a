"""The services' clock: the real time, except inside ``simulated_time``.

Only the trial simulator (``trialwright simulate``, ``trialwright demo``) sets a simulated time, so that a
synthetic trial's screenings, visits, events and their audit entries are spread over a recruitment period
as a real trial's would be. The web app, the API and the CLI's other commands never set it: for them
``now()`` is the system clock in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["now", "simulated_time"]

_SIMULATED: ContextVar[dt.datetime | None] = ContextVar("trialwright_simulated_time", default=None)


def now() -> dt.datetime:
    """The current time, aware, in UTC (the simulated time inside ``simulated_time``)."""
    simulated = _SIMULATED.get()
    return simulated if simulated is not None else dt.datetime.now(dt.UTC)


@contextmanager
def simulated_time(at: dt.datetime) -> Iterator[None]:
    """Within this block, ``now()`` is ``at`` (aware)."""
    if at.tzinfo is None:
        raise ValueError("a simulated time must be aware")
    token = _SIMULATED.set(at.astimezone(dt.UTC))
    try:
        yield
    finally:
        _SIMULATED.reset(token)
