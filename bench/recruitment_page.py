"""Benchmark: the recruitment page at a trial's size (issue 23: page p95 < 300 ms).

    .venv/bin/python bench/recruitment_page.py --database sqlite:///sim.db [--requests 20]

Times, on a trial made by ``trialwright simulate`` (it needs the simulation's accounts), through the real app
(``create_app`` and Starlette's TestClient, a browser session cookie): ``/recruitment`` as the DSMB member (the
dashboard by arm and the forecast) and as the study coordinator (no arms), and ``GET /api/v1/recruitment/status``
as the DSMB member; and the page's data path alone, in this process (``web.routes.recruitment._results``: what the
page reads and sums, without its three matplotlib plots), as each reader. Each is requested once untimed, then
``--requests`` times: p50 and p95 (nearest rank) of the wall time, and the mean CPU time of this process per request
(``time.process_time``, the app's thread included: steadier than the wall time on a shared machine). Prints the
trial's size beside them (screened, randomized). Run on a copy of the trial file: a load as the DSMB member
remembers the allocation entries it verified, and a session and a token are added. ``--smoke``: 6 screened patients
of the first protocol simulated into a temporary SQLite file, 2 requests each (CI: the script must not rot).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from _common import percentile, simulated_smoke_trial
from _scale_steps import user_of
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from trialwright.services.reauth import access_policy
from trialwright.services.recruitment import Scenario
from trialwright.services.tokens import issue_token
from trialwright.services.users import start_session
from trialwright.settings import Settings
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import screenings
from trialwright.web.app import create_app
from trialwright.web.routes.recruitment import _results
from trialwright.web.security import SESSION_COOKIE

READERS = {"dsmb": "sim-dsmb-member", "coordinator": "sim-study-coordinator"}


def _timed_call(call: Callable[[], Any], requests: int) -> dict[str, float]:
    call()  # untimed: templates, and the DSMB's first verification of the allocation entries
    walls, cpus = [], []
    for _ in range(requests):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"p50": percentile(walls, 50), "p95": percentile(walls, 95), "cpu": sum(cpus) / len(cpus)}


def _timed(client: TestClient, path: str, headers: dict[str, str], requests: int) -> dict[str, float]:
    def get() -> None:
        answer = client.get(path, headers=headers)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path} answered {answer.status_code}: {answer.text[:300]}")

    return _timed_call(get, requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="a trial made by trialwright simulate (a copy: it grows)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="6 screened patients simulated here, 2 requests (CI)")
    args = parser.parse_args()
    if args.smoke:
        with simulated_smoke_trial() as url:
            _measure(url, 2)
        return
    if not args.database:
        parser.error("--database is required (or --smoke)")
    _measure(args.database, args.requests)


def _measure(database: str, requests: int) -> None:
    settings = Settings(database_url=database)
    app = create_app(settings)
    engine: Any = app.state.engine
    with engine.connect() as conn:
        screened = conn.execute(select(func.count()).select_from(screenings)).scalar_one()
        randomized = conn.execute(
            select(func.count()).where(allocation_entries.c.participant_id.is_not(None))
        ).scalar_one()
    print(f"{database}: {screened} screened, {randomized} randomized, {requests} requests each")
    cookies = {}
    for name, username in READERS.items():
        cookie, _ = start_session(engine, user_of(engine, username), access_policy(settings))
        cookies[name] = cookie
    token, _ = issue_token(engine, READERS["dsmb"], name="bench recruitment page", actor="bench")
    steps = (("page as dsmb", "/recruitment", "dsmb", {}),
             ("page as coordinator", "/recruitment", "coordinator", {}),
             ("api status as dsmb", "/api/v1/recruitment/status", "dsmb",
              {"Authorization": f"Bearer {token}"}))  # fmt: skip
    for reader in ("dsmb", "coordinator"):  # the page's data path alone: its reads and sums, without the plots
        user = user_of(engine, READERS[reader])
        f = _timed_call(lambda u=user: _results(engine, u, Scenario()), requests)
        print(f"{'data as ' + reader:22s} p50 {f['p50'] * 1000:7.1f} ms   p95 {f['p95'] * 1000:7.1f} ms   "
              f"cpu {f['cpu'] * 1000:7.1f} ms")
    for label, path, reader, headers in steps:
        with TestClient(app, follow_redirects=False) as client:
            client.cookies.set(SESSION_COOKIE, cookies[reader])
            f = _timed(client, path, headers, requests)
        print(f"{label:22s} p50 {f['p50'] * 1000:7.1f} ms   p95 {f['p95'] * 1000:7.1f} ms   "
              f"cpu {f['cpu'] * 1000:7.1f} ms")
    engine.dispose()


if __name__ == "__main__":
    main()
