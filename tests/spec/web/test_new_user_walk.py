"""What a new user's walk of the web app in English and Persian found (issue 24), both databases:

- the home and safety pages say each reporting deadline's kind in words in the viewer's language, never its code
  ("sae to sponsor");
- the two-person rule's notices and pages name roles by their names in the viewer's language, never by their ids
  (``unblinded_statistician``); its e-mails too;
- a query the system closed because the value was corrected says why in the reader's language, while the queries
  table and the audit trail keep the note as the system wrote it;
- an overdue report on the participant page is red and says "overdue" (as on the home page), not amber as "due";
- the investigator's participant list links each participant to the casebook, where forms are reviewed and signed;
- a Persian recipient's e-mail gives its dates in Solar Hijri (as the pages do), on the site's clock.

Expected words come from the catalog (read with Babel) and dates from jdatetime, independently of the code."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from zoneinfo import ZoneInfo

import jdatetime
from babel.messages.pofile import read_po

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import approvals, audit, credentials
from trialwright.services import forms as forms_svc
from trialwright.services.email.messages import render
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.safety import record_decision, report_event
from trialwright.services.users import get_user, set_preferences
from trialwright.web.i18n import catalog_path

TEHRAN = ZoneInfo("Asia/Tehran")
FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
with catalog_path("fa").open("rb") as _handle:
    CATALOG = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", page))


def _items(page: str, testid: str) -> list[str]:
    return [_text(p.split("</li>", 1)[0]) for p in page.split(f'data-testid="{testid}"')[1:]]


def _randomized(trial: Trial) -> str:
    pid = enrolled_ten_days_ago(trial)
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    return pid


def _overdue_sae(trial: Trial) -> tuple[str, str]:
    """An SAE the site learnt of 25 hours ago, past the first trial's 24 hours to the sponsor."""
    pid = _randomized(trial)
    aware = dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
    event = report_event(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, {
        "term": "Pneumothorax", "onset": aware.astimezone(TEHRAN).date().isoformat(), "grade": 3, "serious": True,
        "seriousness_criteria": ["hospitalisation"], "causality": "unlikely", "action_taken": "not_applicable",
        "outcome": "recovering", "aware_at": aware.isoformat(),
    })  # fmt: skip
    return pid, event.ae_number


