"""Benchmark: bulk load of form values through ``trialwright form import``, against raw executemany.

    .venv/bin/python bench/bulk_load.py [--values 20000] [--backend sqlite|postgresql|both] [--smoke]

Per backend it makes a fresh trial (PostgreSQL in a throw-away schema), enrols enough participants through the
services (not timed), and writes the file ``trialwright form import --data`` reads: a JSON list of rows
{participant, visit, form, values} (the command takes JSON, not CSV), four baseline forms per participant
(vitals, blood gas, laboratory, performance: 30 typed values, seeded random within the soft limits). It
then times the command itself, run as a subprocess acting as the study coordinator (the same validation,
derivations and per-value audit entries as typed data, in one transaction), and prints values per second
(the command's start, timed on an empty file, is printed beside it: it is in the figure). A second line compares
CPU seconds, steadier on a loaded machine: the subprocess's (``RUSAGE_CHILDREN``) against the baseline's in this
process (``time.process_time``), with and without the start's; the database server's CPU is in neither.

The raw baseline, in this process: the very rows the import wrote (visit_records, form_records, queries,
audit_entries), read back and inserted again into bare copies of those tables by SQLAlchemy Core executemany
(batches of 10,000 rows, one transaction). The import's line prints its ratio to it (target >= 0.25x).

The issue's size is 1,000,000 values (--values 1000000, about 33,000 participants). The default is smaller so
that a run takes minutes on a shared 2-core machine; the line also prints the time 1,000,000 values would take
at the measured rate (a linear extrapolation, which is optimistic if the import slows as the trial grows).

--smoke: 2 participants' worth of values, both databases, the command's start not timed; exits 1 if the import
refuses a row or the baseline's row counts differ.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import BACKENDS, ROOT, bare_copy, enrol_many, make_bench_trial, throwaway_database
from sqlalchemy import MetaData, create_engine, func, select
from tests.trialfixtures import PASSWORD, username

from trialwright.domain.roles import Role
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_entries

TARGET = 0.25
ISSUE_SIZE = 1_000_000
TABLES = (visit_records, form_records, queries, audit_entries)
BATCH = 10_000


def forms_of(rng: random.Random, at: str, day: str) -> list[tuple[str, dict[str, Any]]]:
    """One participant's four baseline forms (30 values), plausible and coherent."""
    lymphocytes = rng.randint(600, 2500)
    cd3 = round(lymphocytes * rng.uniform(0.55, 0.8))
    cd4 = round(cd3 * rng.uniform(0.5, 0.65))
    cd8 = round(cd3 * rng.uniform(0.25, 0.35))
    fio2 = rng.choice([0.21, 0.3, 0.4, 0.5, 0.6])
    return [
        ("vitals", {
            "assessed_at": at, "resp_rate": rng.randint(14, 34), "spo2": rng.randint(84, 98), "on_oxygen": True,
            "systolic_bp": rng.randint(95, 150), "pulse": rng.randint(65, 125), "consciousness": "alert",
            "temperature": round(rng.uniform(36.2, 39.4), 1), "fio2": fio2,
        }),
        ("blood_gas", {
            "sampled_at": at, "pao2": rng.randint(55, 110), "paco2": rng.randint(30, 48),
            "ph": round(rng.uniform(7.32, 7.48), 2), "fio2": fio2, "support_mode": "conventional_oxygen", "peep": 0,
        }),
        ("labs", {
            "sampled_at": at, "tnf_alpha": round(rng.uniform(2, 60), 1), "il6": round(rng.uniform(5, 300), 1),
            "crp": round(rng.uniform(5, 200), 1), "ddimer": round(rng.uniform(0.3, 5), 2),
            "lymphocytes": lymphocytes, "cd3_abs": cd3, "cd3_pct": round(100 * cd3 / lymphocytes, 1),
            "cd4_abs": cd4, "cd4_pct": round(100 * cd4 / lymphocytes, 1), "cd8_abs": cd8,
            "cd8_pct": round(100 * cd8 / lymphocytes, 1),
        }),
        ("performance", {"assessed_on": day, "status": str(rng.randint(1, 3))}),
    ]  # fmt: skip


VALUES_PER_PARTICIPANT = sum(len(v) for _, v in forms_of(random.Random(0), "", ""))


