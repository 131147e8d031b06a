"""An indenting XML writer that streams: it holds the names of the open elements and a buffer of text it hands
to the file every ``flush_at`` pieces, never a tree. Text and attribute values are escaped as XML 1.0 needs
(``& < >`` and CR in text; also ``"``, LF and TAB in attributes); a character XML 1.0 cannot carry at all is
refused, never dropped."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

from trialwright.exports.odm.values import XML_UNSAFE

__all__ = ["XmlStream", "quoted", "safe_text"]

#: Anything escaping has to look at: most text has none of these and is written as it is.
_SPECIAL = re.compile('[&<>"\r\n\t\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


def safe_text(text: str) -> str:
    """``text`` escaped for XML character data; ValueError if it holds a character XML 1.0 cannot carry."""
    if _SPECIAL.search(text) is None:
        return text
    if XML_UNSAFE.search(text):
        raise ValueError(f"{text[:60]!r} holds a character XML 1.0 cannot carry")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def quoted(text: str) -> str:
    """``text`` as a quoted XML attribute value."""
    if _SPECIAL.search(text) is None:
        return f'"{text}"'
    return '"' + safe_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;") + '"'


class XmlStream:
    """Elements written as they come, two spaces of indent a level, one element or end tag a line."""

    def __init__(self, out: TextIO, flush_at: int = 4096) -> None:
        self._out = out
        self._pieces: list[str] = []
        self._flush_at = flush_at
        self.depth = 0

    def write(self, text: str) -> None:
        """Raw text (already escaped, indented and ended by a newline)."""
        self._pieces.append(text)
        if len(self._pieces) >= self._flush_at:
            self.flush()

    def flush(self) -> None:
        self._out.write("".join(self._pieces))
        self._pieces.clear()

    def declaration(self) -> None:
        self.write('<?xml version="1.0" encoding="UTF-8"?>\n')

    def indent(self) -> str:
        return "  " * self.depth

    def _start(self, tag: str, attrs: Mapping[str, str | None] | None) -> str:
        pairs = "".join(f" {k}={quoted(v)}" for k, v in attrs.items() if v is not None) if attrs else ""
        return f"{'  ' * self.depth}<{tag}{pairs}"

    def start(self, tag: str, attrs: Mapping[str, str | None] | None = None) -> None:
        """Open ``tag`` (attributes whose value is None are left out)."""
        self.write(self._start(tag, attrs) + ">\n")
        self.depth += 1

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.write(f"{'  ' * self.depth}</{tag}>\n")

    @contextmanager
    def element(self, tag: str, attrs: Mapping[str, str | None] | None = None) -> Iterator[None]:
        self.start(tag, attrs)
        yield
        self.end(tag)

    def leaf(self, tag: str, attrs: Mapping[str, str | None] | None = None, text: str | None = None) -> None:
        start = self._start(tag, attrs)
        self.write(f"{start}/>\n" if text is None else f"{start}>{safe_text(text)}</{tag}>\n")

    def translated(self, tag: str, text: str, translations: Mapping[str, str] | None = None) -> None:
        with self.element(tag):
            self.leaf("TranslatedText", {"xml:lang": "en"}, text)
            for lang, other in (translations or {}).items():
                self.leaf("TranslatedText", {"xml:lang": lang}, other)
