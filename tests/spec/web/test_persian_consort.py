"""The CONSORT diagram in Persian (issue 24 item 2), both databases.

A Persian statistician's CONSORT diagram (``/analysis/consort.svg``, and the same SVG inline in the analysis page
and the HTML report; the PDF report's PNG is drawn from the same figure) speaks Persian: its stage names, box texts,
reasons and caption are the catalog's Persian, the trial's short title, the arm and the analysis set are the
protocol's Persian, and its counts are in Persian digits. The SVG keeps text as text in logical order, each line
embedded right to left (RLE ... PDF), for its viewer to join the letters and order the line (matplotlib does the
same for the PNG); the diagram is mirrored, each line right-aligned in its box. Read here with an XML parser.
An English reader's diagram is unchanged (English).
"""

from __future__ import annotations

import re
import warnings
from xml.etree import ElementTree

import yaml
from fastapi.testclient import TestClient

from tests.spec.web.conftest import sign_in
from tests.spec.web.test_analysis_pages import _randomized
from tests.trialfixtures import FIRST_PROTOCOL, Trial, first_protocol, who
from trialwright.analysis.consort import ArmFlow, ConsortFlow, Reason, to_png
from trialwright.analysis.figures import ForestRow, forest_plot, to_svg
from trialwright.analysis.report import ReportWords
from trialwright.domain.roles import Role
from trialwright.services.screening import withdraw
from trialwright.services.users import set_preferences
from trialwright.web.report_words import report_words

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
SVG = "{http://www.w3.org/2000/svg}"
RLE, PDF = "\u202b", "\u202c"
ENGLISH = ("Enrollment", "Allocation", "Follow-Up", "Analysis", "Assessed for eligibility", "Randomized", "Excluded")
#: What a Persian reader reads in the diagram of one randomized participant, line by line (in the box's order)
PERSIAN = (
    "ورود به مطالعه",  # the stage names
    "تخصیص",
    "پیگیری",
    "تحلیل",
    "ارزیابی‌شده برای واجد شرایط بودن",  # assessed for eligibility, wrapped before its count
    "(۱ نفر)",
    "کنارگذاشته (۰ نفر)",
    "نداشتن معیارهای ورود (۰ نفر)",
    "امتناع از شرکت (۰ نفر)",
    "تصادفی‌سازی‌شده (۱ نفر)",
    "تخصیص‌یافته به همه شرکت‌کنندگان (۱ نفر)",
    "از دست رفته در پیگیری (۰ نفر)",
    "قطع مداخله (۰ نفر)",
    "تحلیل‌شده (۰ نفر)",
    "کنارگذاشته از تحلیل (۱ نفر)",
)


#: A count and its word are joined by a no-break space, so a line never breaks between them
def _nbsp(text: str) -> str:
    return text.replace(" نفر)", "\u00a0نفر)")