def import_rows(people: list[str], seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    at = now.isoformat(timespec="seconds")
    day = (now + dt.timedelta(hours=3, minutes=30)).date().isoformat()  # the site's (Tehran's) date
    for pid in people:
        for form, values in forms_of(rng, at, day):
            yield {"participant": pid, "visit": "baseline", "form": form, "values": values}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_import(url: str, data: Path) -> tuple[float, str, float]:
    """``trialwright form import`` as a subprocess; its wall-clock seconds, output and CPU seconds."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "TRIALWRIGHT_PASSWORD": PASSWORD}  # fmt: skip
    began, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [sys.executable, "-c", "from trialwright.cli.main import main; main()", "form", "import", "--data", str(data),
         "--as", username(Role.STUDY_COORDINATOR), "--database", url],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    took, cpu = time.perf_counter() - began, _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"form import failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return took, done.stdout.strip(), cpu


def raw_executemany(url: str, engine: Any, since: int) -> tuple[float, int, float]:
    """The rows the import wrote, inserted again by executemany into bare copies; seconds, rows, CPU seconds (this
    process's: the database server's work is in neither CPU figure)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    with session_scope(engine) as session:
        for table in (visit_records, form_records, queries):
            rows[table.name] = [dict(r) for r in session.execute(select(table)).mappings()]
        rows[audit_entries.name] = [
            dict(r) for r in session.execute(select(audit_entries).where(audit_entries.c.seq > since)).mappings()
        ]
    metadata = MetaData()
    copies = {t.name: bare_copy(t, metadata) for t in TABLES}
    raw = create_engine(url)
    metadata.create_all(raw)
    try:
        began, cpu = time.perf_counter(), time.process_time()
        with raw.begin() as conn:
            for name, batch in rows.items():
                for start in range(0, len(batch), BATCH):
                    conn.execute(copies[name].insert(), batch[start : start + BATCH])
        took, cpu = time.perf_counter() - began, time.process_time() - cpu
        with raw.connect() as conn:
            for name, batch in rows.items():
                if conn.execute(select(func.count()).select_from(copies[name])).scalar() != len(batch):
                    raise RuntimeError(f"raw baseline: {name} rows missing")
        metadata.drop_all(raw)
    finally:
        raw.dispose()
    return took, sum(len(b) for b in rows.values()), cpu


def run(backend: str, values: int, seed: int, time_start: bool) -> None:
    participants = max(1, -(-values // VALUES_PER_PARTICIPANT))
    with throwaway_database(backend) as url, tempfile.TemporaryDirectory() as folder:
        trial = make_bench_trial(url, [Role.ADMINISTRATOR, Role.STUDY_COORDINATOR])
        began = time.perf_counter()
        people = enrol_many(trial.engine, participants)
        enrolling = time.perf_counter() - began
        data = Path(folder) / "forms.json"
        rows = list(import_rows(people, seed))
        data.write_text(json.dumps(rows), encoding="utf-8")
        n = sum(len(r["values"]) for r in rows)
        with session_scope(trial.engine) as session:
            since = session.execute(select(func.max(audit_entries.c.seq))).scalar() or 0
        empty = Path(folder) / "empty.json"
        empty.write_text("[]", encoding="utf-8")
        start = run_import(url, empty) if time_start else None
        took, said, cpu = run_import(url, data)
        with session_scope(trial.engine) as session:
            saved = session.execute(select(func.count()).select_from(form_records)).scalar()
        if saved != len(rows):
            raise RuntimeError(f"the import saved {saved} of {len(rows)} forms: {said}")
        raw_took, raw_rows, raw_cpu = raw_executemany(url, trial.engine, since)
        trial.engine.dispose()
    rate, raw_rate = n / took, n / raw_took
    print(
        f"{backend} raw executemany: {n} values ({raw_rows} rows, {raw_rows / n:.2f} per value) in "
        f"{raw_took:.2f} s: {raw_rate:.0f} values/s (CPU {raw_cpu:.2f} s)"
    )
    print(
        f"{backend} form import:     {n} values ({len(rows)} forms, {participants} participants) in {took:.2f} s: "
        f"{rate:.0f} values/s; ratio to raw executemany {rate / raw_rate:.3f}x (target >= {TARGET}x); "
        f"{ISSUE_SIZE:,} values would take ~{ISSUE_SIZE / rate / 60:.0f} min at this rate "
        + (f"(the command's start on an empty file: {start[0]:.1f} s, CPU {start[2]:.2f} s)" if start else
           "(start not timed)")
    )
    print(
        f"{backend} by CPU seconds: form import {cpu:.2f} s (the subprocess's), raw executemany {raw_cpu:.2f} s: "
        f"ratio {raw_cpu / cpu:.3f}x"
        + (f"; without the start's {start[2]:.2f} s, {raw_cpu / max(cpu - start[2], 1e-9):.3f}x" if start else "")
    )
    print(
        f"{backend} (setup, not timed: {participants} participants enrolled through the services in {enrolling:.1f} s)"
    )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on both databases (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.values, args.backend = 2 * VALUES_PER_PARTICIPANT, "both"
    for backend in BACKENDS:
        if args.backend in (backend, "both"):
            run(backend, args.values, args.seed, time_start=not args.smoke)


if __name__ == "__main__":
    main()
