"""``python -m trialwright`` is the ``trialwright`` command (for an environment whose scripts folder is not on PATH,
such as a virtual environment used without activating it): the same help, the same exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "trialwright", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)  # fmt: skip


def test_python_m_trialwright_prints_the_command_s_help() -> None:
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: trialwright" in done.stdout or "Usage: python -m trialwright" in done.stdout
    for group in ("export", "protocol", "simulate"):
        assert group in done.stdout


def test_python_m_trialwright_ends_a_usage_error_with_2() -> None:
    assert _run("no-such-command").returncode == 2
