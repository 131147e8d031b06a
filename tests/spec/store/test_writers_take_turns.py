"""SQLite's writers in one process take the write lock in the order they asked for it, and give it up when they end.

SQLite has one writer at a time. Without a queue, writers waiting for the lock sleep and poll in SQLite's busy
handler at growing intervals, so a writer that has waited for seconds can be overtaken again and again by one that
has just arrived (the seconds-long p99 of ``bench/form_saves.py``). The app's writers on one engine wait in a
first-come, first-served queue instead (``store/engine.py``): a transaction that ends, committed or rolled back,
hands the lock to the writer that has waited longest. Reads never wait in it.

SQLite only: PostgreSQL has many writers at once and no such lock (its writers are not queued, and
``waiting_writers`` is always 0 there).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from trialwright.store.engine import make_engine, read_scope, session_scope, waiting_writers


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite database of its own: the queue is SQLite's alone, so these specs run once, on SQLite, never
    skipped on PostgreSQL."""
    made = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with session_scope(made) as session:
        session.execute(text("CREATE TABLE turns (id INTEGER PRIMARY KEY, writer TEXT NOT NULL)"))
    yield made
    made.dispose()


def _wait_until(condition: object, what: str) -> None:
    """Poll a condition (no timing is asserted: the 10 s only keeps a broken queue from hanging the run)."""
    done = threading.Event()
    for _ in range(1000):
        if condition():  # type: ignore[operator]
            return
        done.wait(0.01)
    raise AssertionError(what)


def _writer(engine: Engine, name: str, failed: list[BaseException], *, fail: bool = False) -> threading.Thread:
    def write() -> None:
        try:
            with session_scope(engine) as session:
                session.execute(text("INSERT INTO turns (writer) VALUES (:w)"), {"w": name})
                if fail:
                    raise RuntimeError(f"{name} rolls back")
        except RuntimeError:
            pass
        except BaseException as exc:  # collected and asserted below
            failed.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_waiting_writers_get_the_lock_first_come_first_served(engine: Engine) -> None:
    failed: list[BaseException] = []
    threads = []
    with session_scope(engine) as first:
        first.execute(text("INSERT INTO turns (writer) VALUES ('first')"))  # holds SQLite's write lock
        for n, name in enumerate(["second", "third", "fourth", "fifth", "sixth"], start=1):
            threads.append(_writer(engine, name, failed))
            _wait_until(lambda n=n: waiting_writers(engine) == n, f"{name} did not queue behind the first writer")
        # A read does not wait in the queue (nor for the writer's lock).
        with read_scope(engine) as reading:
            assert reading.execute(text("SELECT count(*) FROM turns")).scalar_one() == 0
    for thread in threads:
        thread.join(30)
    assert failed == []
    assert waiting_writers(engine) == 0
    with read_scope(engine) as reading:
        order = list(reading.execute(text("SELECT writer FROM turns ORDER BY id")).scalars())
    assert order == ["first", "second", "third", "fourth", "fifth", "sixth"]


def test_a_writer_that_rolls_back_hands_the_lock_on(engine: Engine) -> None:
    failed: list[BaseException] = []
    with session_scope(engine) as first:
        first.execute(text("INSERT INTO turns (writer) VALUES ('first')"))
        refused = _writer(engine, "refused", failed, fail=True)
        _wait_until(lambda: waiting_writers(engine) == 1, "the second writer did not queue")
        after = _writer(engine, "after", failed)
        _wait_until(lambda: waiting_writers(engine) == 2, "the third writer did not queue")
    refused.join(30)
    after.join(30)
    assert failed == [] and waiting_writers(engine) == 0
    with read_scope(engine) as reading:
        assert list(reading.execute(text("SELECT writer FROM turns ORDER BY id")).scalars()) == ["first", "after"]
    # And the lock is free again: a later writer does not wait.
    with session_scope(engine) as session:
        session.execute(text("INSERT INTO turns (writer) VALUES ('later')"))


def test_a_writer_interrupted_while_waiting_leaves_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer stopped while it waits for its turn (KeyboardInterrupt, say) must not stay in line: the turn would
    be handed to it and never passed on, and every later writer would wait out the timeout (a review found it)."""
    from trialwright.store import engine as store_engine

    queue = store_engine._WriterQueue()
    assert queue.acquire(timeout=1)  # the first writer holds the turn

    class Interrupted:  # the next writer's turn lock: interrupted as it waits
        def __init__(self) -> None:
            self.waits = 0

        def acquire(self, timeout: float = -1) -> bool:
            self.waits += 1
            if self.waits == 1:  # taken by the queue itself, at once
                return True
            raise KeyboardInterrupt

        def release(self) -> None:
            raise AssertionError("a writer that left the line is never handed the turn")

    monkeypatch.setattr(store_engine.threading, "Lock", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        queue.acquire(timeout=1)
    monkeypatch.undo()
    assert queue.waiting() == 0
    queue.release()  # the first writer ends: nobody is waiting, so the turn is free
    assert queue.acquire(timeout=0.01)
