"""The trial's figures: values over time per group, and forest plots.

Each test draws from a small table of numbers and checks what a reader of the figure relies on: every
label, group and number is there as SVG text, missing values are left out rather than failing, the
scale is the one asked for, nothing is cut off at the page edge, and the same numbers give the same bytes.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from trialwright.analysis.figures import (
    ForestRow,
    GroupSeries,
    forest_plot,
    text_size,
    to_png,
    to_svg,
    values_over_time,
    wrap_text,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEPOINTS = ("Baseline", "Day 1", "Day 3", "Day 7")
DAYS = (0.0, 1.0, 3.0, 7.0)


def exosomes() -> GroupSeries:
    return GroupSeries(
        label="Exosomes",
        timepoints=TIMEPOINTS,
        x=DAYS,
        mean=(6.0, 5.1, None, 3.2),
        lower=(5.0, 4.0, None, 2.1),
        upper=(7.0, 6.2, None, 4.3),
        n=(15, 14, 0, 13),
    )


def placebo() -> GroupSeries:
    return GroupSeries(
        label="Placebo",
        timepoints=TIMEPOINTS,
        x=DAYS,
        mean=(6.2, 5.9, 5.0, 4.4),
        lower=(5.1, None, 3.9, 3.3),
        upper=(7.3, None, 6.1, 5.5),
        n=(15, 15, 12, 11),
    )


def differences() -> list[ForestRow]:
    return [
        ForestRow("PRIEST score, day 7", -1.2, -3.4, 1.0, "−1.2 (−3.4 to 1.0)"),
        ForestRow("Brixia score, day 3", 0.5, -0.7, 1.7, "0.5 (−0.7 to 1.7)"),
        ForestRow("P/F ratio, day 7", None, None, None, "too few events"),
    ]


def ratios() -> list[ForestRow]:
    return [
        ForestRow("IL-6, day 7", 0.8, 0.5, 1.3, "0.80 (0.50 to 1.30)", log_scale=True),
        ForestRow("CRP, day 7", 1.1, 0.9, 1.4, "1.10 (0.90 to 1.40)", log_scale=True),
    ]


def xs(line: Line2D) -> list[float]:
    return [float(v) for v in np.asarray(line.get_xdata(), dtype=float)]


def ys(line: Line2D) -> list[float]:
    return [float(v) for v in np.asarray(line.get_ydata(), dtype=float)]


def segments(ax: Axes) -> list[tuple[float, float]]:
    """The (start, end) x of every horizontal interval line drawn with hlines."""
    return sorted(
        (float(s[0, 0]), float(s[1, 0]))
        for c in ax.collections
        if isinstance(c, LineCollection)
        for s in c.get_segments()
    )


def svg_texts(svg: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<text\b[^>]*>(.*?)</text>", svg, flags=re.DOTALL)]


def joined(svg: str) -> str:
    return " ".join(" ".join(svg_texts(svg)).split())


def assert_nothing_cut_off(fig: Figure) -> None:
    """Every artist, text included, lies within the page."""
    drawn = fig.get_tightbbox()  # in inches
    assert drawn is not None
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01
    assert drawn.x1 <= fig.get_figwidth() + 0.01 and drawn.y1 <= fig.get_figheight() + 0.01


# --- Values over time ---------------------------------------------------------------------------------


def test_values_over_time_shows_title_axis_groups_timepoints_and_n() -> None:
    svg = to_svg(values_over_time([exosomes(), placebo()], title="PRIEST score", y_label="Score (points)"))
    texts, text = svg_texts(svg), joined(svg)
    for expected in ("PRIEST score", "Score (points)", "Exosomes", "Placebo", *TIMEPOINTS):
        assert expected in text
    # n at each timepoint, per group: the table under the axis holds every count.
    counts = [t for t in texts if t.isdigit()]
    for n in (*exosomes().n, *placebo().n):
        assert str(n) in counts


def test_missing_points_are_left_out_and_missing_bounds_draw_no_bar() -> None:
    fig = values_over_time([exosomes(), placebo()], title="", y_label="Score")
    ax = fig.axes[0]
    lines = {str(line.get_label()): line for line in ax.get_lines()}
    assert len(xs(lines["Exosomes"])) == 3  # day 3 has no mean
    assert ys(lines["Exosomes"]) == [6.0, 5.1, 3.2]
    assert len(xs(lines["Placebo"])) == 4
    caps = [line for line in ax.get_lines() if str(line.get_label()).startswith("_") and line.get_marker() == "_"]
    # Exosomes: 3 bars; Placebo: day 1 has no interval, 3 bars; each bar has a cap at both ends.
    assert sum(len(xs(c)) for c in caps) == 2 * (3 + 3)
    assert_nothing_cut_off(fig)


def test_nan_counts_as_missing() -> None:
    series = GroupSeries(
        "Exosomes", ("Baseline", "Day 7"), (0.0, 7.0), (math.nan, 2.0), (None, 1.0), (None, 3.0), (0, 9)
    )
    fig = values_over_time([series], title="t", y_label="y")
    assert ys(fig.axes[0].get_lines()[0]) == [2.0]


def test_a_group_with_no_values_still_draws() -> None:
    empty = GroupSeries("Not yet unblinded", TIMEPOINTS, DAYS, (None,) * 4, (None,) * 4, (None,) * 4, (0,) * 4)
    assert "Not yet unblinded" in joined(to_svg(values_over_time([empty, placebo()], title="t", y_label="y")))
    assert "Not yet unblinded" in joined(to_svg(values_over_time([empty], title="t", y_label="y", log_scale=True)))


def test_groups_are_nudged_apart_within_the_gap_between_timepoints() -> None:
    fig = values_over_time([exosomes(), placebo()], title="", y_label="Score")
    lines = {str(line.get_label()): line for line in fig.axes[0].get_lines()}
    a, b = xs(lines["Exosomes"])[0], xs(lines["Placebo"])[0]
    assert a < 0.0 < b  # centred on the timepoint
    assert 0 < b - a <= 0.3  # the closest timepoints are 1 day apart
    assert [label.get_text() for label in fig.axes[0].get_xticklabels()] == list(TIMEPOINTS)


def test_close_timepoints_slant_their_names_and_stay_on_the_page() -> None:
    names = ("Baseline", "Day 1", "Day 3", "Day 7", "Day 14", "Day 28 (end of follow-up)")
    days = (0.0, 1.0, 3.0, 7.0, 14.0, 28.0)
    series = GroupSeries("Exosomes", names, days, (1.0,) * 6, (0.5,) * 6, (1.5,) * 6, (10,) * 6)
    fig = values_over_time([series], title="Long follow-up", y_label="Score")
    assert {label.get_rotation() for label in fig.axes[0].get_xticklabels()} == {45.0}
    assert_nothing_cut_off(fig)
    level = values_over_time([exosomes()], title="", y_label="Score")
    assert {label.get_rotation() for label in level.axes[0].get_xticklabels()} == {0.0}


def test_dollar_signs_are_shown_as_written_not_as_formulas() -> None:
    series = GroupSeries("Dose $5 & $10", ("Day $1$", "Day 2"), (1.0, 2.0), (1.0, 2.0), (0.5, 1.0), (1.5, 3.0), (4, 4))
    text = joined(to_svg(values_over_time([series], title="Cost $x$", y_label="IL-6 $y$")))
    for expected in ("Dose $5 & $10", "Day $1$", "Cost $x$", "IL-6 $y$"):
        assert expected in text
    forest = forest_plot([ForestRow("Saving $1 to $2", 1.0, 0.0, 2.0, "$1 (0 to 2)")], title="", x_label="$ saved $")
    assert {"Saving $1 to $2", "$1 (0 to 2)", "$ saved $"} <= set(svg_texts(to_svg(forest)))


def test_log_scale_is_used_when_asked_and_needs_positive_values() -> None:
    fig = values_over_time([exosomes(), placebo()], title="IL-6", y_label="pg/mL", log_scale=True)
    assert fig.axes[0].get_yscale() == "log"
    # Round numbers as tick labels, not powers of ten written as formulas.
    assert {"2", "5"} <= set(svg_texts(to_svg(fig)))
    negative = GroupSeries("Exosomes", ("Day 7",), (7.0,), (-1.0,), (-2.0,), (0.5,), (3,))
    with pytest.raises(ValueError, match="log scale needs positive values"):
        values_over_time([negative], title="", y_label="", log_scale=True)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GroupSeries("A", ("Day 1",), (1.0, 2.0), (1.0,), (0.0,), (2.0,), (3,)), "same length"),
        (lambda: GroupSeries("A", ("Day 1",), (1.0,), (1.0,), (1.5,), (2.0,), (3,)), "does not hold mean"),
    ],
)
def test_inconsistent_series_are_refused(make: Callable[[], GroupSeries], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_a_timepoint_with_two_names_or_no_groups_is_refused() -> None:
    clash = GroupSeries("B", ("Week 1",), (7.0,), (1.0,), (0.5,), (1.5,), (3,))
    with pytest.raises(ValueError, match="named both 'Day 7' and 'Week 1'"):
        values_over_time([exosomes(), clash], title="", y_label="")
    with pytest.raises(ValueError, match="at least one group"):
        values_over_time([], title="", y_label="")


# --- Forest plots -----------------------------------------------------------------------------------


def test_forest_plot_shows_labels_texts_and_not_estimable() -> None:
    text = joined(to_svg(forest_plot(differences(), title="Primary outcomes", x_label="Difference in means")))
    for expected in (
        "Primary outcomes",
        "Difference in means",
        "PRIEST score, day 7",
        "−1.2 (−3.4 to 1.0)",
        "Brixia score, day 3",
        "0.5 (−0.7 to 1.7)",
        "P/F ratio, day 7",
        "not estimable",
        "too few events",
    ):
        assert expected in text


def test_forest_plot_draws_each_estimate_and_interval_and_the_null() -> None:
    fig = forest_plot(differences(), title="", x_label="Difference", null_value=0.0)
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    markers = [line for line in ax.get_lines() if line.get_marker() == "s"]
    assert sorted(xs(m)[0] for m in markers) == [-1.2, 0.5]  # the None row draws no point
    null = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [xs(line) for line in null] == [[0.0, 0.0]]
    assert segments(ax) == [(-3.4, 1.0), (-0.7, 1.7)]
    lo, hi = ax.get_xlim()
    assert lo < -3.4 and hi > 1.7
    assert_nothing_cut_off(fig)


def test_labels_and_texts_sit_beside_the_plot_not_on_it() -> None:
    rows = [
        *differences(),
        ForestRow("A rather long outcome name that has to wrap onto a second line", 1.0, 0.0, 2.0, "x"),
    ]
    fig = forest_plot(rows, title="", x_label="Difference")
    ax = fig.axes[0]
    plot = ax.get_window_extent()
    for t in ax.texts:
        extent = t.get_window_extent()
        if t.get_text() in {r.label for r in rows} or ("\n" in t.get_text() and "outcome" in t.get_text()):
            assert extent.x1 < plot.x0
        elif t.get_text() in {r.text for r in rows}:
            assert extent.x0 > plot.x1
    assert_nothing_cut_off(fig)


def test_ratios_use_a_log_axis_with_the_null_at_one() -> None:
    fig = forest_plot(ratios(), title="Ratios", x_label="Ratio of geometric means")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    null = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [xs(line) for line in null] == [[1.0, 1.0]]
    assert {float(t) for t in ax.get_xticks()} >= {1.0}
    assert "IL-6, day 7" in joined(to_svg(fig))


def test_mixed_scales_are_refused() -> None:
    with pytest.raises(ValueError, match="mix log-scale ratios and differences"):
        forest_plot([*differences(), *ratios()], title="", x_label="")


def test_ratios_must_be_positive_and_rows_given() -> None:
    with pytest.raises(ValueError, match="positive"):
        forest_plot([ForestRow("x", 0.0, -1.0, 1.0, "", log_scale=True)], title="", x_label="")
    with pytest.raises(ValueError, match="at least one row"):
        forest_plot([], title="", x_label="")


def test_an_estimate_without_bounds_and_an_all_missing_plot_draw() -> None:
    fig = forest_plot([ForestRow("Point only", 2.0, None, None, "2.0")], title="", x_label="d")
    assert segments(fig.axes[0]) == []
    missing = forest_plot([ForestRow("Nothing", None, None, None, "")], title="", x_label="d")
    assert "not estimable" in joined(to_svg(missing))


# --- Same numbers, same bytes -----------------------------------------------------------------------


def test_same_numbers_give_identical_svg_and_png() -> None:
    def both() -> tuple[str, str, bytes]:
        over_time = values_over_time([exosomes(), placebo()], title="PRIEST", y_label="Score")
        forest = forest_plot(differences(), title="Outcomes", x_label="Difference")
        return to_svg(over_time), to_svg(forest), to_png(forest, dpi=72)

    first, second = both(), both()
    assert first == second
    assert "<dc:date>" not in first[0] and "<dc:date>" not in first[1]
    assert first[2].startswith(PNG_SIGNATURE)


def test_figures_drawn_in_threads_match_those_drawn_alone() -> None:
    def draw(_: int) -> str:
        return to_svg(values_over_time([exosomes(), placebo()], title="PRIEST", y_label="Score"))

    expected = draw(0)
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(svg == expected for svg in pool.map(draw, range(8)))


# --- Text measurement -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzWM0123456789()=%", min_size=1, max_size=14), max_size=30),
    st.floats(0.8, 4.0),
)
def test_wrapped_lines_fit_and_keep_every_character(words: list[str], width: float) -> None:
    text = " ".join(words)
    lines = wrap_text(text, width, 9.0)
    assert all(text_size(line, 9.0)[0] <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    if all(text_size(word, 9.0)[0] <= width for word in words):
        assert " ".join(lines) == text  # breaks only between words unless a word is wider than the line
