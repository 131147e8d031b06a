"""The CONSORT flow diagram (CONSORT 2010 with the pilot and feasibility extension, Eldridge et al. 2016).

Each test states a flow as counts and what the diagram must show: every count and label as searchable
SVG text, every participant accounted for (validate names the rule a flow breaks), text inside its box,
boxes apart from each other, and the same counts giving the same bytes.
"""

from __future__ import annotations

import html
import json
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from trialwright.analysis.consort import ArmFlow, ConsortFlow, Reason, draw, to_png, to_svg

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def exosome_pilot() -> ConsortFlow:
    """A two-arm pilot: 40 assessed, 10 excluded, 30 randomized 15:15."""
    return ConsortFlow(
        assessed=40,
        excluded=(
            Reason("Not meeting inclusion criteria", 6),
            Reason("Declined to participate", 3),
            Reason("Other reasons", 1),
        ),
        randomized=30,
        arms=(
            ArmFlow(
                label="Exosomes",
                allocated=15,
                received=14,
                not_received=(Reason("Withdrew consent before infusion", 1),),
                lost=(Reason("Transferred to another hospital", 1),),
                discontinued=(Reason("Infusion-related reaction", 1),),
                analysed=14,
                excluded_from_analysis=(Reason("No day 7 sample", 1),),
            ),
            ArmFlow(
                label="Placebo",
                allocated=15,
                received=15,
                not_received=(),
                lost=(),
                discontinued=(Reason("Physician decision", 2),),
                analysed=15,
                excluded_from_analysis=(),
            ),
        ),
        analysis_set="Intention to treat",
        pilot=(("Consent rate", "75% (30/40)"), ("Retention at day 7", "97% (29/30)")),
        title="Exosome pilot",
    )


def arm(label: str, allocated: int) -> ArmFlow:
    """An arm where everyone received the intervention and was analysed."""
    return ArmFlow(label, allocated, allocated, (), (), (), allocated, ())


def flow_with_arms(labels: list[str]) -> ConsortFlow:
    return ConsortFlow(
        assessed=12 * len(labels) + 5,
        excluded=(Reason("Not meeting inclusion criteria", 5),),
        randomized=12 * len(labels),
        arms=tuple(arm(label, 12) for label in labels),
        analysis_set="Intention to treat",
    )


def svg_texts(svg: str) -> list[str]:
    """The text of every <text> element, unescaped (svg.fonttype "none" keeps text as text)."""
    return [html.unescape(t) for t in re.findall(r"<text\b[^>]*>(.*?)</text>", svg, flags=re.DOTALL)]


def joined(svg: str) -> str:
    """All SVG text as one string with single spaces, so a wrapped entry reads as it was written."""
    return " ".join(" ".join(svg_texts(svg)).split())


def assert_text_inside_boxes_and_boxes_apart(fig: Figure) -> None:
    """Every text line lies inside the box named by its gid prefix, and no two boxes overlap."""
    boxes = {p.get_gid(): p.get_window_extent() for p in fig.artists if isinstance(p, FancyBboxPatch)}
    texts = [t for t in fig.texts if isinstance(t, Text) and "/" in (t.get_gid() or "")]
    assert boxes and texts
    for t in texts:
        box_gid = str(t.get_gid()).split("/")[0]
        if box_gid in {"consort-title", "consort-caption"}:
            continue
        inner, outer = t.get_window_extent(), boxes[box_gid]
        assert outer.x0 - 0.5 <= inner.x0 and inner.x1 <= outer.x1 + 0.5, f"{t.get_text()!r} overflows {box_gid}"
        assert outer.y0 - 0.5 <= inner.y0 and inner.y1 <= outer.y1 + 0.5, f"{t.get_text()!r} overflows {box_gid}"
    page = Bbox.from_bounds(0, 0, fig.bbox.width, fig.bbox.height)
    named = sorted(boxes.items())
    for i, (gid_a, a) in enumerate(named):
        assert page.x0 <= a.x0 and a.x1 <= page.x1 and page.y0 <= a.y0 and a.y1 <= page.y1, f"{gid_a} off the page"
        for gid_b, b in named[i + 1 :]:
            overlap = min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5
            assert not overlap, f"{gid_a} overlaps {gid_b}"
    for t in fig.texts:  # titles and captions too stay on the page
        e = t.get_window_extent()
        assert page.x0 - 0.5 <= e.x0 and e.x1 <= page.x1 + 0.5, f"{t.get_text()!r} leaves the page"


