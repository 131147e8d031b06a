"""Rate limits on guessing, and refused API tokens counted into the audit trail in aggregate.

``RateLimiter`` counts events per key (a client address, a username) in a fixed window that starts with the
key's first event; past the limit it says how many seconds remain (the answer's ``Retry-After``). The web app
keeps one per kind of request: failed sign-ins, password re-entries and refused API tokens.

``RefusalTally`` keeps the audit trail readable when someone floods the API with bad tokens: the first refused
token from a client address in a window is audited at once (``api.token_refused``); the rest of that window
are only counted, and the count is audited when the address's next window opens, or when the app stops
(``api.token_refusals``: the address, the count and the window). So a flood leaves at most two rows per
address per window, not one per request.

Where the counts live: the web app keeps them in the trial database (``rate_limits``, one row per limiter and key,
``DatabaseCounts``), so every worker process and every host on that database counts into the same window and the
limit holds however many workers serve the app. Each event is one atomic upsert (PostgreSQL and SQLite:
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), so two workers counting at once never lose a count; windows
use the wall clock (seconds since the epoch), which the hosts of one deployment share. ``MemoryCounts`` (one
process) is for a limiter without a database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from trialwright.services import audit
from trialwright.settings import Settings
from trialwright.store.auth_tables import rate_limits
from trialwright.store.engine import is_postgresql, read_scope, session_scope

__all__ = ["Counts", "DatabaseCounts", "Limits", "MemoryCounts", "RateLimited", "RateLimiter", "RefusalTally"]

# Keys kept at most per limiter in memory; past this, windows that have closed are forgotten first.
_MAX_KEYS = 10_000


class RateLimited(Exception):
    """Too many requests of this kind; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int, what: str) -> None:
        self.retry_after = retry_after
        self.what = what
        super().__init__(f"too many {what}; try again in {retry_after} seconds")


class Counts(Protocol):
    """Where a limiter keeps its counts: the window start and count of each key."""

    def current(
        self, keys: Sequence[Hashable], now: float, window: float, session: Session | None = None
    ) -> list[tuple[float, int]]:
        """The (start, count) of each key's open window ((now, 0) for a key without one); counts nothing. Counts in
        the database are read in ``session`` when given (a request's one transaction)."""
        ...

    def add(self, keys: Sequence[Hashable], now: float, window: float) -> None:
        """Count one event for each key (opening a new window for a key whose window has closed)."""
        ...


@dataclass
class _Window:
    start: float
    count: int = 0


class MemoryCounts:
    """Counts in this process's memory (a limiter of one process; each process counts for itself)."""

    def __init__(self) -> None:
        self._windows: dict[Hashable, _Window] = {}
        self._lock = threading.Lock()

    def _current(self, key: Hashable, now: float, window: float) -> _Window:
        w = self._windows.get(key)
        if w is None or now - w.start >= window:
            if len(self._windows) >= _MAX_KEYS:
                self._windows = {k: v for k, v in self._windows.items() if now - v.start < window}
            w = self._windows[key] = _Window(now)
        return w

    def current(
        self, keys: Sequence[Hashable], now: float, window: float, session: Session | None = None
    ) -> list[tuple[float, int]]:
        with self._lock:
            return [(w.start, w.count) for w in (self._current(k, now, window) for k in keys)]

    def add(self, keys: Sequence[Hashable], now: float, window: float) -> None:
        with self._lock:
            for k in keys:
                self._current(k, now, window).count += 1


def _digest(key: Hashable) -> str:
    """The stored form of a key: the SHA-256 of its JSON (an address or a username is never stored as such)."""
    return hashlib.sha256(json.dumps(key, default=str, ensure_ascii=False).encode("utf-8")).hexdigest()


def _insert(engine: Engine) -> Any:
    return (postgresql.insert if is_postgresql(engine) else sqlite.insert)(rate_limits)


def _upsert_count(engine: Engine, limiter: str, digest: str, now: float, window: float, detail: str | None) -> Any:
    """One atomic statement: open the key's window (count 1) or count one more in it; returns (start, count)."""
    stmt = _insert(engine).values(limiter=limiter, key=digest, window_start=now, count=1, detail=detail)
    closed = stmt.excluded.window_start - rate_limits.c.window_start >= window
    stmt = stmt.on_conflict_do_update(
        index_elements=[rate_limits.c.limiter, rate_limits.c.key],
        set_={
            "window_start": case((closed, stmt.excluded.window_start), else_=rate_limits.c.window_start),
            "count": case((closed, 1), else_=rate_limits.c.count + 1),
            "detail": case((closed, stmt.excluded.detail), else_=rate_limits.c.detail),
        },
    )
    return stmt.returning(rate_limits.c.window_start, rate_limits.c.count, rate_limits.c.detail)


class DatabaseCounts:
    """Counts in the trial database (``rate_limits``), shared by every process on it (see the module)."""

    def __init__(self, engine: Engine, limiter: str) -> None:
        self.engine = engine
        self.limiter = limiter

    def current(
        self, keys: Sequence[Hashable], now: float, window: float, session: Session | None = None
    ) -> list[tuple[float, int]]:
        digests = [_digest(k) for k in keys]
        query = select(rate_limits.c.key, rate_limits.c.window_start, rate_limits.c.count).where(
            rate_limits.c.limiter == self.limiter, rate_limits.c.key.in_(digests)
        )
        if session is not None:
            found = {key: (start, count) for key, start, count in session.execute(query)}
        else:
            with read_scope(self.engine) as reading:
                found = {key: (start, count) for key, start, count in reading.execute(query)}
        out: list[tuple[float, int]] = []
        for d in digests:
            start, count = found.get(d, (now, 0))
            out.append((start, count) if now - start < window else (now, 0))
        return out

    def add(self, keys: Sequence[Hashable], now: float, window: float) -> None:
        with session_scope(self.engine) as session:
            # Windows closed long ago are forgotten (a key seen again opens a new window anyway).
            session.execute(
                delete(rate_limits).where(
                    rate_limits.c.limiter == self.limiter, rate_limits.c.window_start <= now - 2 * window
                )
            )
            for digest in sorted({_digest(k) for k in keys}):  # one order: two workers never deadlock
                session.execute(_upsert_count(self.engine, self.limiter, digest, now, window, None))


