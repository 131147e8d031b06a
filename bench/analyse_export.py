"""Benchmark: the analysis and the exports of a simulated trial.

    .venv/bin/python bench/analyse_export.py [--database sqlite:///FILE] [--participants 300] [--seed 1]
                                             [--formats csv,parquet,sdtm,odm,fhir] [--smoke]

Without --database it simulates N screened patients of the first protocol into a temporary SQLite file
first (not timed). Then it times, as the blinded statistician, the whole analysis plan (reading the
snapshot and computing every outcome) and the report's files, and, as the data manager, each export
format; it prints seconds, form records per second, CPU seconds (this process's) and the peak memory of the
process, which stays flat as the trial grows when exports stream. With --database, the trial must have simulation
accounts (sim-blinded-statistician, sim-data-manager). --smoke: 6 screened patients, every format, once (CI: the
script must not rot).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trialwright.analysis.report import write_report  # noqa: E402
from trialwright.protocol import load_protocol  # noqa: E402
from trialwright.services.analysis import run_analysis  # noqa: E402
from trialwright.services.exports import export_source, run_export  # noqa: E402
from trialwright.services.simulation import simulate  # noqa: E402
from trialwright.services.trial import init_trial  # noqa: E402
from trialwright.services.users import get_user  # noqa: E402
from trialwright.store.engine import make_engine  # noqa: E402

PROTOCOL = ROOT / "protocols" / "IRCT20190101042197N2.yaml"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database")
    parser.add_argument("--participants", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--formats", default="csv,parquet,stata,sdtm,odm,fhir")
    parser.add_argument("--smoke", action="store_true", help="6 screened patients, every format (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.database, args.participants = None, 6
    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{folder}/bench.db"
        engine = make_engine(url)
        if not args.database:
            init_trial(engine, load_protocol(PROTOCOL))
            simulate(engine, PROTOCOL, args.participants, args.seed)
        statistician = get_user(engine, "sim-blinded-statistician")
        manager = get_user(engine, "sim-data-manager")
        assert statistician is not None and manager is not None, "the trial needs the simulation's accounts"
        records = export_source(engine, manager).count()
        print(f"trial: {records} form records; peak memory {_peak_mb():.0f} MB before the benchmark")
        began = time.perf_counter()
        run = run_analysis(engine, statistician)
        analysed = time.perf_counter() - began
        began = time.perf_counter()
        write_report(run.report, Path(folder) / "report")
        written = time.perf_counter() - began
        print(f"analysis   {analysed:7.2f} s ({records / analysed:8.0f} records/s); report files {written:6.2f} s;"
              f" peak {_peak_mb():.0f} MB")  # fmt: skip
        for fmt in args.formats.split(","):
            began, cpu = time.perf_counter(), time.process_time()
            run_export(engine, manager, fmt, Path(folder) / f"export-{fmt}")
            took, cpu = time.perf_counter() - began, time.process_time() - cpu
            print(f"export {fmt:8s} {took:7.2f} s ({records / took:8.0f} records/s), CPU {cpu:.2f} s; peak"
                  f" {_peak_mb():.0f} MB")  # fmt: skip
        engine.dispose()


if __name__ == "__main__":
    main()
