"""What a new user's walk of an unseen two-language trial found still English or still in codes on Persian pages
(issue 24, "Persian and English throughout"), on both databases:

- a form's date before the enrolment is refused in Persian, both dates in the reader's calendar;
- the exports page describes each format in Persian (each description a message id of the catalog);
- the audit page says each action in words in the reader's language, its code kept beside it (monitors search by
  it); every action the trail records (``AUDITED``) has Persian words in the catalog;
- the recruitment page names the arms on its plot by their Persian names, says the forecast's notes in Persian,
  writes the sites' counts and the bars' counts in Persian digits, and draws its legends below the axes.

The English pages keep their words (checked beside). Persian is read from the catalog with Babel, names and labels
from the protocol file (an independent YAML read), Solar Hijri dates computed with jdatetime."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator

import jdatetime
import pytest
import yaml
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.spec.recruitment.test_recruitment_service import hand_built
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, username
from trialwright.domain.audit_masking import AUDITED
from trialwright.domain.roles import Role
from trialwright.services import exports
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app
from trialwright.web.audit_actions import ACTION_WORDS
from trialwright.web.i18n import catalog_path

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
with catalog_path("fa").open("rb") as _handle:
    CATALOG = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}
FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ISOLATES = re.compile("[\u2066-\u2069]")
ENGLISH = re.compile(r"[A-Za-z]{3,} [a-z]{2,}")


def _client(trial: Trial, role: Role, lang: str, calendar: str = "jalali") -> TestClient:
    set_preferences(trial.engine, username(role), language=lang, calendar=calendar)
    client = TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False)
    client.__enter__()
    return sign_in(client, role)


def _jalali(day: dt.date) -> str:
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d").translate(FA)


def test_a_form_date_before_the_enrolment_is_refused_in_persian(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    day, enrolled = TODAY - dt.timedelta(days=20), TODAY - dt.timedelta(days=10)
    form = f"/participants/{pid}/visits/baseline/forms/demographics"
    field = next(f for f in next(f for f in RAW["forms"] if f["id"] == "demographics")["fields"]
                 if f["id"] == "enrolled_on")  # fmt: skip
    said = {}
    for lang in ("fa", "en"):
        client = _client(trial, Role.INVESTIGATOR, lang)
        typed = _jalali(day).translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
        response = client.post(form, data={"csrf_token": csrf_of(client.get(form).text), "v-enrolled_on": typed})
        client.__exit__(None, None, None)
        assert response.status_code == 422
        found = re.findall(r'class="error field-error"[^>]*>(.*?)</', response.text, re.S)
        said[lang] = [ISOLATES.sub("", html.unescape(e)).strip() for e in found if "enrol" in e or "ورود" in e]
    rule = CATALOG["%(day)s is before enrolment on %(enrolled)s"]
    assert said["fa"] == [f"{field['translations']['fa']}: "
                          + rule % {"day": _jalali(day), "enrolled": _jalali(enrolled)}]  # fmt: skip
    latin = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")  # the English page: the same calendar, Latin digits
    assert said["en"] == [f"{field['label']}: {_jalali(day).translate(latin)} is before enrolment on "
                          f"{_jalali(enrolled).translate(latin)}"]  # fmt: skip


def test_the_exports_page_describes_each_format_in_persian(trial: Trial) -> None:
    formats = exports.formats()
    assert all(CATALOG.get(cls.description) for cls in formats.values())  # each description a message id
    pages = {}
    for lang in ("fa", "en"):
        client = _client(trial, Role.DATA_MANAGER, lang)
        pages[lang] = html.unescape(client.get("/exports").text)
        client.__exit__(None, None, None)
    for name, cls in formats.items():
        assert f"<strong>{name}</strong>: {CATALOG[cls.description]}</label>" in pages["fa"]
        assert f"<strong>{name}</strong>: {cls.description}</label>" in pages["en"]  # the English unchanged
        assert cls.description not in pages["fa"]


def test_every_audited_action_has_words_in_persian() -> None:
    assert set(ACTION_WORDS) == set(AUDITED)
    missing = [action for action in AUDITED if not CATALOG.get(ACTION_WORDS[action])]
    assert missing == []


def test_the_audit_page_says_each_action_in_words_with_its_code(trial: Trial) -> None:
    client = _client(trial, Role.DATA_MANAGER, "fa")
    page = html.unescape(client.get("/admin/audit").text)
    client.__exit__(None, None, None)
    rows = re.findall(r'<span data-testid="action-\d+" title="([a-z_.]+)">([^<]*)</span> '
                      r"<small><code>([a-z_.]+)</code>", page)  # fmt: skip
    assert len(rows) >= 3 and {"user.signed_in", "user.created"} <= {code for code, _w, _c in rows}
    for code, words, shown in rows:
        assert words == CATALOG[ACTION_WORDS[code]] and shown == code
    assert not re.search(r"<td><code>[a-z_.]+</code></td>", page)  # no action left as its code alone
    client = _client(trial, Role.DATA_MANAGER, "en")
    english = html.unescape(client.get("/admin/audit").text)
    client.__exit__(None, None, None)
    assert '<span data-testid="action-' in english and ">signed in</span> <small><code>user.signed_in</code>" in english


@pytest.fixture(scope="module")
def recruiting(module_database_url: str) -> Iterator[Trial]:
    t = hand_built(module_database_url)
    yield t
    t.engine.dispose()


def test_the_recruitment_page_in_persian(recruiting: Trial) -> None:
    client = _client(recruiting, Role.UNBLINDED_STATISTICIAN, "fa")
    page = client.get("/recruitment").text
    client.__exit__(None, None, None)
    plot = re.search(r'<svg[^>]*data-plot="cumulative".*?</svg>', page, re.S)
    assert plot
    for arm in RAW["arms"]:  # the legend names each arm in Persian, never in English
        texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", plot.group(0))]
        assert arm["translations"]["fa"] in texts and arm["name"] not in texts
    notes = [html.unescape(n) for n in re.findall(r"<li>(.*?)</li>", re.search(
        r'data-testid="warnings">(.*?)</ul>', page, re.S).group(1))]  # type: ignore[union-attr]  # fmt: skip
    assert notes and not any(ENGLISH.search(n) for n in notes), notes
    passed = CATALOG["the planned end of recruitment (%(day)s) has passed"].split("(")[0]
    assert any(n.startswith(passed) for n in notes), notes
    # the forecast's facts (interval levels, probabilities, shares) in Persian digits too
    facts = re.search(r'data-testid="probability-planned">(.*?)</dd>', page, re.S)
    assert facts and not re.search(r"[0-9]", facts.group(1)), facts
    levels = re.findall(r"<dt>([^<]*)%", page)
    assert levels and all(not re.search(r"[0-9]", level) for level in levels), levels
    sites = re.findall(r'<tr data-testid="site-[A-Z]+">(.*?)</tr>', page, re.S)
    assert sites and all(not re.search(r"[0-9]", re.sub(r"\([A-Z]+\)", "", s)) for s in sites)  # Persian digits only
    for name in ("reasons", "failures"):
        bars = re.search(rf'<svg[^>]*data-plot="{name}".*?</svg>', page, re.S)
        if bars:
            counts = [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", bars.group(0)) if t.startswith(" ")]
            assert counts and all(re.fullmatch("[۰-۹]+", c) for c in counts), counts


def test_the_recruitment_legends_lie_below_the_axes(recruiting: Trial) -> None:
    client = _client(recruiting, Role.UNBLINDED_STATISTICIAN, "fa")
    page = client.get("/recruitment").text
    client.__exit__(None, None, None)
    for name in ("cumulative", "forecast"):
        plot = re.search(rf'<svg([^>]*)data-plot="{name}".*?</svg>', page, re.S)
        assert plot and 'direction="ltr"' in plot.group(1)  # laid out as drawn, its labels beside their lines
        svg = plot.group(0)
        axes = re.search(r'<g id="patch_2">\s*<path d="M ([\d.]+) ([\d.]+) \s*L ([\d.]+) ([\d.]+)', svg)
        assert axes, "no axes background"
        bottom = max(float(axes.group(2)), float(axes.group(4)))
        legend = svg[svg.index('<g id="legend_1">') :]
        ys = [float(y) for y in re.findall(r'<text[^>]* y="([\d.]+)"', legend)]
        assert ys and min(ys) > bottom, (name, bottom, min(ys))
