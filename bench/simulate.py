"""Benchmark: simulating a trial through the services.

    .venv/bin/python bench/simulate.py [--participants 200] [--seed 1] [--backend sqlite|postgresql|both] [--smoke]

Creates a fresh trial of the first protocol per backend (PostgreSQL in a throw-away schema of
TRIALWRIGHT_TEST_POSTGRES_URL's database), simulates N screened patients, and prints patients screened per
second, forms saved per second, audit entries written, and CPU-seconds per screened patient (this process's
``time.process_time`` over the simulation: on SQLite that is all the work, on PostgreSQL it leaves out the
server's). The SQLite run is the baseline; the PostgreSQL line prints its ratio to it.

--smoke: 3 patients on both databases; exits 1 if the audit trail does not verify (audit.verify raises).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import create_engine, text  # noqa: E402

from trialwright import legacy  # noqa: E402
from trialwright.protocol import load_protocol  # noqa: E402
from trialwright.services import audit  # noqa: E402
from trialwright.services.simulation import simulate  # noqa: E402
from trialwright.services.trial import init_trial  # noqa: E402
from trialwright.store.engine import make_engine  # noqa: E402

PROTOCOL = ROOT / "protocols" / "IRCT20190101042197N2.yaml"


def run(url: str, participants: int, seed: int) -> tuple[float, float, int, float]:
    engine = make_engine(url)
    init_trial(engine, load_protocol(PROTOCOL))
    cpu = time.process_time()
    summary = simulate(engine, PROTOCOL, participants, seed)
    cpu = time.process_time() - cpu
    entries = audit.verify(engine).count
    engine.dispose()
    return summary.rate, summary.forms_saved / summary.seconds, entries, cpu / summary.screened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on both databases (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.participants, args.backend = 3, "both"
    baseline = None
    if args.backend in {"sqlite", "both"}:
        with tempfile.TemporaryDirectory() as folder:
            rate, forms, entries, cpu = run(f"sqlite:///{folder}/bench.db", args.participants, args.seed)
        baseline = rate
        print(
            f"sqlite      {rate:8.1f} screened/s  {forms:8.1f} forms/s  {entries} audit entries  "
            f"{cpu:.3f} CPU-s per screened patient"
        )
    if args.backend in {"postgresql", "both"}:
        base = legacy.getenv("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in base else "?"
        try:
            url = f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
            rate, forms, entries, cpu = run(url, args.participants, args.seed)
            ratio = f"  ({rate / baseline:.2f} x sqlite)" if baseline else ""
            print(
                f"postgresql  {rate:8.1f} screened/s  {forms:8.1f} forms/s  {entries} audit entries  "
                f"{cpu:.3f} CPU-s per screened patient (this process){ratio}"
            )
        finally:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
