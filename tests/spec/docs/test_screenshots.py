"""docs/screenshots.md shows every screenshot that scripts/screenshots.py makes, in both languages, and no other."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"


def _script_pages() -> set[str]:
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {f"{lang}-{name}.png" for lang in module.LANGUAGES for name, *_ in module.PAGES}


def test_the_screenshots_page_shows_what_the_script_makes() -> None:
    linked = set(re.findall(r"\]\(screenshots/([^)]+\.png)\)", (DOCS / "screenshots.md").read_text("utf-8")))
    committed = {p.name for p in (DOCS / "screenshots").glob("*.png")}
    made = _script_pages()
    assert linked == made, "docs/screenshots.md and scripts/screenshots.py disagree"
    assert committed == made, "run ./dev screenshots and commit docs/screenshots/"
    assert {name.split("-", 1)[0] for name in made} == {"en", "fa"}
