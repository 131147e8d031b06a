"""The recruitment page's plots as inline SVG: cumulative recruitment against the target, actual versus
predicted with the 80% and 95% bands, and reasons as horizontal bars.

Drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot, no global state), written as SVG with
text kept as text (``svg.fonttype: none``: the browser sets it, Persian included, and the page's search and
screen readers find it), no date in the metadata, and ids salted per plot so that several plots can share a
page. Labels come in translated; dates on the axes honour the viewer's calendar. The plots draw only what
the service returned: arms appear only when the status has them (unblinded readers).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from trialwright.domain.recruitment import Reason, RecruitmentForecast, RecruitmentStatus
from trialwright.web.i18n import N_

__all__ = ["cumulative_svg", "forecast_svg", "reasons_svg"]

Translate = Callable[[str], str]
DateLabel = Callable[[dt.date], str]
#: A count as the page writes it (Persian digits on a Persian page).
Number = Callable[[object], str]

_COLOURS = {"screened": "#8a96a3", "eligible": "#5b8fc7", "consented": "#c98a1b", "randomized": "#1e6b34"}
_ARM_COLOURS = ("#7b3294", "#a6611a", "#d01c8b", "#008080", "#4d4d4d")
_SERIES = {
    "screened": N_("Screened"),
    "eligible": N_("Eligible"),
    "consented": N_("Consented"),
    "randomized": N_("Randomized"),
}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _svg(fig: Any, name: str, label: str) -> str:
    import matplotlib

    buffer = io.StringIO()
    salt = f"trialwright-{name}"
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}), warnings.catch_warnings():
        # Persian glyphs are not in matplotlib's font; the browser draws the text, so only the layout estimate
        # is affected.
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    escaped = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return re.sub(
        r'<svg([^>]*?) width="[^"]+" height="[^"]+"',
        # laid out left to right as matplotlib placed it: on a right-to-left page a label would otherwise run from
        # its anchor leftwards, over its legend's line or into the axes (its own words keep their direction)
        rf'<svg\1 width="100%" direction="ltr" role="img" aria-label="{escaped}" data-plot="{name}"',
        text,
        count=1,
    )


def _count_axis(ax: Any, number: Number) -> None:
    """The counts on the y axis in the page's digits."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: number(f"{y:g}")))


