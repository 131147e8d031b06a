"""A sharing plan that promises individual participant data needs the rules that de-identify it: without a
`deidentification` section no IPD package can ever be issued (the access check refuses it), so `protocol check`
refuses the promise first, naming the file, the line, the field and the rule (walk finding 3). Every shipped
protocol passes.

| trial.sharing.ipd.shared | deidentification | protocol check                                      |
|--------------------------|------------------|-----------------------------------------------------|
| true                     | declared         | accepted                                            |
| true                     | none             | refused at trial.sharing.ipd.shared                 |
| false                    | none             | accepted                                            |
| false                    | declared         | accepted                                            |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIRST_PROTOCOL
from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import ProtocolError, load_protocol, load_protocol_text

RULE = (
    "trial.sharing.ipd.shared: the sharing plan shares individual participant data and the protocol declares no "
    "deidentification section, so no IPD could ever be issued"
)


@pytest.mark.parametrize(("shared", "declared", "refused"), [
    (True, True, False),
    (True, False, True),
    (False, False, False),
    (False, True, False),
])  # fmt: skip
def test_ipd_shared_needs_deidentification(shared: bool, declared: bool, refused: bool) -> None:
    def mutate(doc: Any) -> None:
        doc["trial"]["sharing"]["ipd"]["shared"] = shared
        if not declared:
            del doc["deidentification"]

    text = mutated_text(mutate)
    if not refused:
        load_protocol_text(text, source="trial.yaml")
        return
    with pytest.raises(ProtocolError) as error:
        load_protocol_text(text, source="trial.yaml")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "ipd:" in row)
    assert f"trial.yaml:{line}: {RULE}" in str(error.value)


@pytest.mark.parametrize("path", sorted(FIRST_PROTOCOL.parent.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_protocol_passes(path: Path) -> None:
    if not path.name.endswith(".simulation.yaml"):
        load_protocol(path)
