"""Rate limits on guessing, and refused API tokens counted into the audit trail in aggregate.

``RateLimiter`` counts events per key (a client address, a username) in a fixed window that starts with the
key's first event; past the limit it says how many seconds remain (the answer's ``Retry-After``). The web app
keeps one per kind of request: failed sign-ins, password re-entries and refused API tokens.

``RefusalTally`` keeps the audit trail readable when someone floods the API with bad tokens: the first refused
token from a client address in a window is audited at once (``api.token_refused``); the rest of that window
are only counted, and the count is audited when the address's next window opens, or when the app stops
(``api.token_refusals``: the address, the count and the window). So a flood leaves at most two rows per
address per window, not one per request.

Both live in the memory of one process: with several worker processes or hosts each counts for itself, so a
deployment with more than one process needs the limits at its reverse proxy as well (docs/settings.md).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from trialwright.services import audit
from trialwright.settings import Settings
from trialwright.store.engine import session_scope

__all__ = ["Limits", "RateLimited", "RateLimiter", "RefusalTally"]

# Keys kept at most per limiter; past this, windows that have closed are forgotten first.
_MAX_KEYS = 10_000


class RateLimited(Exception):
    """Too many requests of this kind; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int, what: str) -> None:
        self.retry_after = retry_after
        self.what = what
        super().__init__(f"too many {what}; try again in {retry_after} seconds")


@dataclass
class _Window:
    start: float
    count: int = 0


class RateLimiter:
    """At most ``limit`` events per key in ``window`` seconds (``limit`` 0: no limit)."""

    def __init__(self, limit: int, window: float, what: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.what = what
        self._clock = clock
        self._windows: dict[Hashable, _Window] = {}
        self._lock = threading.Lock()

    def _current(self, key: Hashable, now: float) -> _Window:
        w = self._windows.get(key)
        if w is None or now - w.start >= self.window:
            if len(self._windows) >= _MAX_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if now - v.start < self.window}
            w = self._windows[key] = _Window(now)
        return w

    def retry_after(self, *keys: Hashable) -> int | None:
        """Seconds to wait when any key is at its limit, else None (counts nothing)."""
        if self.limit <= 0:
            return None
        now = self._clock()
        with self._lock:
            waits = [
                self.window - (now - w.start) for w in (self._current(k, now) for k in keys) if w.count >= self.limit
            ]
        return max(1, math.ceil(max(waits))) if waits else None

    def check(self, *keys: Hashable) -> None:
        """Raise ``RateLimited`` when any key is at its limit."""
        wait = self.retry_after(*keys)
        if wait is not None:
            raise RateLimited(wait, self.what)

    def hit(self, *keys: Hashable) -> None:
        """Count one event for each key."""
        if self.limit <= 0:
            return
        now = self._clock()
        with self._lock:
            for k in keys:
                self._current(k, now).count += 1

    def take(self, *keys: Hashable) -> None:
        """Check, then count: refuse an event past the limit, else let it through and count it."""
        self.check(*keys)
        self.hit(*keys)


@dataclass
class _Tally:
    start: float
    started_at: dt.datetime
    count: int = 0
    paths: set[str] = field(default_factory=set)


class RefusalTally:
    """Refused API tokens per client address, audited once per window plus a count (see the module)."""

    def __init__(
        self,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.window = window
        self._clock = clock
        self._wall = wall
        self._open: dict[str, _Tally] = {}
        self._lock = threading.Lock()

    def refused(self, engine: Engine, source: str, path: str, *, token: str) -> None:
        """Count one refused request from ``source``; audit it when it opens a window."""
        now = self._clock()
        with self._lock:
            current = self._open.get(source)
            if current is not None and now - current.start < self.window:
                current.count += 1
                if len(current.paths) < 5:
                    current.paths.add(path[:200])
                return
            closed = current
            self._open[source] = _Tally(now, self._wall(), 1, {path[:200]})
            if len(self._open) > _MAX_KEYS:
                self._open = {k: v for k, v in self._open.items() if now - v.start < self.window}
        with session_scope(engine) as session:
            if closed is not None and closed.count > 1:
                self._record_total(session, source, closed)
            audit.record(
                session,
                actor="anonymous",
                action="api.token_refused",
                detail={"source": source, "path": path[:200], "token": token},
            )

    def flush(self, engine: Engine) -> int:
        """Audit the count of every window still open (the app stops); returns how many entries were written."""
        with self._lock:
            tallies, self._open = self._open, {}
        written = 0
        with session_scope(engine) as session:
            for source, tally in tallies.items():
                if tally.count > 1:
                    self._record_total(session, source, tally)
                    written += 1
        return written

    def _record_total(self, session: Session, source: str, tally: _Tally) -> None:
        audit.record(
            session,
            actor="anonymous",
            action="api.token_refusals",
            detail={
                "source": source,
                "refusals": tally.count,
                "window_from": tally.started_at.isoformat(),
                "window_seconds": self.window,
                "paths": sorted(tally.paths),
            },
        )


@dataclass(frozen=True)
class Limits:
    """The web app's limiters (one set per process), from the settings."""

    sign_in: RateLimiter
    reentry: RateLimiter
    token_refusals: RateLimiter
    refusal_tally: RefusalTally

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        window = float(settings.rate_limit_window_seconds)
        return cls(
            sign_in=RateLimiter(settings.rate_limit_sign_in, window, "failed sign-ins"),
            reentry=RateLimiter(settings.rate_limit_reentry, window, "password re-entries"),
            token_refusals=RateLimiter(settings.rate_limit_token_refusals, window, "requests with a refused token"),
            refusal_tally=RefusalTally(window),
        )
