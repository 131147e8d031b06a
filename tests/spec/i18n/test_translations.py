"""Every user-facing string is translatable, and Persian has a translation for every one of them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment

from trialwright.domain.roles import Role
from trialwright.services.users import SIGN_IN_MESSAGES
from trialwright.services.worklist import WorkKind
from trialwright.web.i18n import catalog_path, translations

SRC = Path(__file__).resolve().parents[3] / "src" / "trialwright"
TEMPLATES = SRC / "web" / "templates"
ALLOWED = {"trialwright", "#"}
_USER_ATTRIBUTES = re.compile(r'\b(?:placeholder|title|aria-label|alt)="([^"\x00]*)"')


def untranslated(source: str) -> list[str]:
    """Raw text in a template that a person would read but no gettext call wraps."""
    Environment(extensions=["jinja2.ext.i18n"], autoescape=True).parse(source)  # must be a valid template
    text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "\x00", source, flags=re.DOTALL)
    found = [
        value.strip()
        for value in _USER_ATTRIBUTES.findall(text)
        if re.search(r"[^\W\d_]", value) and value.strip() not in ALLOWED
    ]
    text = re.sub(r"<[^>]*>", "\n", text)  # tags and their attributes
    text = re.sub(r"&\w+;|&#\d+;", " ", text)
    for chunk in re.split(r"\x00|\n", text):
        chunk = chunk.strip(" .,:;()·/|-\t")
        if re.search(r"[^\W\d_]", chunk) and chunk not in ALLOWED:
            found.append(chunk)
    return found


def _template_ids() -> set[str]:
    pattern = re.compile(r"""_\(\s*"([^"]+)"\s*\)|_\(\s*'([^']+)'\s*\)""")
    ids: set[str] = set()
    for path in TEMPLATES.rglob("*.html"):
        ids |= {a or b for a, b in pattern.findall(path.read_text("utf-8"))}
    return ids


def _python_ids() -> set[str]:
    ids: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "N_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                ids.add(node.args[0].value)
    return ids


ALL_IDS = (
    _template_ids() | _python_ids() | {r.label for r in Role} | {k.label for k in WorkKind} | set(SIGN_IN_MESSAGES)
)


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")))
def test_templates_hold_no_untranslatable_text(template: str) -> None:
    assert untranslated((TEMPLATES / template).read_text("utf-8")) == []


def test_the_checker_catches_raw_text() -> None:
    bad = '<p>Hello</p><input placeholder="Your name"><p>{{ _("fine") }}</p>'
    assert sorted(untranslated(bad)) == ["Hello", "Your name"]


def test_every_message_has_a_persian_translation() -> None:
    with catalog_path("fa").open("rb") as handle:
        catalog = read_po(handle, locale="fa")
    translated = {m.id: m.string for m in catalog if m.id}
    missing = sorted(i for i in ALL_IDS if not translated.get(i))
    assert missing == [], f"add these to src/trialwright/locale/fa/LC_MESSAGES/messages.po: {missing}"
    assert not [m.id for m in catalog if m.id and m.fuzzy]
    assert len(ALL_IDS) > 60


def test_persian_text_is_persian() -> None:
    fa = translations("fa")
    assert fa.gettext("Sign in") == "ورود" and fa.gettext("Solar Hijri") == "هجری شمسی"
    assert translations("en").gettext("Sign in") == "Sign in"
