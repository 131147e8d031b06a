"""docs/examples.md shows protocol authors fragments of the shipped example files: each YAML block, under a
comment naming its file, must still be part of that file (every key it writes has the value the file has; a list
item matches some item of the file's list), so the page cannot drift from the protocols."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "examples.md"
BLOCK = re.compile(r"<!-- (protocols/[\w.-]+\.yaml) -->\n```yaml\n(.*?)```", re.DOTALL)


def _within(part: Any, whole: Any) -> bool:
    """Whether ``part`` says nothing ``whole`` does not: mappings key by key, lists item by item."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _within(v, whole[k]) for k, v in part.items())
    if isinstance(part, list):
        return isinstance(whole, list) and all(any(_within(item, w) for w in whole) for item in part)
    return bool(part == whole or str(part) == str(whole))


def _blocks() -> list[Any]:
    found = BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    return [pytest.param(path, text, id=f"{Path(path).stem}-{i}") for i, (path, text) in enumerate(found)]


def test_the_page_shows_fragments_of_each_new_example() -> None:
    files = {path for path, _ in BLOCK.findall(PAGE.read_text(encoding="utf-8"))}
    assert files >= {"protocols/EXAMPLE-MOBILISE-OL.yaml", "protocols/EXAMPLE-PACIFIC-CELLULITIS.yaml"}


@pytest.mark.parametrize(("path", "text"), _blocks())
def test_each_fragment_is_what_its_protocol_file_says(path: str, text: str) -> None:
    yaml = YAML(typ="safe")
    fragment, protocol = yaml.load(text), yaml.load((ROOT / path).read_text(encoding="utf-8"))
    assert _within(fragment, protocol), f"docs/examples.md shows a fragment {path} no longer holds:\n{text}"
