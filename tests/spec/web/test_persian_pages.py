"""What a new user's Persian walk of a second trial found (issue 24: Persian and English throughout), both
databases:

- the home page says the trial's scientific title in Persian (``titles.translations.fa.scientific``), the masked
  parties and the protocol loader ("system") in Persian words, the phase and the versions in Persian digits;
- the pharmacist's preparation page says each attribute by its Persian label, and a recorded decimal with the
  Persian decimal separator (``۲٫۵``);
- a screening's values say a choice by its Persian label, never its code;
- a form read by someone who cannot edit it (the monitor) shows a date in the reader's calendar in Persian digits,
  a number in Persian digits, a choice by its label and yes/no in words; its header's parts are spaced;
- the casebook says a signed form's meaning in Persian (the protocol's ``signature_meaning_translations``), its
  dates in both calendars when the reader prefers both, and its counts in Persian digits;
- counts, grades and randomization numbers a person reads are in Persian digits (the randomization confirmation,
  the participant page, the participants list, the adverse event pages);
- a participant id typed with Persian digits in a search box finds the participant.

Expected texts are read from the protocol file (an independent YAML read) and dates computed with jdatetime."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import jdatetime
import yaml

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.test_randomization_pages import as_role, post
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, screener, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import forms as forms_svc
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.safety import report_event
from trialwright.services.screening import screen
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
LATIN = re.compile(r"[0-9]")


def _persian(trial: Trial, *roles: Role, calendar: str = "jalali") -> None:
    for role in roles:
        set_preferences(trial.engine, who(trial, role).username, language="fa", calendar=calendar)


def _jalali(day: dt.date) -> str:
    """The Solar Hijri date as the registry prints it (``1400/01/30``), in Persian digits: jdatetime's own."""
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d").translate(FA)


def _testid(page: str, testid: str) -> str:
    """The text of the element with this ``data-testid`` (tags inside removed)."""
    inner = page.split(f'data-testid="{testid}"', 1)[1].split(">", 1)[1]
    depth, end = 0, 0
    for m in re.finditer(r"<(/?)([a-z0-9]+)[^>]*>", inner):
        if m.group(1):
            if depth == 0:
                end = m.start()
                break
            depth -= 1
        elif m.group(2) not in {"br", "input", "img"}:
            depth += 1
    return html.unescape(re.sub(r"<[^>]*>", "", inner[:end])).strip()


def _randomized(trial: Trial) -> tuple[str, str]:
    pid = enrolled_ten_days_ago(trial)
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    made = randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    return pid, made.preparation_code


SCIENTIFIC_FA = "کارآزمایی بالینی تصادفی دوسوکور کنترل‌شده با دارونما"


def _with_persian_scientific_title(doc: Any) -> None:
    doc["trial"]["titles"]["translations"]["fa"]["scientific"] = SCIENTIFIC_FA


def test_the_home_page_in_persian(database_url: str) -> None:
    trial = make_trial(database_url, load_protocol_text(mutated_text(_with_persian_scientific_title)))
    app = create_app(Settings(database_url=trial.url))
    _persian(trial, Role.STUDY_COORDINATOR)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        home = coord.get("/").text
    with as_role(app, Role.MONITOR) as monitor:
        english = monitor.get("/").text
    assert _testid(home, "scientific-title") == SCIENTIFIC_FA
    scientific = " ".join(RAW["trial"]["titles"]["scientific"].split())
    assert _testid(english, "scientific-title") == scientific
    # the masked parties in words, in the protocol's order
    words = {"participant": "شرکت‌کننده", "investigator": "پژوهشگر", "outcome_assessor": "ارزیاب پیامد"}
    assert _testid(home, "masked-parties") == ", ".join(words[m] for m in RAW["masking"]["masked"])
    assert _testid(english, "masked-parties") == ", ".join(m.replace("_", " ") for m in RAW["masking"]["masked"])
    assert _testid(home, "phase") == str(RAW["trial"]["phase"]).translate(FA)
    # the protocol version in Persian digits with the Persian decimal separator; the loader in words
    version = str(RAW["version"]["number"])
    row = _testid(home, "protocol-version")
    assert version.replace(".", "٫").translate(FA) in row and version not in row
    assert "(سامانه)" in row and "system" not in row
    assert "(system)" in _testid(english, "protocol-version")


