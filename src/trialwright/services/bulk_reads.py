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
from typing import TypeVar

from sqlalchemy.orm import Session

__all__ = ["once", "reading_once"]

_KEY = "trialwright.bulk_reads"
T = TypeVar("T")


@contextmanager
def reading_once(session: Session) -> Iterator[None]:
    """Answer ``once`` look-ups from memory for the rest of the block (nested blocks share the outer memory)."""
    if _KEY in session.info:
        yield
        return
    session.info[_KEY] = {}
    try:
        yield
    finally:
        session.info.pop(_KEY, None)


def once(session: Session, key: Hashable, read: Callable[[], T]) -> T:
    """``read()``, or inside ``reading_once`` its first answer for ``key``."""
    memo = session.info.get(_KEY)
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    return memo[key]  # type: ignore[no-any-return]
