"""Benchmark: concurrent randomization on SQLite and PostgreSQL, with a raw baseline of the same work shape.

    .venv/bin/python bench/randomize.py [--clients 32] [--participants 320] [--backend sqlite|postgresql|both]
                                        [--smoke]

Per backend it creates a fresh trial (PostgreSQL in a throw-away schema of TRIALWRIGHT_TEST_POSTGRES_URL's
database), enrols the participants, generates the list, then randomizes them from N client threads at once
through the service, and prints allocations per second, p50 and p99 latency, and the count of duplicate and
skipped entries (both must be 0, else the command exits 1).

In the same process it then runs a raw baseline of the same work shape on a throw-away table of list entries
(stratum, sequence, arm, participant NULL) and one of audit rows: each client takes the next free entry of its
stratum, sets its participant, and inserts one audit row, one transaction per randomization. On PostgreSQL
(psycopg) the entry is taken with ``SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1`` (a row lock); on SQLite
(the sqlite3 module) the transaction is ``BEGIN IMMEDIATE`` (SQLite's one writer lock, as the store uses).
The service's line prints its rate as a ratio to the baseline (target on PostgreSQL: >= 0.5x).

--smoke: 4 clients, 12 participants, both databases; still exits 1 on any duplicate or gap.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from _common import BACKENDS, enrol_many, make_bench_trial, percentile, throwaway_database
from sqlalchemy import func, select
from tests.trialfixtures import FIRST_PROTOCOL, username

from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.users import get_user
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries

TARGET = 0.5  # of the raw row-lock baseline on PostgreSQL (issue 22)


def _drive(clients: int, work: list[Any], one: Callable[[Any], None]) -> tuple[float, list[float]]:
    """Run ``one(item)`` for every item from ``clients`` threads at once; wall-clock seconds and latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(work)
    failures: list[BaseException] = []

    def client() -> None:
        while True:
            with lock:
                if not queue or failures:
                    return
                item = queue.pop()
            start = time.perf_counter()
            try:
                one(item)
            except BaseException as exc:
                with lock:
                    failures.append(exc)
                return
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return time.perf_counter() - began, latencies


def _figures(elapsed: float, latencies: list[float], used: list[int]) -> dict[str, float]:
    return {
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "duplicates": len(used) - len(set(used)),
        "gaps": (max(used) - len(set(used))) if used else 0,
        "n": len(latencies),
    }


def service_run(url: str, clients: int, count: int) -> tuple[dict[str, float], dict[str, int]]:
    """The service's figures, and how many participants were randomized in each stratum."""
    # The first trial's protocol, with a list long enough for every participant of the run.
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    text = text.replace("list_length_per_stratum: 60", f"list_length_per_stratum: {count + 4}")
    trial = make_bench_trial(url, [Role.ADMINISTRATOR, Role.INVESTIGATOR, Role.UNBLINDED_STATISTICIAN], text)
    investigator = get_user(trial.engine, username(Role.INVESTIGATOR))
    stat = get_user(trial.engine, username(Role.UNBLINDED_STATISTICIAN))
    assert investigator and stat
    people = enrol_many(trial.engine, count)
    generate_list(trial.engine, stat, seed=1)
    elapsed, latencies = _drive(clients, people, lambda pid: randomize(trial.engine, investigator, pid))
    taken = allocation_entries.c.participant_id.is_not(None)
    with session_scope(trial.engine) as session:
        used = [r.sequence for r in session.execute(select(allocation_entries.c.sequence).where(taken))]
        strata = dict(
            session.execute(
                select(allocation_entries.c.stratum, func.count()).where(taken).group_by(allocation_entries.c.stratum)
            ).all()
        )
    trial.engine.dispose()
    return _figures(elapsed, latencies, used), {str(k): int(v) for k, v in strata.items()}


def _work(strata: dict[str, int]) -> tuple[list[tuple[str, str]], list[tuple[str, int, str]]]:
    """The baseline's participants (stratum, id) and list entries (stratum, sequence, arm), 4 spare per stratum."""
    people = [(s, f"P{s}-{i}") for s, n in strata.items() for i in range(n)]
    entries = [(s, q, "AB"[q % 2]) for s, n in strata.items() for q in range(1, n + 5)]
    return people, entries


