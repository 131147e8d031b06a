"""Reads a bulk write makes once: inside ``reading_once``, a fact the save path looks up that no form save can
change (a participant's row, consent, randomization, dose, screening, withdrawal, the locks, their adverse events)
is read from the database the first time and answered from memory after that, for the rest of the block.

Only a block whose every write is a form save may open it (the bulk form import, the ODM import, the simulator's
batched saves): those writes never touch the facts read here, so an answer from memory is the answer the database
would give, and a savepoint rolled back (a refused row) cannot make it stale. Outside a block, ``once`` simply
reads: the one-by-one path and the bulk path run the very same code.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.orm import Session

__all__ = [
    "answered", "answers", "forget", "forget_held", "forget_read", "held", "keep", "once", "peek", "reading_once",
]  # fmt: skip

_KEY = "trialwright.bulk_reads"
_HELD = "trialwright.bulk_reads.held"
T = TypeVar("T")


@contextmanager
def reading_once(session: Session) -> Iterator[None]:
    """Answer ``once`` look-ups from memory for the rest of the block (nested blocks share the outer memory)."""
    if _KEY in session.info:
        yield
        return
    session.info[_KEY] = {}
    session.info[_HELD] = {}
    try:
        yield
    finally:
        session.info.pop(_KEY, None)
        session.info.pop(_HELD, None)


def once(session: Session, key: Hashable, read: Callable[[], T]) -> T:
    """``read()``, or inside ``reading_once`` its first answer for ``key``."""
    memo = session.info.get(_KEY)
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    return memo[key]  # type: ignore[no-any-return]


def held(session: Session, key: Hashable, read: Callable[[], T]) -> T:
    """``read()``, or inside ``reading_once`` its answer for ``key`` until the fact is forgotten; the save that
    changes the fact must ``keep`` its new value or ``forget`` it."""
    memo = session.info.get(_HELD)
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    return memo[key]  # type: ignore[no-any-return]


def keep(session: Session, key: Hashable, value: object) -> None:
    """A held fact's new value, as the caller has just written it (nothing outside a ``reading_once`` block)."""
    memo = session.info.get(_HELD)
    if memo is not None:
        memo[key] = value


def answered(session: Session, key: Hashable) -> bool | None:
    """Whether ``once`` has an answer for ``key`` in memory; None outside a ``reading_once`` block (nothing is kept,
    so there is nothing to answer ahead)."""
    memo = session.info.get(_KEY)
    return None if memo is None else key in memo


def peek(session: Session, key: Hashable) -> Any:
    """A held fact's value if it is held now, else None (nothing is read)."""
    memo = session.info.get(_HELD)
    return None if memo is None else memo.get(key)


def forget(session: Session, key: Hashable) -> None:
    """A held fact the caller has just changed: the next look-up reads it again."""
    memo = session.info.get(_HELD)
    if memo is not None:
        memo.pop(key, None)


def forget_held(session: Session) -> None:
    """Every held fact read again from now on (after a savepoint is rolled back)."""
    memo = session.info.get(_HELD)
    if memo is not None:
        memo.clear()


def forget_read(session: Session, kinds: tuple[str, ...]) -> None:
    """Every answer ``once`` keeps whose key is a tuple starting with one of ``kinds``, read again from now on (the
    data lock was taken again: what it guards may have changed while it was not held, ``services/lock.py``)."""
    memo = session.info.get(_KEY)
    if memo:
        for key in [k for k in memo if isinstance(k, tuple) and k and k[0] in kinds]:
            del memo[key]


def answers(session: Session) -> dict[Hashable, object]:
    """Every answer in memory now, read once or held (empty outside a ``reading_once`` block): for checking that
    a batch's reading ahead answers as each look-up would."""
    return {**session.info.get(_KEY, {}), **session.info.get(_HELD, {})}
