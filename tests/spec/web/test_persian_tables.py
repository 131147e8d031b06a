"""The safety, DSMB, lock readiness and audit pages in the reader's language (issue 24: a new user's Persian walk
found their tables in English), both databases:

- ``/safety`` and ``/dsmb`` say the safety table's lines (any adverse event, serious, by criterion, worst grade,
  related, SUSAR) and the SOC/PT table's "not yet coded" line in Persian, their counts in Persian digits, and each
  arm (the DSMB's columns and listing) by its Persian name; the DSMB's line listing has Persian headers and says
  its values in words: the onset in the reader's calendar, yes/no, the criteria, relatedness, action taken and
  outcome by their Persian labels;
- the lock readiness page says its headers in Persian, where a blocker is by the visit's and form's Persian names,
  and what blocks it in Persian;
- the audit page says a stored value in the reader's words (yes/no, a form field's choice by its label, a query's
  state translated) and keeps the value exactly as stored beside it; a blinded reader's Persian audit page still
  names no arm.

Expected texts are read from the protocol file (an independent YAML read) and dates computed with jdatetime."""

from __future__ import annotations

import datetime as dt
import html
import re

from tests.spec.web.test_persian_pages import RAW, _jalali, _persian, _testid
from tests.spec.web.test_randomization_pages import as_role, enrolled
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.safety import report_event

ARMS = {a["code"]: (a["name"], a["translations"]["fa"]) for a in RAW["arms"]}
CAUSALITY = {c["code"]: c["translations"]["fa"] for c in RAW["safety"]["causality"]}
ACTIONS = {a["code"]: a["translations"]["fa"] for a in RAW["safety"]["actions_taken"]}
LATIN = re.compile(r"[0-9]")


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", " ", fragment))


def _table(page: str, testid: str) -> str:
    return page.split(f'data-testid="{testid}"', 1)[1].split("</table>", 1)[0]