def raw_postgresql(url: str, clients: int, strata: dict[str, int]) -> dict[str, float]:
    """psycopg, one connection per client, a row lock per entry (FOR UPDATE SKIP LOCKED)."""
    import psycopg
    from _common import postgres_dsn

    schema = url.split("search_path%3D", 1)[1]
    dsn = postgres_dsn()
    people, entries = _work(strata)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(
            "CREATE TABLE raw_entries (id serial PRIMARY KEY, stratum varchar(128) NOT NULL, sequence int NOT NULL,"
            " arm varchar(8) NOT NULL, participant varchar(32) UNIQUE, randomized_at timestamptz,"
            " UNIQUE (stratum, sequence))"
        )
        conn.execute(
            "CREATE TABLE raw_audit (seq bigserial PRIMARY KEY, at timestamptz NOT NULL, actor varchar(128),"
            " participant varchar(32), action varchar(64) NOT NULL, new_value text)"
        )
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO raw_entries (stratum, sequence, arm) VALUES (%s, %s, %s)", entries)
    local = threading.local()
    connections: list[Any] = []
    guard = threading.Lock()

    def one(item: tuple[str, str]) -> None:
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(dsn, options=f"-csearch_path={schema}")
            with guard:
                connections.append(local.conn)
        stratum, pid = item
        conn = local.conn
        with conn.transaction():
            row = conn.execute(
                "SELECT id, arm FROM raw_entries WHERE stratum = %s AND participant IS NULL ORDER BY sequence"
                " LIMIT 1 FOR UPDATE SKIP LOCKED",
                (stratum,),
            ).fetchone()
            assert row is not None, "the list ran out"
            conn.execute("UPDATE raw_entries SET participant = %s, randomized_at = now() WHERE id = %s", (pid, row[0]))
            conn.execute(
                "INSERT INTO raw_audit (at, actor, participant, action, new_value) VALUES (now(), %s, %s, %s, %s)",
                ("investigator", pid, "randomization.allocated", row[1]),
            )

    try:
        elapsed, latencies = _drive(clients, people, one)
    finally:
        for c in connections:
            c.close()
    with psycopg.connect(dsn, options=f"-csearch_path={schema}") as conn:
        used = [r[0] for r in conn.execute("SELECT sequence FROM raw_entries WHERE participant IS NOT NULL")]
        audited = conn.execute("SELECT count(*) FROM raw_audit").fetchone()
        conn.execute("DROP TABLE raw_entries, raw_audit")
    assert audited is not None and audited[0] == len(latencies)
    return _figures(elapsed, latencies, used)


def raw_sqlite(url: str, clients: int, strata: dict[str, int]) -> dict[str, float]:
    """The sqlite3 module, one connection per client, WAL, each transaction BEGIN IMMEDIATE."""
    path = url.removeprefix("sqlite:///") + ".raw"
    people, entries = _work(strata)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE raw_entries (id INTEGER PRIMARY KEY, stratum TEXT NOT NULL, sequence INTEGER NOT NULL,"
            " arm TEXT NOT NULL, participant TEXT UNIQUE, randomized_at TEXT, UNIQUE (stratum, sequence))"
        )
        conn.execute(
            "CREATE TABLE raw_audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT, participant TEXT,"
            " action TEXT NOT NULL, new_value TEXT)"
        )
        conn.executemany("INSERT INTO raw_entries (stratum, sequence, arm) VALUES (?, ?, ?)", entries)
    local = threading.local()
    connections: list[sqlite3.Connection] = []
    guard = threading.Lock()

    def one(item: tuple[str, str]) -> None:
        if not hasattr(local, "conn"):
            local.conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            local.conn.execute("PRAGMA busy_timeout=60000")
            with guard:
                connections.append(local.conn)
        stratum, pid = item
        conn = local.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT id, arm FROM raw_entries WHERE stratum = ? AND participant IS NULL ORDER BY sequence LIMIT 1",
                (stratum,),
            ).fetchone()
            assert row is not None, "the list ran out"
            now = dt.datetime.now(dt.UTC).isoformat()
            conn.execute("UPDATE raw_entries SET participant = ?, randomized_at = ? WHERE id = ?", (pid, now, row[0]))
            conn.execute(
                "INSERT INTO raw_audit (at, actor, participant, action, new_value) VALUES (?, ?, ?, ?, ?)",
                (now, "investigator", pid, "randomization.allocated", row[1]),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    try:
        elapsed, latencies = _drive(clients, people, one)
    finally:
        for c in connections:
            c.close()
    with sqlite3.connect(path) as conn:
        used = [r[0] for r in conn.execute("SELECT sequence FROM raw_entries WHERE participant IS NOT NULL")]
        audited = conn.execute("SELECT count(*) FROM raw_audit").fetchone()[0]
    assert audited == len(latencies)
    return _figures(elapsed, latencies, used)


def _line(label: str, clients: int, r: dict[str, float], extra: str = "") -> str:
    return (
        f"{label:18s} {clients} clients, {int(r['n'])} randomizations: {r['rate']:.1f}/s, "
        f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, duplicates {int(r['duplicates'])}, "
        f"gaps {int(r['gaps'])}{extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--participants", type=int, default=320)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on both databases (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.participants, args.backend = 4, 12, "both"
    failed = False
    for backend in BACKENDS:
        if args.backend not in (backend, "both"):
            continue
        with throwaway_database(backend) as url:
            service, strata = service_run(url, args.clients, args.participants)
            raw = (
                raw_postgresql(url, args.clients, strata)
                if backend == "postgresql"
                else raw_sqlite(url, args.clients, strata)
            )
        how = "row lock, SKIP LOCKED" if backend == "postgresql" else "BEGIN IMMEDIATE"
        target = f" (target >= {TARGET}x)" if backend == "postgresql" else ""
        print(_line(f"{backend} raw", args.clients, raw, f"  [{how}]"))
        print(_line(f"{backend} service", args.clients, service,
                    f"  rate ratio to raw {service['rate'] / raw['rate']:.3f}x{target}"))  # fmt: skip
        sys.stdout.flush()
        failed |= any(r["duplicates"] or r["gaps"] for r in (service, raw))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
