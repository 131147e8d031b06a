"""The Persian statistician's analysis page in a real browser (issue 24, item 2): the CONSORT diagram and the
figures fit the page right to left, nothing of them cut off, the diagram's lines in Persian each inside its box as
the browser sets it, and Table 1 says NA and the median in Persian."""

from __future__ import annotations

import pytest

from tests.browser.test_randomization import _as, _enrolled
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, list_exists, randomize
from trialwright.services.users import set_preferences

pytestmark = pytest.mark.browser

#: Each inline figure's box, the box of the element that holds it and what the page lets the reader scroll to.
GEOMETRY = """() => [...document.querySelectorAll('#report figure svg')].map(svg => {
  const r = svg.getBoundingClientRect(), f = svg.closest('figure').getBoundingClientRect();
  const main = document.querySelector('main').getBoundingClientRect();
  return {id: svg.id || svg.querySelector('g[id]')?.id || '', left: r.left, right: r.right, width: r.width,
          figLeft: f.left, figRight: f.right, mainLeft: main.left, mainRight: main.right,
          docLeft: -window.scrollX, scrollWidth: document.documentElement.scrollWidth,
          clientWidth: document.documentElement.clientWidth,
          // every line of text drawn inside the image (an RTL page must not move it out of its box and cut it)
          outside: [...svg.querySelectorAll('text')].map(t => [t.getBoundingClientRect(), t.textContent])
            .filter(([b]) => b.width > 0 && (b.left < r.left - 0.5 || b.right > r.right + 0.5))
            .map(([b, text]) => text)};
})"""


#: Each line of a CONSORT box as the browser lays it out, and the box it belongs to (``<box gid>/line-<j>``)
CONSORT_LINES = """() => [...document.querySelectorAll('#report svg g[id*="/line-"]')]
  .filter(g => g.id.startsWith('consort-') && !g.id.startsWith('consort-stage') && !g.id.startsWith('consort-title')
               && !g.id.startsWith('consort-caption'))
  .map(g => {
    const box = document.getElementById(g.id.split('/')[0]).getBoundingClientRect();
    const t = g.querySelector('text').getBoundingClientRect();
    return {id: g.id, text: g.textContent.trim(), inside: t.left >= box.left - 0.5 && t.right <= box.right + 0.5};
  })"""


def test_the_persian_analysis_page_fits_its_figures_right_to_left(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    if not list_exists(live_trial.engine):
        generate_list(live_trial.engine, who(live_trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    randomize(live_trial.engine, who(live_trial, Role.INVESTIGATOR), _enrolled(live_trial))
    set_preferences(live_trial.engine, who(live_trial, Role.BLINDED_STATISTICIAN).username, language="fa")
    page.set_viewport_size({"width": 1024, "height": 900})
    _as(page, live_server, Role.BLINDED_STATISTICIAN)
    page.goto(f"{live_server}/analysis")
    boxes = page.evaluate(GEOMETRY)
    assert boxes, "no figure on the page"
    for b in boxes:
        assert b["width"] > 100, b  # drawn, not shrunk away
        assert not b["outside"], b["outside"][:5]  # no text cut off at the image's edge
        assert b["left"] >= b["figLeft"] - 0.5 and b["right"] <= b["figRight"] + 0.5, b  # inside its figure
        assert b["left"] >= b["mainLeft"] - 0.5 and b["right"] <= b["mainRight"] + 0.5, b  # and the page's main
    assert boxes[0]["scrollWidth"] <= boxes[0]["clientWidth"], boxes[0]  # nothing off the page to either side
    lines = page.evaluate(CONSORT_LINES)
    assert any("تصادفی‌سازی‌شده" in line["text"] for line in lines), lines[:5]  # the diagram speaks Persian
    assert not any("Randomized" in line["text"] for line in lines)
    assert [line for line in lines if not line["inside"]] == []  # each line within its box
    page.shot("analysis-page-fa")
