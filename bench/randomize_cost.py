"""Benchmark: what one randomization costs under concurrent clients, through the service (issue 22 item 5).

    .venv/bin/python bench/randomize_cost.py [sqlite|postgresql] [PARTICIPANTS] [CLIENTS]
    .venv/bin/python bench/randomize_cost.py --smoke    (6 participants, 2 clients, both databases: CI)

Makes a fresh trial as ``bench/randomize.py`` does, enrols PARTICIPANTS (default 200) and randomizes them from
CLIENTS (default 32) threads with its driver, and prints the rate, this process's CPU (``time.process_time``),
statements (``before_cursor_execute``, the chainer's polling included), pool checkouts and pings (the dialect's
``do_ping``, a round trip each) per randomization. Steadier than a rate on a shared machine: compare two versions
run after one another.
"""

from __future__ import annotations

import sys
import threading
import time

from _common import enrol_many, make_bench_trial, throwaway_database
from randomize import _drive
from sqlalchemy import event
from tests.trialfixtures import FIRST_PROTOCOL, username

from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.users import get_user


def main() -> None:
    if sys.argv[1:] == ["--smoke"]:  # CI: 6 participants from 2 clients on each database, so the script cannot rot
        for backend in ("sqlite", "postgresql"):
            measure(backend, 6, 2)
        return
    backend = sys.argv[1] if len(sys.argv) > 1 else "postgresql"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    measure(backend, n, clients)


def measure(backend: str, n: int, clients: int) -> None:
    with throwaway_database(backend) as url:
        text = FIRST_PROTOCOL.read_text(encoding="utf-8")
        text = text.replace("list_length_per_stratum: 60", f"list_length_per_stratum: {n + 10}")
        roles = [Role.ADMINISTRATOR, Role.INVESTIGATOR, Role.UNBLINDED_STATISTICIAN]
        trial = make_bench_trial(url, roles, text)
        investigator = get_user(trial.engine, username(Role.INVESTIGATOR))
        stat = get_user(trial.engine, username(Role.UNBLINDED_STATISTICIAN))
        assert investigator and stat
        people = enrol_many(trial.engine, n)
        generate_list(trial.engine, stat, seed=1)
        counts = {"statements": 0, "checkouts": 0, "pings": 0}
        guard = threading.Lock()

        def counter(kind: str):  # type: ignore[no-untyped-def]
            def bump(*_: object) -> None:
                with guard:
                    counts[kind] += 1

            return bump

        event.listen(trial.engine, "before_cursor_execute", counter("statements"))
        event.listen(trial.engine.pool, "checkout", counter("checkouts"))
        ping, pinged = trial.engine.dialect.do_ping, counter("pings")

        def counted_ping(dbapi_connection: object) -> bool:
            pinged()
            return ping(dbapi_connection)

        trial.engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]
        cpu = time.process_time()
        elapsed, latencies = _drive(clients, people, lambda pid: randomize(trial.engine, investigator, pid))
        cpu = time.process_time() - cpu
        trial.engine.dispose()
    print(
        f"{backend} {clients} clients, {len(latencies)} randomizations: {len(latencies) / elapsed:.1f}/s, "
        f"{1000 * cpu / n:.2f} ms CPU, {counts['statements'] / n:.1f} statements, "
        f"{counts['checkouts'] / n:.2f} checkouts, {counts['pings'] / n:.2f} pings per randomization"
    )


if __name__ == "__main__":
    main()
