"""Benchmark: the ODM export's CPU time per participant and its peak memory, on trials already built.

    .venv/bin/python bench/odm_export.py --database sqlite:///t300.db [--database sqlite:///t1000.db]
                                         [--repeat 3] [--src OTHER/src] [--out FOLDER] [--with-arms]
    .venv/bin/python bench/odm_export.py --smoke    (a trial of 6 screened simulated on SQLite, one run: CI)

Each database is a trial made by ``trialwright simulate`` (it needs the simulation's accounts). For each, as the data
manager (blinded; ``--with-arms``: the unblinded statistician with arms), ``OdmExporter.write`` runs ``--repeat``
times in one read snapshot with a fixed export time (so that two runs, or two versions of the code, write the same
bytes: ``FileOID``, ``CreationDateTime`` and ``AsOfDateTime`` are the only parts of the file that vary with the
export time), and prints the CPU seconds (``time.process_time``: the machine is shared) of each run, the best, the
best in milliseconds per participant and per screened patient, the peak RSS before the first run and its growth over
the runs, and the file's size and SHA-256 (compare it with another version's). ``--src`` times another checkout's
code (for a before/after on the same trial: run the two alternately); ``--out`` keeps the last file written.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The export time every run writes (a file differs from another run's only where it names the export time).
TAKEN_AT = dt.datetime(2027, 1, 1, 12, 0, tzinfo=dt.UTC)
PROTOCOL = ROOT / "protocols" / "IRCT20190101042197N2.yaml"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="append")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--with-arms", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a trial of 6 screened simulated, one run (CI)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.src.resolve()))
    if args.smoke:
        with tempfile.TemporaryDirectory() as folder:
            args.database, args.repeat = [_simulated(Path(folder), 6)], 1
            measure(args)
        return
    if not args.database:
        parser.error("--database is required (or --smoke)")
    measure(args)


def _simulated(folder: Path, screened: int) -> str:
    """A SQLite trial of ``screened`` simulated patients of the first protocol, with the simulation's accounts."""
    from trialwright.protocol import load_protocol
    from trialwright.services.simulation import simulate
    from trialwright.services.trial import init_trial
    from trialwright.store.engine import make_engine

    url = f"sqlite:///{folder / 'smoke.db'}"
    engine = make_engine(url)
    init_trial(engine, load_protocol(PROTOCOL))
    simulate(engine, PROTOCOL, screened, 1)
    engine.dispose()
    return url


def measure(args: argparse.Namespace) -> None:

    from sqlalchemy import func, select

    from trialwright.exports.odm import OdmExporter
    from trialwright.services.exports import export_source
    from trialwright.services.users import get_user
    from trialwright.store.engine import make_engine
    from trialwright.store.screening_tables import screenings

    user = "sim-unblinded-statistician" if args.with_arms else "sim-data-manager"
    for url in args.database:
        engine = make_engine(url)
        actor = get_user(engine, user)
        assert actor is not None, f"{url}: the trial needs the simulation's accounts ({user})"
        source = dataclasses.replace(export_source(engine, actor, with_arms=args.with_arms), taken_at=TAKEN_AT)
        participants = sum(1 for _ in source.participants())
        with engine.connect() as connection:
            screened = connection.execute(select(func.count()).select_from(screenings)).scalar_one()
        floor = _peak_mb()
        runs: list[float] = []
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder)
            for _ in range(args.repeat):
                began = time.process_time()
                with source.snapshot():
                    written = OdmExporter().write(source, path)[0]
                runs.append(time.process_time() - began)
            grown = _peak_mb() - floor
            size = written.stat().st_size
            digest = hashlib.sha256()
            with written.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            if args.out is not None:
                args.out.mkdir(parents=True, exist_ok=True)
                shutil.copy(written, args.out / written.name)
        best = min(runs)
        print(f"{url}: {screened} screened, {participants} participants; src {args.src}")
        print(f"  CPU s {' '.join(f'{r:.2f}' for r in runs)}; best {best:.2f} s = {1000 * best / participants:.2f} ms "
              f"per participant, {1000 * best / screened:.2f} ms per screened patient")  # fmt: skip
        print(f"  peak RSS {floor:.0f} MB before, +{grown:.0f} MB over the runs; file {size / 1e6:.2f} MB "
              f"sha256 {digest.hexdigest()[:16]}")  # fmt: skip
        engine.dispose()


if __name__ == "__main__":
    main()
