"""Parsing the stored JSON of form records: ``json.loads``'s values, by pydantic-core's faster parser.

The analysis and the tabular exports read every form record's stored JSON. ``loads`` parses it with
``pydantic_core.from_json`` (Rust; already a dependency), which gives the same values as ``json.loads`` for every
text it accepts: each value's type and text, NaN, -0.0, integers of any size and the keys' order (a repeated key
keeps its first place and its last value), held by Hypothesis specs (``tests/spec/analysis/test_form_values_reader.py``,
``tests/spec/exports/test_stored_json.py``). A text it refuses (not JSON; a lone surrogate, escaped or raw, which
``json`` keeps; anything but a str) goes to ``json.loads``, which parses it or refuses it as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pydantic_core

__all__ = ["loads"]

_from_json: Callable[[str], Any] = pydantic_core.from_json


def loads(text: str) -> Any:
    """``json.loads(text)``, by pydantic-core's parser when it takes the text."""
    try:
        return _from_json(text)  # its defaults: NaN and the infinities read as ``json`` reads them, no partial text
    except (ValueError, TypeError):  # TypeError: a str holding a lone surrogate (not UTF-8), or not a str at all
        return json.loads(text)
