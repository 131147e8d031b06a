"""The trial's figures: values over time per group, and forest plots of estimates with intervals.

This module owns how a result is drawn, not what it is: callers pass numbers already computed (by
``trialwright.analysis.statistics``) and get back a ``matplotlib.figure.Figure``. Two plots are defined:

* ``values_over_time`` -- the mean (or geometric mean) of an outcome per group at each timepoint, with its
  interval as an error bar. Groups are nudged apart on the x axis so their bars do not overlap, and a
  small table under the axis gives the number of participants behind each point.
* ``forest_plot`` -- one row per comparison: the estimate as a square, its interval as a line, a vertical
  line at no effect (0 for a difference, 1 for a ratio, on a log axis) and the estimate written out on the
  right. A row without an estimate is drawn as "not estimable".

Figures are built as ``Figure`` objects (never through pyplot's global state) inside ``house_style()``,
which fixes every rc setting from matplotlib's defaults and holds a lock while it does, so drawing is
deterministic and safe from several threads. ``to_svg`` keeps text as text (``svg.fonttype = "none"``) and
leaves out the creation date, so the same data always gives the same bytes; ``to_png`` renders with Agg.

``wrap_text`` and ``text_size`` measure text with the same fonts, so layouts (here and in
``trialwright.analysis.consort``) are computed in inches before anything is drawn and text fits its space.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import matplotlib
import matplotlib.style
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, ScalarFormatter
from matplotlib.transforms import blended_transform_factory
from matplotlib.typing import RcKeyType

__all__ = [
    "FONT",
    "ForestRow",
    "GroupSeries",
    "forest_plot",
    "house_style",
    "new_figure",
    "text_size",
    "to_png",
    "to_svg",
    "values_over_time",
    "wrap_text",
]

FONT = "DejaVu Sans"
"""The one font family every trialwright figure uses (shipped with matplotlib, so present everywhere)."""

# Colour-blind-safe (Okabe & Ito) colours and distinct markers, so groups stay apart in grey print too.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")

_RC: dict[str, object] = {
    "font.family": FONT,
    "font.size": 9.0,
    "svg.fonttype": "none",  # text stays text: searchable, selectable, translatable
    "svg.hashsalt": "trialwright",  # fixed ids in the SVG, so the same figure gives the same bytes
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}

# The settings that change text widths, as in matplotlib's defaults (which house_style applies).
_METRIC_KEYS: tuple[RcKeyType, ...] = ("text.hinting", "text.hinting_factor", "text.kerning_factor")
_METRICS: dict[RcKeyType, Any] = {key: matplotlib.rcParamsDefault[key] for key in _METRIC_KEYS}

# rc_context and style.context change matplotlib's global rcParams for their duration; two threads
# entering and leaving them out of step would restore each other's settings. One lock serialises them.
_LOCK = threading.RLock()


@contextmanager
def house_style() -> Iterator[None]:
    """Matplotlib's default settings plus trialwright's (font, SVG text as text, fixed SVG ids), under a lock.

    Build and save every figure inside it: artists read rcParams when created, the SVG writer when saving.
    """
    with _LOCK, matplotlib.style.context(["default", _RC]):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A white figure of the given size in inches, rendered by Agg (call inside ``house_style()``)."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def to_svg(fig: Figure) -> str:
    """The figure as SVG text: text kept as text, no creation date, so equal figures give equal strings."""
    buf = io.BytesIO()
    with house_style():
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue().decode("utf-8")


def to_png(fig: Figure, dpi: int = 150) -> bytes:
    """The figure as PNG bytes rendered by Agg at ``dpi``."""
    buf = io.BytesIO()
    with house_style():
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


@lru_cache(maxsize=8192)
def text_size(text: str, size: float, weight: str = "normal") -> tuple[float, float]:
    """Width and height in inches of one line of ``text`` at ``size`` points in ``FONT``."""
    # backend_agg ships without type hints; at 72 dpi one pixel is one point.
    renderer = RendererAgg(1, 1, 72)  # type: ignore[no-untyped-call]
    prop = FontProperties(family=FONT, size=size, weight=weight)
    with _LOCK:
        # Hinting changes widths, so measure with the settings figures are drawn with (already in force
        # inside house_style; entering rc_context costs as much as the measuring).
        settled = all(matplotlib.rcParams[key] == value for key, value in _METRICS.items())
        with nullcontext() if settled else matplotlib.rc_context(_METRICS):
            width, height, _descent = renderer.get_text_width_height_descent(  # type: ignore[no-untyped-call]
                text, prop, ismath=False
            )
    return width / 72.0, height / 72.0


#: Where a line may break: any run of white space but the no-break space.
_BREAKS = re.compile(r"[^\S\u00a0]+")


def _as_is(text: str) -> str:
    return text


def wrap_text(
    text: str, width: float, size: float, weight: str = "normal", drawn: Callable[[str], str] = _as_is
) -> list[str]:
    """``text`` broken at spaces into lines each at most ``width`` inches wide, filled greedily.

    Widths are measured, not counted in characters (as textwrap does), because in a proportional font a
    character count cannot promise a fit. A word wider than a line is broken inside; runs of whitespace
    become single spaces, and a no-break space (U+00A0) joins what it stands between, e.g. a count and its word;
    an empty text gives one empty line. Lines are in logical order; each is measured as ``drawn`` makes it
    (right-to-left text: shaped, ``trialwright.analysis.rtl.visual``), so what is drawn fits.
    """

    def wide(line: str) -> float:
        return text_size(drawn(line), size, weight)[0]

    lines: list[str] = []
    line = ""
    for word in _BREAKS.split(text):
        if not word:
            continue
        candidate = f"{line} {word}" if line else word
        if wide(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = word
        while len(line) > 1 and wide(line) > width:
            cut = _longest_fitting_prefix(line, width, wide)
            lines.append(line[:cut])
            line = line[cut:]
    lines.append(line)
    return lines


def _longest_fitting_prefix(word: str, width: float, wide: Callable[[str], float]) -> int:
    """The length of the longest start of ``word`` that fits in ``width`` (at least one character)."""
    low, high = 1, len(word)  # word[:low] is kept even if one glyph is wider than the line
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if wide(word[:middle]) <= width else (low, middle)
    return low


def _as_written(text: str) -> str:
    """``text`` escaped so matplotlib shows it as written: a "$" pair would otherwise start a formula.

    For texts matplotlib makes itself (ticks, legend, axis labels); texts made here pass parse_math=False.
    """
    return text.replace("$", r"\$")


def _plain_log_axis(axis: Axis, lo: float, hi: float, digits: Callable[[str], str] | None = None) -> None:
    """Round numbers (0.5, 1, 2, 5 ...) as ticks on a log axis, instead of powers of ten as formulas; in
    ``digits`` (a language's own digits) when given."""
    axis.set_major_locator(FixedLocator(_log_ticks(lo, hi)))
    axis.set_minor_locator(NullLocator())
    shown = digits or _as_is
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: shown(f"{v:g}")))


