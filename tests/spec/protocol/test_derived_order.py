"""A form's derived fields are audited in the protocol's order, the same in every process.

A save writes one audit entry per derived value it changed, in ``FormDef.derived_ids()``'s order. Taken from a
set, that order followed the string hash, which Python seeds afresh in every process (``PYTHONHASHSEED``): the same
simulation, run twice, could write its audit trail in two orders. The order is the protocol's declaration order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.trialfixtures import FIRST_PROTOCOL, first_protocol

PROBE = f"""
import json
from trialwright.protocol import load_protocol
protocol = load_protocol({str(FIRST_PROTOCOL)!r})
print(json.dumps({{form.id: list(form.derived_ids()) for form in protocol.protocol.forms}}))
"""


def test_derived_fields_are_listed_in_declaration_order_whatever_the_hash_seed() -> None:
    declared = {
        form.id: [f.id for f in form.fields if f.derived is not None] for form in first_protocol().protocol.forms
    }
    assert any(len(ids) >= 4 for ids in declared.values())  # a form where a set's order shows (news2, priest...)
    for seed in ("0", "1", "2", "3", "4", "5"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == declared, f"PYTHONHASHSEED={seed}"
