"""Every SDTM conformance check names the CDISC CORE rules whose published text it implements, or is marked as
having none: ``@core(...)`` or ``@no_core(why)`` on each test of ``test_sdtmig.py`` and ``test_sdtm_design.py``,
every id in ``core_rules.CORE_RULES`` (the published ids and texts, read from CDISC's open rules) and every rule
there cited by some check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from tests.spec.exports import test_sdtm_design, test_sdtmig
from tests.spec.exports.core_rules import CORE_RULES

CHECKS = (test_sdtmig, test_sdtm_design)


def checks(module: ModuleType) -> Iterator[tuple[str, Any]]:
    for name, value in vars(module).items():
        if name.startswith("test_") and callable(value):
            yield f"{module.__name__.rsplit('.', 1)[-1]}.{name}", value


def test_every_sdtm_check_names_its_core_rules_or_says_it_has_none() -> None:
    found = [name for module in CHECKS for name, _ in checks(module)]
    assert len(found) >= 29  # the 17 checks of test_sdtmig.py and the 12 of test_sdtm_design.py
    for module in CHECKS:
        for name, check in checks(module):
            ids = getattr(check, "core_rules", None)
            assert ids is not None, f"{name}: neither @core(...) nor @no_core(why)"
            if ids:
                assert not hasattr(check, "no_core_rule"), name
                assert all(re.fullmatch(r"CORE-\d{6}", i) for i in ids), (name, ids)
                assert set(ids) <= CORE_RULES.keys(), (name, set(ids) - CORE_RULES.keys())
                assert len(set(ids)) == len(ids), name
            else:
                assert getattr(check, "no_core_rule", "").strip(), f"{name}: @no_core without saying why"


def test_every_rule_of_the_table_is_cited_by_a_check() -> None:
    cited = {i for module in CHECKS for _, check in checks(module) for i in getattr(check, "core_rules", ())}
    assert cited == CORE_RULES.keys()
    assert all(re.fullmatch(r"(CG\d{4}|TRC\w+|FB\d{4})(/CG\d{4})*", cg) and text for cg, text in CORE_RULES.values())
