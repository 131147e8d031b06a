"""What bench/scale.py measures, one step at a time, each in a forked child whose own peak RSS is the step's.

``measured`` forks the benchmark's process (which has imported everything and holds no database connection), runs
one step in the child and reads the child's ``ru_maxrss`` from ``wait4``: a child's peak starts at its resident
size when forked (the parent's historic peak is not inherited, on Linux), so each step's peak is its own, on a
floor that is the same for every step (the imports and the parsed protocol), and the imports are paid once per run,
not once per step. The child times only its work (not its engine, accounts or cursors) and sends the figures
back as JSON through a pipe.

The raw baselines are plain SQL reads, through the driver with no result processing, of the tables the exports
and the analysis read, streamed in batches of 10,000 rows into Arrow record batches and written with pyarrow's
CSV and Parquet writers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import Boolean, Engine, Float, Integer, Numeric, Table, select

from trialwright.services import audit
from trialwright.services.analysis import run_analysis
from trialwright.services.audit_checkpoints import record_full_verify
from trialwright.services.audit_keys import engine_for
from trialwright.services.exports import run_export
from trialwright.services.replay import replay
from trialwright.services.users import UserView, get_user
from trialwright.settings import Settings
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.safety_tables import adverse_events, ae_reports
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals
from trialwright.store.tables import audit_entries

__all__ = [
    "DATA_TABLES",
    "Measured",
    "analysis_step",
    "engine_of",
    "export_step",
    "measured",
    "raw_step",
    "user_of",
    "verify_step",
]

#: The tables the exports and the analysis read (the audit trail aside), in the raw baseline.
DATA_TABLES = (screenings, consents, participants, withdrawals, visit_records, form_records, adverse_events, ae_reports)
_BATCH = 10_000


@dataclass(frozen=True)
class Measured:
    """One step: the seconds its work took (wall clock), the child's peak RSS and its RSS when forked (MB), and its
    figures (``cpu``: the CPU seconds of the same work, this process's, which a loaded machine inflates less)."""

    name: str
    seconds: float
    peak_mb: float
    floor_mb: float
    figures: dict[str, Any] = field(default_factory=dict)


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measured(name: str, work: Callable[[], dict[str, Any]]) -> Measured:
    """Run ``work`` in a forked child; it returns its figures, with ``seconds`` for the part it timed."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        code = 0
        try:
            floor = _rss_now_mb()
            payload: dict[str, Any] = {"floor": floor, "figures": work()}
        except BaseException:
            payload, code = {"error": traceback.format_exc()}, 1
        with os.fdopen(write, "w") as out:
            json.dump(payload, out, default=str)
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as given:
        text = given.read()
    _, status, usage = os.wait4(pid, 0)
    payload = json.loads(text) if text else {"error": f"the child died (status {status})"}
    if "error" in payload:
        raise RuntimeError(f"{name}: {payload['error']}")
    figures = payload["figures"]
    return Measured(name, float(figures.pop("seconds")), usage.ru_maxrss / 1024, payload["floor"], figures)


def engine_of(url: str) -> Engine:
    """The trial's engine as the app and the CLI make it (signing with the trial's audit key)."""
    return engine_for(Settings(database_url=url))


def user_of(engine: Engine, username: str) -> UserView:
    user = get_user(engine, username)
    if user is None:
        raise RuntimeError(f"the trial has no account {username!r} (a trial made by trialwright simulate has)")
    return user


def _arrow_type(column: Any) -> pa.DataType:
    if isinstance(column.type, Boolean):
        return pa.bool_()
    if isinstance(column.type, Integer):
        return pa.int64()
    if isinstance(column.type, Float | Numeric):
        return pa.float64()
    return pa.string()  # text, JSON, dates and times: as the driver gives them, as text


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _batches(engine: Engine, table: Table) -> Iterator[pa.RecordBatch]:
    """The rows of ``table`` in key order, read by plain SQL through the driver, as Arrow record batches."""
    schema = pa.schema([(c.name, _arrow_type(c)) for c in table.columns])
    sql = str(select(table).order_by(*table.primary_key.columns).compile(dialect=engine.dialect))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).exec_driver_sql(sql)
        while rows := result.fetchmany(_BATCH):
            arrays = []
            for n, kind in enumerate(schema.types):
                values = [r[n] for r in rows]
                if kind == pa.string():
                    values = [v if v is None or type(v) is str else _text(v) for v in values]
                elif kind == pa.bool_():
                    values = [None if v is None else bool(v) for v in values]
                arrays.append(pa.array(values, type=kind))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def raw_step(url: str, tables: Sequence[Table], write: str | None) -> Callable[[], dict[str, Any]]:
    """The raw baseline: every row of ``tables`` read by plain SQL, and written with pyarrow (``csv``,
    ``parquet``) or only read (None)."""

    def work() -> dict[str, Any]:
        engine = engine_of(url)
        rows = 0
        with tempfile.TemporaryDirectory() as folder:
            began, cpu = time.perf_counter(), time.process_time()
            for table in tables:
                schema = pa.schema([(c.name, _arrow_type(c)) for c in table.columns])
                target = Path(folder) / f"{table.name}.{write}"
                writer: Any = None
                if write == "csv":
                    writer = pa_csv.CSVWriter(str(target), schema)
                elif write == "parquet":
                    writer = pq.ParquetWriter(str(target), schema)
                for batch in _batches(engine, table):
                    rows += batch.num_rows
                    if writer is not None:
                        writer.write_batch(batch)
                if writer is not None:
                    writer.close()
            took, cpu = time.perf_counter() - began, time.process_time() - cpu
        engine.dispose()
        return {"seconds": took, "cpu": cpu, "rows": rows}

    return work


def analysis_step(url: str, statistician: str) -> Callable[[], dict[str, Any]]:
    """The whole analysis plan (snapshot read and every outcome), as the blinded statistician."""

    def work() -> dict[str, Any]:
        engine = engine_of(url)
        user = user_of(engine, statistician)
        began, cpu = time.perf_counter(), time.process_time()
        run = run_analysis(engine, user)
        took, cpu = time.perf_counter() - began, time.process_time() - cpu
        engine.dispose()
        return {"seconds": took, "cpu": cpu, "participants": len(run.data.subjects)}

    return work


def export_step(url: str, manager: str, fmt: str) -> Callable[[], dict[str, Any]]:
    """One export format, as the data manager (blinded), written into a temporary folder."""

    def work() -> dict[str, Any]:
        engine = engine_of(url)
        user = user_of(engine, manager)
        with tempfile.TemporaryDirectory() as folder:
            began, cpu = time.perf_counter(), time.process_time()
            result = run_export(engine, user, fmt, Path(folder) / fmt)
            took, cpu = time.perf_counter() - began, time.process_time() - cpu
            size = sum(p.stat().st_size for p in result.files)
        engine.dispose()
        return {"seconds": took, "cpu": cpu, "files": len(result.files), "bytes": size}

    return work


def verify_step(url: str) -> Callable[[], dict[str, Any]]:
    """``trialwright audit verify``'s work: the whole chain, the replay, the outcome recorded with a checkpoint at
    the head (so the audit page afterwards verifies only what is new, as after a nightly verify)."""

    def work() -> dict[str, Any]:
        engine = engine_of(url)
        began, cpu = time.perf_counter(), time.process_time()
        report = audit.verify(engine)
        replayed = replay(engine, limit=10)
        record_full_verify(engine, report, replayed, by="bench:scale")
        took, cpu = time.perf_counter() - began, time.process_time() - cpu
        engine.dispose()
        if not report.ok:
            raise RuntimeError(f"the audit trail does not verify: {report.message}")
        if not replayed.ok:
            raise RuntimeError(f"the replay disagrees with the data tables: {replayed.count} disagreements")
        return {"seconds": took, "cpu": cpu, "entries": report.count, "at": dt.datetime.now(dt.UTC).isoformat()}

    return work


RAW_AUDIT = (audit_entries,)