# --- What the diagram shows -------------------------------------------------------------------------


def test_svg_shows_every_count_and_label_as_text() -> None:
    text = joined(to_svg(exosome_pilot()))
    expected = [
        "Exosome pilot",
        "Enrollment",
        "Allocation",
        "Follow-Up",
        "Analysis",
        "Assessed for eligibility (n=40)",
        "Excluded (n=10)",
        "Not meeting inclusion criteria (n=6)",
        "Declined to participate (n=3)",
        "Other reasons (n=1)",
        "Randomized (n=30)",
        "Allocated to Exosomes (n=15)",
        "Received allocated intervention (n=14)",
        "Did not receive allocated intervention (n=1)",
        "Withdrew consent before infusion (n=1)",
        "Lost to follow-up (n=1)",
        "Transferred to another hospital (n=1)",
        "Discontinued intervention (n=1)",
        "Infusion-related reaction (n=1)",
        "Analysed (n=14)",
        "Excluded from analysis (n=1)",
        "No day 7 sample (n=1)",
        "Allocated to Placebo (n=15)",
        "Received allocated intervention (n=15)",
        "Did not receive allocated intervention (n=0)",
        "Lost to follow-up (n=0)",
        "Discontinued intervention (n=2)",
        "Physician decision (n=2)",
        "Analysed (n=15)",
        "Excluded from analysis (n=0)",
        "Analysis set: Intention to treat",
        "Pilot trial progression",
        "Consent rate: 75% (30/40)",
        "Retention at day 7: 97% (29/30)",
    ]
    missing = [e for e in expected if e not in text]
    assert not missing


def test_short_entries_are_single_text_elements() -> None:
    texts = svg_texts(to_svg(exosome_pilot()))
    for entry in ("Assessed for eligibility (n=40)", "Randomized (n=30)", "Analysed (n=14)", "Excluded (n=10)"):
        assert entry in texts


def test_text_stays_in_its_box_and_boxes_do_not_overlap() -> None:
    assert_text_inside_boxes_and_boxes_apart(draw(exosome_pilot()))


@pytest.mark.parametrize("labels", [["All participants"], ["Group A", "Group B"], ["A", "B", "C"], list("ABCD")])
def test_one_to_four_arms_draw_side_by_side(labels: list[str]) -> None:
    flow = flow_with_arms(labels)
    fig = draw(flow)
    texts = svg_texts(to_svg(flow))
    assert [t for t in texts if t.startswith("Allocated to")] == [f"Allocated to {label} (n=12)" for label in labels]
    assert_text_inside_boxes_and_boxes_apart(fig)
    allocation = sorted(
        (p.get_window_extent().x0, p.get_gid())
        for p in fig.artists
        if re.fullmatch(r"consort-arm\d-allocation", p.get_gid() or "")
    )
    assert [gid for _, gid in allocation] == [f"consort-arm{i}-allocation" for i in range(1, len(labels) + 1)]


def test_long_labels_wrap_inside_their_boxes() -> None:
    long = "Withdrew consent after randomization because the family preferred transfer to a private hospital"
    flow = exosome_pilot()
    first = replace(
        flow.arms[0],
        label="Mesenchymal stem cell-derived exosomes by inhalation plus standard care",
        not_received=(Reason(long, 1),),
    )
    flow = replace(flow, arms=(first, flow.arms[1]), excluded=(Reason(long + " " + long, 10),))
    assert_text_inside_boxes_and_boxes_apart(draw(flow))
    assert f"{long} (n=1)" in joined(to_svg(flow))


def test_characters_that_matplotlib_could_read_as_maths_are_shown_as_written() -> None:
    flow = flow_with_arms(["Dose $5 & <10 mg>", "Control_1"])
    text = joined(to_svg(flow))
    assert "Allocated to Dose $5 & <10 mg> (n=12)" in text
    assert "Allocated to Control_1 (n=12)" in text


def test_pilot_box_only_when_pilot_lines_are_given() -> None:
    assert "Pilot trial progression" not in joined(to_svg(flow_with_arms(["A", "B"])))


# --- The same counts give the same bytes ------------------------------------------------------------