def _an_sae(trial: Trial) -> tuple[str, dt.date]:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    pid = enrolled(trial)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    onset = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, {
        "term": "Anaphylaxis", "onset": onset.isoformat(), "grade": 4, "serious": True,
        "seriousness_criteria": ["life_threatening"], "causality": "probable", "action_taken": "infusion_stopped",
        "outcome": "recovering", "aware_at": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip
    return pid, onset


ENGLISH_LINES = ("Any adverse event", "Any serious adverse event", "SAE: life threatening", "Worst grade 4",
                 "Related adverse event", "Related SAE", "Not yet coded")  # fmt: skip


def test_the_safety_tables_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    _an_sae(trial)
    _persian(trial, Role.INVESTIGATOR)
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get("/safety").text
    with as_role(app, Role.MONITOR) as monitor:  # English reader: the same lines in English
        english = monitor.get("/safety").text
    table = _text(_table(page, "safety-table")) + _text(_table(page, "safety-terms"))
    for line in ("هر رویداد نامطلوب", "هر رویداد نامطلوب جدی", "رویداد نامطلوب جدی: تهدیدکنندهٔ حیات",
                 "بدترین درجه ۴", "رویداد نامطلوب جدی مرتبط", "هنوز کدگذاری نشده", "همه شرکت‌کنندگان"):  # fmt: skip
        assert line in table, line
    assert not any(e in table for e in ENGLISH_LINES) and not LATIN.search(table)
    assert "۱ (۱۰۰%)" in table  # one randomized participant, with the one event
    english_table = _text(_table(english, "safety-table")) + _text(_table(english, "safety-terms"))
    assert all(e in english_table for e in ENGLISH_LINES) and "1 (100%)" in english_table


def test_the_dsmb_page_in_persian_names_the_arms_and_says_the_listing_in_words(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    _, onset = _an_sae(trial)
    _persian(trial, Role.DSMB_MEMBER)
    with as_role(app, Role.DSMB_MEMBER) as dsmb:
        page = dsmb.get("/dsmb").text
    columns = _text(_table(page, "safety-table").split("</thead>", 1)[0])
    assert all(fa in columns for _, fa in ARMS.values())
    assert not any(f"{en} " in columns or columns.endswith(en) for en, _ in ARMS.values())
    assert "Any adverse event" not in page and "Not yet coded" not in page
    listing = _table(page, "listing")
    headers = _text(listing.split("</thead>", 1)[0])
    for english in ("ae_number", "participant_id", "onset", "seriousness_criteria", "action_taken", "Onset"):
        assert english not in headers
    assert "شروع" in headers and "اقدام انجام‌شده" in headers and "معیارهای جدی بودن" in headers
    assert _testid(page, "listing-onset") == _jalali(onset)
    assert _testid(page, "listing-grade") == "۴"
    assert _testid(page, "listing-serious") == "بله"
    assert _testid(page, "listing-criteria") == "تهدیدکنندهٔ حیات"
    assert _testid(page, "listing-causality") == CAUSALITY["probable"]
    assert _testid(page, "listing-action") == ACTIONS["infusion_stopped"]
    assert _testid(page, "listing-outcome") == "در حال بهبود"
    assert _testid(page, "listing-arm") in {fa for _, fa in ARMS.values()}
    for raw in ("infusion_stopped", "life_threatening", "recovering", "Probable", onset.isoformat()):
        assert raw not in listing, raw


def test_the_team_still_sees_no_arm_on_its_persian_safety_page(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    _an_sae(trial)
    _persian(trial, Role.INVESTIGATOR, Role.BLINDED_STATISTICIAN)
    for role in (Role.INVESTIGATOR, Role.BLINDED_STATISTICIAN):
        with as_role(app, role) as reader:
            page = reader.get("/safety").text
        assert not any(word in page for code, (en, fa) in ARMS.items() for word in (en, fa, f">{code}<"))


def _fa_name(items: list[dict], item_id: str) -> str:  # type: ignore[type-arg]
    return str(next(i for i in items if i["id"] == item_id)["translations"]["fa"])


def test_the_lock_readiness_page_says_where_and_what_blocks_in_persian(trial: Trial) -> None:
    from sqlalchemy import select, update

    from tests.spec.forms.conftest import NOW, TODAY, enrolled_ten_days_ago
    from trialwright.services import forms as forms_svc
    from trialwright.settings import Settings
    from trialwright.store.engine import session_scope
    from trialwright.store.screening_tables import consents, participants
    from trialwright.web.app import create_app

    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    infused = TODAY - dt.timedelta(days=7)
    forms_svc.record_visit(trial.engine, coordinator, pid, "infusion", infused)
    forms_svc.save_form(trial.engine, coordinator, pid, "infusion", "vitals",
                        {"assessed_at": f"{infused.isoformat()}T08:00+03:30", "spo2": 95})  # fmt: skip
    forms_svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "please check SpO2", visit_id="infusion",
                          form_id="vitals", field_id="spo2")  # fmt: skip
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, {
        "term": "Acute kidney injury", "onset": (TODAY - dt.timedelta(days=1)).isoformat(), "grade": 3,
        "serious": True, "seriousness_criteria": ["hospitalisation"], "causality": "possible",
        "action_taken": "not_applicable", "outcome": "recovering",
        "aware_at": (NOW - dt.timedelta(hours=1)).isoformat(),
    })  # fmt: skip
    with session_scope(trial.engine) as session:  # a consent time corrected later, after data were stored
        screening = select(participants.c.screening_id).where(participants.c.participant_id == pid)
        session.execute(update(consents).where(consents.c.screening_id == screening.scalar_subquery())
                        .values(obtained_at=NOW - dt.timedelta(days=5)))  # fmt: skip
    _persian(trial, Role.DATA_MANAGER)
    app = create_app(Settings(database_url=trial.url))
    with as_role(app, Role.DATA_MANAGER) as manager:
        page = manager.get("/data-management/readiness").text
    rows = re.findall(r'<tr data-testid="blocker">(.*?)</tr>', page, re.S)
    cells = [[_text(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for kind, where, what in cells:
        by_kind.setdefault(kind, []).append((where, what))
    visit_fa, vitals_fa = _fa_name(RAW["visits"], "infusion"), _fa_name(RAW["forms"], "vitals")
    vitals = next(f for f in RAW["forms"] if f["id"] == "vitals")
    spo2_fa = _fa_name(vitals["fields"], "spo2")
    forms = dict(by_kind["فرم"])
    assert forms[f"{visit_fa} · {vitals_fa}"] == "پیش‌نویس است؛ سیاست قفل، وضعیت «امضاشده» را لازم دارد"
    assert any(w.startswith(visit_fa + " · ") and what.startswith("شروع نشده است؛") for w, what in forms.items())
    ((where, what),) = by_kind["پرسش"]
    assert where == f"پرسش ۱ · {visit_fa} · {vitals_fa}" and what == f"باز دربارهٔ {spo2_fa}: please check SpO2"
    ((_, what),) = by_kind["رویداد نامطلوب جدی"]
    assert "«در حال بهبود»" in what and "بهبود یافت" in what and "recovering" not in what
    assert all(not LATIN.search(w) for w, _ in by_kind["ویزیت"])
    assert all(re.search(r"[۰-۹]{4}/[۰-۹]{2}/[۰-۹]{2}", what) for _, what in by_kind["ویزیت"])
    assert by_kind["ناسازگاری داده"] and all(" · " in w for w, _ in by_kind["ناسازگاری داده"])
    for english in ("the lock policy needs", "not started", "neither done", "query ", "infusion vitals"):
        assert english not in "".join(str(c) for c in cells), english


def test_the_audit_page_says_values_in_persian_words_beside_the_stored_value(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    from tests.spec.forms.conftest import enrolled_ten_days_ago
    from tests.spec.web.test_persian_pages import _choice_fa, _signed_forms
    from trialwright.services import forms as forms_svc

    pid = enrolled_ten_days_ago(trial)
    _signed_forms(trial, pid)
    query = forms_svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "Please check the consent.")
    forms_svc.answer_query(trial.engine, who(trial, Role.STUDY_COORDINATOR), query.id, "Checked.")
    forms_svc.close_query(trial.engine, who(trial, Role.MONITOR), query.id)
    _persian(trial, Role.DATA_MANAGER)
    with as_role(app, Role.DATA_MANAGER) as manager:
        page = manager.get("/admin/audit", params={"participant": pid}).text
    cells = re.findall(r'<td class="(?:old|new)">(.*?)</td>', page, re.S)

    def stored_beside(words: str, stored: str) -> bool:
        return any(c.startswith(words + " <small") and f'<code data-testid="stored">{stored}</code>' in c
                   for c in cells)  # fmt: skip

    assert stored_beside("خیر", "False")  # vitals.on_oxygen
    assert stored_beside(_choice_fa("vitals", "consciousness", "alert"), "alert")
    assert stored_beside(_choice_fa("performance", "status", "3"), "3")
    assert stored_beside("پاسخ‌داده‌شده", "answered")  # the state the query was closed from
    assert stored_beside("دستی", "manual")  # the query's origin
    assert not any(re.fullmatch(r"\s*(True|False|alert|open|answered)\s*", c) for c in cells)
    pulse = next(f for f in next(f for f in RAW["forms"] if f["id"] == "vitals")["fields"] if f["id"] == "pulse")
    # a number in Persian digits (its unit kept), the stored text in its title: no Latin digits in the text
    unit = pulse["unit"]
    assert f'<span class="stored" title="115 {unit}" data-stored="115 {unit}">۱۱۵ {unit}</span>' in cells


def test_a_blinded_readers_persian_audit_page_names_no_arm(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """The allocation list, the randomization, the pharmacist's preparation and an SAE are in the trail; the data
    manager, the monitor and the administrator (blinded) read it in Persian, and no arm shows, in either language,
    as a name, a code or a stored value beside the words."""
    from tests.spec.web.test_randomization_pages import post

    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    pid = enrolled(trial)
    made = randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    with as_role(app, Role.UNBLINDED_PHARMACIST) as pharm:
        where = f"/pharmacy/{made.preparation_code}"
        typed = {"a-product_lot": "L1", "a-volume_ml": "2.5"}
        if 'for="a-particles"' in pharm.get(where).text:
            typed["a-particles"] = "1000"
        assert post(pharm, where, where, **typed).status_code == 303
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, {
        "term": "Anaphylaxis", "onset": dt.datetime.now(dt.UTC).date().isoformat(), "grade": 4, "serious": True,
        "seriousness_criteria": ["life_threatening"], "causality": "probable", "action_taken": "infusion_stopped",
        "outcome": "recovering", "aware_at": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip
    _persian(trial, Role.DATA_MANAGER, Role.MONITOR, Role.ADMINISTRATOR)
    for role in (Role.DATA_MANAGER, Role.MONITOR, Role.ADMINISTRATOR):
        with as_role(app, role) as reader:
            page = reader.get("/admin/audit").text
            mine = reader.get("/admin/audit", params={"participant": pid}).text
        assert "participant.randomized" in mine and "dose.prepared" in mine
        for text in (page, mine):
            assert "پنهان (کورشده)" in text  # what would name the arm is masked, in Persian words
            for arm_code, (english, persian) in ARMS.items():
                assert english not in text and persian not in text and f">{arm_code}<" not in text


def test_the_lock_readiness_page_says_log_entry_blockers_in_persian(trial: Trial) -> None:
    """An unsigned log entry and a query on one of its fields are said by the log's and field's Persian names, the
    entry's number in Persian digits, the rule in Persian (they were the service's English)."""
    from tests.spec.forms.conftest import enrolled_ten_days_ago
    from tests.spec.logs.test_log_entries import HEPARIN
    from trialwright.services import forms as forms_svc
    from trialwright.services.logs import add_entry
    from trialwright.settings import Settings
    from trialwright.web.app import create_app

    pid = enrolled_ten_days_ago(trial)
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds", HEPARIN)
    forms_svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "dose per chart?", log_id="conmeds",
                          sequence=1, field_id="dose")  # fmt: skip
    _persian(trial, Role.DATA_MANAGER)
    with as_role(create_app(Settings(database_url=trial.url)), Role.DATA_MANAGER) as manager:
        page = manager.get("/data-management/readiness").text
    rows = re.findall(r'<tr data-testid="blocker">(.*?)</tr>', page, re.S)
    cells = [[_text(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]
    conmeds = next(g for g in RAW["logs"] if g["id"] == "conmeds")
    log_fa = conmeds["translations"]["fa"]
    dose_fa = next(f for f in conmeds["fields"] if f["id"] == "dose")["translations"]["fa"]
    said = {(where, what) for _, where, what in cells}
    assert (f"{log_fa} #۱", "هنوز امضاشده نیست؛ سیاست قفل، وضعیت «امضاشده» را لازم دارد") in said
    assert (f"پرسش ۱ · {log_fa} #۱ · {dose_fa}", f"باز دربارهٔ {dose_fa}: dose per chart?") in said
    assert not any("entry" in where or "lock policy" in what for _, where, what in cells)