class _InDigits(ScalarFormatter):
    """matplotlib's tick numbers (a linear axis) in a language's own digits."""

    def __init__(self, digits: Callable[[str], str]) -> None:
        super().__init__()
        self._digits = digits

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self._digits(super().__call__(x, pos))

    def get_offset(self) -> str:
        return self._digits(super().get_offset())


def _numbers_in(axis: Axis, digits: Callable[[str], str] | None) -> None:
    """A linear axis' tick numbers in ``digits`` when given (otherwise matplotlib's own, as they were)."""
    if digits is not None:
        axis.set_major_formatter(_InDigits(digits))


def _finite(value: float | None) -> float | None:
    """None for a missing value (None or NaN)."""
    if value is None or math.isnan(value):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class GroupSeries:
    """One group's summary at each timepoint: mean with its interval, and the n behind it.

    ``x`` places each timepoint on the axis (e.g. the study day); ``timepoints`` names it. A None (or NaN)
    mean is a point not drawn; a None bound draws the point without its bar.
    """

    label: str
    timepoints: tuple[str, ...]
    x: tuple[float, ...]
    mean: tuple[float | None, ...]
    lower: tuple[float | None, ...]
    upper: tuple[float | None, ...]
    n: tuple[int, ...]

    def __post_init__(self) -> None:
        lengths = {len(v) for v in (self.timepoints, self.x, self.mean, self.lower, self.upper, self.n)}
        if len(lengths) != 1:
            raise ValueError(f"group {self.label!r}: timepoints, x, mean, lower, upper and n must have the same length")
        for tp, m, lo, hi in zip(self.timepoints, self.mean, self.lower, self.upper, strict=True):
            m, lo, hi = _finite(m), _finite(lo), _finite(hi)
            if m is not None and ((lo is not None and lo > m) or (hi is not None and hi < m)):
                raise ValueError(f"group {self.label!r} at {tp!r}: interval {lo} to {hi} does not hold mean {m}")


