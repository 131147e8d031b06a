"""The real app, served by `trialwright serve --workers 2` on PostgreSQL: requests land on both worker processes,
and nothing either keeps in its memory answers for the database.

Shown on the wire (docs/deployment.md): a session begun on one worker is used and ended on the other; the sign-in
limit counts the failures of both workers in one window; a concurrent stream of sign-ins and refused tokens on
both workers leaves one audit trail that `trialwright audit verify` passes, holding every sign-in once and the
refused-token flood as one window. Each connection is pinned to the worker that accepted it (HTTP keep-alive),
and which worker that is is read from /proc (the process holding the server end of the connection).

PostgreSQL is required: with CI=true a missing server fails this test (tests/conftest.py ``must_have``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import ROOT, fresh_database
from tests.trialfixtures import PASSWORD, Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.services import audit

pytestmark = pytest.mark.postgres

SIGN_IN_LIMIT = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Connection:
    """One keep-alive HTTP connection with its own cookies (one browser tab)."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None, **headers: str) -> tuple[int, str]:
        head = dict(headers)
        if self.cookies:
            head["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            head["Content-Type"] = "application/x-www-form-urlencoded"
        self.http.request(method, path, body=body, headers=head)
        answer = self.http.getresponse()
        text = answer.read().decode("utf-8", "replace")
        for value in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            cookie = rest.split(";", 1)[0]
            if cookie and "Max-Age=0" not in value:
                self.cookies[name.strip()] = cookie
            else:
                self.cookies.pop(name.strip(), None)
        return answer.status, text

    def csrf(self, path: str = "/sign-in") -> str:
        status, text = self.request("GET", path)
        match = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert status == 200 and match, (status, text[:300])
        return match.group(1)

    def sign_in(self, name: str, password: str) -> int:
        token = self.csrf()
        return self.request("POST", "/sign-in", {"username": name, "password": password, "csrf_token": token})[0]

    @property
    def local_port(self) -> int:
        assert self.http.sock is not None
        return int(self.http.sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _owner(workers: list[int], server_port: int, client_port: int) -> int:
    """The worker process holding the server end of the connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        if int(local[1], 16) == server_port and int(remote[1], 16) == client_port:
            inode = fields[9]
    assert inode is not None, "the connection is not in /proc/net/tcp"
    for pid in workers:
        fds = Path(f"/proc/{pid}/fd")
        try:
            if any(os.readlink(fd) == f"socket:[{inode}]" for fd in fds.iterdir()):
                return pid
        except OSError:
            continue
    raise AssertionError("no worker holds the connection")


@pytest.fixture
def pg_trial(postgres_available: str | None, tmp_path: Path) -> Iterator[Trial]:
    with fresh_database("postgresql", tmp_path, postgres_available) as url:
        trial = make_trial(url)
        yield trial
        trial.engine.dispose()


@pytest.fixture
def server(pg_trial: Trial) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "TRIALWRIGHT_RATE_LIMIT_SIGN_IN": str(SIGN_IN_LIMIT),
        "TRIALWRIGHT_RATE_LIMIT_TOKEN_REFUSALS": "0",
    }
    command = [sys.executable, "-m", "trialwright.cli.main", "serve", "--workers", "2", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--database", pg_trial.url], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode()
            try:
                probe = Connection(port)
                if probe.request("GET", "/health")[0] == 200 and len(_children(proc.pid)) >= 2:
                    probe.http.close()
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _pinned(port: int, proc: subprocess.Popen[bytes], each: int) -> dict[int, list[Connection]]:
    """At least ``each`` open connections to each of the two workers, by worker process id."""
    by_worker: dict[int, list[Connection]] = {}
    for _ in range(400):
        if len(by_worker) == 2 and all(len(c) >= each for c in by_worker.values()):
            return by_worker
        c = Connection(port)
        assert c.request("GET", "/health")[0] == 200
        workers = _children(proc.pid)
        owner = _owner(workers, port, c.local_port)
        if len(by_worker.get(owner, [])) >= each:
            c.http.close()
            continue
        by_worker.setdefault(owner, []).append(c)
    raise AssertionError(f"connections landed on {len(by_worker)} worker(s) only: {sorted(by_worker)}")


def test_two_workers_share_sessions_the_sign_in_limit_and_one_audit_trail(
    pg_trial: Trial, server: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port, proc = server
    pinned = _pinned(port, proc, each=3)
    on_a, on_b = pinned.values()
    a, b = on_a[0], on_b[0]

    # A session begun on one worker is the other's too, and ended there it is ended everywhere.
    assert a.sign_in(username(Role.MONITOR), PASSWORD) == 303
    b.cookies = dict(a.cookies)
    assert b.request("GET", "/")[0] == 200
    assert b.request("POST", "/sign-out", {"csrf_token": b.csrf("/")})[0] == 303
    assert a.request("GET", "/")[0] == 303  # a still sends the session's cookie: refused, to the sign-in page

    # Both workers write at once: sign-ins of six accounts on six connections (three per worker), and a flood
    # of refused API tokens on the same connections.
    before = max(e.seq for e in audit.entries(pg_trial.engine, limit=1))
    connections = [*on_a, *on_b]
    accounts = [username(role) for role in list(Role)[:6]]

    def signed_in(i: int) -> int:
        connections[i].cookies.clear()
        return connections[i].sign_in(accounts[i], PASSWORD)

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(signed_in, range(6))) == [303] * 6
    flood = 24

    def refused(i: int) -> list[int]:  # four refusals in a row on connection i
        c = connections[i]
        return [c.request("GET", "/api/v1/me", Authorization=f"Bearer tw_forged_{i}_{n}")[0] for n in range(4)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert [code for codes in pool.map(refused, range(6)) for code in codes] == [401] * flood
    assert audit.pending_count(pg_trial.engine) == 0  # each worker chained its entries after its commits
    written = [e for e in audit.entries(pg_trial.engine, limit=10_000) if e.seq > before]
    signed = sorted(e.actor for e in written if e.action == "user.signed_in")
    assert signed == sorted(accounts)  # every sign-in audited once, whichever worker served it
    assert [e.action for e in written].count("api.token_refused") == 1  # one window for the flood on both

    # One sign-in limit for both workers: four failures in all from this address, whichever worker counted them;
    # each worker counted two, so a limit in each worker's memory would have let the fifth and sixth through.
    a.cookies.clear()
    b.cookies.clear()
    codes = [(a if i % 2 == 0 else b).sign_in(f"nobody-{i}", "Wrong-guess-123") for i in range(SIGN_IN_LIMIT + 2)]
    assert codes == [401] * SIGN_IN_LIMIT + [429, 429]

    # The workers stop: the first to stop writes the flood's count, the second finds nothing left to write.
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    totals = [json.loads(e.detail or "{}") for e in audit.entries(pg_trial.engine, action_prefix="api.token_refusals")]
    assert [t["refusals"] for t in totals] == [flood]

    verify = subprocess.run(
        [sys.executable, "-m", "trialwright.cli.main", "audit", "verify", "--no-progress", "--database", pg_trial.url],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "The audit trail is intact" in verify.stdout
