"""Every benchmark in bench/ runs once at its smoke size, so none of them rots (issue 22).

Nothing here is timed: speed is measured by the benchmarks themselves (docs/benchmarks.md). Each script runs
as a subprocess with ``--smoke`` (tiny sizes, SQLite and PostgreSQL; bench/workers.py on PostgreSQL only) and
must exit 0, which it does only if its own correctness checks pass (no duplicate allocation, every save and
import row accepted, every acknowledged save stored and the audit trail intact after several workers, the raw
baselines' row counts equal to what the service wrote), and must print each figure line with its ratio.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, must_have

NUMBER = r"[0-9.]+"
TIMED = rf"{NUMBER} s \( *{NUMBER} CPU s\)"  # wall clock, then CPU seconds (bench/scale.py)
WORKER_ENDPOINTS = (
    "GET /api/v1/me", "page participants", "page queries", "page adverse events", "page audit", "api participants",
    "api queries", "api adverse events", "api audit", "form saves", "randomizations",
)  # fmt: skip
EXPECTED = {
    "analysis_values.py": [
        rf"^FormValuesReader +CPU s {NUMBER} +median {NUMBER} +{NUMBER}x raw$",
        r"^values equal to the definition's$",
    ],
    "randomize.py": [
        rf"^sqlite raw +4 clients, 12 randomizations: {NUMBER}/s, .*duplicates 0, gaps 0  \[BEGIN IMMEDIATE\]$",
        rf"^sqlite service +4 clients, 12 randomizations: {NUMBER}/s, .*duplicates 0, gaps 0  rate ratio to raw "
        rf"{NUMBER}x$",
        rf"^postgresql raw +4 clients, 12 randomizations: {NUMBER}/s, .*duplicates 0, gaps 0  "
        r"\[row lock, SKIP LOCKED\]$",
        rf"^postgresql service +4 clients, 12 randomizations: {NUMBER}/s, p50 {NUMBER} ms, p99 {NUMBER} ms, "
        rf"duplicates 0, gaps 0  rate ratio to raw {NUMBER}x \(target >= 0.5x\)$",
    ],
    "form_saves.py": [
        *(
            line
            for db in ("sqlite", "postgresql")
            for line in (
                rf"^{db} GET /api/v1/me  4 clients, 8 requests: {NUMBER}/s, p50 {NUMBER} ms, p99 {NUMBER} ms$",
                rf"^{db} raw executemany 4 clients, 8 saves \({NUMBER} rows each, one transaction each\): "
                rf"{NUMBER} saves/s",
                rf"^{db} form saves +4 clients, 8 saves over HTTP: {NUMBER}/s, p50 {NUMBER} ms, p99 {NUMBER} ms "
                rf"\(target < 250 ms\); ratio to GET {NUMBER}x \(target >= 0.5x\), to raw executemany {NUMBER}x$",
                rf"^{db} per save: {NUMBER} statements, {NUMBER} transactions through the service; {NUMBER} "
                rf"statements, {NUMBER} transactions through the API request",
            )
        ),
    ],
    "bulk_load.py": [
        *(
            line
            for db in ("sqlite", "postgresql")
            for line in (
                rf"^{db} raw executemany: 60 values \({NUMBER} rows, {NUMBER} per value\) in {NUMBER} s: "
                rf"{NUMBER} values/s \(CPU {NUMBER} s\)$",
                rf"^{db} form import: +60 values \(8 forms, 2 participants\) in {NUMBER} s: {NUMBER} values/s; "
                rf"ratio to raw executemany {NUMBER}x \(target >= 0.25x\); 1,000,000 values would take",
                rf"^{db} by CPU seconds: form import {NUMBER} s \(the subprocess's\), raw executemany {NUMBER} s: "
                rf"ratio {NUMBER}x",
            )
        ),
    ],
    "scale.py": [
        r"^scale sqlite: 3 screened, [0-9,]+ participants, [0-9,]+ form records, [0-9,]+ audit entries",
        r"^scale sqlite: 6 screened, [0-9,]+ participants, ",
        rf"^build: {NUMBER} s \(the simulator {NUMBER} s, then 3 data access requests\), peak {NUMBER} MB$",
        *(
            rf"^{step} +{TIMED} +peak +{NUMBER} MB \(\+ *{NUMBER} over the fork's {NUMBER}\)  \([0-9,]+ rows\)$"
            for step in (r"raw read", r"raw read \+ csv", r"raw read \+ parquet", r"raw read audit")
        ),
        rf"^analysis +{TIMED} +{NUMBER}x raw read +peak +{NUMBER} MB .*target < 60 s: (met|MISSED)$",
        *(
            rf"^export {fmt} +{TIMED} +{NUMBER}x raw read\+{base} +peak +{NUMBER} MB .*target < {aim} s: "
            rf"(met|MISSED)  \([0-9]+ files, {NUMBER} MB\)$"
            for fmt, base, aim in (
                ("csv", "csv", 60),
                ("parquet", "parquet", 60),
                ("stata", "csv", 300),
                ("spss", "csv", 300),
                ("sas", "csv", 300),
                ("codebook", "csv", 300),
                ("sdtm", "csv", 300),
                ("odm", "csv", 300),
                ("fhir", "csv", 300),
            )
        ),
        rf"^audit verify \(full\) +{TIMED} +{NUMBER}x raw read audit +peak .*\([0-9,]+ entries; no target\)$",
        *(
            rf"^{where} +{name} {which} \(.*\) +p50 +{NUMBER} ms  p95 +{NUMBER} ms +{NUMBER}x raw p95 \({NUMBER} ms\)"
            rf"  peak +{NUMBER} MB  target p95 < {aim} ms: (met|MISSED)$"
            for where, name, which, aim in (
                *(
                    (w, n, "first", 300)
                    for w in ("page", "api")
                    for n in ("participants", "screening log", "queries", "adverse events")
                ),
                ("page", "audit", "first", 200),
                ("api", "audit", "first", 200),
                ("page", "audit", "deep", 200),
                ("api", "audit", "deep", 200),
                ("page", "screening log", "deep", 300),
                ("api", "screening log", "deep", 300),
                ("page", "pharmacy", "first", 300),
                ("page", "data access", "first", 300),
                ("page", "data access", "deep", 300),
            )
        ),
        *(
            rf"^rss {step} +{NUMBER} MB at 6 screened, [0-9,]+ participants vs +{NUMBER} MB at 3 screened, [0-9,]+ "
            rf"participants: +{NUMBER}x  target < 2x: (met|MISSED)$"
            for step in ("analysis", "export csv", "export fhir", r"audit verify \(full\)", "list audit")
        ),
    ],
    "workers.py": [
        rf"^workers bench: PostgreSQL, 8 screened simulated in {NUMBER} s, 12 more enrolled for the writes; ",
        *(
            rf"^workers {w} {re.escape(name)} +4 clients, 4 requests: +{NUMBER}/s, p50 +{NUMBER} ms, p95 +{NUMBER} ms, "
            rf"p99 +{NUMBER} ms"
            + ("" if name == "GET /api/v1/me" else rf"; to GET: rate {NUMBER}x, p95 {NUMBER}x")
            + (rf"; rate {NUMBER}x 1 worker" if w == 2 else "")
            + "$"
            for w in (1, 2)
            for name in WORKER_ENDPOINTS
        ),
        r"^saves: 12 acknowledged, 12 stored with the values sent, 0 lost$",
        r"^randomizations: 12 acknowledged, 12 allocated, 0 participants allocated twice, 0 acknowledged twice$",
        r"^audit: 0 pending after the workers stopped; audit verify intact \([0-9,]+ entries\), replay agrees$",
    ],
    "analyse_export.py": [
        rf"^trial: [1-9][0-9]* form records; peak memory {NUMBER} MB before the benchmark$",
        rf"^analysis +{NUMBER} s \( *{NUMBER} records/s\); report files +{NUMBER} s; peak {NUMBER} MB$",
        *(rf"^export {fmt} +{NUMBER} s \( *{NUMBER} records/s\), CPU {NUMBER} s; peak {NUMBER} MB$"
          for fmt in ("csv", "parquet", "stata", "sdtm", "odm", "fhir")),
    ],
    "recruitment_page.py": [
        r"^sqlite:///.*: 6 screened, [0-9]+ randomized, 2 requests each$",
        *(rf"^{re.escape(label)} +p50 +{NUMBER} ms +p95 +{NUMBER} ms +cpu +{NUMBER} ms$"
          for label in ("data as dsmb", "data as coordinator", "page as dsmb", "page as coordinator",
                        "api status as dsmb")),
    ],
    "odm_export.py": [
        r"^sqlite:///.*: 6 screened, [1-9][0-9]* participants; src ",
        rf"^  CPU s {NUMBER}; best {NUMBER} s = {NUMBER} ms per participant, {NUMBER} ms per screened patient$",
        rf"^  peak RSS {NUMBER} MB before, \+{NUMBER} MB over the runs; file {NUMBER} MB sha256 [0-9a-f]{{16}}$",
    ],
    "odm_locks.py": [
        r"^trial: [1-9][0-9]* participants, [1-9][0-9]* lock changes$",
        rf"^ODM export without the locks \(raw baseline\): +{NUMBER} CPU s, +{NUMBER} MB$",
        rf"^ODM export with the locks: +{NUMBER} CPU s, +{NUMBER} MB$",
        rf"^ratio: {NUMBER} CPU, {NUMBER} size$",
    ],
    "randomize_cost.py": [
        rf"^{db} 2 clients, 6 randomizations: {NUMBER}/s, {NUMBER} ms CPU, {NUMBER} statements, {NUMBER} checkouts, "
        rf"{NUMBER} pings per randomization$"
        for db in ("sqlite", "postgresql")
    ],
    "simulate.py": [
        rf"^sqlite +{NUMBER} screened/s +{NUMBER} forms/s +[1-9][0-9]* audit entries  {NUMBER} CPU-s per "
        r"screened patient$",
        rf"^postgresql +{NUMBER} screened/s +{NUMBER} forms/s +[1-9][0-9]* audit entries  {NUMBER} CPU-s per "
        rf"screened patient \(this process\)  \({NUMBER} x sqlite\)$",
    ],
}


# bench/workers.py starts the app three times (one worker, then two, each importing it) on a simulated trial.
TIMEOUTS = {"workers.py": 600}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_the_benchmark_runs_at_its_smoke_size(script: str, postgres_available: str | None) -> None:
    if postgres_available is not None:
        must_have("PostgreSQL (the benchmarks' smoke runs use both databases)", postgres_available)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--smoke"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUTS.get(script, 300), check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{script} --smoke exited {done.returncode}:\n{done.stdout}\n{done.stderr[-3000:]}"
    lines = done.stdout.splitlines()
    for pattern in EXPECTED[script]:
        assert any(re.search(pattern, line) for line in lines), f"no line matches {pattern!r} in:\n{done.stdout}"


def test_every_benchmark_has_a_smoke_run() -> None:
    scripts = {path.name for path in (ROOT / "bench").glob("*.py") if not path.name.startswith("_")}
    assert scripts == set(EXPECTED), f"bench/ scripts without a smoke run here: {sorted(scripts - set(EXPECTED))}"
