"""Benchmark: one PostgreSQL trial served by 1, 2 and 4 uvicorn workers (issue 23 item 5, issue 22 item 5).

    .venv/bin/python bench/workers.py [--workers 1,2,4] [--clients 16] [--requests 120] [--screened 150]
                                      [--seed 1] [--smoke]

Builds a trial of the first protocol through the simulator (``trialwright simulate``: screening, randomization,
every visit's forms, queries, adverse events, all audited) in a throw-away PostgreSQL schema, then enrols through
the services one fresh participant per save to come (so every save is a new form and every randomization a new
allocation) and extends the allocation list by as many entries (as the unblinded statistician). Untimed.

Then for each worker count W it records a full ``audit verify`` (a checkpoint at the head, so the audit page of
every W verifies only what that run wrote), starts the real app (``trialwright serve --workers W``, a subprocess on
a free port; W worker processes, each with its own engine and pool), warms every endpoint untimed, and drives each
endpoint in turn from N httpx client threads (``bench/form_saves.py``'s ``drive``), ``--requests`` times:

- the raw baseline: the trivial authenticated GET ``/api/v1/me`` on the same server;
- the main pages, each with a browser session of the role that works with it: participants (study coordinator),
  the queries inbox (data manager), adverse events (investigator), the audit page (data manager);
- the API lists, each from its second page (the ``next`` cursor of a first page of 10 rows): participants,
  queries, adverse events, the audit trail;
- form saves (``POST .../visits/baseline/forms/vitals``, one new form of nine values per participant) and
  randomizations (``POST /api/v1/participants/{id}/randomization``), as the study coordinator.

Per endpoint and W it prints requests per second and p50/p95/p99, the rate and the p95 as ratios to the GET's of
the same run, and the rate as a ratio to the same endpoint with one worker (or the first W measured).

At the end, the correctness checks (the command exits 1 if any fails, as it does on any request not answered as
expected): every acknowledged save is stored (its form record holds the values sent), every acknowledged
randomization holds exactly one list entry and no entry or participant is allocated twice, nothing is left in
``audit_pending`` once the workers have stopped, and the full ``audit verify`` (chain and replay) passes.

--smoke: 1 and 2 workers, 4 clients, 4 requests per endpoint, 8 screened patients (CI: the exit code and the
lines, never the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, enrol_many, percentile, throwaway_database
from _scale_steps import engine_of, user_of
from form_saves import drive, free_port, vitals
from sqlalchemy import func, select

from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services.audit_checkpoints import record_full_verify
from trialwright.services.audit_keys import engine_for
from trialwright.services.randomization import extend_list
from trialwright.services.reauth import access_policy
from trialwright.services.replay import replay
from trialwright.services.simulation import simulate
from trialwright.services.tokens import issue_token
from trialwright.services.trial import init_trial
from trialwright.services.users import start_session
from trialwright.settings import Settings
from trialwright.store.data_tables import form_records
from trialwright.store.randomization_tables import allocation_entries
from trialwright.web.security import SESSION_COOKIE

PROTOCOL = ROOT / "protocols" / "IRCT20190101042197N2.yaml"
COORDINATOR, MANAGER, INVESTIGATOR, ADMINISTRATOR = (
    "sim-study-coordinator", "sim-data-manager", "sim-investigator", "sim-administrator",
)  # fmt: skip
STATISTICIAN = "sim-unblinded-statistician"
BASELINE = "GET /api/v1/me"


@dataclass(frozen=True)
class Endpoint:
    """One timed kind of request: who makes it (an API token, or a browser session when ``page``), and how."""

    name: str
    user: str
    method: str
    path: str  # for the writes, with ``{pid}`` for the participant
    page: bool = False
    cursor: bool = False  # an API list read from its second page
    expect: int = 200

    @property
    def writes(self) -> bool:
        return self.method == "POST"


ENDPOINTS = (
    Endpoint(BASELINE, COORDINATOR, "GET", "/api/v1/me"),
    Endpoint("page participants", COORDINATOR, "GET", "/participants", page=True),
    Endpoint("page queries", MANAGER, "GET", "/queries", page=True),
    Endpoint("page adverse events", INVESTIGATOR, "GET", "/safety", page=True),
    Endpoint("page audit", MANAGER, "GET", "/admin/audit", page=True),
    Endpoint("api participants", COORDINATOR, "GET", "/api/v1/participants", cursor=True),
    Endpoint("api queries", MANAGER, "GET", "/api/v1/queries", cursor=True),
    Endpoint("api adverse events", INVESTIGATOR, "GET", "/api/v1/adverse-events", cursor=True),
    Endpoint("api audit", MANAGER, "GET", "/api/v1/audit", cursor=True),
    Endpoint("form saves", COORDINATOR, "POST", "/api/v1/participants/{pid}/visits/baseline/forms/vitals"),
    Endpoint("randomizations", COORDINATOR, "POST", "/api/v1/participants/{pid}/randomization", expect=201),
)  # fmt: skip


def _build(url: str, screened: int, seed: int) -> tuple[float, int]:
    began = time.perf_counter()
    engine = engine_for(Settings(database_url=url), create_key=True)
    init_trial(engine, load_protocol(PROTOCOL))
    simulate(engine, PROTOCOL, screened, seed)
    engine.dispose()
    return time.perf_counter() - began, screened


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (uvicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _serve(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``trialwright serve --workers W`` on a free port, answering, with its W worker processes up."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from trialwright.cli.main import main; main()", "serve", "--port", str(port),
         "--workers", str(workers), "--database", url],
        env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"trialwright serve --workers {workers} ended with {proc.returncode}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200 and (
                workers == 1 or len(_children(proc.pid)) >= workers
            ):
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    _stop(proc)
    raise RuntimeError(f"trialwright serve --workers {workers} did not start in 300 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Credentials:
    """An API token and a browser session cookie per account (made in-process, untimed)."""

    tokens: dict[str, str]
    cookies: dict[str, str]

    def client(self, base: str, endpoint: Endpoint) -> httpx.Client:
        if endpoint.page:
            return httpx.Client(base_url=base, cookies={SESSION_COOKIE: self.cookies[endpoint.user]}, timeout=120,
                                follow_redirects=False)  # fmt: skip
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {self.tokens[endpoint.user]}"},
                            timeout=120)  # fmt: skip


def _credentials(url: str) -> Credentials:
    settings = Settings(database_url=url)
    engine = engine_for(settings)
    policy = access_policy(settings)
    users = sorted({e.user for e in ENDPOINTS})
    tokens = {u: issue_token(engine, u, name="bench workers", actor="bench")[0] for u in users}
    cookies = {u: start_session(engine, user_of(engine, u), policy)[0] for u in users if any(
        e.page and e.user == u for e in ENDPOINTS)}  # fmt: skip
    engine.dispose()
    return Credentials(tokens, cookies)


def _checkpoint(url: str) -> int:
    """A full verify recorded with a checkpoint at the head; the count of entries verified."""
    engine = engine_of(url)
    report = audit.verify(engine)
    replayed = replay(engine, limit=10)
    record_full_verify(engine, report, replayed, by="bench:workers")
    engine.dispose()
    if not report.ok or not replayed.ok:
        raise RuntimeError(f"the audit trail does not verify: {report.message}; replay ok: {replayed.ok}")
    return int(report.count)


def _second_pages(base: str, creds: Credentials) -> dict[str, dict[str, str]]:
    """Each cursor list's second page: the ``next`` cursor of a first page of 10 rows (of half the list, when it
    is shorter than 20); a list of fewer than two rows (a tiny trial) is read from its first page, and said."""
    out = {}
    for e in ENDPOINTS:
        if not e.cursor:
            continue
        with creds.client(base, e) as c:
            total = _get(c, e, {"limit": 1})["total"]
            if total < 2:
                print(f"note: {e.name} has {total} row{'s' * (total != 1)}, read from its first page (no cursor)")
                out[e.name] = {}
                continue
            out[e.name] = {"cursor": _get(c, e, {"limit": min(10, total // 2)})["next"]}
    return out


def _get(c: httpx.Client, e: Endpoint, params: dict[str, Any]) -> Any:
    answer = c.get(e.path, params=params)
    if answer.status_code != 200:
        raise RuntimeError(f"{e.name}: GET {e.path} {params} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()


@dataclass
class Outcome:
    """What one worker count measured, and which writes were acknowledged."""

    figures: dict[str, dict[str, float]]
    saved: list[str]
    randomized: list[str]


def _run_workers(
    url: str, workers: int, clients: int, requests: int, people: list[str], warm: list[str], creds: Credentials
) -> Outcome:
    proc, base = _serve(url, workers)
    figures: dict[str, dict[str, float]] = {}
    acknowledged: dict[str, list[str]] = defaultdict(list)
    try:
        params: dict[str, dict[str, str]] = {}
        values = vitals()

        def request(c: httpx.Client, e: Endpoint, item: Any) -> None:
            if e.writes:
                answer = c.post(e.path.format(pid=item), json={"values": values} if "forms" in e.path else None)
            else:
                answer = c.get(e.path, params=params.get(e.name))
            if answer.status_code != e.expect:
                raise RuntimeError(f"{e.name} ({item}): {answer.status_code} {answer.text[:300]}")
            if e.writes:
                acknowledged[e.name].append(item)  # list.append is atomic under the GIL

        # Untimed warm-up: each worker's first requests import and cache (templates, the protocol, statements).
        # The writes first: their saves may raise queries, which the lists then show.
        for e in sorted(ENDPOINTS, key=lambda e: not e.writes):
            if e.cursor and not params:
                params = _second_pages(base, creds) or {"": {}}
            items = warm if e.writes else list(range(workers + 1))
            drive(min(clients, len(items)), items, lambda c, i, e=e: request(c, e, i),
                  lambda e=e: creds.client(base, e))  # fmt: skip
        acknowledged.clear()
        for e in ENDPOINTS:
            items: list[Any] = people if e.writes else list(range(requests))
            elapsed, latencies = drive(clients, items, lambda c, i, e=e: request(c, e, i),
                                       lambda e=e: creds.client(base, e))  # fmt: skip
            figures[e.name] = {
                "n": len(latencies), "rate": len(latencies) / elapsed,
                **{f"p{p}": percentile(latencies, p) * 1000 for p in (50, 95, 99)},
            }  # fmt: skip
    finally:
        _stop(proc)
    return Outcome(figures, acknowledged["form saves"], acknowledged["randomizations"])


def _print(workers: int, clients: int, figures: dict[str, dict[str, float]], first: tuple[int, Any] | None) -> None:
    get = figures[BASELINE]
    for name, f in figures.items():
        line = (f"workers {workers} {name:<20} {clients} clients, {int(f['n'])} requests: {f['rate']:7.1f}/s, "
                f"p50 {f['p50']:7.1f} ms, p95 {f['p95']:7.1f} ms, p99 {f['p99']:7.1f} ms")  # fmt: skip
        if name != BASELINE:
            line += f"; to GET: rate {f['rate'] / get['rate']:.3f}x, p95 {f['p95'] / get['p95']:.2f}x"
        if first is not None:
            line += f"; rate {f['rate'] / first[1][name]['rate']:.2f}x {first[0]} worker{'s' * (first[0] > 1)}"
        print(line)
    sys.stdout.flush()


def _check(url: str, saved: list[str], randomized: list[str]) -> list[str]:
    """The correctness checks after every run: what failed (empty: all held)."""
    failures = []
    engine = engine_of(url)
    with engine.connect() as conn:
        stored = {
            r.participant_id: json.loads(r.form_values)
            for r in conn.execute(
                select(form_records.c.participant_id, form_records.c.form_values).where(
                    form_records.c.form_id == "vitals", form_records.c.participant_id.in_(saved)
                )
            )
        }
        allocated = conn.execute(
            select(allocation_entries.c.participant_id, func.count())
            .where(allocation_entries.c.participant_id.is_not(None))
            .group_by(allocation_entries.c.participant_id)
        ).all()
    sent = vitals()
    numbers = ("resp_rate", "spo2", "systolic_bp", "pulse", "temperature", "fio2")

    def holds(p: str) -> bool:
        return p in stored and all((stored[p].get(k) or {}).get("value") == sent[k] for k in numbers)

    lost = [p for p in saved if not holds(p)]
    twice = [p for p, n in allocated if n > 1]
    holding = {p for p, _ in allocated}
    unallocated = [p for p in randomized if p not in holding]
    pending = audit.pending_count(engine)
    report = audit.verify(engine)
    replayed = replay(engine, limit=10)
    engine.dispose()
    print(f"saves: {len(saved)} acknowledged, {len(saved) - len(lost)} stored with the values sent, {len(lost)} lost")
    print(f"randomizations: {len(randomized)} acknowledged, {len(randomized) - len(unallocated)} allocated, "
          f"{len(twice)} participants allocated twice, {len(randomized) - len(set(randomized))} acknowledged "
          "twice")  # fmt: skip
    print(f"audit: {pending} pending after the workers stopped; audit verify {'intact' if report.ok else 'BROKEN'} "
          f"({report.count:,} entries), replay {'agrees' if replayed.ok else 'DISAGREES'}")  # fmt: skip
    sys.stdout.flush()
    if lost:
        failures.append(f"{len(lost)} acknowledged saves not stored: {lost[:5]}")
    if twice or unallocated or len(set(randomized)) != len(randomized):
        failures.append(f"allocation: {len(twice)} twice, {len(unallocated)} acknowledged but not allocated")
    if pending:
        failures.append(f"{pending} audit entries left pending")
    if not report.ok or not replayed.ok:
        failures.append(f"audit verify: {report.message}; replay ok: {replayed.ok}")
    return failures


def run(worker_counts: list[int], clients: int, requests: int, screened: int, seed: int) -> int:
    import platform

    began = time.perf_counter()
    with throwaway_database("postgresql") as url:
        took, _ = _build(url, screened, seed)
        warm_each = [max(2, w) for w in worker_counts]
        engine = engine_of(url)
        people = enrol_many(engine, requests * len(worker_counts) + sum(warm_each), by=COORDINATOR)
        # The simulated list holds the simulated trial's participants; one more entry per randomization to come.
        extend_list(engine, user_of(engine, STATISTICIAN), "site=RAZ", entries=len(people),
                    reason="bench/workers.py: one entry per participant it randomizes")  # fmt: skip
        engine.dispose()
        creds = _credentials(url)
        load = os.getloadavg()
        print(f"workers bench: PostgreSQL, {screened} screened simulated in {took:.1f} s, "
              f"{len(people)} more enrolled for the writes; {os.cpu_count()} CPUs ({platform.processor() or '?'}), "
              f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start")  # fmt: skip
        sys.stdout.flush()
        first: tuple[int, Any] | None = None
        saved: list[str] = []
        randomized: list[str] = []
        for w, warm_n in zip(worker_counts, warm_each, strict=True):
            warm, people = people[:warm_n], people[warm_n:]
            mine, people = people[:requests], people[requests:]
            entries = _checkpoint(url)
            outcome = _run_workers(url, w, clients, requests, mine, warm, creds)
            print(f"-- {w} worker{'s' * (w > 1)} (a checkpoint at {entries:,} audit entries before; load average "
                  f"{os.getloadavg()[0]:.1f} after)")  # fmt: skip
            _print(w, clients, outcome.figures, first)
            first = first or (w, outcome.figures)
            saved += warm + outcome.saved  # the warm-up's saves were acknowledged too
            randomized += warm + outcome.randomized
        failures = _check(url, saved, randomized)
    took = time.perf_counter() - began
    print(f"workers bench: {took:.0f} s in all; load average {os.getloadavg()[0]:.1f} at the end")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=120, help="timed requests per endpoint and worker count")
    parser.add_argument("--screened", type=int, default=150, help="patients screened by the simulator")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="1 and 2 workers, tiny sizes (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.workers, args.clients, args.requests, args.screened = "1,2", 4, 4, 8
    counts = [int(n) for n in args.workers.split(",")]
    sys.exit(run(counts, args.clients, args.requests, args.screened, args.seed))


if __name__ == "__main__":
    main()
