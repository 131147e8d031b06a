"""Benchmark: form saves over HTTP from 32 clients, with two baselines run in the same process.

    .venv/bin/python bench/form_saves.py [--clients 32] [--saves 320] [--backend sqlite|postgresql|both] [--smoke]

Per backend it makes a fresh trial as the other benchmarks do (PostgreSQL in a throw-away schema), enrols one
participant per save, issues an API token to the study coordinator, and starts the real app
(`trialwright serve`, uvicorn, in a subprocess on a free port). Then, with N httpx client threads:

- the trivial authenticated GET: ``GET /api/v1/me`` as many times as there will be saves (baseline a);
- the saves: ``POST /api/v1/participants/{id}/visits/baseline/forms/vitals`` once per participant, each a
  new form of nine values (the visit recorded, NEWS2 and the S/F ratio derived, every value audited).

It prints saves/s, p50 and p99 and their ratios to the GET (target >= 0.5x, p99 < 250 ms), then the raw
baseline (b): the very rows the saves wrote (visit_records, form_records, queries, audit_entries), read back
and inserted again into bare copies of those tables by SQLAlchemy Core executemany, one transaction per save,
from the same N threads. Last, statements and transactions per save, counted with a ``before_cursor_execute``
(and ``begin``) event on the engine for a few saves made in-process: through the service, and through the
whole API request (token, protocol, save) with FastAPI's TestClient.

--smoke: 4 clients, 8 saves, both databases, the server in a thread (``--server thread``: the app is imported
once); exits 1 if any request is refused or a baseline row is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
from _common import BACKENDS, ROOT, bare_copy, enrol_many, make_bench_trial, percentile, throwaway_database
from sqlalchemy import MetaData, create_engine, event, func, select
from tests.trialfixtures import username

from trialwright.domain.roles import Role
from trialwright.services.forms import save_form
from trialwright.services.tokens import issue_token
from trialwright.services.users import get_user
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_entries

GET_TARGET = 0.5
P99_TARGET_MS = 250.0
TABLES = (visit_records, form_records, queries, audit_entries)


def vitals() -> dict[str, Any]:
    """A vital-signs form (the forms API spec's values), assessed now."""
    return {
        "assessed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "resp_rate": 26, "spo2": 90,
        "on_oxygen": True, "systolic_bp": 105, "pulse": 115, "consciousness": "alert", "temperature": 38.5,
        "fio2": 0.5,
    }  # fmt: skip


def drive(
    clients: int, work: list[Any], one: Callable[[Any, Any], None], make: Callable[[], Any]
) -> tuple[float, list[float]]:
    """``one(state, item)`` for every item from ``clients`` threads, each with its own ``make()`` state."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(work)
    failures: list[BaseException] = []
    ready = threading.Barrier(clients + 1)

    def client() -> None:
        state = make()
        ready.wait()
        try:
            while True:
                with lock:
                    if not queue or failures:
                        return
                    item = queue.pop()
                start = time.perf_counter()
                one(state, item)
                with lock:
                    latencies.append(time.perf_counter() - start)
        except BaseException as exc:
            with lock:
                failures.append(exc)
        finally:
            close = getattr(state, "close", None)
            if close:
                close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return time.perf_counter() - began, latencies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadServer:
    """uvicorn serving the app in a thread of this process (the smoke run: the app is imported once)."""

    def __init__(self, url: str, port: int) -> None:
        import uvicorn

        from trialwright.settings import Settings
        from trialwright.web.app import create_app

        config = uvicorn.Config(create_app(Settings(database_url=url)), host="127.0.0.1", port=port,
                                log_level="warning")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return None if self.thread.is_alive() else 1

    def terminate(self) -> None:
        self.server.should_exit = True

    def wait(self, timeout: float) -> None:
        self.thread.join(timeout)


def start_server(url: str, in_thread: bool = False) -> tuple[Any, str]:
    """The real app on a free port: ``trialwright serve`` in a subprocess, or uvicorn in a thread."""
    port = free_port()
    if in_thread:
        server: Any = ThreadServer(url, port)
    else:
        server = _serve_subprocess(url, port)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError(f"the server ended with {server.returncode}")
        try:
            httpx.get(base + "/api/v1/me", timeout=1)
            return server, base
        except httpx.TransportError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("the server did not start in 30 s")


def _serve_subprocess(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", "from trialwright.cli.main import main; main()", "serve", "--port", str(port),
         "--database", url],
        env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def summary(elapsed: float, latencies: list[float]) -> dict[str, float]:
    return {
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "n": len(latencies),
    }


def http_runs(
    url: str, engine: Any, clients: int, people: list[str], in_thread: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """The trivial GET and the saves over HTTP."""
    token, _ = issue_token(engine, username(Role.STUDY_COORDINATOR), name="bench", actor="bench")
    headers = {"Authorization": f"Bearer {token}"}
    server, base = start_server(url, in_thread)
    try:

        def client() -> httpx.Client:
            return httpx.Client(base_url=base, headers=headers, timeout=120)

        with client() as c:  # warm-up: the first request of a process imports and caches
            for _ in range(3):
                assert c.get("/api/v1/me").status_code == 200

        def get(c: httpx.Client, _: int) -> None:
            answer = c.get("/api/v1/me")
            if answer.status_code != 200:
                raise RuntimeError(f"GET /api/v1/me: {answer.status_code} {answer.text[:200]}")

        got = summary(*drive(clients, list(range(len(people))), get, client))
        values = vitals()

        def save(c: httpx.Client, pid: str) -> None:
            answer = c.post(f"/api/v1/participants/{pid}/visits/baseline/forms/vitals", json={"values": values})
            if answer.status_code != 200:
                raise RuntimeError(f"save of {pid}: {answer.status_code} {answer.text[:300]}")

        saved = summary(*drive(clients, people, save, client))
    finally:
        server.terminate()
        server.wait(30)
    return got, saved


def written_rows(engine: Any, people: set[str], since_seq: int) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """participant -> table -> the rows the saves wrote for that participant."""
    bundles: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    with session_scope(engine) as session:
        for table in (visit_records, form_records, queries):
            for row in session.execute(select(table)).mappings():
                if row["participant_id"] in people:
                    bundles[row["participant_id"]][table.name].append(dict(row))
        for row in session.execute(select(audit_entries).where(audit_entries.c.seq > since_seq)).mappings():
            if row["participant"] in people:
                bundles[row["participant"]][audit_entries.name].append(dict(row))
    return bundles


def raw_run(url: str, clients: int, bundles: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, float]:
    """The same rows inserted again by Core executemany into bare copies, one transaction per save."""
    metadata = MetaData()
    copies = {t.name: bare_copy(t, metadata) for t in TABLES}
    raw = create_engine(url, pool_size=clients, connect_args={"timeout": 60} if url.startswith("sqlite") else {})
    metadata.create_all(raw)

    def insert(_: None, bundle: dict[str, list[dict[str, Any]]]) -> None:
        with raw.begin() as conn:
            for name in (t.name for t in TABLES):
                if bundle.get(name):
                    conn.execute(copies[name].insert(), bundle[name])

    try:
        figures = summary(*drive(clients, list(bundles.values()), insert, lambda: None))
        with raw.connect() as conn:
            for t in TABLES:
                expected = sum(len(b.get(t.name, [])) for b in bundles.values())
                if conn.execute(select(func.count()).select_from(copies[t.name])).scalar() != expected:
                    raise RuntimeError(f"raw baseline: {t.name} rows missing")
        metadata.drop_all(raw)
    finally:
        raw.dispose()
    return figures


def counted(engine: Any, work: Callable[[], None]) -> tuple[int, int]:
    """Statements and transactions (begins) on ``engine`` while ``work`` runs."""
    seen = {"statements": 0, "begins": 0}

    def on_statement(*_: Any) -> None:
        seen["statements"] += 1

    def on_begin(*_: Any) -> None:
        seen["begins"] += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "begin", on_begin)
    return seen["statements"], seen["begins"]


def per_save_counts(url: str, engine: Any, people: list[str]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Statements and transactions per save: through the service, and through the API request in-process."""
    import warnings

    with warnings.catch_warnings():  # starlette's note on httpx, not ours
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from trialwright.settings import Settings
    from trialwright.web.app import create_app

    coordinator = get_user(engine, username(Role.STUDY_COORDINATOR))
    assert coordinator is not None
    half = len(people) // 2
    values = vitals()
    service = counted(engine, lambda: [save_form(engine, coordinator, p, "baseline", "vitals", values)
                                       for p in people[:half]])  # fmt: skip
    token, _ = issue_token(engine, username(Role.STUDY_COORDINATOR), name="count", actor="bench")
    app = create_app(Settings(database_url=url))
    with TestClient(app) as api:
        api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})  # the token's first use, audited once

        def requests() -> None:
            for p in people[half:]:
                answer = api.post(f"/api/v1/participants/{p}/visits/baseline/forms/vitals",
                                  headers={"Authorization": f"Bearer {token}"}, json={"values": values})  # fmt: skip
                assert answer.status_code == 200, answer.text

        through_api = counted(app.state.engine, requests)
    app.state.engine.dispose()
    n_service, n_api = half, len(people) - half
    return ((service[0] / n_service, service[1] / n_service), (through_api[0] / n_api, through_api[1] / n_api))