def _legend(fig: Any, ax: Any) -> None:
    """The legend below the axes, outside them, so that it never lies over a line (a Persian label's width is only
    estimated: matplotlib's font has no Persian glyphs, so a legend beside the axes could reach into them)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=min(4, max(len(labels), 1)),
               frameon=False)  # fmt: skip


def _date_axis(ax: Any, date_label: DateLabel) -> None:
    from matplotlib import dates as mdates
    from matplotlib.ticker import FuncFormatter

    def label(x: float, _pos: int) -> str:
        return date_label(mdates.num2date(x).date())  # type: ignore[no-untyped-call]

    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=6))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(True, color="#e3e7ec", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _vline(ax: Any, day: dt.date, label: str, colour: str = "#4a5360") -> None:
    ax.axvline(day, color=colour, linestyle=":", linewidth=1.2, label=label)


def cumulative_svg(
    status: RecruitmentStatus, _: Translate, date_label: DateLabel, arm_name: Translate = str, number: Number = str
) -> str:
    """Cumulative screened, eligible, consented and randomized over time, the target and the planned end;
    randomized per arm only when the status carries arms (each by ``arm_name``: its name in the reader's
    language, from its code)."""
    fig = _figure(9.0, 4.2)
    ax = fig.add_subplot()
    days = [p.on for p in status.series]
    for key, label in _SERIES.items():
        ax.step(days, [getattr(p, key) for p in status.series], where="post", color=_COLOURS[key],
                linewidth=2.2 if key == "randomized" else 1.5, label=_(label))  # fmt: skip
    for i, arm in enumerate(status.arms or ()):
        ax.step(days, arm.series, where="post", linestyle="--", linewidth=1.2,
                color=_ARM_COLOURS[i % len(_ARM_COLOURS)], label=arm_name(arm.code))  # fmt: skip
    ax.axhline(status.target, color="#a4161a", linestyle="--", linewidth=1.2, label=_(N_("Target")))
    _vline(ax, status.planned_end, _(N_("Planned end of recruitment")))
    ax.set_ylabel(_(N_("Patients (cumulative)")))
    ax.set_ylim(bottom=0)
    _date_axis(ax, date_label)
    _count_axis(ax, number)
    _legend(fig, ax)
    return _svg(fig, "cumulative", _(N_("Cumulative recruitment against the target")))


def forecast_svg(forecast: RecruitmentForecast, _: Translate, date_label: DateLabel, number: Number = str) -> str:
    """Randomized so far (steps), the predicted mean with its 80% and 95% bands, the target, the predicted
    date with its intervals, the planned end, the what-if end date and new sites' openings."""
    fig = _figure(9.0, 4.2)
    ax = fig.add_subplot()
    if forecast.actual:
        first = forecast.actual[0][0] - dt.timedelta(days=1)
        days = [first, *(d for d, _n in forecast.actual), forecast.as_of]
        counts = [0, *(n for _d, n in forecast.actual), forecast.randomized]
        ax.step(days, counts, where="post", color=_COLOURS["randomized"], linewidth=2.2, label=_(N_("Randomized")))
    if forecast.predicted:
        days = [p.on for p in forecast.predicted]
        ax.fill_between(days, [p.lo95 for p in forecast.predicted], [p.hi95 for p in forecast.predicted],
                        color="#0b5cad", alpha=0.12, linewidth=0, label=_(N_("95% band")))  # fmt: skip
        ax.fill_between(days, [p.lo80 for p in forecast.predicted], [p.hi80 for p in forecast.predicted],
                        color="#0b5cad", alpha=0.22, linewidth=0, label=_(N_("80% band")))  # fmt: skip
        ax.plot(days, [p.mean for p in forecast.predicted], color="#0b5cad", linewidth=1.5, label=_(N_("Predicted")))
    ax.axhline(forecast.target, color="#a4161a", linestyle="--", linewidth=1.2, label=_(N_("Target")))
    if forecast.median_date is not None:
        i80, i95 = forecast.interval(0.8), forecast.interval(0.95)
        for iv, width in ((i95, 1.2), (i80, 3.5)):
            if iv is not None and iv.lower is not None and iv.upper is not None:
                ax.plot([iv.lower, iv.upper], [forecast.target] * 2, color="#0b5cad", linewidth=width)
        ax.plot([forecast.median_date], [forecast.target], marker="o", color="#0b5cad",
                label=_(N_("Predicted date the target is reached")))  # fmt: skip
    _vline(ax, forecast.planned_end, _(N_("Planned end of recruitment")))
    if forecast.end_date is not None:
        _vline(ax, forecast.end_date, _(N_("Later end date")), "#c98a1b")
    for site in forecast.new_sites:
        _vline(ax, site.opens_on, _(N_("New site opens")), "#1e6b34")
    ax.set_ylabel(_(N_("Randomized (cumulative)")))
    ax.set_ylim(0, max(forecast.target * 1.3, forecast.randomized * 1.05))
    _date_axis(ax, date_label)
    _count_axis(ax, number)
    _legend(fig, ax)
    return _svg(fig, "forecast", _(N_("Randomized so far and predicted")))


def reasons_svg(reasons: Sequence[Reason], labels: Sequence[str], name: str, title: str, number: Number = str) -> str:
    """Reasons as horizontal bars, the most frequent on top; ``labels`` are the reasons as shown, each count
    written by ``number`` (the page's digits)."""
    fig = _figure(7.0, 0.5 + 0.28 * max(len(reasons), 1))
    ax = fig.add_subplot()
    positions = list(range(len(reasons)))[::-1]
    ax.barh(positions, [r.count for r in reasons], height=0.6, color="#5b8fc7")
    ax.set_yticks(positions, list(labels), fontsize=8)
    for y, r in zip(positions, reasons, strict=True):
        ax.text(r.count, y, f" {number(r.count)}", va="center", fontsize=8)
    ax.xaxis.set_visible(False)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return _svg(fig, name, title)