@dataclass(frozen=True, slots=True)
class ForestRow:
    """One row of a forest plot: an estimate with its interval and the same written out as ``text``.

    ``log_scale`` marks a ratio (drawn on a log axis with no effect at 1). A None estimate is shown as
    "not estimable"; None bounds draw the estimate without its interval.
    """

    label: str
    estimate: float | None
    lower: float | None
    upper: float | None
    text: str
    log_scale: bool = False


_LINE = 1.3  # line pitch as a multiple of the font size
_SIZE = 9.0
_TITLE_SIZE = 11.0


def _title_height(title: str, width: float) -> float:
    """The height in inches the wrapped title takes (0 without a title)."""
    if not title:
        return 0.0
    return len(wrap_text(title, width - 0.4, _TITLE_SIZE, "bold")) * _TITLE_SIZE * _LINE / 72 + 0.1


def _draw_title(fig: Figure, title: str, top: float) -> None:
    """A bold title, wrapped to the figure's width, centred with its top ``top`` inches below the edge."""
    width, height = fig.get_figwidth(), fig.get_figheight()
    for i, line in enumerate(wrap_text(title, width - 0.4, _TITLE_SIZE, "bold") if title else []):
        fig.text(
            width / 2,
            height - top - i * _TITLE_SIZE * _LINE / 72,
            line,
            ha="center",
            va="top",
            fontsize=_TITLE_SIZE,
            fontweight="bold",
            parse_math=False,
            transform=fig.dpi_scale_trans,
        )


def _spacing(xs: Sequence[float]) -> float:
    """The smallest gap between distinct sorted positions (1 when there is only one)."""
    gaps = [b - a for a, b in itertools.pairwise(xs) if b > a]
    return min(gaps) if gaps else 1.0


def _check_series(series: Sequence[GroupSeries], log_scale: bool) -> dict[float, str]:
    """The timepoint name at each x position; ValueError on clashing names or non-positive log values."""
    if not series:
        raise ValueError("values_over_time needs at least one group")
    names: dict[float, str] = {}
    for s in series:
        for tp, x in zip(s.timepoints, s.x, strict=True):
            if names.setdefault(float(x), tp) != tp:
                raise ValueError(f"x={x} is named both {names[float(x)]!r} and {tp!r}")
        if log_scale:
            for tp, *values in zip(s.timepoints, s.mean, s.lower, s.upper, strict=True):
                if any(v is not None and v <= 0 for v in map(_finite, values)):
                    raise ValueError(f"group {s.label!r} at {tp!r}: a log scale needs positive values")
    if not names:
        raise ValueError("values_over_time needs at least one timepoint")
    return names


