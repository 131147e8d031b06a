"""Right-to-left text in the PDF report (Persian), drawn by ReportLab.

ReportLab draws the characters it is given left to right, one glyph each: it neither joins the letters of the
Arabic script nor reorders bidirectional text unless ReportLab's own ``rlbidi`` is installed, and that is not on
PyPI. So each line here is

1. broken from the paragraph in logical order, measured as it will be drawn, so a wrapped paragraph reads from its
   first line down;
2. shaped: every letter becomes its contextual presentation form (initial, medial, final or isolated), so the
   letters join (``arabic-reshaper``; a zero-width non-joiner, ``نیم‌فاصله``, breaks the join and is then dropped,
   having no width);
3. put in visual order by the Unicode bidirectional algorithm at a right-to-left base level, with mirrored brackets
   (rule L4; ``python-bidi``'s reference implementation, ``bidi.algorithm``), so Latin ids and numbers inside keep
   their own left-to-right order;
4. drawn right-aligned in DejaVu Sans, which matplotlib ships (Latin, Arabic with its presentation forms, Persian
   digits; Bitstream Vera licence).

Text extracted from the PDF is therefore in visual order and in presentation forms; its NFKC form, read right to
left, is the text (``tests/spec/web/test_persian_pdf.py``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import arabic_reshaper
import matplotlib
from bidi.algorithm import get_display
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable

__all__ = [
    "FONT",
    "FONT_BOLD",
    "LeftToRight",
    "RightToLeft",
    "holds_right_to_left",
    "lines",
    "register_fonts",
    "visual",
]

FONT, FONT_BOLD = "trialwright-DejaVuSans", "trialwright-DejaVuSans-Bold"
#: Marks that only steer direction or joining: no glyph is drawn for them once the text is shaped and ordered.
_INVISIBLE = re.compile("[\u200c\u200d\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_RESHAPER = arabic_reshaper.ArabicReshaper(configuration={"delete_harakat": False, "support_ligatures": True})


def _font_file(name: str) -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


@cache
def register_fonts() -> tuple[str, str]:
    """Register DejaVu Sans and its bold with ReportLab once; their names."""
    pdfmetrics.registerFont(TTFont(FONT, str(_font_file("DejaVuSans.ttf")), shapable=False))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(_font_file("DejaVuSans-Bold.ttf")), shapable=False))
    return FONT, FONT_BOLD


def _shaped(text: str) -> str:
    return str(_RESHAPER.reshape(text))


#: A bracketed run without a letter of the Arabic script, e.g. a unit "(mg/L)" or an id "(labs.crp)".
_LATIN_IN_BRACKETS = re.compile(r"\([^()\u0600-\u06ff\ufb50-\ufeff]*\)")


def _embedded(text: str) -> str:
    """Each bracketed Latin run embedded left to right (LRE ... PDF), so its brackets stay with it: without, a
    closing bracket at the end of a right-to-left line would stand at its left end, "(mg/L" and ")"."""
    return _LATIN_IN_BRACKETS.sub(lambda m: f"\u202a{m.group(0)}\u202c", text)


#: Isolates (LRI, RLI, FSI ... PDI: a sentence in the reader's language isolates its parts, e.g. a lock's reason or
#: an identifier). ``bidi.algorithm`` knows embeddings only (an isolate is an ``AssertionError`` there, and the Rust
#: ``bidi.get_display``, which reads isolates, does not mirror brackets), so each isolate is drawn as the embedding
#: of its direction (LRE or RLE ... PDF), nested as written. A paragraph wrapped over lines keeps each isolate open
#: on every line it spans (``lines``), in the direction the whole isolate has.
_LRI, _RLI, _FSI, _PDI = "\u2066", "\u2067", "\u2068", "\u2069"
_INITIATORS = _LRI + _RLI + _FSI
_STRONG_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_STRONG_LTR = re.compile("[A-Za-z\u00c0-\u024f]")


def holds_right_to_left(text: str) -> bool:
    """Whether ``text`` holds a letter of a right-to-left script (a Persian word in an English sentence)."""
    return _STRONG_RTL.search(text) is not None


def _first_strong(text: str, start: int) -> str:
    """The direction of an FSI whose content starts at ``start`` (Unicode rule P2-P3): that of its first strong
    letter outside any isolate nested in it, left to right when it has none."""
    depth = 0
    for c in text[start:]:
        if c in _INITIATORS:
            depth += 1
        elif c == _PDI:
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and _STRONG_RTL.match(c):
            return _RLI
        elif depth == 0 and _STRONG_LTR.match(c):
            return _LRI
    return _LRI


def _resolved(text: str) -> str:
    """``text`` with each FSI replaced by the LRI or RLI of its direction, read from the whole of its content."""
    return "".join(_first_strong(text, i + 1) if c == _FSI else c for i, c in enumerate(text))


def _open_at_end(text: str) -> list[str]:
    """The isolate initiators still open at the end of ``text``, outermost first (a PDI with none open is none)."""
    opened: list[str] = []
    for c in text:
        if c in _INITIATORS:
            opened.append(c)
        elif c == _PDI and opened:
            opened.pop()
    return opened


def _as_embeddings(text: str) -> str:
    """Each isolate as the embedding of its direction, as the Unicode algorithm reads an isolate: one left open
    runs to the end of the line (rule X6a's paragraph end), a PDI that closes none is dropped (it does nothing)."""
    text = _resolved(text)
    out: list[str] = []
    depth = 0
    for c in text:
        if c in _INITIATORS:
            depth += 1
            out.append("\u202a" if c == _LRI else "\u202b")
        elif c == _PDI:
            if depth:
                depth -= 1
                out.append("\u202c")
        else:
            out.append(c)
    return "".join(out) + "\u202c" * depth


def visual(text: str, base: str = "R") -> str:
    """One line of text as it is drawn: shaped, in visual order on a right-to-left base (``base="L"``: a value
    that reads left to right, e.g. an estimate or a time), marks dropped."""
    ordered = get_display(_shaped(_embedded(_as_embeddings(text))), base_dir=base)
    return _INVISIBLE.sub("", str(ordered))


def _width(text: str, font: str, size: float) -> float:
    return float(pdfmetrics.stringWidth(_INVISIBLE.sub("", _shaped(text)), font, size))


def lines(text: str, font: str, size: float, width: float) -> list[str]:
    """The text broken into lines no wider than ``width`` (a word wider than that alone on its line), in logical
    order; an explicit line break is kept. An isolate a break falls in is closed at the line's end and opened
    again, in its direction, at the next line's start, so each line is whole for the bidi pass."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        broken: list[str] = []
        line = ""
        for word in _resolved(paragraph).split():
            candidate = f"{line} {word}" if line else word
            if line and _width(candidate, font, size) > width:
                broken.append(line)
                line = word
            else:
                line = candidate
        broken.append(line)
        opened: list[str] = []  # an isolate wrapped over lines: closed at each line's end, opened again below
        for line in broken:
            carried = "".join(opened) + line
            opened = _open_at_end(carried)
            out.append(carried + _PDI * len(opened))
    return out


class LeftToRight(str):
    """A value that reads left to right inside right-to-left text (an id, a hash, a time, an estimate with its
    interval): laid out on a left-to-right base, still right-aligned in its cell."""

    __slots__ = ()


class RightToLeft(Flowable):  # type: ignore[misc]  # reportlab is untyped
    """A paragraph of right-to-left text: wrapped to the width it is given, each line drawn right-aligned
    (``right_aligned=False``, with ``base="L"``: an English paragraph holding right-to-left words, drawn from the
    left)."""

    def __init__(
        self,
        text: str,
        font: str,
        size: float,
        leading: float,
        space_after: float = 0,
        base: str = "R",
        *,
        right_aligned: bool = True,
    ) -> None:
        super().__init__()
        self.text, self.font, self.size, self.leading, self.base = text, font, size, leading, base
        self.right_aligned = right_aligned
        self.spaceAfter = space_after
        self._lines: list[str] = [text]

    def minWidth(self) -> float:  # ReportLab's name
        return max((_width(w, self.font, self.size) for w in self.text.split()), default=0.0)

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        self._lines = lines(self.text, self.font, self.size, available_width)
        self.width = available_width
        self.height = self.leading * len(self._lines)
        return self.width, self.height

    def draw(self) -> None:
        canvas: Any = self.canv
        canvas.setFont(self.font, self.size)
        for i, line in enumerate(self._lines):
            baseline = self.height - (i + 1) * self.leading + (self.leading - self.size) / 2 + 0.2 * self.size
            if self.right_aligned:
                canvas.drawRightString(self.width, baseline, visual(line, self.base))
            else:
                canvas.drawString(0, baseline, visual(line, self.base))
