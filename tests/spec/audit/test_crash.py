"""Killed with SIGKILL while 32 clients write, the trial loses no acknowledged write and its trail verifies.

A child process writes audit entries from 32 threads, printing each one once its transaction has committed (the
acknowledgement a user would see); the test kills it with SIGKILL mid-stream, then verifies the trail (which
chains what the crash left pending) and finds every acknowledged entry in it, once.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from trialwright.services import audit
from trialwright.store.audit_keys import load_key
from trialwright.store.engine import make_engine
from trialwright.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[3]

_CHILD = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from trialwright.services import audit
    from trialwright.store.audit_keys import load_key
    from trialwright.store.engine import make_engine, session_scope

    engine = make_engine(sys.argv[1], audit_key=load_key(Path(sys.argv[2])))
    out = threading.Lock()

    def client(n):
        i = 0
        while True:
            with session_scope(engine) as session:
                audit.record(session, actor=f"client{n}", action="test.crash", new_value=i)
                audit.record(session, actor=f"client{n}", action="test.crash.second", new_value=i)
            with out:
                print(f"{n} {i}", flush=True)
            i += 1

    for n in range(32):
        threading.Thread(target=client, args=(n,), daemon=True).start()
    threading.Event().wait()
    """
)


def test_a_kill_minus_9_under_32_writers_loses_no_acknowledged_entry(database_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "trial.key"
    engine = make_engine(database_url, audit_key=load_key(key_file, create=True))
    upgrade(engine)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, database_url, str(key_file)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    acknowledged: list[str] = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acknowledged.append(line.strip())
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert len(acknowledged) >= 300, f"the writers acknowledged only {len(acknowledged)} transactions"

    report = audit.verify(engine)
    assert report.ok, report
    written = Counter(
        f"{e.actor.removeprefix('client')} {e.new_value}"
        for e in audit.entries(engine, action_prefix="test.crash", limit=10**6)
        if e.action == "test.crash"
    )
    assert [ack for ack in acknowledged if written[ack] != 1] == []
    assert max(written.values()) == 1
    # Both entries of a transaction are kept together or not at all.
    seconds = {
        f"{e.actor.removeprefix('client')} {e.new_value}"
        for e in audit.entries(engine, action_prefix="test.crash.second", limit=10**6)
    }
    assert set(written) == seconds
    engine.dispose()
