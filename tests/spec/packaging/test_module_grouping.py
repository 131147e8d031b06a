"""The tests of a module that share a module-scoped fixture run in one test process under ``-n 2 --dist loadgroup``
(``.ci/run``), so the module's shared trial is made once, and a module whose tests build on each other's state (a
live server's trial) runs in order. ``tests/conftest.py`` marks them ``xdist_group``; xdist turns the marker into a
suffix of the test's node id, which pytest 9.2 no longer reads (it keeps the id elsewhere): then nothing is grouped
and nothing says so. This runs a small suite in a child pytest with the project's conftest and the installed pytest
and xdist, and reads which process ran each test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SUITE = """
import os
import pytest

@pytest.fixture(scope="module")
def shared():
    return object()

@pytest.mark.parametrize("n", range(8))
def test_shares(shared, n):
    with open(os.environ["RAN_AT"], "a") as out:
        out.write(f"shares {os.environ['PYTEST_XDIST_WORKER']}\\n")

@pytest.mark.parametrize("n", range(8))
def test_alone(n):
    with open(os.environ["RAN_AT"], "a") as out:
        out.write(f"alone {os.environ['PYTEST_XDIST_WORKER']}\\n")
"""


def test_a_modules_tests_sharing_a_module_fixture_run_in_one_process(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(SUITE, encoding="utf-8")
    ran_at = tmp_path / "ran.txt"
    path = os.pathsep.join([str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "-n", "2", "--dist", "loadgroup", "--rootdir", str(tmp_path), str(tmp_path / "test_suite.py")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": path, "RAN_AT": str(ran_at)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ran = [line.split() for line in ran_at.read_text(encoding="utf-8").splitlines()]
    shared = {worker for kind, worker in ran if kind == "shares"}
    assert len(ran) == 16
    assert len(shared) == 1, f"the tests sharing a module fixture ran in {sorted(shared)}"
    # The control: the suite was shared by two processes at all.
    assert {worker for _, worker in ran} == {"gw0", "gw1"}
