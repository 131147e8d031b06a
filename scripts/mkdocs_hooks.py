"""MkDocs hooks for the documentation site (mkdocs.yml).

docs/ links a few files that live beside it (GLOSSARY.md, DEVELOPERS.md, the protocol files in protocols/), as
they should read on a code host. The site carries them too: the two notes become pages (glossary.md,
developers.md) and the protocol files are copied as they are (protocols/...), and the links to them are pointed
there, so the strict build checks every link, none dangles, and no file is kept twice in the repository.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"GLOSSARY.md": "glossary.md", "DEVELOPERS.md": "developers.md"}
_OUTSIDE = re.compile(r"\]\(\.\./(GLOSSARY\.md|DEVELOPERS\.md|protocols/[A-Za-z0-9._-]+)\)")


def on_files(files: Files, config: Any) -> Files:
    for source, page in PAGES.items():
        files.append(File.generated(config, page, abs_src_path=str(ROOT / source)))
    for protocol in sorted((ROOT / "protocols").glob("*.yaml")):
        files.append(File.generated(config, f"protocols/{protocol.name}", abs_src_path=str(protocol)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    def inside(match: re.Match[str]) -> str:
        target = match.group(1)
        return f"]({PAGES.get(target, target)})"

    text = _OUTSIDE.sub(inside, markdown)
    if page.file.src_uri in PAGES.values():  # links of the root notes point into docs/
        text = re.sub(r"\]\(docs/", "](", text)
    return text