def test_an_overdue_report_says_its_deadline_in_words(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    _, ae = _overdue_sae(trial)
    set_preferences(trial.engine, who(trial, Role.MONITOR).username, language="fa")
    with as_role(app, Role.INVESTIGATOR) as inv:
        home, safety, event = inv.get("/").text, inv.get("/safety").text, inv.get(f"/adverse-events/{ae}").text
    with as_role(app, Role.MONITOR) as monitor:
        persian = monitor.get("/").text
    [english] = _items(home, "overdue")
    assert "SAE report to the sponsor" in english and "sae to sponsor" not in english
    assert [i for i in _items(safety, "overdue") if "SAE report to the sponsor" in i]
    assert "sae to sponsor" not in _text(safety) and "sae to sponsor" not in _text(event)
    assert "SAE report to the sponsor" in _text(event)
    [said] = _items(persian, "overdue")
    assert CATALOG["SAE report to the sponsor"] in said and "sae" not in said and "SAE report" not in said


def test_an_overdue_report_on_the_participant_page_is_red_with_its_word(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid, ae = _overdue_sae(trial)
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/participants/{pid}").text
    item = page.split(f'data-testid="ae-{ae}"')[1]
    badge = re.search(r'<span class="badge ([^"]+)" data-testid="ae-overdue">([^<]+)</span>', item.split("</li>")[0])
    assert badge is not None and badge.group(2) == "overdue"
    # the class the style sheet colours red for overdue (its own rule, never amber "due")
    css = (FIRST_PROTOCOL.parents[1] / "src/trialwright/web/static/trialwright.css").read_text(encoding="utf-8")
    red = re.search(r"([^{}]*)\{[^}]*background: var\(--overdue-bg\); color: var\(--overdue\)", css)
    amber = re.search(r"([^{}]*)\{[^}]*background: var\(--due-bg\); color: var\(--due\)", css)
    assert red is not None and amber is not None
    assert f".badge.{badge.group(1)}" in red.group(1) and f".badge.{badge.group(1)}" not in amber.group(1)


def test_the_two_person_rule_names_roles_by_their_names(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    # a second administrator, so that a request about an unblinded account waits for a second person
    admin2 = approvals.request_create(trial.engine, PROTOCOL, actor="administrator", username="admin2",
                                      role="administrator")  # fmt: skip
    assert admin2.token is not None
    credentials.set_password(trial.engine, admin2.token.token, PASSWORD)
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor="administrator", username="stat2", role="unblinded_statistician"
    )
    assert change.pending is not None
    with as_role(app, Role.ADMINISTRATOR) as admin:
        english = _items(admin.get("/").text, "notice")
        requests = admin.get("/admin/users/requests").text
    [made] = [n for n in english if "stat2" in n]
    assert "Unblinded statistician" in made and "unblinded_statistician" not in made
    approvers = _text(requests.split('data-testid="approvers">', 1)[1].split("</span>", 1)[0])
    assert approvers == "Administrator"
    set_preferences(trial.engine, "administrator", language="fa")
    with as_role(app, Role.ADMINISTRATOR) as admin:
        persian = _items(admin.get("/").text, "notice")
        persian_requests = admin.get("/admin/users/requests").text
    [made] = [n for n in persian if "stat2" in n]
    assert CATALOG["Unblinded statistician"] in made and "unblinded" not in made and "awaits" not in made
    assert _text(persian_requests.split('data-testid="approvers">', 1)[1].split("</span>", 1)[0]) == CATALOG[
        "Administrator"
    ]
    # approved: the unblinded statistician's notice names the role too; the stored notice stays as written
    second = get_user(trial.engine, "admin2")
    assert second is not None
    approvals.approve(trial.engine, PROTOCOL, change.pending.id, second, reason="checked")
    with as_role(app, Role.UNBLINDED_STATISTICIAN) as stat:
        [done] = [n for n in _items(stat.get("/").text, "notice") if "stat2" in n]
    assert "Unblinded statistician" in done and "unblinded_statistician" not in done and "admin2" in done


def test_a_two_person_rule_e_mail_names_the_role() -> None:
    params = {"request": 3, "request_kind": "create", "role": "unblinded_statistician", "username": "stat2",
              "requested_by": "admin", "at": "2026-12-04T11:05:00+00:00"}  # fmt: skip
    english = render("request_made", params, "en", "Asia/Tehran")
    persian = render("request_made", params, "fa", "Asia/Tehran")
    assert "Unblinded statistician" in english.body and "unblinded_statistician" not in english.body
    assert CATALOG["Unblinded statistician"] in persian.body and "unblinded" not in persian.body
    for role in Role:  # every role's Persian name is the catalog's
        said = render("request_made", {**params, "role": role.value}, "fa", "Asia/Tehran").body
        assert CATALOG[role.label] in said, role


def test_a_query_closed_by_the_system_says_why_in_the_readers_language(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    values = {"crp": 450, "cd3_pct": 60, "cd4_pct": 30, "cd8_pct": 20}
    forms_svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", values)
    forms_svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {**values, "crp": 40})
    [closed] = [q for q in forms_svc.list_queries(trial.engine, coordinator, participant_id=pid) if q.field == "crp"]
    assert closed.status == "closed"
    stored = closed.close_note
    assert stored == "resolved: the value was corrected"
    set_preferences(trial.engine, coordinator.username, language="fa")
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        persian = coord.get(f"/queries?participant={pid}&status=closed").text
    with as_role(app, Role.MONITOR) as monitor:
        english = monitor.get(f"/queries?participant={pid}&status=closed").text
    note = re.compile(r'data-testid="close-note">([^<]*)<')
    assert note.findall(persian) == [CATALOG[stored]] and note.findall(english) == [stored]
    # stored and audited as the system wrote it
    [entry] = audit.entries(trial.engine, action_prefix="query.closed")
    assert json.loads(entry.new_value or "{}")["note"] == stored
    assert forms_svc.list_queries(trial.engine, coordinator, participant_id=pid)[0].close_note == stored


def test_the_investigators_participant_list_links_to_the_casebook(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _randomized(trial)
    with as_role(app, Role.INVESTIGATOR) as inv:
        listing = inv.get("/participants").text
        link = re.search(rf'<a href="([^"]+)" data-testid="casebook-{pid}">([^<]+)</a>', listing)
        assert link is not None and link.group(1) == f"/data/casebook/{pid}"
        assert link.group(2) == "Review and sign"
        assert inv.get(link.group(1)).status_code == 200
    with as_role(app, Role.STUDY_COORDINATOR) as coord:  # who cannot sign is not offered it
        assert f'data-testid="casebook-{pid}"' not in coord.get("/participants").text


def _jalali(day: dt.date) -> str:
    return str(jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d"))


def test_a_persian_e_mail_gives_its_dates_in_solar_hijri_on_the_sites_clock() -> None:
    # 22:05 UTC on 4 December is 01:35 on 5 December in Tehran: the site's date, not UTC's
    params = {"ae_number": "AE-1", "participant_id": "RAZ-001", "site": "RAZ", "deadline": "sae_to_sponsor",
              "at": "2026-12-04T22:05:00+00:00"}  # fmt: skip
    day = dt.date(2026, 12, 5)
    jalali = render("deadline_overdue", params, "fa", "Asia/Tehran", calendar="jalali")
    assert f"{_jalali(day)} 01:35 Asia/Tehran (+03:30)".translate(FA) in jalali.body
    assert "2026" not in jalali.body and "۲۰۲۶" not in jalali.body
    # a Persian reader who prefers Gregorian still reads the Solar Hijri date beside it
    both = render("deadline_overdue", params, "fa", "Asia/Tehran", calendar="gregorian")
    assert f"{day.isoformat()}, {_jalali(day)} 01:35".translate(FA) in both.body
    english = render("deadline_overdue", params, "en", "Asia/Tehran", calendar="gregorian")
    assert "2026-12-05 01:35 Asia/Tehran (+03:30)" in english.body and _jalali(day) not in english.body


def test_the_sender_writes_a_persian_recipients_dates_in_their_calendar(trial: Trial) -> None:
    from tests.spec.email.smtp_server import DebugSMTPServer
    from tests.spec.email.test_email import mime_texts, sae, smtp, with_addresses
    from trialwright.services.email import send_due

    pid = _randomized(trial)
    with_addresses(trial)
    set_preferences(trial.engine, "monitor", language="fa", calendar="jalali")
    aware = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, sae(aware, causality="unlikely"))
    with DebugSMTPServer() as server:
        send_due(trial.engine, smtp(server))
        [persian] = mime_texts(server, "monitor@hospital.example")
        [english] = mime_texts(server, "investigator@hospital.example")
    local = aware.astimezone(TEHRAN)
    assert f"{_jalali(local.date())} {local:%H:%M} Asia/Tehran (+03:30)".translate(FA) in persian
    assert local.date().isoformat().translate(FA) not in persian
    # an English reader's preference (the accounts' default: both calendars), as on the pages
    assert f"{local:%Y-%m-%d}, {_jalali(local.date())} {local:%H:%M} Asia/Tehran (+03:30)" in english


def test_the_pharmacists_limits_are_said_in_the_page_language(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    import yaml

    pid = enrolled_ten_days_ago(trial)
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    code = randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid).preparation_code
    raw = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    volume = next(a for arm in raw["arms"] for a in arm["intervention"]["preparation"]["attributes"]
                  if a["id"] == "volume_ml")  # fmt: skip
    low, high = (str(int(volume["hard_limits"][k])) for k in ("min", "max"))
    limits = re.compile(r'data-testid="limits-volume_ml">(.*?)</small>', re.S)
    with as_role(app, Role.UNBLINDED_PHARMACIST) as pharm:
        english = _text(limits.findall(pharm.get(f"/pharmacy/{code}").text)[0])
    set_preferences(trial.engine, who(trial, Role.UNBLINDED_PHARMACIST).username, language="fa")
    with as_role(app, Role.UNBLINDED_PHARMACIST) as pharm:
        persian = _text(limits.findall(pharm.get(f"/pharmacy/{code}").text)[0])
    assert english == f"{low} to {high} {volume['unit']}"
    assert persian == f"{low.translate(FA)} {CATALOG['%(low)s to %(high)s'].split()[1]} {high.translate(FA)} mL"
    assert " to " not in persian


def test_the_safety_notices_on_the_home_page_are_said_in_the_readers_language(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """A serious adverse event's notice names the site by its name in the reader's language and keeps the term as
    reported; a DSMB decision's notice says the decision in words; the stored notices stay in English."""
    _, ae = _overdue_sae(trial)
    record_decision(trial.engine, who(trial, Role.DSMB_MEMBER), "pause", reason="review", password=PASSWORD)
    razi = next(s for s in PROTOCOL.sites if s.code == "RAZ")
    with as_role(app, Role.INVESTIGATOR) as inv:
        english = _items(inv.get("/").text, "notice")
    assert [n for n in english if f"Serious adverse event {ae} (Pneumothorax) at {razi.name}" in n]
    assert [n for n in english if "DSMB decision on the safety pause: pause" in n]
    set_preferences(trial.engine, who(trial, Role.INVESTIGATOR).username, language="fa")
    with as_role(app, Role.INVESTIGATOR) as inv:
        persian = _items(inv.get("/").text, "notice")
    sae = CATALOG["Serious adverse event %(ae_number)s (%(term)s) at %(site)s"].split(" %(ae_number)s")[0]
    [said] = [n for n in persian if ae in n]
    assert said.split(": ", 1)[1].startswith(sae) and razi.translations["fa"] in said and "Pneumothorax" in said
    assert "Serious" not in said and " at " not in said
    decision = CATALOG["DSMB decision on the safety pause: %(decision)s"] % {"decision": CATALOG["pause"]}
    assert [n for n in persian if n.endswith(decision)]