def test_same_flow_gives_identical_svg_without_a_date() -> None:
    first, second = to_svg(exosome_pilot()), to_svg(exosome_pilot())
    assert first == second
    assert "<dc:date>" not in first
    assert "<text" in first  # text kept as text, not turned into glyph paths


def test_drawing_from_several_threads_gives_the_same_svg() -> None:
    expected = to_svg(exosome_pilot())
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: to_svg(exosome_pilot()), range(8)))
    assert all(r == expected for r in results)


def test_png_has_the_signature_and_the_page_size_at_the_requested_dpi() -> None:
    flow = exosome_pilot()
    fig = draw(flow)
    png = to_png(flow)
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (round(fig.get_figwidth() * 150), round(fig.get_figheight() * 150))
    assert 800 <= width <= 1600 and 800 <= height <= 2400
    assert png == to_png(flow)
    bigger = to_png(flow, dpi=300)
    assert struct.unpack(">II", bigger[16:24]) == (round(fig.get_figwidth() * 300), round(fig.get_figheight() * 300))


# --- Every participant is accounted for -------------------------------------------------------------


def broken(**changes: object) -> ConsortFlow:
    """The exosome pilot with the first arm's fields changed."""
    flow = exosome_pilot()
    return replace(flow, arms=(replace(flow.arms[0], **changes), flow.arms[1]))  # type: ignore[arg-type]


def test_a_consistent_flow_validates() -> None:
    exosome_pilot().validate()


@pytest.mark.parametrize(
    ("flow", "rule"),
    [
        (
            replace(exosome_pilot(), excluded=(Reason("Declined to participate", 9),)),
            "excluded must equal assessed - randomized",
        ),
        (replace(exosome_pilot(), assessed=20), "randomized must not exceed assessed"),
        (replace(exosome_pilot(), randomized=31, assessed=41), "allocated across arms must equal randomized"),
        (broken(received=13), r"arm 'Exosomes': received \+ did not receive must equal allocated \(13 \+ 1 != 15\)"),
        (broken(analysed=16, excluded_from_analysis=()), "arm 'Exosomes': analysed must not exceed allocated"),
        (broken(analysed=13), r"arm 'Exosomes': analysed \+ excluded from analysis must equal allocated"),
        (broken(lost=(Reason("Moved away", 16),)), "arm 'Exosomes': lost to follow-up must not exceed allocated"),
        (broken(discontinued=(Reason("Adverse event", 16),)), "discontinued intervention must not exceed allocated"),
        (
            broken(lost=(Reason("Moved away", -1),)),
            r"counts must not be negative \(lost to follow-up: Moved away is -1\)",
        ),
        (replace(exosome_pilot(), assessed=-1), "counts must not be negative"),
        (broken(label="Placebo"), "arm labels must be unique"),
        (broken(label=" "), "every arm needs a label"),
        (broken(lost=(Reason("", 1),)), "every reason needs a label"),
        (replace(exosome_pilot(), arms=(), randomized=0, excluded=(Reason("Other", 40),)), "1 to 4 arms, not 0"),
        (replace(flow_with_arms(list("ABCDE"))), "1 to 4 arms, not 5"),
    ],
)
def test_validate_names_the_rule_a_flow_breaks(flow: ConsortFlow, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        flow.validate()
    with pytest.raises(ValueError, match=rule):
        draw(flow)


def test_those_who_never_received_may_also_be_counted_as_discontinued() -> None:
    # Stopped before a first dose was recorded: counted under "did not receive" and "discontinued".
    broken(received=13, not_received=(Reason("Withdrew", 2),), discontinued=(Reason("Withdrew", 15),)).validate()


def test_validate_names_every_broken_rule_at_once() -> None:
    flow = replace(broken(received=13, analysed=16, excluded_from_analysis=()), assessed=39)
    with pytest.raises(ValueError) as caught:
        flow.validate()
    message = str(caught.value)
    assert "excluded must equal assessed - randomized" in message
    assert "received + did not receive must equal allocated" in message
    assert "analysed must not exceed allocated" in message


# --- Summary and dict -----------------------------------------------------------------------------


def test_summary_reads_the_flow_in_order() -> None:
    flow = ConsortFlow(
        assessed=10,
        excluded=(Reason("Declined", 2),),
        randomized=8,
        arms=(
            ArmFlow("All participants", 8, 7, (Reason("Died before infusion", 1),), (), (), 7, (Reason("Died", 1),)),
        ),
        analysis_set="Intention to treat",
        pilot=(("Consent rate", "80% (8/10)"),),
    )
    assert flow.summary() == "\n".join(
        [
            "Assessed for eligibility (n=10)",
            "  Excluded (n=2)",
            "    Declined (n=2)",
            "Randomized (n=8)",
            "  Allocated to All participants (n=8)",
            "    Received allocated intervention (n=7)",
            "    Did not receive allocated intervention (n=1)",
            "      Died before infusion (n=1)",
            "    Lost to follow-up (n=0)",
            "    Discontinued intervention (n=0)",
            "    Analysed (n=7)",
            "      Excluded from analysis (n=1)",
            "        Died (n=1)",
            "Analysis set: Intention to treat",
            "Pilot trial progression",
            "  Consent rate: 80% (8/10)",
        ]
    )


def test_as_dict_is_json_ready_and_holds_every_count() -> None:
    data = json.loads(json.dumps(exosome_pilot().as_dict()))
    assert data["assessed"] == 40 and data["randomized"] == 30
    assert data["excluded"][0] == {"label": "Not meeting inclusion criteria", "count": 6}
    assert [a["label"] for a in data["arms"]] == ["Exosomes", "Placebo"]
    assert data["arms"][0]["not_received"] == [{"label": "Withdrew consent before infusion", "count": 1}]
    assert data["arms"][1]["discontinued"] == [{"label": "Physician decision", "count": 2}]
    assert data["pilot"][0] == {"label": "Consent rate", "value": "75% (30/40)"}
    assert data["analysis_set"] == "Intention to treat"


# --- Any consistent flow draws ----------------------------------------------------------------------

WORD = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$&<%-/'", min_size=1, max_size=12
)
LABEL = st.lists(WORD, min_size=1, max_size=9).map(" ".join)


