"""Benchmark: the read path at scale (issue 23 item 4): analysis, every export format, and the lists.

    .venv/bin/python bench/scale.py [--participants 300[,1500]] [--backend sqlite|postgresql|both] [--seed 1]
                                    [--requests 20] [--database URL] [--save FILE] [--compare-rss-with FILE]
                                    [--lists 'adverse events,screening log'] [--smoke]

Builds a trial of the first protocol of N screened patients through the fastest correct path the project has for
a whole trial: the simulator (``trialwright simulate``: screening, consent, randomization, every visit's forms
saved in one transaction by ``save_visit_forms``, queries, pharmacy, adverse events, all audited), plus N/10 data
access requests (at most 1,000) through the service, in a throw-away database; or takes an existing trial with
``--database URL`` (made by ``trialwright simulate``: it needs the simulation's accounts; the benchmark adds to it
the audit entries of its exports and analyses, a verification checkpoint, and a session and an API token per list).

Then, each step in a forked child of this process (``bench/_scale_steps.py``: a step's peak RSS is its own, on the
same floor of imports), it times and reports the peak RSS of:

- the raw baselines: a plain SQL read of the tables the exports and the analysis read, streamed into Arrow record
  batches, alone, then written with pyarrow to CSV, then to Parquet; and a raw read of the audit trail;
- the analysis (the whole plan, as the blinded statistician): ratio to the raw read;
- each export format of the registry, as the data manager: CSV and the others to the raw read + CSV, Parquet to
  the raw read + Parquet;
- the full audit verify (chain, replay, checkpoint): ratio to the raw read of the trail;
- the lists (participants, screening log, queries, adverse events, audit, pharmacy, data access), page and API,
  first and deep page: p50 and p95 over ``--requests`` requests, ratio of p95 to the raw SQL page's
  (``bench/_scale_lists.py``);
- the tables by arm, as the DSMB member: the safety tables by arm (``/dsmb``, ``GET /api/v1/safety/tables``) and
  the recruitment dashboard by arm (``/recruitment``, ``GET /api/v1/recruitment/status``): p50 and p95 over
  ``--requests`` requests, ratio of p95 to a raw SQL ``GROUP BY`` of the same counts (``bench/_scale_by_arm.py``).

Each line carries the issue's target beside its figure (analysis, CSV and Parquet < 60 s; other formats < 5 min;
page p95 < 300 ms; audit page < 200 ms). With two sizes (``--participants 300,1500``), or a smaller run saved with
``--save`` and given to ``--compare-rss-with``, it prints each step's peak RSS against the smaller run's (target
< 2x; the issue's sizes are 1,000 and 100,000).

--smoke: 3 and 6 screened patients on SQLite (two sizes, so the RSS lines print too; PostgreSQL is left out to keep
it well under a minute), 2 requests per page; exits 1 if any step fails, any request is not answered 200, an API
list's first page disagrees with its service or a deep page is empty, or the audit trail does not verify.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT, throwaway_database
from _scale_by_arm import BY_ARM, by_arm_step
from _scale_lists import LISTS, list_step, summary
from _scale_steps import (
    DATA_TABLES,
    RAW_AUDIT,
    Measured,
    analysis_step,
    engine_of,
    export_step,
    measured,
    raw_step,
    user_of,
    verify_step,
)

from trialwright.protocol import load_protocol
from trialwright.services.audit_keys import engine_for
from trialwright.services.exports import export_source, formats
from trialwright.services.sharing import record_request
from trialwright.services.simulation import simulate
from trialwright.services.trial import current_protocol, init_trial
from trialwright.settings import Settings
from trialwright.store.data_tables import queries
from trialwright.store.tables import audit_entries
from trialwright.web.app import create_app

PROTOCOL = ROOT / "protocols" / "IRCT20190101042197N2.yaml"
STATISTICIAN, MANAGER = "sim-blinded-statistician", "sim-data-manager"
FAST_FORMATS, FAST, SLOW = ("csv", "parquet"), 60.0, 300.0
PAGE_P95, AUDIT_P95, RSS_RATIO = 300.0, 200.0, 2.0


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _build(url: str, screened: int, seed: int) -> Measured:
    def work() -> dict[str, Any]:
        began = time.perf_counter()
        engine = engine_for(Settings(database_url=url), create_key=True)
        init_trial(engine, load_protocol(PROTOCOL))
        made = simulate(engine, PROTOCOL, screened, seed)
        manager = user_of(engine, MANAGER)
        requests = min(1000, max(3, screened // 10))
        today = dt.datetime.now(dt.UTC).date()
        for n in range(requests):
            record_request(engine, manager, requester=f"Researcher {n}", organisation="University",
                           email=f"r{n}@uni.example", purpose="Individual participant data meta-analysis",
                           reasons="Pooling the trials of this question.", received_on=today)  # fmt: skip
        engine.dispose()
        return {"seconds": time.perf_counter() - began, "simulated": made.seconds, "requests": requests}

    return measured("build", work)


def _counts(url: str) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        from sqlalchemy import func, select

        engine = engine_of(url)
        records = export_source(engine, user_of(engine, MANAGER)).count()
        with engine.connect() as conn:
            entries = conn.execute(select(func.count()).select_from(audit_entries)).scalar_one()
            rows = {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (*DATA_TABLES, queries)
            }
        engine.dispose()
        return {"seconds": 0.0, "records": records, "entries": entries, **rows}

    return measured("counts", work).figures


def _line(m: Measured, base: Measured | None, base_name: str, target: float | None, note: str = "") -> str:
    ratio = f"{m.seconds / base.seconds:8.1f}x {base_name:<17}" if base and base.seconds else f"{'':27}"
    aim = f"  target < {target:.0f} s: {_verdict(m.seconds < target)}" if target else ""
    return (f"{m.name:<20} {m.seconds:9.2f} s ({m.figures['cpu']:7.2f} CPU s) {ratio} peak {m.peak_mb:5.0f} MB "
            f"(+{m.peak_mb - m.floor_mb:4.0f} over the fork's {m.floor_mb:.0f}){aim}{note}")  # fmt: skip


def _lists(url: str, requests: int, out: dict[str, Any], only: tuple[str, ...] = ()) -> None:
    for spec in LISTS:
        if only and spec.name not in only:
            continue
        m = measured(f"list {spec.name}", list_step(url, spec, requests))
        f = m.figures
        target = AUDIT_P95 if spec.name == "audit" else PAGE_P95
        for where in ("page", "api"):
            for which in ("first", "deep"):
                if f"{where} {which}" not in f:
                    continue
                p50, p95 = summary(f[f"{where} {which}"])
                _, raw95 = summary(f[f"raw {which}"])
                at = f" (after row {f['depth']:,} of {f['total']:,})" if which == "deep" else f" ({f['total']:,} rows)"
                label = f"{where:<4} {spec.name} {which}{at}"
                print(f"{label:<52} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  {p95 / raw95:7.1f}x raw p95 "
                      f"({raw95:.2f} ms)  peak {m.peak_mb:5.0f} MB  target p95 < {target:.0f} ms: "
                      f"{_verdict(p95 < target)}")  # fmt: skip
                out[f"{where} {spec.name} {which}"] = {"p50_ms": p50, "p95_ms": p95, "raw_p95_ms": raw95}
        out[f"list {spec.name}"] = {"peak_mb": m.peak_mb, "floor_mb": m.floor_mb}
        sys.stdout.flush()


def _by_arm(url: str, requests: int, out: dict[str, Any]) -> None:
    m = measured("tables by arm", by_arm_step(url, requests))
    f = m.figures
    for name, _, _ in BY_ARM:
        p50, p95 = summary(f[name])
        raw_name = "raw safety" if name.startswith("safety") else "raw recruitment"
        _, raw95 = summary(f[raw_name])
        label = f"{name} ({f['randomized']:,} randomized)"
        print(f"{label:<52} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  "
              f"{p95 / raw95:7.1f}x raw GROUP BY p95 ({raw95:.2f} ms)  peak {m.peak_mb:5.0f} MB")  # fmt: skip
        out[name] = {"p50_ms": p50, "p95_ms": p95, "raw_p95_ms": raw95}
    out["tables by arm"] = {"peak_mb": m.peak_mb, "floor_mb": m.floor_mb}
    sys.stdout.flush()


def run(
    url: str, label: str, screened: int | None, seed: int, requests: int, lists: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Build (unless ``screened`` is None: an existing trial), then measure every step (with ``lists``: only those
    lists); the figures by step."""
    built = _build(url, screened, seed) if screened is not None else None
    # The protocol parsed and the app's modules loaded once here, so that no child pays for them (they are in the
    # floor every child starts from); no connection stays open across a fork.
    warm = engine_of(url)
    current_protocol(warm)
    warm.dispose()
    create_app(Settings(database_url=url)).state.engine.dispose()
    counts = _counts(url)
    what = f"{screened:,} screened" if screened is not None else "existing trial"
    print(f"scale {label}: {what}, {counts['participants']:,} participants, {counts['records']:,} form records, "
          f"{counts['entries']:,} audit entries, {counts['queries']:,} queries")  # fmt: skip
    if built is not None:
        print(f"build: {built.seconds:.1f} s (the simulator {built.figures['simulated']:.1f} s, then "
              f"{built.figures['requests']:,} data access requests), peak {built.peak_mb:.0f} MB")  # fmt: skip
    steps: dict[str, Any] = {"screened": screened, **counts}
    if lists:
        _lists(url, requests, steps, lists)
        if "by arm" in lists:
            _by_arm(url, requests, steps)
        return steps
    raw = {w: measured(f"raw read{' + ' + w if w else ''}", raw_step(url, DATA_TABLES, w or None))
           for w in ("", "csv", "parquet")}  # fmt: skip
    raw_audit = measured("raw read audit", raw_step(url, RAW_AUDIT, None))
    for m in (*raw.values(), raw_audit):
        print(_line(m, None, "", None, f"  ({m.figures['rows']:,} rows)"))
    results = [*raw.values(), raw_audit]
    analysis = measured("analysis", analysis_step(url, STATISTICIAN))
    print(_line(analysis, raw[""], "raw read", FAST))
    results.append(analysis)
    for fmt in formats():
        m = measured(f"export {fmt}", export_step(url, MANAGER, fmt))
        base, base_name = (raw["parquet"], "raw read+parquet") if fmt == "parquet" else (raw["csv"], "raw read+csv")
        print(_line(m, base, base_name, FAST if fmt in FAST_FORMATS else SLOW,
                    f"  ({m.figures['files']} files, {m.figures['bytes'] / 1e6:.1f} MB)"))  # fmt: skip
        results.append(m)
    verify = measured("audit verify (full)", verify_step(url))
    print(_line(verify, raw_audit, "raw read audit", None, f"  ({verify.figures['entries']:,} entries; no target)"))
    results.append(verify)
    sys.stdout.flush()
    for m in results:
        steps[m.name] = {"seconds": m.seconds, "cpu": m.figures["cpu"], "peak_mb": m.peak_mb, "floor_mb": m.floor_mb}
    _lists(url, requests, steps)
    _by_arm(url, requests, steps)
    return steps