def run(backend: str, clients: int, saves: int, counts: int, in_thread: bool) -> None:
    with throwaway_database(backend) as url:
        trial = make_bench_trial(url, [Role.ADMINISTRATOR, Role.STUDY_COORDINATOR])
        people = enrol_many(trial.engine, saves + counts)
        extra, people = people[:counts], people[counts:]
        with session_scope(trial.engine) as session:
            since = session.execute(select(func.max(audit_entries.c.seq))).scalar() or 0
        got, saved = http_runs(url, trial.engine, clients, people, in_thread)
        bundles = written_rows(trial.engine, set(people), since)
        if len(bundles) != len(people):
            raise RuntimeError(f"{len(people) - len(bundles)} saves wrote nothing")
        rows = sum(len(v) for b in bundles.values() for v in b.values()) / len(bundles)
        raw = raw_run(url, clients, bundles)
        (s_stmt, s_tx), (a_stmt, a_tx) = per_save_counts(url, trial.engine, extra)
        trial.engine.dispose()
    print(
        f"{backend} GET /api/v1/me  {clients} clients, {int(got['n'])} requests: {got['rate']:.1f}/s, "
        f"p50 {got['p50']:.1f} ms, p99 {got['p99']:.1f} ms"
    )
    print(
        f"{backend} raw executemany {clients} clients, {int(raw['n'])} saves ({rows:.1f} rows each, one "
        f"transaction each): {raw['rate']:.1f} saves/s, p50 {raw['p50']:.1f} ms, p99 {raw['p99']:.1f} ms"
    )
    print(
        f"{backend} form saves      {clients} clients, {int(saved['n'])} saves over HTTP: {saved['rate']:.1f}/s, "
        f"p50 {saved['p50']:.1f} ms, p99 {saved['p99']:.1f} ms (target < {P99_TARGET_MS:.0f} ms); "
        f"ratio to GET {saved['rate'] / got['rate']:.3f}x (target >= {GET_TARGET}x), "
        f"to raw executemany {saved['rate'] / raw['rate']:.3f}x"
    )
    print(
        f"{backend} per save: {s_stmt:.1f} statements, {s_tx:.1f} transactions through the service; "
        f"{a_stmt:.1f} statements, {a_tx:.1f} transactions through the API request (in-process)"
    )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--saves", type=int, default=320)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--server", choices=["process", "thread"], default="process",
                        help="trialwright serve in a subprocess, or uvicorn in a thread of this process")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on both databases, server in a thread (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.saves, args.backend, args.server = 4, 8, "both", "thread"
    for backend in BACKENDS:
        if args.backend in (backend, "both"):
            run(backend, args.clients, args.saves, counts=4, in_thread=args.server == "thread")


if __name__ == "__main__":
    main()
