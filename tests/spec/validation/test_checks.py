"""The ids tests name with ``@pytest.mark.covers`` are the ids of the shipped regulatory checks: a typo or a check
removed from the list fails here, not silently as an "uncovered" line in the validation report."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT
from trialwright.validation import load_checks


def _covers_ids(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "covers"
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "mark"
        ):
            for arg in node.args:
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), f"{path}:{node.lineno}"
                found.append((node.lineno, arg.value))
    return found


@pytest.mark.covers("REG-14")
def test_every_id_a_test_names_is_a_shipped_check() -> None:
    known = {check.id for check in load_checks()[1]}
    used = {
        f"{path.relative_to(ROOT)}:{line}": check
        for path in sorted((ROOT / "tests").rglob("test_*.py"))
        for line, check in _covers_ids(path)
    }
    assert len(used) > 20  # the scan finds the markers (it would pass vacuously otherwise)
    assert {where: check for where, check in used.items() if check not in known} == {}
