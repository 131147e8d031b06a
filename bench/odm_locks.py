"""Benchmark: what carrying the trial lock and soft locks costs the ODM export.

    .venv/bin/python bench/odm_locks.py [--participants 100] [--seed 1] [--repeat 3] [--smoke]

Simulates N screened patients of the first protocol into a temporary SQLite file (not timed), soft-locks and lifts
every participant and every site once, soft-locks half of the participants again and locks the trial (not timed).
Then, in the same process, it times the ODM export (CPU time, ``time.process_time``: the machine is shared) with the
locks (``ExportSource.locks``, ``tw:TrialLock``/``tw:SoftLock``) and, as the raw baseline, the same export with
``locks()`` answering nothing (what the export wrote before), the best of ``--repeat`` runs each, and prints both,
their ratio and the file sizes. --smoke: 6 screened patients, one run each (CI: the script must not rot).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trialwright.exports.odm import OdmExporter  # noqa: E402
from trialwright.protocol import load_protocol  # noqa: E402
from trialwright.services.exports import export_source  # noqa: E402
from trialwright.services.lock import _set_lock, soft_lock, soft_unlock  # noqa: E402
from trialwright.services.simulation import simulate  # noqa: E402
from trialwright.services.trial import init_trial  # noqa: E402
from trialwright.services.users import get_user  # noqa: E402
from trialwright.store.engine import make_engine  # noqa: E402

PROTOCOL = ROOT / "protocols" / "IRCT20190101042197N2.yaml"


class _NoLocks:
    """The export source as it was before the locks travelled: ``locks()`` answers nothing."""

    def __init__(self, source: object) -> None:
        self._source = source

    def __getattr__(self, name: str) -> object:
        return getattr(self._source, name)

    def locks(self) -> tuple[()]:
        return ()


def _timed(source: object, folder: Path, repeat: int) -> tuple[float, int]:
    best, size = float("inf"), 0
    for n in range(repeat):
        out = folder / f"run-{n}"
        out.mkdir(parents=True)
        began = time.process_time()
        path = OdmExporter().write(source, out)[0]  # type: ignore[arg-type]
        best = min(best, time.process_time() - began)
        size = path.stat().st_size
    return best, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="6 screened patients, one run each (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.participants, args.repeat = 6, 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        init_trial(engine, load_protocol(PROTOCOL))
        simulate(engine, PROTOCOL, args.participants, args.seed)
        manager = get_user(engine, "sim-data-manager")
        assert manager is not None
        source = export_source(engine, manager)
        pids = [p.participant_id for p in source.participants()]
        for site in source.protocol.site_codes:
            soft_lock(engine, manager, "interim analysis", site=site)
            soft_unlock(engine, manager, "interim analysis done", site=site)
        for n, pid in enumerate(pids):
            soft_lock(engine, manager, "source data review", participant_id=pid)
            if n % 2:
                soft_unlock(engine, manager, "reviewed", participant_id=pid)
        _set_lock(engine, manager, True, "final analysis")  # the lock and its entry, without the readiness report
        source = export_source(engine, manager)
        print(f"trial: {len(pids)} participants, {len(source.locks())} lock changes")
        raw, raw_size = _timed(_NoLocks(source), folder / "raw", args.repeat)
        with_locks, size = _timed(source, folder / "locks", args.repeat)
        print(f"ODM export without the locks (raw baseline): {raw:6.2f} CPU s, {raw_size / 1e6:6.2f} MB")
        print(f"ODM export with the locks:                   {with_locks:6.2f} CPU s, {size / 1e6:6.2f} MB")
        print(f"ratio: {with_locks / raw:.3f} CPU, {size / raw_size:.3f} size")
        engine.dispose()


if __name__ == "__main__":
    main()
