"""Queries in the viewer's language (issue 24, the Persian findings), both databases.

The queries page names a query's visit and form by their names in the viewer's language, never by their ids
(``baseline``, ``labs``), and the casebook its field too. An automatic query's text is stored once, in English, as
raised (the queries table and the audit trail keep exactly that); a Persian page says it in Persian: a soft-limit
query with the field's Persian label and its value and range in Persian digits, isolated left to right; a data
check's query with the check's Persian message and its rule in the Persian labels; an out-of-window query with the
window's dates in the viewer's calendar, in Persian digits. An English page shows the stored text.

Expected words are read from the protocol file (YAML) and dates converted by jdatetime, independently of the code."""

from __future__ import annotations

import datetime as dt
import html
import json

import jdatetime
import yaml

from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import FIRST_PROTOCOL, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.users import set_preferences

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
LRI, PDI = "\u2066", "\u2069"
FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _fa(kind: str, item_id: str, field_id: str | None = None) -> str:
    """The Persian text of a visit, form, form field or data check, from the protocol file."""
    items = {x["id"]: x for x in RAW[kind]}
    item = items[item_id]
    if field_id is not None:
        item = next(f for f in item["fields"] if f["id"] == field_id)
    return str(item["translations"]["fa"])


def _english(form_id: str, field_id: str) -> str:
    form = next(x for x in RAW["forms"] if x["id"] == form_id)
    return str(next(f for f in form["fields"] if f["id"] == field_id)["label"])


def _rows(page: str) -> list[str]:
    return [html.unescape(r.split("</tr>", 1)[0]) for r in page.split('data-testid="query-row"')[1:]]


def test_soft_limit_and_data_check_queries_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    values = {"crp": 450, "cd3_pct": 60, "cd4_pct": 40, "cd8_pct": 26}
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", values)
    stored = {q.text for q in svc.list_queries(trial.engine, coordinator, participant_id=pid)}
    set_preferences(trial.engine, coordinator.username, language="fa")
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        rows = _rows(coord.get(f"/queries?participant={pid}").text)
        casebook = html.unescape(coord.get(f"/data/casebook/{pid}").text)
    assert len(rows) == 4
    where = f">{_fa('visits', 'baseline')} / {_fa('forms', 'labs')}</a>"
    assert all(where in r for r in rows), rows[0]
    assert not any(">baseline / labs<" in r for r in rows)
    (soft,) = [r for r in rows if _fa("forms", "labs", "crp") + " " in r]
    assert f"{LRI}{'450 mg/L'.translate(FA)}{PDI}" in soft and f"{LRI}{'0-400 mg/L'.translate(FA)}{PDI}" in soft
    assert "is outside" not in soft and _english("labs", "crp") not in soft
    checks = [r for r in rows if _fa("data_checks", "cd4_cd8_within_cd3") in r]
    assert len(checks) == 3
    assert all(_fa("forms", "labs", f) in checks[0] for f in ("cd3_pct", "cd4_pct", "cd8_pct"))
    assert "+ ۵" in checks[0] and "expected" not in checks[0] and "is at most" not in checks[0]
    # the casebook: the field by its Persian label, the text in Persian
    assert f"{_fa('visits', 'baseline')} {_fa('forms', 'labs')} · {_fa('forms', 'labs', 'crp')}:" in casebook
    # stored and audited as raised, in English
    assert {q.text for q in svc.list_queries(trial.engine, coordinator, participant_id=pid)} == stored
    entries = audit.entries(trial.engine, action_prefix="query.raised")
    raised = {json.loads(e.new_value or "{}")["text"] for e in entries}
    assert raised == stored and any("is outside the expected range" in t for t in raised)
    with as_role(app, Role.MONITOR) as monitor:  # an English reader sees the text as stored
        english = _rows(monitor.get(f"/queries?participant={pid}").text)
    assert all(any(t in r for r in english) for t in stored)


def test_an_out_of_window_query_in_persian_with_the_window_in_solar_hijri(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.record_visit(trial.engine, coordinator, pid, "infusion", TODAY - dt.timedelta(days=7))
    taken = TODAY - dt.timedelta(days=3)
    svc.save_form(trial.engine, coordinator, pid, "day7", "labs", {"sampled_at": f"{taken.isoformat()}T09:00+03:30"},
                  visit_date=TODAY)  # fmt: skip
    set_preferences(trial.engine, coordinator.username, language="fa", calendar="jalali")
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        (row,) = _rows(coord.get(f"/queries?participant={pid}").text)
    assert f">{_fa('visits', 'day7')} / {_fa('forms', 'labs')}</a>" in row
    assert _fa("data_checks", "labs_in_window") in row and _fa("forms", "labs", "sampled_at") in row
    for day in (taken, TODAY - dt.timedelta(days=1), TODAY + dt.timedelta(days=1)):  # the value, the window
        jalali = jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d").translate(FA)
        assert f"{LRI}{jalali}{PDI}" in row, (jalali, row)
    assert "outside the visit window" not in row and taken.isoformat() not in row
