"""Helpers to make broken copies of the first protocol."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import FIRST_PROTOCOL

Mutation = Callable[[Any], None]


def mutated_text(mutate: Mutation, source: Path = FIRST_PROTOCOL) -> str:
    """The first protocol's YAML after ``mutate`` changed its round-trip document (comments kept)."""
    yaml = YAML(typ="rt")
    yaml.width = 4096
    document = yaml.load(source.read_text(encoding="utf-8"))
    mutate(document)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


@pytest.fixture
def first_text() -> str:
    return FIRST_PROTOCOL.read_text(encoding="utf-8")
