"""Two writer processes (two web workers) on one database make one audit trail: every entry chained once, none
left pending, each writer's entries in the order it wrote them, and the trail verifies.

Each process has its own engine and eight threads; each thread writes transactions of two entries. On PostgreSQL
the entries wait in ``audit_pending`` and the process that committed them chains them after its commit under
the advisory lock every process shares (``chain_pending``); on SQLite the two processes' write transactions
queue on the file. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

from trialwright.services import audit
from trialwright.store.audit_keys import load_key
from trialwright.store.engine import make_engine
from trialwright.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[3]
THREADS, TRANSACTIONS = 8, 12

_WRITER = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from trialwright.services import audit
    from trialwright.store.audit_keys import load_key
    from trialwright.store.engine import make_engine, session_scope

    engine = make_engine(sys.argv[1], audit_key=load_key(Path(sys.argv[2])))
    name, threads, transactions = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

    def client(n):
        for i in range(transactions):
            with session_scope(engine) as session:
                audit.record(session, actor=f"{name}-{n}", action="test.workers", new_value=i)
                audit.record(session, actor=f"{name}-{n}", action="test.workers.second", new_value=i)

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print("done", flush=True)
    """
)


def test_two_writer_processes_make_one_trail(database_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "trial.key"
    engine = make_engine(database_url, audit_key=load_key(key_file, create=True))
    upgrade(engine)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, database_url, str(key_file), name, str(THREADS), str(TRANSACTIONS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("worker1", "worker2")
    ]
    for w in writers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0 and out.strip() == "done", err[-3000:]

    assert audit.pending_count(engine) == 0  # each writer chained its own entries after its commit
    report = audit.verify(engine)
    assert report.ok, report
    entries = audit.entries(engine, action_prefix="test.workers", limit=10**6)
    assert len(entries) == 2 * 2 * THREADS * TRANSACTIONS
    by_writer: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for e in sorted(entries, key=lambda e: e.seq):
        by_writer[e.actor].append((e.seq, e.action, e.new_value or ""))
    assert len(by_writer) == 2 * THREADS
    for actor, chained in by_writer.items():
        # Each transaction's two entries, once each, and the writer's transactions in the order it committed them
        # (a writer returns only once its entries are chained, so its next transaction is chained after).
        values = [int(v) for _, action, v in chained if action == "test.workers"]
        seconds = [int(v) for _, action, v in chained if action == "test.workers.second"]
        assert values == seconds == list(range(TRANSACTIONS)), actor
        assert [int(v) for _, _, v in chained] == [i for i in range(TRANSACTIONS) for _ in (0, 1)], actor
    engine.dispose()
