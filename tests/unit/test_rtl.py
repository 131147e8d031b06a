"""``analysis.rtl``: isolates (LRI, RLI, FSI ... PDI) in the text drawn into the PDF (walk 3, F1).

``bidi.algorithm`` refuses an isolate mark (``AssertionError: FSI not allowed here``), so ``visual`` draws each
isolate as the embedding of its direction. The minimal input that failed was an isolate left open on a line: a
paragraph wrapped inside an isolate (a lock's reason) leaves the opening on one line and the closing on the next.
``lines`` now closes an isolate at each line's end and opens it again, in its direction, on the next line.
"""

from __future__ import annotations

import unicodedata

import pytest

from trialwright.analysis.rtl import lines, register_fonts, visual

LRI, RLI, FSI, PDI = "\u2066", "\u2067", "\u2068", "\u2069"
END = "پایان"  # "end": no lam-alef, which one ligature glyph draws in logical order


def _letters(drawn: str) -> str:
    return unicodedata.normalize("NFKC", drawn)  # presentation forms back to letters, in the order drawn


@pytest.mark.parametrize(
    ("text", "drawn"),
    [
        (f"{FSI}{END} abc", f"abc {END[::-1]}"),  # an FSI left open: it runs to the line's end
        (f"abc{PDI} {END}", f"{END[::-1]} abc"),  # a PDI that closes none does nothing
        (f"{RLI}{END} {LRI}abc def{PDI}{PDI}", f"abc def {END[::-1]}"),  # nested
        (f"{FSI}abc def{PDI} {END}", f"{END[::-1]} abc def"),  # an FSI of Latin: left to right
    ],
)
def test_an_isolate_is_drawn_in_its_direction_and_never_refused(text: str, drawn: str) -> None:
    assert _letters(visual(text)) == drawn


def test_an_isolate_wrapped_over_lines_is_whole_on_each_line_in_its_direction() -> None:
    font, _ = register_fonts()
    reason = f"{END} {FSI}final analysis after the simulator signed only sign_forms at every site{PDI} {END}"
    broken = lines(reason, font, 8, 80)
    assert len(broken) > 2
    for line in broken:  # balanced, and the FSI resolved once, from the whole isolate: left to right
        assert FSI not in line and line.count(LRI) == line.count(PDI), line
    assert all(line.startswith(LRI) for line in broken[1:-1])
    drawn = [_letters(visual(line)) for line in broken]
    assert " ".join(d for d in drawn if END[::-1] not in d) in reason  # each middle line left to right