def _texts(svg: str) -> dict[str, list[tuple[str, str]]]:
    """Each ``<text>`` of the SVG by the id of the group that holds it: (its text, its style)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for group in ElementTree.fromstring(svg).iter(f"{SVG}g"):  # noqa: S314 - our own SVG
        for t in group.findall(f"{SVG}text"):
            out.setdefault(group.get("id", ""), []).append(("".join(t.itertext()), t.get("style", "")))
    return out


def _persian_reader(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    set_preferences(trial.engine, who(trial, Role.BLINDED_STATISTICIAN).username, language="fa")
    sign_in(client, Role.BLINDED_STATISTICIAN)


def test_the_consort_diagram_in_persian(client: TestClient, trial: Trial) -> None:
    _persian_reader(client, trial)
    answer = client.get("/analysis/consort.svg")
    assert answer.status_code == 200
    texts = _texts(answer.text)
    lines = [text for group in texts.values() for text, _ in group if text not in "•–"]
    assert all(line.startswith(RLE) and line.endswith(PDF) for line in lines), lines  # each right to left
    said = [line.strip(RLE + PDF) for line in lines]
    for persian in map(_nbsp, PERSIAN):
        assert persian in said, persian
    assert RAW["trial"]["titles"]["translations"]["fa"]["short"] in said  # the protocol's Persian title
    caption = " ".join(t.strip(RLE + PDF) for gid, group in texts.items() if gid.startswith("consort-caption")
                       for t, _ in group)  # fmt: skip
    itt = next(s for s in RAW["analysis_sets"] if s["id"] == "itt")
    assert caption.startswith(f"مجموعه تحلیل: {itt['translations']['fa']}، برای "), caption
    whole = "\n".join(said)
    assert not any(english in whole for english in ENGLISH)
    assert re.findall(r"[0-9]", whole.replace(RAW["trial"]["titles"]["translations"]["fa"]["short"], "")) == []
    # mirrored: every box's line right-aligned, the stage bands to the right of the boxes
    box_lines = [style for gid, group in texts.items() if gid.startswith("consort-arm") for _, style in group]
    assert box_lines and all("text-anchor: end" in style for style in box_lines)


def test_the_reasons_for_leaving_follow_up_in_persian(client: TestClient, trial: Trial) -> None:
    """A participant who withdrew consent to follow-up is lost to follow-up for that reason, and not analysed
    (not in the first primary outcome's analysis set): both reasons in the catalog's Persian, the set in the
    protocol's; the pilot's rates in the catalog's words with Persian digits and percent sign."""
    pid = _randomized(trial)
    withdraw(
        trial.engine,
        who(trial, Role.STUDY_COORDINATOR),
        pid,
        scope="follow_up",
        cause="withdrew_consent",
        reason="moved away",
        withdrawn_on=None,
    )
    set_preferences(trial.engine, who(trial, Role.BLINDED_STATISTICIAN).username, language="fa")
    sign_in(client, Role.BLINDED_STATISTICIAN)
    said = [text.strip(RLE + PDF) for group in _texts(client.get("/analysis/consort.svg").text).values()
            for text, _ in group]  # fmt: skip
    assert _nbsp("پس گرفتن رضایت (۱ نفر)") in said, said
    whole = "\n".join(said)
    assert "پس گرفتن رضایت پیش از سنجش پیامد" in said, said  # so not analysed
    # the pilot's rates: the catalog's words, Persian digits and the Persian percent sign
    assert "ماندگار تا زمان پیامد اصلی: ۰٪ (۰/۱)" in said, said
    assert any(line.startswith("نرخ جذب: ") and line.endswith(" مرکز-ماه)") for line in said), said
    for english in ("Withdrew consent", "Not in the", "per site-month", "site-months", "%", "progression"):
        assert english not in whole, english


def test_one_outside_the_analysis_set_is_said_in_persian() -> None:
    """The diagram's "Not in the <set>" (a participant outside the first primary outcome's analysis set): the
    catalog's words with the set's Persian name; in English as the engine writes it."""
    itt = next(s for s in RAW["analysis_sets"] if s["id"] == "itt")
    english = f"Not in the {itt['name']}"
    assert report_words(first_protocol().protocol, "fa").said(english) == f"خارج از {itt['translations']['fa']}"
    assert report_words(first_protocol().protocol, "en").said(english) == english


def test_the_page_and_the_html_report_show_the_persian_diagram(client: TestClient, trial: Trial) -> None:
    _persian_reader(client, trial)
    for path in ("/analysis", "/analysis/report.html"):
        page = client.get(path).text
        assert _nbsp(f"{RLE}تصادفی‌سازی‌شده (۱ نفر){PDF}") in page and "Randomized (n=" not in page, path


def test_an_english_readers_diagram_is_english(client: TestClient, trial: Trial) -> None:
    _randomized(trial)
    sign_in(client, Role.BLINDED_STATISTICIAN)
    svg = client.get("/analysis/consort.svg").text
    said = [text for group in _texts(svg).values() for text, _ in group]
    for english in (
        "Enrollment",
        "Assessed for eligibility (n=1)",
        "Randomized (n=1)",
        "Allocated to All participants (n=1)",
    ):
        assert english in said, english
    assert not any("\u0600" <= c <= "\u06ff" or c in RLE + PDF for c in svg)


def test_the_persian_png_has_a_glyph_for_every_letter() -> None:
    """DejaVu Sans has the Arabic letters, its oblique face none: no line of a Persian diagram is set in it."""
    flow = ConsortFlow(
        3,
        (Reason("Declined to participate", 1),),
        2,
        (ArmFlow("All participants", 2, None, (), (), (), 2, ()),),
        "Intention to treat",
    )
    persian = ReportWords(lang="fa", direction="rtl", gettext=_catalog, said=_catalog)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of every glyph missing from the font it draws with
        assert to_png(flow, words=persian).startswith(b"\x89PNG")


def _catalog(text: str) -> str:
    from trialwright.web.i18n import translations

    return translations("fa").gettext(text)


def test_the_figures_titles_and_labels_in_persian(client: TestClient, trial: Trial) -> None:
    """The figures beside the diagram: each title is the outcome's Persian description with the catalog's words, the
    groups and the visits in Persian (letters joined by matplotlib and the browser; the axes' numbers as drawn)."""
    _persian_reader(client, trial)
    for path in ("/analysis", "/analysis/report.html"):
        page = client.get(path).text
        texts = re.findall(r"<text[^>]*>([^<]*)</text>", page)
        titles = [t for t in texts if "میانگین و فاصله اطمینان ۹۵٪" in t]
        for o in RAW["outcomes"]:
            if o["id"] in ("crp", "tnf_alpha"):  # the continuous primary outcomes, each with its figure
                assert any(t.startswith(o["description_translations"]["fa"]) for t in titles), (path, o["id"])
        assert "همه شرکت‌کنندگان" in texts and "روز ۷" in texts, path
        assert not any("mean and 95% CI" in t or "Day 7" in t or "All participants" in t for t in texts), path
        # the y axis' numbers (matplotlib's ticks, its minus kept) and the n under each visit in Persian digits
        assert "−۰٫۰۲" in texts and "۰٫۰۴" in texts and "۰" in texts, path
        assert not any(re.fullmatch(r"[−-]?[0-9.]+", t) for t in texts), path


def test_a_persian_forest_plot_says_not_estimable_and_its_numbers_in_persian() -> None:
    """A forest plot's row without an estimate says so in the reader's words (upright), its axis' numbers in the
    reader's digits; by default the words and numbers are English, as before."""
    rows = [
        ForestRow("CRP", 0.5, 0.1, 0.9, "0.50 (0.10 to 0.90)"),
        ForestRow("IL-6", None, None, None, "NA"),
    ]
    persian = ReportWords(lang="fa", direction="rtl", gettext=_catalog, said=_catalog)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every glyph drawn is in the font
        svg = to_svg(
            forest_plot(
                rows, title="t", x_label="x", digits=_persian_digits, not_estimable=persian.gettext("not estimable")
            )
        )
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "برآوردناپذیر" in texts and "not estimable" not in texts
    assert "۰٫۴" in texts and not any(re.fullmatch(r"[−-]?[0-9.]+", t) for t in texts), texts
    english = re.findall(r"<text[^>]*>([^<]*)</text>", to_svg(forest_plot(rows, title="t", x_label="x")))
    assert "not estimable" in english and "0.4" in english


def _persian_digits(text: str) -> str:
    from trialwright.web.localized import digits

    return digits(text, "fa")