def test_the_pharmacists_preparation_says_its_labels_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    _, code = _randomized(trial)
    _persian(trial, Role.UNBLINDED_PHARMACIST)
    attributes = {a["id"]: a for arm in RAW["arms"] for a in arm["intervention"]["preparation"]["attributes"]}
    with as_role(app, Role.UNBLINDED_PHARMACIST) as pharm:
        what = pharm.get(f"/pharmacy/{code}").text
        for a in attributes.values():
            if f'for="a-{a["id"]}"' in what:
                label = what.split(f'<label for="a-{a["id"]}">', 1)[1].split("</label>", 1)[0]
                assert label.startswith(a["translations"]["fa"]) and a["label"] not in what
        typed = {"a-product_lot": "L1", "a-volume_ml": "2.5"}
        if 'for="a-particles"' in what:
            typed["a-particles"] = "1000"
        assert post(pharm, f"/pharmacy/{code}", f"/pharmacy/{code}", **typed).status_code == 303
        record = pharm.get(f"/pharmacy/{code}").text
    volume = attributes["volume_ml"]
    assert f"<dt>{volume['translations']['fa']}</dt>" in record and volume["label"] not in record
    assert f'data-testid="recorded-volume_ml">۲٫۵ <bdi dir="ltr">{volume["unit"]}</bdi>' in record