def values_over_time(
    series: Sequence[GroupSeries],
    *,
    title: str,
    y_label: str,
    log_scale: bool = False,
    digits: Callable[[str], str] | None = None,
) -> Figure:
    """Mean and interval per group at each timepoint, groups side by side, with n per point underneath; the
    numbers (the axis' ticks, the n) in ``digits`` (a language's own digits) when given.

    Under the x axis a small table gives each group's n at each timepoint, its row named in the group's
    colour; the legend above the plot pairs each group with its marker.
    """
    names = _check_series(series, log_scale)
    xs = sorted(names)
    spacing = _spacing(xs)
    # Each group is nudged sideways by a fixed step, the whole spread staying within 30% of the gap.
    step = min(0.08, 0.3 / max(1, len(series) - 1)) * spacing
    size, row = _SIZE, _SIZE * _LINE / 72
    plot_w, plot_h = 5.0, 3.2
    span = xs[-1] - xs[0] + spacing  # the axis runs half a gap beyond the first and last timepoints
    ticks_at = [plot_w * (x - xs[0] + spacing / 2) / span for x in xs]  # inches from the axis' left end

    with house_style():
        # Timepoint names sit level under their ticks unless two neighbours would touch; then all slant.
        tick_labels = [_as_written(" ".join(names[x].split())) for x in xs]
        widths = [text_size(names[x], size)[0] for x in xs]
        crowded = any(
            (w0 + w1) / 2 + 0.08 > b - a
            for (w0, w1), (a, b) in zip(itertools.pairwise(widths), itertools.pairwise(ticks_at), strict=True)
        )
        tick_h = (max(widths) + row) * math.sqrt(0.5) if crowded else row
        row_labels = [wrap_text(s.label, 2.2, size) for s in series]
        left = max(1.0, max(text_size(line, size)[0] for lines in row_labels for line in lines) + 0.3)
        width = left + plot_w + 0.3
        legend_h = math.ceil(len(series) / 3) * max(len(lines) for lines in row_labels) * row * 1.1 + 0.15
        table_top = 0.15 + tick_h + 0.1  # below the tick labels
        bottom = table_top + row * (1 + sum(len(lines) for lines in row_labels)) + 0.15
        top = 0.15
        title_h = _title_height(title, width)
        height = top + title_h + legend_h + plot_h + bottom
        fig = new_figure(width, height)
        _draw_title(fig, title, top)
        ax = fig.add_axes((left / width, bottom / height, plot_w / width, plot_h / height))
        inches = fig.dpi_scale_trans
        table = blended_transform_factory(ax.transData, inches)  # x at the timepoint, y in inches
        y_row = bottom - table_top
        fig.text(left - 0.1, y_row, "n", ha="right", va="top", fontsize=size, fontstyle="italic", transform=inches)
        for i, s in enumerate(series):
            colour, marker = _COLOURS[i % len(_COLOURS)], _MARKERS[i % len(_MARKERS)]
            offset = (i - (len(series) - 1) / 2) * step
            points = [
                (float(x) + offset, m, _finite(lo), _finite(hi))
                for x, m0, lo, hi in zip(s.x, s.mean, s.lower, s.upper, strict=True)
                if (m := _finite(m0)) is not None
            ]
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker=marker,
                color=colour,
                linewidth=1.2,
                markersize=5,
                label=_as_written("\n".join(row_labels[i])),
            )
            bars = [(x, m, lo, hi) for x, m, lo, hi in points if lo is not None and hi is not None]
            if bars:
                ax.errorbar(
                    [b[0] for b in bars],
                    [b[1] for b in bars],
                    yerr=[[b[1] - b[2] for b in bars], [b[3] - b[1] for b in bars]],
                    fmt="none",
                    ecolor=colour,
                    elinewidth=1.0,
                    capsize=3,
                )
            y_row -= row
            fig.text(
                left - 0.1,
                y_row,
                "\n".join(row_labels[i]),
                ha="right",
                va="top",
                fontsize=size,
                color=colour,
                transform=inches,
                parse_math=False,
                linespacing=_LINE,
            )
            for x, count in zip(s.x, s.n, strict=True):
                ax.text(
                    float(x),
                    y_row,
                    (digits or _as_is)(str(count)),
                    ha="center",
                    va="top",
                    fontsize=size,
                    transform=table,
                )
            y_row -= row * (len(row_labels[i]) - 1)
        if crowded:
            ax.set_xticks(xs, labels=tick_labels, rotation=45, ha="right", rotation_mode="anchor")
        else:
            ax.set_xticks(xs, labels=tick_labels)
        ax.set_xlim(xs[0] - 0.5 * spacing, xs[-1] + 0.5 * spacing)
        if log_scale:
            ax.set_yscale("log")
            if not any(_finite(m) is not None for s in series for m in s.mean):
                ax.set_ylim(1.0, 10.0)  # nothing drawn: any positive range will do
            _plain_log_axis(ax.yaxis, *ax.get_ylim(), digits)
        else:
            _numbers_in(ax.yaxis, digits)
        ax.set_ylabel(_as_written(y_label))
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            ncols=min(3, len(series)),
            frameon=False,
            fontsize=size,
            borderaxespad=0.2,
        )
    return fig


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Three to eight round ticks between ``lo`` and ``hi``: 1, 2, 5 per decade, finer for a narrow
    range, whole decades (thinned) for a wide one."""
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)

    def within(steps: Sequence[float]) -> list[float]:
        return [m * 10.0**e for e in decades for m in steps if lo <= m * 10.0**e <= hi]

    ticks: list[float] = []
    for steps in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)):
        ticks = within(steps)
        if 3 <= len(ticks) <= 8:
            return ticks
        if len(ticks) > 8:
            whole = within((1,))
            return whole[:: math.ceil(len(whole) / 6)] if len(whole) > 8 else whole
    return ticks


def forest_plot(
    rows: Sequence[ForestRow],
    *,
    title: str,
    null_value: float = 0.0,
    x_label: str,
    digits: Callable[[str], str] | None = None,
    not_estimable: str | None = None,
) -> Figure:
    """Estimates with intervals, one row each, against a line of no effect; the numbers written on the right.
    The axis' numbers are in ``digits`` (a language's own digits) when given; a row without an estimate says
    ``not_estimable`` (another language's words, upright: the oblique face has no Arabic letters), by default
    "not estimable" in italics.

    All rows must be on one scale. Ratios (``log_scale``) use a log axis with the null at 1 (the default
    ``null_value`` of 0 is read as "no effect", i.e. 1 for a ratio).
    """
    if not rows:
        raise ValueError("forest_plot needs at least one row")
    scales = {row.log_scale for row in rows}
    if len(scales) > 1:
        raise ValueError("forest_plot rows mix log-scale ratios and differences: draw them as separate plots")
    log = scales == {True}
    null = (1.0 if null_value == 0.0 else null_value) if log else null_value
    values = [v for row in rows for v in map(_finite, (row.estimate, row.lower, row.upper)) if v is not None]
    if log and (null <= 0 or any(v <= 0 for v in values)):
        raise ValueError("forest_plot on a log scale needs positive estimates, bounds and null value")

    with house_style():
        size = _SIZE
        line_h = size * _LINE / 72
        labels = [wrap_text(row.label, 2.8, size) for row in rows]
        texts = [wrap_text(row.text, 2.2, size) for row in rows]
        label_w = max(text_size(line, size)[0] for lines in labels for line in lines) + 0.25
        text_w = max(max(text_size(line, size)[0] for lines in texts for line in lines), 0.4) + 0.25
        plot_w = 3.2
        width = 0.15 + label_w + plot_w + text_w + 0.15
        pitches = [max(0.32, max(len(a), len(b)) * line_h + 0.12) for a, b in zip(labels, texts, strict=True)]
        plot_h = sum(pitches) + 0.1
        top, bottom = 0.15, 0.7
        height = top + _title_height(title, width) + plot_h + bottom
        fig = new_figure(width, height)
        _draw_title(fig, title, top)
        ax: Axes = fig.add_axes(((0.15 + label_w) / width, bottom / height, plot_w / width, plot_h / height))
        ax.set_ylim(plot_h, 0.0)  # y in inches from the top of the plot: row i sits at its own pitch

        if values:
            lo, hi = min([*values, null]), max([*values, null])
        else:
            lo, hi = (null / 2, null * 2) if log else (null - 1, null + 1)
        if log:
            pad = (math.log(hi) - math.log(lo)) * 0.08 or 0.5
            lo, hi = lo * math.exp(-pad), hi * math.exp(pad)
            ax.set_xscale("log")
            _plain_log_axis(ax.xaxis, lo, hi, digits)
        else:
            _numbers_in(ax.xaxis, digits)
            pad = (hi - lo) * 0.08 or 0.5
            lo, hi = lo - pad, hi + pad
        ax.set_xlim(lo, hi)
        ax.axvline(null, color="#777777", linestyle="--", linewidth=0.9, zorder=1)

        left_x = blended_transform_factory(fig.dpi_scale_trans, ax.transData)
        right_x = blended_transform_factory(ax.transAxes, ax.transData)
        y = 0.05
        for row, label_lines, text_lines, pitch in zip(rows, labels, texts, pitches, strict=True):
            centre = y + pitch / 2  # label, estimate and text share the row's centre
            ax.text(
                0.15,
                centre,
                "\n".join(label_lines),
                ha="left",
                va="center",
                fontsize=size,
                transform=left_x,
                parse_math=False,
                linespacing=_LINE,
            )
            ax.text(
                1.0 + 0.2 / plot_w,
                centre,
                "\n".join(text_lines),
                ha="left",
                va="center",
                fontsize=size,
                transform=right_x,
                parse_math=False,
                linespacing=_LINE,
            )
            est, low, upp = _finite(row.estimate), _finite(row.lower), _finite(row.upper)
            if est is None:
                ax.text(
                    null,
                    centre,
                    not_estimable or "not estimable",
                    ha="center",
                    va="center",
                    fontsize=size,
                    fontstyle="normal" if not_estimable else "italic",
                    color="#555555",
                    parse_math=False,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
                    zorder=3,
                )
            else:
                if low is not None and upp is not None:
                    ax.hlines(centre, low, upp, color="#222222", linewidth=1.3, zorder=2)
                ax.plot([est], [centre], marker="s", markersize=6, color="#222222", zorder=3)
            y += pitch
        ax.set_yticks([])
        ax.spines[["top", "right", "left"]].set_visible(False)
        ax.set_xlabel(_as_written(x_label))
    return fig
