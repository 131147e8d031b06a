"""The documentation site: docs/ builds with MkDocs (Material theme) in strict mode, so a link to a page or an
anchor that does not exist fails the build (and this test) instead of reaching a reader.

External links are not followed (the build machine reaches no web site); every link inside the site is."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import must_have

ROOT = Path(__file__).resolve().parents[3]


def _mkdocs(folder: Path, site: Path) -> subprocess.CompletedProcess[str]:
    # Not --quiet: it hides the warnings that strict mode counts, and a broken link would pass.
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError as exc:
        must_have("mkdocs and mkdocs-material", str(exc))
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(folder / "mkdocs.yml"), "-d",
         str(site)],
        cwd=folder,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(site.parent)},
        timeout=300,
    )


def _copy_of_the_docs(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("mkdocs.yml", "GLOSSARY.md", "DEVELOPERS.md"):
        shutil.copy2(ROOT / name, copy / name)
    for folder in ("docs", "protocols", "scripts"):
        shutil.copytree(ROOT / folder, copy / folder)
    return copy


def test_the_site_builds_with_every_link_and_anchor_found(tmp_path: Path) -> None:
    result = _mkdocs(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "site"
    for page in ("index.html", "cli/index.html", "api-reference/index.html", "glossary/index.html"):
        assert (site / page).is_file(), page
    assert (site / "protocols" / "IRCT20190101042197N2.yaml").is_file()
    assert "fonts.googleapis.com" not in (site / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "broken",
    ["[a page that is not there](nowhere.md)", "[an anchor that is not there](cli.md#no-such-heading)"],
    ids=["page", "anchor"],
)
def test_a_broken_link_fails_the_build(tmp_path: Path, broken: str) -> None:
    copy = _copy_of_the_docs(tmp_path)
    with (copy / "docs" / "web.md").open("a", encoding="utf-8") as page:
        page.write(f"\n\nSee {broken}.\n")
    result = _mkdocs(copy, tmp_path / "site")
    assert result.returncode != 0
    assert "web.md" in result.stdout + result.stderr, result.stdout + result.stderr