def test_a_screenings_choice_is_said_by_its_persian_label(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    values = {**{k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}, "respiratory_support": "face_mask"}
    s = screen(trial.engine, screener(trial.engine), site="RAZ", screened_on=TODAY, values=values)
    _persian(trial, Role.STUDY_COORDINATOR)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(f"/screening/{s.id}").text
    fields = {f["id"]: f for f in RAW["eligibility"]["screening_fields"]}
    for field_id in ("sex", "respiratory_support"):
        f = fields[field_id]
        choice = next(c for c in f["choices"] if c["code"] == values[field_id])
        assert f"<td>{f['translations']['fa']}</td><td>{choice['translations']['fa']}</td>" in page


_VITALS = {"assessed_at": f"{TODAY.isoformat()}T00:00+03:30", "resp_rate": 26, "spo2": 90, "on_oxygen": False,
           "oxygen_device": "none", "systolic_bp": 105, "pulse": 115, "consciousness": "alert", "temperature": 38.5,
           "fio2": 0.21}  # fmt: skip


def _signed_forms(trial: Trial, pid: str) -> None:
    """Vitals and performance saved, completed and signed at baseline."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    forms = {"vitals": _VITALS, "performance": {"assessed_on": TODAY.isoformat(), "status": "3"}}
    for form_id, values in forms.items():
        forms_svc.save_form(trial.engine, coordinator, pid, "baseline", form_id, values)
        forms_svc.complete_form(trial.engine, coordinator, pid, "baseline", form_id)
        forms_svc.sign_form(trial.engine, who(trial, Role.INVESTIGATOR), pid, "baseline", form_id, password=PASSWORD)


def _choice_fa(form_id: str, field_id: str, code: str) -> str:
    form = next(f for f in RAW["forms"] if f["id"] == form_id)
    field = next(f for f in form["fields"] if f["id"] == field_id)
    return str(next(c for c in field["choices"] if str(c["code"]) == code)["translations"]["fa"])


def test_a_read_only_form_in_persian_words_digits_and_calendar(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    _signed_forms(trial, pid)
    _persian(trial, Role.MONITOR, Role.DATA_MANAGER)
    for role in (Role.MONITOR, Role.DATA_MANAGER):
        with as_role(app, role) as reader:
            vitals = reader.get(f"/participants/{pid}/visits/baseline/forms/vitals").text
            performance = reader.get(f"/participants/{pid}/visits/baseline/forms/performance").text
        assert _testid(vitals, "value-on_oxygen") == "خیر"
        assert _testid(vitals, "value-oxygen_device") == _choice_fa("vitals", "oxygen_device", "none")
        assert _testid(vitals, "value-consciousness") == _choice_fa("vitals", "consciousness", "alert")
        assert _testid(vitals, "value-temperature") == "۳۸٫۵" and _testid(vitals, "value-fio2") == "۰٫۲۱"
        assert _testid(vitals, "value-pulse") == "۱۱۵"
        # NEWS2 by hand (RCP 2017): respiration 26 -> 3, SpO2 90 on scale 1 -> 3, air 0, systolic 105 -> 1,
        # pulse 115 -> 2, alert 0, 38.5 °C -> 1: 10, "high" (>= 7), said in the catalog's Persian, never in English
        assert _testid(vitals, "derived-news2_band") == "بالا"
        assert _testid(vitals, "value-assessed_at").startswith(_jalali(TODAY) + " ۰۰:۰۰")
        assert _testid(performance, "value-assessed_on") == _jalali(TODAY)
        assert _testid(performance, "value-status") == _choice_fa("performance", "status", "3")
        header = performance.split('<header class="card">', 1)[1].split("</header>", 1)[0]
        text = html.unescape(re.sub(r"<[^>]*>", "", header))  # the signature's time, then the version: spaced
        assert "(Asia/Tehran) · " in text and ")·" not in text


def test_the_casebook_says_a_signatures_meaning_and_dates_as_the_reader_prefers(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    _signed_forms(trial, pid)
    _persian(trial, Role.INVESTIGATOR, calendar="both")
    with as_role(app, Role.INVESTIGATOR) as inv:
        book = inv.get(f"/data/casebook/{pid}").text
    meaning_fa = " ".join(RAW["signature_meaning_translations"]["fa"].split())
    signatures = [_testid(part, "signature") for part in book.split('data-testid="casebook-')[1:] if
                  'data-testid="signature"' in part.split("</section>", 1)[0]]  # fmt: skip
    assert len(signatures) == 2
    assert all(" ".join(s.split()).endswith(meaning_fa) for s in signatures), signatures
    assert "legally binding" not in book
    both = f"{TODAY.isoformat().translate(FA)}, {_jalali(TODAY)}"
    assert _testid(book, "value-baseline-performance-assessed_on") == both
    assert _testid(book, "value-baseline-vitals-on_oxygen") == "خیر"
    counts = _testid(book, "casebook-counts")
    assert counts and not LATIN.search(counts) and "۰" in counts
    assert "(Asia/Tehran)·" not in re.sub(r"<[^>]*>", "", book)


def test_counts_grades_and_numbers_in_persian_digits(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    pid = enrolled_ten_days_ago(trial)
    _persian(trial, Role.INVESTIGATOR, Role.STUDY_COORDINATOR)
    with as_role(app, Role.INVESTIGATOR) as inv:
        asked = post(inv, f"/participants/{pid}/randomize", f"/participants/{pid}")
    target = _testid(asked.text, "target")
    assert "۱" in target and str(RAW["sample_size"]["target"]).translate(FA) in target
    assert not LATIN.search(target)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    forms_svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "Please check the consent.")
    event = report_event(trial.engine, coordinator, pid, {
        "term": "Headache", "onset": TODAY.isoformat(), "grade": 2, "serious": False, "causality": "unlikely",
        "action_taken": "not_applicable", "outcome": "recovering", "aware_at": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        participant = coord.get(f"/participants/{pid}").text
        listing = coord.get("/participants").text
        ae = coord.get(f"/adverse-events/{event.ae_number}").text
        new_ae = coord.get(f"/participants/{pid}/adverse-events/new").text
    assert _testid(participant, "randomization-number") == "۱"
    assert re.search(rf'href="/queries\?participant={pid}">۱ [^<0-9]+</a>', participant)
    assert "درجه ۲" in _testid(participant, f"ae-{event.ae_number}")
    row = listing.split(f'href="/participants/{pid}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>۱</td>" in row
    assert 'data-testid="report-0"' in ae and "<td>۲</td>" in ae.split('data-testid="report-0"', 1)[1].split("</tr>")[0]
    grades = re.search(r'<select id="grade" name="grade">(.*?)</select>', new_ae, re.S)
    assert grades is not None and [g for g in re.findall(r">([^<]*)</option>", grades.group(1))] == [
        "—", "۱", "۲", "۳", "۴", "۵"]  # fmt: skip
    for x in re.findall(r"\(([^()]*)\)</option>", new_ae):
        assert not LATIN.search(x), x


def test_a_participant_id_typed_in_persian_digits_is_found(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    _persian(trial, Role.INVESTIGATOR, Role.MONITOR)
    typed = pid.translate(FA)
    arabic = pid.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert typed != pid
    forms_svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "Please check the consent.")
    with as_role(app, Role.INVESTIGATOR) as inv:
        for text in (typed, arabic):
            matrix = inv.get("/data/matrix", params={"participant": text}).text
            assert f'data-participant="{pid}"' in matrix
            assert f'href="/participants/{pid}"' in inv.get("/participants", params={"search": text}).text
            assert f'href="/participants/{pid}"' in inv.get("/queries", params={"participant": text}).text
            assert pid in inv.get("/screening", params={"participant": text}).text.split("<tbody", 1)[1]
        # the status matrix's query flag and the casebook link are two words, not one
        flag = matrix.split('data-testid="participant-queries">', 1)[1].split("</a>", 1)[1]
        assert flag.startswith(' <a class="casebook-link"'), flag[:80]
    with as_role(app, Role.MONITOR) as monitor:
        trail = monitor.get("/admin/audit", params={"participant": typed}).text
        status = trail.split('role="status">', 1)[1].split("</p>", 1)[0]
    assert pid in trail.split("<table", 1)[1]
    assert not re.search(r"\.[^\s<]", re.sub(r"<[^>]*>", "", status)), status