def compare_rss(large: dict[str, Any], small: dict[str, Any]) -> None:
    """Each step's peak RSS at the larger size against the smaller run's."""
    for name, figures in large.items():
        if not isinstance(figures, dict) or "peak_mb" not in figures or name not in small:
            continue
        ratio = figures["peak_mb"] / small[name]["peak_mb"]
        print(f"rss {name:<26} {figures['peak_mb']:6.0f} MB at {_size(large)} vs {small[name]['peak_mb']:6.0f} MB at "
              f"{_size(small)}: {ratio:5.2f}x  target < {RSS_RATIO:.0f}x: {_verdict(ratio < RSS_RATIO)}")  # fmt: skip


def _size(run: dict[str, Any]) -> str:
    screened = f"{run['screened']:,} screened, " if run.get("screened") else ""
    return f"{screened}{run['participants']:,} participants"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--participants", default="300", help="screened patients: one size, or two (300,1500)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page (p50, p95)")
    parser.add_argument("--database", help="measure this trial (made by trialwright simulate) instead of building")
    parser.add_argument("--save", type=Path, help="write the (largest) run's figures to this JSON file")
    parser.add_argument("--compare-rss-with", type=Path, help="a smaller run's --save file: peak RSS ratios")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on both databases (CI)")
    parser.add_argument(
        "--lists",
        help="only these lists, comma-separated (e.g. 'adverse events,screening log'; 'by arm': the tables by arm)",
    )
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.participants.split(","))
    lists = tuple(name.strip() for name in args.lists.split(",")) if args.lists else ()
    unknown = set(lists) - {spec.name for spec in LISTS} - {"by arm"}
    if unknown:
        names = ", ".join([*(spec.name for spec in LISTS), "by arm (the tables by arm)"])
        parser.error(f"--lists: no list named {', '.join(sorted(unknown))}; the lists: {names}")
    runs: list[tuple[str, list[int]]] = []
    if args.smoke:
        args.requests, runs = 2, [("sqlite", [3, 6])]
    elif not args.database:
        runs = [(b, sizes) for b in ("sqlite", "postgresql") if args.backend in (b, "both")]
    smaller = json.loads(args.compare_rss_with.read_text(encoding="utf-8")) if args.compare_rss_with else None
    last: dict[str, Any] = {}
    if args.database:
        last = run(args.database, args.database.split(":")[0], None, args.seed, args.requests, lists)
    for backend, wanted in runs:
        done: list[dict[str, Any]] = []
        for size in wanted:
            with throwaway_database(backend) as url:
                done.append(run(url, backend, size, args.seed, args.requests, lists))
        if len(done) > 1:
            compare_rss(done[-1], done[0])
        last = done[-1]
    if smaller is not None:
        compare_rss(last, smaller)
    if args.save:
        args.save.write_text(json.dumps(last, indent=1, default=str), encoding="utf-8")
    print(f"benchmark process: peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
