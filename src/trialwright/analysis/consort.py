"""The CONSORT flow diagram: how participants passed through the trial, drawn from counts.

This module owns the CONSORT 2010 flow (Schulz et al., BMJ 2010;340:c332, kept by CONSORT 2025) with the
pilot and feasibility trial extension (Eldridge et al., BMJ 2016;355:i5239). A ``ConsortFlow`` holds the
counts at each stage:

* Enrollment -- assessed for eligibility; excluded, with reasons (not meeting criteria, declined, other);
  randomized.
* Allocation, per arm -- allocated; received the allocated intervention; did not receive it, with reasons.
* Follow-up, per arm -- lost to follow-up and discontinued intervention, each with reasons.
* Analysis, per arm -- analysed; excluded from analysis, with reasons; the analysis set named once.
* For a pilot trial, extra lines (e.g. consent and retention rates against the progression criteria).

Every participant is accounted for: ``validate()`` checks that the excluded add up to assessed minus
randomized, the arms to the randomized, and within each arm that received plus not received, and analysed
plus excluded from analysis, each equal the allocated (an interim diagram lists those still in follow-up
as a reason for exclusion from analysis). One arm is the pooled, still-blinded view; at most four arms
fit side by side.

``draw`` lays the diagram out in inches before drawing it: box heights come from the number of wrapped
lines, so text never leaves its box; ``to_svg`` and ``to_png`` save it through
``trialwright.analysis.figures`` (text kept as text, no dates, the same counts give the same bytes).
The counts come from the caller; this module reads nothing and writes nothing. ``draw`` speaks the reader's
language when given ``Words`` (the study report's ``ReportWords``): the app's words from the catalog, the protocol's
from its translations, counts in the language's digits; right to left the diagram is mirrored. ``summary`` and
``as_dict`` stay English (they feed the results' text and JSON).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.transforms import Transform

from trialwright.analysis.figures import house_style, new_figure, text_size, wrap_text
from trialwright.analysis.figures import to_png as _figure_png
from trialwright.analysis.figures import to_svg as _figure_svg

__all__ = ["NOT_RECORDED", "ArmFlow", "ConsortFlow", "Reason", "Words", "draw", "pilot_value", "to_png", "to_svg"]


def N_(message: str) -> str:  # the gettext convention: marks a message for the catalog
    return message


class Words(Protocol):
    """How the diagram speaks to its reader (``trialwright.analysis.report.ReportWords`` is one): the direction
    (``"rtl"``: lines shaped, in visual order and right-aligned), the app's words (``gettext``), the protocol's
    words (``said``: an arm, a reason, a label to the reader's language) and numbers in the language's digits."""

    @property
    def direction(self) -> str: ...
    @property
    def gettext(self) -> Any: ...
    @property
    def said(self) -> Any: ...
    @property
    def digits(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class _English:
    direction: str = "ltr"

    @staticmethod
    def gettext(text: str) -> str:
        return text

    @staticmethod
    def said(text: str) -> str:
        return text

    @staticmethod
    def digits(value: Any) -> str:
        return str(value)


ENGLISH: Words = _English()


def _say(words: Words, message: str, **values: Any) -> str:
    """The app's ``message`` in the reader's words, its counts in the reader's digits."""
    text = str(words.gettext(message))
    shown = {k: words.digits(v) if isinstance(v, int) else v for k, v in values.items()}
    return text % shown if values else text


#: The allocation box's line when the protocol declares no record of the intervention given
#: (``analysis_plan.treatment``): who received it is not known, so no count is claimed.
NOT_RECORDED = N_("Received allocated intervention: not recorded (the protocol declares no treatment record)")

MAX_ARMS = 4


@dataclass(frozen=True, slots=True)
class Reason:
    """A count of participants with the reason they left a stage."""

    label: str
    count: int

    def line(self, words: Words = ENGLISH) -> str:
        """The reason as the diagram writes it: "Declined to participate (n=3)"."""
        return _say(words, N_("%(reason)s (n=%(n)s)"), reason=words.said(self.label), n=self.count)


def _total(reasons: Sequence[Reason]) -> int:
    return sum(r.count for r in reasons)


@dataclass(frozen=True, slots=True)
class ArmFlow:
    """One arm's column: allocation, follow-up and analysis counts, with reasons for each loss."""

    label: str  # the group label exactly as the caller gives it ("Group A", "Exosomes", "All participants")
    allocated: int
    received: int | None  # received the allocated intervention; None: not recorded (no treatment record)
    not_received: tuple[Reason, ...]
    lost: tuple[Reason, ...]  # lost to follow-up
    discontinued: tuple[Reason, ...]  # discontinued the intervention
    analysed: int
    excluded_from_analysis: tuple[Reason, ...]

    def _stages(self, words: Words = ENGLISH) -> tuple[list[_Item], list[_Item], list[_Item]]:
        """The allocation, follow-up and analysis entries as the diagram and the summary show them."""
        w = words
        allocation = [
            _Item(_say(w, N_("Allocated to %(arm)s (n=%(n)s)"), arm=w.said(self.label), n=self.allocated), 0),
            *(
                (_Item(_say(w, NOT_RECORDED), 1),)
                if self.received is None
                else (
                    _Item(_say(w, N_("Received allocated intervention (n=%(n)s)"), n=self.received), 1),
                    _Item(
                        _say(w, N_("Did not receive allocated intervention (n=%(n)s)"), n=_total(self.not_received)),
                        1,
                    ),
                    *(_Item(r.line(w), 2) for r in self.not_received),
                )
            ),
        ]
        follow_up = [
            _Item(_say(w, N_("Lost to follow-up (n=%(n)s)"), n=_total(self.lost)), 0),
            *(_Item(r.line(w), 1) for r in self.lost),
            _Item(_say(w, N_("Discontinued intervention (n=%(n)s)"), n=_total(self.discontinued)), 0),
            *(_Item(r.line(w), 1) for r in self.discontinued),
        ]
        analysis = [
            _Item(_say(w, N_("Analysed (n=%(n)s)"), n=self.analysed), 0),
            _Item(_say(w, N_("Excluded from analysis (n=%(n)s)"), n=_total(self.excluded_from_analysis)), 1),
            *(_Item(r.line(w), 2) for r in self.excluded_from_analysis),
        ]
        return allocation, follow_up, analysis

    def problems(self) -> list[str]:
        """The CONSORT rules this arm breaks, each named, empty when it is consistent."""
        name = f"arm {self.label!r}"
        found = [f"{name}: counts must not be negative ({what} is {n})" for what, n in self._counts() if n < 0]
        if not self.label.strip():
            found.append("every arm needs a label")
        reasons = (*self.not_received, *self.lost, *self.discontinued, *self.excluded_from_analysis)
        if any(not r.label.strip() for r in reasons):
            found.append(f"{name}: every reason needs a label")
        not_received = _total(self.not_received)
        if self.received is None and self.not_received:
            found.append(f"{name}: reasons for not receiving the intervention need it recorded (received is None)")
        if self.received is not None and self.received + not_received != self.allocated:
            found.append(
                f"{name}: received + did not receive must equal allocated "
                f"({self.received} + {not_received} != {self.allocated})"
            )
        if self.analysed > self.allocated:
            found.append(f"{name}: analysed must not exceed allocated ({self.analysed} > {self.allocated})")
        excluded = _total(self.excluded_from_analysis)
        if self.analysed + excluded != self.allocated:
            found.append(
                f"{name}: analysed + excluded from analysis must equal allocated "
                f"({self.analysed} + {excluded} != {self.allocated})"
            )
        if _total(self.lost) > self.allocated:
            found.append(
                f"{name}: lost to follow-up must not exceed allocated ({_total(self.lost)} > {self.allocated})"
            )
        # Not bounded by "received": a participant may stop before a first dose was recorded and be
        # counted both as not receiving and as discontinuing.
        if _total(self.discontinued) > self.allocated:
            found.append(
                f"{name}: discontinued intervention must not exceed allocated "
                f"({_total(self.discontinued)} > {self.allocated})"
            )
        return found

    def _counts(self) -> list[tuple[str, int]]:  # a count not recorded (None) is not among them
        groups = {
            "did not receive": self.not_received,
            "lost to follow-up": self.lost,
            "discontinued": self.discontinued,
            "excluded from analysis": self.excluded_from_analysis,
        }
        return [
            ("allocated", self.allocated),
            *((("received", self.received),) if self.received is not None else ()),
            ("analysed", self.analysed),
            *((f"{group}: {r.label}", r.count) for group, reasons in groups.items() for r in reasons),
        ]

    def as_dict(self) -> dict[str, Any]:
        def reasons(rs: Sequence[Reason]) -> list[dict[str, Any]]:
            return [{"label": r.label, "count": r.count} for r in rs]

        return {
            "label": self.label,
            "allocated": self.allocated,
            "received": self.received,
            "not_received": reasons(self.not_received),
            "lost": reasons(self.lost),
            "discontinued": reasons(self.discontinued),
            "analysed": self.analysed,
            "excluded_from_analysis": reasons(self.excluded_from_analysis),
        }


@dataclass(frozen=True, slots=True)
class ConsortFlow:
    """The whole flow: enrollment counts, one ``ArmFlow`` per arm, the analysis set and pilot lines."""

    assessed: int
    excluded: tuple[Reason, ...]  # not meeting criteria, declined, other (each with a count)
    randomized: int
    arms: tuple[ArmFlow, ...]  # 1 (pooled, blinded) to 4 boxes side by side
    analysis_set: str  # e.g. "Intention to treat"
    pilot: tuple[tuple[str, str], ...] = ()  # pilot-extension lines (label, value), e.g. ("Consent rate", "75%")
    title: str = ""
    # Analysed per primary outcome, where the primary outcomes' counts differ: (outcome, ((group, n), ...)).
    analysed_by_outcome: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()

    def validate(self) -> None:
        """Raise ValueError naming every CONSORT rule the counts break."""
        found: list[str] = []
        if not 1 <= len(self.arms) <= MAX_ARMS:
            found.append(f"a diagram has 1 to {MAX_ARMS} arms, not {len(self.arms)}")
        for what, n in (("assessed", self.assessed), ("randomized", self.randomized)):
            if n < 0:
                found.append(f"counts must not be negative ({what} is {n})")
        found += [
            f"counts must not be negative (excluded: {r.label} is {r.count})" for r in self.excluded if r.count < 0
        ]
        if any(not r.label.strip() for r in self.excluded):
            found.append("every reason needs a label")
        if self.randomized > self.assessed:
            found.append(f"randomized must not exceed assessed ({self.randomized} > {self.assessed})")
        excluded = _total(self.excluded)
        if excluded != self.assessed - self.randomized:
            found.append(
                f"excluded must equal assessed - randomized ({excluded} != {self.assessed} - {self.randomized})"
            )
        allocated = sum(arm.allocated for arm in self.arms)
        if self.arms and allocated != self.randomized:
            found.append(f"allocated across arms must equal randomized ({allocated} != {self.randomized})")
        labels = [arm.label for arm in self.arms]
        if len(set(labels)) != len(labels):
            found.append(f"arm labels must be unique ({labels})")
        for arm in self.arms:
            found += arm.problems()
        if found:
            raise ValueError("inconsistent CONSORT flow: " + "; ".join(found))

    def _enrollment(self, words: Words = ENGLISH) -> tuple[list[_Item], list[_Item], list[_Item]]:
        """The assessed, excluded and randomized entries."""
        w = words
        return (
            [_Item(_say(w, N_("Assessed for eligibility (n=%(n)s)"), n=self.assessed), 0)],
            [
                _Item(_say(w, N_("Excluded (n=%(n)s)"), n=_total(self.excluded)), 0),
                *(_Item(r.line(w), 1) for r in self.excluded),
            ],
            [_Item(_say(w, N_("Randomized (n=%(n)s)"), n=self.randomized), 0)],
        )

    def summary(self) -> str:
        """The flow as indented text, one entry a line, in the diagram's order and wording."""
        assessed, excluded, randomized = self._enrollment()
        out = [self.title] if self.title else []
        out += _indented(assessed, 0) + _indented(excluded, 1) + _indented(randomized, 0)
        for arm in self.arms:
            allocation, follow_up, analysis = arm._stages()
            out += _indented(allocation, 1) + _indented(follow_up, 2) + _indented(analysis, 2)
        out.append(f"Analysis set: {self.analysis_set}")
        if self.analysed_by_outcome:
            out.append("Analysed, by primary outcome")
            out += [
                f"  {outcome}: " + ", ".join(f"{group} {n}" for group, n in counts)
                for outcome, counts in self.analysed_by_outcome
            ]
        if self.pilot:
            out.append("Pilot trial progression")
            out += [f"  {label}: {value}" for label, value in self.pilot]
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        """The counts as JSON-ready values."""
        return {
            "title": self.title,
            "assessed": self.assessed,
            "excluded": [{"label": r.label, "count": r.count} for r in self.excluded],
            "randomized": self.randomized,
            "arms": [arm.as_dict() for arm in self.arms],
            "analysis_set": self.analysis_set,
            "pilot": [{"label": label, "value": value} for label, value in self.pilot],
            "analysed_by_outcome": [
                {"outcome": outcome, "analysed": dict(counts)} for outcome, counts in self.analysed_by_outcome
            ],
        }


@dataclass(frozen=True, slots=True)
class _Item:
    """One entry of a box: level 0 is a heading, 1 a bullet under it, 2 a reason under a bullet."""

    text: str
    level: int
    weight: str = "normal"


def _indented(items: Sequence[_Item], base: int) -> list[str]:
    """Entries as summary lines, indented two spaces per level below ``base``."""
    return ["  " * (base + item.level) + item.text for item in items]


# Layout, all in inches. Sizes are chosen so a 2-arm diagram is 7 inches wide (an A4 or Letter page).
_SIZE = 8.5
_LINE_H = _SIZE * 1.3 / 72
_PAD_X, _PAD_Y = 0.09, 0.07
_INDENT = 0.14  # per level
_BULLETS = ("", "•", "–")
_BULLET_W = 0.12
_ARM_WIDTHS, _ARM_GAP = {1: 3.0, 2: 2.9, 3: 2.8, 4: 2.6}, 0.3  # by number of arms: narrower as they multiply
_MAIN_W, _EXCLUDED_W, _EXCLUDED_OFFSET = 2.4, 2.8, 0.35
_MARGIN, _STRIP_W, _STRIP_GAP = 0.2, 0.3, 0.2
_ARROW_GAP = 0.32  # between the rows of one arm
_SPLIT_GAP = 0.5  # from Randomized down to the arms
_STAGE_SIZE = 9.0
_SLACK = 0.94  # wrap a little short of the box, so a viewer's substitute font still fits in the SVG
_EDGE = "#333333"
_STAGE_FILL, _STAGE_EDGE = "#dbe8f5", "#5b84b1"
_STAGES = (N_("Enrollment"), N_("Allocation"), N_("Follow-Up"), N_("Analysis"))


def _as_is(text: str) -> str:
    return text


def _right_to_left(text: str) -> str:
    return f"\u202b{text}\u202c"


def _drawing(words: Words) -> Callable[[str], str]:
    """A line of text as matplotlib is given it: right to left, embedded at a right-to-left level (RLE ... PDF),
    so a line that starts with a Latin word (an arm's name) still reads from the right; left to right, as it is.

    The text stays in logical order: matplotlib (3.11, libraqm) joins the letters and orders the line itself for
    the PNG, and the SVG keeps text as text, which its viewer shapes and orders. Text shaped and put in visual order
    beforehand (``trialwright.analysis.rtl.visual``, which ReportLab needs) would be reversed a second time."""
    return _right_to_left if words.direction == "rtl" else _as_is


@dataclass
class _Box:
    """A box placed on the page: left edge, top (inches down from the page top), size and wrapped lines."""

    gid: str
    left: float
    width: float
    items: Sequence[_Item]
    drawn: Callable[[str], str] = _as_is
    top: float = 0.0
    lines: list[tuple[int, bool, str, str]] = field(default_factory=list)  # (level, first, text, weight)
    height: float = 0.0

    def __post_init__(self) -> None:
        for item in self.items:
            room = self.width - 2 * _PAD_X - item.level * _INDENT - (_BULLET_W if item.level else 0.0)
            for j, text in enumerate(wrap_text(item.text, room * _SLACK, _SIZE, item.weight, self.drawn)):
                self.lines.append((item.level, j == 0, text, item.weight))
        self.height = self.content_height

    @property
    def content_height(self) -> float:
        return len(self.lines) * _LINE_H + 2 * _PAD_Y

    @property
    def centre(self) -> float:
        return self.left + self.width / 2

    @property
    def bottom(self) -> float:
        return self.top + self.height


def _row(boxes: Sequence[_Box], top: float, min_height: float) -> float:
    """Put a row of boxes at ``top``, all as tall as the tallest (at least ``min_height``); return its bottom."""
    height = max([min_height, *(box.content_height for box in boxes)])
    for box in boxes:
        box.top, box.height = top, height
    return top + height


@dataclass
class _Layout:
    width: float
    height: float
    boxes: list[_Box]
    stages: list[tuple[str, str, float, float]]  # (English label, label as drawn, top, bottom)
    arrows: list[tuple[float, float, float, float]]  # (x0, y0, x1, y1), arrowhead at the end
    lines: list[tuple[float, float, float, float]]
    captions: list[tuple[float, float, str]]  # centred text lines: (x, top, text)
    title: list[str]
    drawn: Callable[[str], str] = _as_is  # a logical line as matplotlib is given it
    rtl: bool = False


def _layout(flow: ConsortFlow, words: Words = ENGLISH) -> _Layout:
    """Every box, stage band, arrow and caption of the diagram, in inches from the top-left corner; its texts in
    ``words``, wrapped and measured as they are drawn."""
    drawn = _drawing(words)
    stage_names = {name: drawn(str(words.gettext(name))) for name in _STAGES}
    n = len(flow.arms)
    arm_w = _ARM_WIDTHS[n]
    arms_left = _MARGIN + _STRIP_W + _STRIP_GAP
    arms_w = n * arm_w + (n - 1) * _ARM_GAP
    centre = arms_left + arms_w / 2
    right = max(arms_left + arms_w, centre + _EXCLUDED_OFFSET + _EXCLUDED_W)
    width = right + _MARGIN
    stage_min = {name: text_size(shown, _STAGE_SIZE, "bold")[0] + 0.2 for name, shown in stage_names.items()}

    title_text = str(words.said(flow.title)) if flow.title else ""
    title = wrap_text(title_text, width - 2 * _MARGIN, 11.0, "bold", drawn) if title_text else []
    y = _MARGIN + (len(title) * 11.0 * 1.3 / 72 + 0.15 if title else 0.0)

    assessed_items, excluded_items, randomized_items = flow._enrollment(words)
    assessed = _Box("consort-assessed", centre - _MAIN_W / 2, _MAIN_W, assessed_items, drawn)
    excluded = _Box("consort-excluded", centre + _EXCLUDED_OFFSET, _EXCLUDED_W, excluded_items, drawn)
    randomized = _Box("consort-randomized", centre - _MAIN_W / 2, _MAIN_W, randomized_items, drawn)
    enrollment_top = y
    assessed.top = y
    gap = max(excluded.height + 0.3, 0.45, stage_min["Enrollment"] - assessed.height - randomized.height)
    excluded.top = assessed.bottom + (gap - excluded.height) / 2
    randomized.top = assessed.bottom + gap
    arrows = [(centre, assessed.bottom, centre, randomized.top)]
    arrows.append((centre, excluded.top + excluded.height / 2, excluded.left, excluded.top + excluded.height / 2))
    stages = [("Enrollment", stage_names["Enrollment"], enrollment_top, randomized.bottom)]

    lines: list[tuple[float, float, float, float]] = []
    split = randomized.bottom + _SPLIT_GAP / 2
    columns = [arms_left + i * (arm_w + _ARM_GAP) for i in range(n)]
    rows: list[list[_Box]] = [[], [], []]
    for i, (arm, left) in enumerate(zip(flow.arms, columns, strict=True)):
        for row, stage, items in zip(rows, ("allocation", "follow-up", "analysis"), arm._stages(words), strict=True):
            row.append(_Box(f"consort-arm{i + 1}-{stage}", left, arm_w, items, drawn))
    if n == 1:
        arrows.append((centre, randomized.bottom, centre, randomized.bottom + _SPLIT_GAP))
    else:
        lines.append((centre, randomized.bottom, centre, split))
        lines.append((rows[0][0].centre, split, rows[0][-1].centre, split))
        arrows += [(box.centre, split, box.centre, randomized.bottom + _SPLIT_GAP) for box in rows[0]]

    y = randomized.bottom + _SPLIT_GAP
    for k, (name, row) in enumerate(zip(("Allocation", "Follow-Up", "Analysis"), rows, strict=True)):
        if k:
            arrows += [(box.centre, y, box.centre, y + _ARROW_GAP) for box in rows[k - 1]]
            y += _ARROW_GAP
        bottom = _row(row, y, stage_min[name])
        stages.append((name, stage_names[name], y, bottom))
        y = bottom

    captions = [
        (centre, y + 0.08 + j * _LINE_H, text)
        for j, text in enumerate(
            wrap_text(
                _say(words, N_("Analysis set: %(set)s"), set=words.said(flow.analysis_set)),
                arms_w,
                _SIZE,
                "normal",
                drawn,
            )
        )
    ]
    y += 0.08 + len(captions) * _LINE_H
    boxes = [assessed, excluded, randomized, *(box for row in rows for box in row)]
    if flow.pilot:
        items = [_Item(_say(words, N_("Pilot trial progression")), 0, "bold")]
        items += [_Item(f"{words.said(label)}: {pilot_value(words, value)}", 1) for label, value in flow.pilot]
        pilot = _Box("consort-pilot", arms_left, right - arms_left, items, drawn)
        pilot.top = y + 0.2
        boxes.append(pilot)
        y = pilot.bottom
    height = y + _MARGIN
    return _Layout(width, height, boxes, stages, arrows, lines, captions, title, drawn, words.direction == "rtl")


_RATE = re.compile(r"(?P<rate>\S+) per site-month \((?P<n>\S+) in (?P<months>\S+) site-months\)")
_PERCENT = re.compile(r"(?P<percent>\d+)% \((?P<part>\d+)/(?P<whole>\d+)\)")
_VERDICT = re.compile(r"(?P<value>.*); progression: (?P<verdict>go|amend|stop)")
_VERDICTS = {
    "go": N_("%(value)s; progression: go"),
    "amend": N_("%(value)s; progression: amend"),
    "stop": N_("%(value)s; progression: stop"),
}


def pilot_value(words: Words, value: str) -> str:
    """A pilot rate as the engine writes it (``PilotRate.text``: "75% (3/4); progression: go", "0.50 per
    site-month (3 in 6.0 site-months)", "not estimable") in ``words``: each part through the catalog, its numbers
    in the reader's digits; a value of another shape in digits only. English is the value as given."""
    if m := _VERDICT.fullmatch(value):
        return _say(words, _VERDICTS[m["verdict"]], value=pilot_value(words, m["value"]))
    if value == "not estimable":
        return _say(words, N_("not estimable"))
    if m := _RATE.fullmatch(value):
        rate = N_("%(rate)s per site-month (%(n)s in %(months)s site-months)")
        return _say(words, rate, **{k: words.digits(v) for k, v in m.groupdict().items()})
    if m := _PERCENT.fullmatch(value):
        percent = N_("%(percent)s%% (%(part)s/%(whole)s)")
        return _say(words, percent, **{k: words.digits(v) for k, v in m.groupdict().items()})
    return str(words.digits(value))


def draw(flow: ConsortFlow, words: Words = ENGLISH) -> Figure:
    """The CONSORT flow diagram of ``flow`` (validated first) as a matplotlib Figure, in ``words`` (English by
    default). Right to left, the diagram is mirrored: the stage bands on the right, the excluded box to the left of
    the flow, the first arm on the right, and each line right-aligned in its box, its bullet on the right.

    Each box is a patch with a ``gid`` (``consort-assessed``, ``consort-arm1-allocation``, ...) and each of
    its text lines carries ``<box gid>/line-<j>``, so tests and tools can find what sits in which box.
    """
    flow.validate()
    with house_style():
        layout = _layout(flow, words)
        drawn = layout.drawn
        fig = new_figure(layout.width, layout.height)
        inches = fig.dpi_scale_trans
        page = layout.height

        def at(x: float, w: float = 0.0) -> float:  # the left edge of what spans [x, x + w], mirrored right to left
            return layout.width - x - w if layout.rtl else x

        def text(x: float, top: float, s: str, gid: str, **kw: Any) -> None:
            fig.text(x, page - top, s, va="top", fontsize=_SIZE, parse_math=False, transform=inches, gid=gid, **kw)

        for j, line in enumerate(layout.title):
            fig.text(
                layout.width / 2,
                page - _MARGIN - j * 11.0 * 1.3 / 72,
                drawn(line),
                ha="center",
                va="top",
                fontsize=11.0,
                fontweight="bold",
                parse_math=False,
                transform=inches,
                gid=f"consort-title/line-{j}",
            )
        for name, shown, top, bottom in layout.stages:
            _band(fig, inches, page, at(_MARGIN, _STRIP_W), name, shown, top, bottom)
        for box in layout.boxes:
            left = at(box.left, box.width)
            _rect(fig, inches, left, page - box.bottom, box.width, box.height, _EDGE, "white", box.gid)
            y = box.top + _PAD_Y + (box.height - box.content_height) / 2
            for j, (level, first, s, weight) in enumerate(box.lines):
                bullet = _BULLET_W if level else 0.0
                if layout.rtl:  # mirrored: indented from the right edge, the bullet on the right
                    x = left + box.width - _PAD_X - level * _INDENT
                    if level and first:
                        text(x, y, _BULLETS[level], f"{box.gid}/bullet-{j}", ha="right")
                    text(x - bullet, y, drawn(s), f"{box.gid}/line-{j}", fontweight=weight, ha="right")
                else:
                    x = box.left + _PAD_X + level * _INDENT
                    if level and first:
                        text(x, y, _BULLETS[level], f"{box.gid}/bullet-{j}")
                    text(x + bullet, y, s, f"{box.gid}/line-{j}", fontweight=weight)
                y += _LINE_H
        for j, (x, top, s) in enumerate(layout.captions):
            # DejaVu Sans Oblique has no Arabic letters: a right-to-left caption stands upright
            style = "normal" if layout.rtl else "italic"
            text(at(x), top, drawn(s), f"consort-caption/line-{j}", ha="center", fontstyle=style)
        for x0, y0, x1, y1 in layout.lines:
            xs = [at(x0), at(x1)]
            fig.add_artist(Line2D(xs, [page - y0, page - y1], color=_EDGE, linewidth=0.9, transform=inches))
        for x0, y0, x1, y1 in layout.arrows:
            fig.add_artist(
                FancyArrowPatch(
                    (at(x0), page - y0),
                    (at(x1), page - y1),
                    arrowstyle="-|>",
                    mutation_scale=9,
                    shrinkA=0,
                    shrinkB=0,
                    color=_EDGE,
                    linewidth=0.9,
                    transform=inches,
                )
            )
    return fig


def _rect(
    fig: Figure, inches: Transform, x: float, y: float, w: float, h: float, edge: str, fill: str, gid: str
) -> None:
    fig.add_artist(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.04",
            edgecolor=edge,
            facecolor=fill,
            linewidth=0.9,
            transform=inches,
            gid=gid,
        )
    )


def _band(
    fig: Figure, inches: Transform, page: float, left: float, name: str, shown: str, top: float, bottom: float
) -> None:
    """A stage band at ``left`` (the page's left edge, right to left its right edge), its name (``shown``, as
    drawn) written upwards in the middle."""
    gid = f"consort-stage-{name.lower()}"
    _rect(fig, inches, left, page - bottom, _STRIP_W, bottom - top, _STAGE_EDGE, _STAGE_FILL, gid)
    fig.text(
        left + _STRIP_W / 2,
        page - (top + bottom) / 2,
        shown,
        ha="center",
        va="center",
        rotation=90,
        rotation_mode="anchor",
        fontsize=_STAGE_SIZE,
        fontweight="bold",
        parse_math=False,
        transform=inches,
        gid=f"{gid}/line-0",
    )


def to_svg(flow: ConsortFlow, words: Words = ENGLISH) -> str:
    """The diagram as SVG text (text kept as text; the same flow always gives the same string)."""
    return _figure_svg(draw(flow, words))


def to_png(flow: ConsortFlow, dpi: int = 150, words: Words = ENGLISH) -> bytes:
    """The diagram as PNG bytes at ``dpi``."""
    return _figure_png(draw(flow, words), dpi=dpi)