class RateLimiter:
    """At most ``limit`` events per key in ``window`` seconds (``limit`` 0: no limit), counted in ``counts``
    (default: this process's memory)."""

    def __init__(
        self,
        limit: int,
        window: float,
        what: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        counts: Counts | None = None,
    ) -> None:
        self.limit = limit
        self.window = window
        self.what = what
        self._clock = clock
        self._counts: Counts = counts if counts is not None else MemoryCounts()

    def retry_after(self, *keys: Hashable, session: Session | None = None) -> int | None:
        """Seconds to wait when any key is at its limit, else None (counts nothing; read in ``session`` if given)."""
        if self.limit <= 0:
            return None
        now = self._clock()
        waits = [
            self.window - (now - start)
            for start, count in self._counts.current(keys, now, self.window, session)
            if count >= self.limit
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    def check(self, *keys: Hashable, session: Session | None = None) -> None:
        """Raise ``RateLimited`` when any key is at its limit (counts read in ``session`` if given)."""
        wait = self.retry_after(*keys, session=session)
        if wait is not None:
            raise RateLimited(wait, self.what)

    def hit(self, *keys: Hashable) -> None:
        """Count one event for each key."""
        if self.limit <= 0:
            return
        self._counts.add(keys, self._clock(), self.window)

    def take(self, *keys: Hashable) -> None:
        """Check, then count: refuse an event past the limit, else let it through and count it."""
        self.check(*keys)
        self.hit(*keys)


_TALLY = "token-refusals-tally"


class RefusalTally:
    """Refused API tokens per client address, audited once per window plus a count (see the module), counted in the
    database so that every worker adds to the same window."""

    def __init__(self, window: float, *, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self._clock = clock

    def refused(self, engine: Engine, source: str, path: str, *, token: str) -> None:
        """Count one refused request from ``source``; audit it when it opens a window."""
        now = self._clock()
        with session_scope(engine) as session:
            self._close(session, now - self.window)  # this address's closed window among them
            opened = json.dumps(
                {"source": source, "paths": [path[:200]], "started_at": _wall(now).isoformat()}, sort_keys=True
            )
            _, count, stored = session.execute(
                _upsert_count(engine, _TALLY, _digest(source), now, self.window, opened)
            ).one()
            if count == 1:
                audit.record(
                    session,
                    actor="anonymous",
                    action="api.token_refused",
                    detail={"source": source, "path": path[:200], "token": token},
                )
                return
            detail = json.loads(stored)
            if len(detail["paths"]) < 5 and path[:200] not in detail["paths"]:
                detail["paths"].append(path[:200])
                session.execute(
                    update(rate_limits)
                    .where(rate_limits.c.limiter == _TALLY, rate_limits.c.key == _digest(source))
                    .values(detail=json.dumps(detail, sort_keys=True))
                )

    def flush(self, engine: Engine) -> int:
        """Audit the count of every window still open (the app stops); returns how many entries were written.

        With several workers, the first to stop closes every address's window: a refusal after that opens a new
        window (audited at once), so no refusal is counted twice."""
        with session_scope(engine) as session:
            return self._close(session, None)

    def _close(self, session: Session, before: float | None) -> int:
        """Take the windows that opened before ``before`` (None: every window) out of the table and audit each
        count past the first; one statement, so two workers never audit the same window."""
        taken = delete(rate_limits).where(rate_limits.c.limiter == _TALLY)
        if before is not None:
            taken = taken.where(rate_limits.c.window_start <= before)
        rows = session.execute(
            taken.returning(rate_limits.c.window_start, rate_limits.c.count, rate_limits.c.detail)
        ).all()
        written = 0
        for _, count, stored in sorted(rows, key=lambda r: (r[0], r[2])):
            if count > 1:
                detail = json.loads(stored)
                audit.record(
                    session,
                    actor="anonymous",
                    action="api.token_refusals",
                    detail={
                        "source": detail["source"],
                        "refusals": count,
                        "window_from": detail["started_at"],
                        "window_seconds": self.window,
                        "paths": sorted(detail["paths"]),
                    },
                )
                written += 1
        return written


def _wall(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@dataclass(frozen=True)
class Limits:
    """The web app's limiters, counting in the trial database (shared by every worker), from the settings."""

    sign_in: RateLimiter
    reentry: RateLimiter
    token_refusals: RateLimiter
    refusal_tally: RefusalTally

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> Limits:
        window = float(settings.rate_limit_window_seconds)

        def limiter(limit: int, name: str, what: str) -> RateLimiter:
            return RateLimiter(limit, window, what, clock=time.time, counts=DatabaseCounts(engine, name))

        return cls(
            sign_in=limiter(settings.rate_limit_sign_in, "sign-in", "failed sign-ins"),
            reentry=limiter(settings.rate_limit_reentry, "reentry", "password re-entries"),
            token_refusals=limiter(
                settings.rate_limit_token_refusals, "token-refusals", "requests with a refused token"
            ),
            refusal_tally=RefusalTally(window),
        )
