"""Benchmark: concurrent randomization on SQLite and PostgreSQL.

    .venv/bin/python bench/randomize.py [--clients 32] [--participants 320] [--backend sqlite|postgresql|both]

Creates a fresh trial per backend (PostgreSQL in a throw-away schema of TRIALWRIGHT_TEST_POSTGRES_URL's
database), enrols the participants, generates the list, then randomizes them from N client threads at
once, and prints allocations per second, p50 and p99 latency, and the count of duplicate and skipped
entries (both must be 0). The SQLite run is the baseline; the PostgreSQL line prints its ratio to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from tests.trialfixtures import FIRST_PROTOCOL, make_trial, username  # noqa: E402

from trialwright import legacy  # noqa: E402
from trialwright.domain.roles import Role  # noqa: E402
from trialwright.protocol import load_protocol_text  # noqa: E402
from trialwright.services.randomization import generate_list, randomize  # noqa: E402
from trialwright.services.screening import enrol, record_consent, screen  # noqa: E402
from trialwright.services.users import get_user  # noqa: E402
from trialwright.store.engine import session_scope  # noqa: E402
from trialwright.store.randomization_tables import allocation_entries  # noqa: E402

POSTGRES = legacy.getenv("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ELIGIBLE = {
    "age": 45, "sex": "male", "pcr_positive": True, "pao2_mmhg": 90, "fio2": 0.6, "on_oxygen": True,
    "spo2_on_oxygen": 88, "bilateral_infiltrates": True,
    **dict.fromkeys(["malignancy", "hepatic_failure", "renal_failure", "lung_transplant", "lung_surgery",
                     "bone_marrow_transplant", "autoimmune_disease", "metabolic_disease", "dialysis",
                     "contagious_infection", "active_epilepsy", "coagulopathy", "trauma", "concurrent_trial"], False),
}  # fmt: skip


def run(url: str, clients: int, count: int) -> dict[str, float]:
    # The first trial's protocol, with a list long enough for every participant of the run.
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    text = text.replace("list_length_per_stratum: 60", f"list_length_per_stratum: {count + 4}")
    trial = make_trial(url, load_protocol_text(text))
    admin = get_user(trial.engine, username(Role.ADMINISTRATOR))
    investigator = get_user(trial.engine, username(Role.INVESTIGATOR))
    assert admin and investigator
    today = dt.datetime.now(dt.UTC).date()
    people = []
    for _ in range(count):
        s = screen(trial.engine, admin, site="RAZ", screened_on=today, values=ELIGIBLE)
        record_consent(
            trial.engine,
            admin,
            s.id,
            form_version="1.0",
            given_by="participant",
            obtained_by="bench",
            obtained_at=dt.datetime.now(dt.UTC),
        )
        people.append(enrol(trial.engine, admin, s.id).participant.participant_id)  # type: ignore[union-attr]
    stat = get_user(trial.engine, username(Role.UNBLINDED_STATISTICIAN))
    assert stat
    generate_list(trial.engine, stat, seed=1)
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(people)

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                pid = queue.pop()
            start = time.perf_counter()
            randomize(trial.engine, investigator, pid)
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    with session_scope(trial.engine) as session:
        used = [
            row.sequence
            for row in session.execute(
                select(allocation_entries.c.sequence).where(allocation_entries.c.participant_id.is_not(None))
            )
        ]
    duplicates = len(used) - len(set(used))
    gaps = (max(used) - len(set(used))) if used else 0
    trial.engine.dispose()
    ordered = sorted(latencies)
    return {
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
        "duplicates": duplicates,
        "gaps": gaps,
        "n": len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--participants", type=int, default=320)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            results["sqlite"] = run(f"sqlite:///{folder}/bench.db", args.clients, args.participants)
    if args.backend in ("postgresql", "both"):
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        dsn = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}options={quote(f'-csearch_path={schema}')}"
            results["postgresql"] = run(url, args.clients, args.participants)
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    base = results.get("sqlite")
    for name, r in results.items():
        ratio = f"  rate ratio to sqlite {r['rate'] / base['rate']:.2f}" if base and name != "sqlite" else ""
        print(
            f"{name:10s} {args.clients} clients, {int(r['n'])} randomizations: {r['rate']:.1f}/s, "
            f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, duplicates {int(r['duplicates'])}, "
            f"gaps {int(r['gaps'])}{ratio}"
        )
        if r["duplicates"] or r["gaps"]:
            sys.exit(1)


if __name__ == "__main__":
    main()
