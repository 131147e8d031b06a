"""docs/protocol.md documents every key of the protocol file and is generated from the model."""

from __future__ import annotations

from pathlib import Path

from trialwright.protocol.reference import render_reference

DOC = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"


def test_protocol_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render_reference(), (
        "docs/protocol.md is stale: run `python -m trialwright.protocol.reference > docs/protocol.md`"
    )


def test_every_field_has_a_description() -> None:
    from pydantic import BaseModel

    from trialwright.protocol.base import ProtocolModel

    missing = []
    stack: list[type[BaseModel]] = [ProtocolModel]
    while stack:
        model = stack.pop()
        stack.extend(model.__subclasses__())
        missing += [f"{model.__name__}.{n}" for n, f in model.model_fields.items() if not f.description]
    assert not missing, missing