@st.composite
def reasons(draw: st.DrawFn, budget: int) -> tuple[Reason, ...]:
    """Up to three reasons whose counts add up to at most ``budget``."""
    out = []
    for _ in range(draw(st.integers(0, 3))):
        count = draw(st.integers(0, budget))
        budget -= count
        out.append(Reason(draw(LABEL), count))
    return tuple(out)


@st.composite
def arms(draw: st.DrawFn, label: str) -> ArmFlow:
    received = draw(st.integers(0, 200))
    not_received = draw(reasons(50))
    allocated = received + sum(r.count for r in not_received)
    excluded = draw(reasons(allocated))
    return ArmFlow(
        label=label,
        allocated=allocated,
        received=received,
        not_received=not_received,
        lost=draw(reasons(allocated)),
        discontinued=draw(reasons(allocated)),
        analysed=allocated - sum(r.count for r in excluded),
        excluded_from_analysis=excluded,
    )


@st.composite
def flows(draw: st.DrawFn) -> ConsortFlow:
    labels = draw(st.lists(LABEL, min_size=1, max_size=4, unique_by=lambda s: s))
    arm_flows = tuple(draw(arms(label)) for label in labels)
    randomized = sum(a.allocated for a in arm_flows)
    excluded = draw(reasons(500))
    pilot = draw(st.lists(st.tuples(LABEL, LABEL), max_size=3))
    return ConsortFlow(
        assessed=randomized + sum(r.count for r in excluded),
        excluded=excluded,
        randomized=randomized,
        arms=arm_flows,
        analysis_set=draw(LABEL),
        pilot=tuple(pilot),
        title=draw(st.one_of(st.just(""), LABEL)),
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows())
def test_any_consistent_flow_draws_with_all_its_counts_inside_the_boxes(flow: ConsortFlow) -> None:
    flow.validate()
    text = joined(to_svg(flow))
    assert f"Assessed for eligibility (n={flow.assessed})" in text
    assert f"Randomized (n={flow.randomized})" in text
    for reason in flow.excluded:
        assert f"{reason.label} (n={reason.count})" in text
    for a in flow.arms:
        assert f"Allocated to {a.label} (n={a.allocated})" in text
        assert f"Analysed (n={a.analysed})" in text
        for reason in (*a.not_received, *a.lost, *a.discontinued, *a.excluded_from_analysis):
            assert f"{reason.label} (n={reason.count})" in text
    for label, value in flow.pilot:
        assert f"{label}: {value}" in text
    assert_text_inside_boxes_and_boxes_apart(draw(flow))
