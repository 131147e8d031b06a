"""Consent is obtained on the consent form version in use that day at the site (both databases).

A trial whose protocol has two consent form versions: 1.0 (from 2021-03-17) and 2.0 (from 2026-03-01). A version is
in use from its ``effective_from`` until the next version's (versions are ordered by ``effective_from``; ``protocol
check`` refuses two on one day). Dates are the site's local dates (RAZ keeps Tehran's, UTC+03:30):

| record            | version | obtained at the site | what happens                                           |
|-------------------|---------|----------------------|--------------------------------------------------------|
| initial consent   | 1.0     | 2026-03-04 10:00     | refused: form_version: 1.0 was superseded by 2.0 from  |
|                   |         |                      | 2026-03-01 (consent obtained on 2026-03-04 at the      |
|                   |         |                      | site); use 2.0                                         |
| initial consent   | 1.0     | 2026-03-01 00:30     | refused (still 2026-02-28 in UTC: the site's day rules) |
| initial consent   | 1.0     | 2026-02-28 23:30     | accepted (the day before)                              |
| re-consent        | 1.0     | 2026-03-04 10:00     | refused (superseded), nothing written                  |
| re-consent        | 2.0     | 2026-03-04 10:00     | accepted                                               |

The ODM import checks each record at its own date by the same rule: the file of this trial (an enrolment consented
on 1.0 the day before 2.0, re-consent on 2.0) is imported whole; the re-consent edited to say 1.0 is refused at its
``tw:Consent/@FormVersion``, and so is the enrolment's consent moved after 2.0 came in (``@ConsentFormVersion``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.spec.exports.test_odm_queries import _export
from tests.spec.protocol.conftest import mutated_text
from tests.spec.screening.test_screening_consent_enrolment import TYPED
from tests.trialfixtures import Trial, make_trial, second_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import ProtocolError
from trialwright.protocol.loader import LoadedProtocol, load_protocol_text
from trialwright.services import audit
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.screening import ScreeningError, enrol, record_consent, screen
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import consents
from trialwright.web.routes.screening import INPUTS
from trialwright.web.wording import page_words, say

TEHRAN = ZoneInfo("Asia/Tehran")
NEW_VERSION_FROM = dt.date(2026, 3, 1)


def _at(text: str) -> dt.datetime:
    """A time on the site's clock (Tehran)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=TEHRAN)


def _two_versions() -> LoadedProtocol:
    def amend(doc: Any) -> None:
        doc["consent_versions"].append({"version": "2.0", "effective_from": NEW_VERSION_FROM.isoformat(),
                                        "languages": ["fa"], "reconsent_required": True})  # fmt: skip

    return load_protocol_text(mutated_text(amend))


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url, _two_versions())
    yield t
    t.engine.dispose()


@pytest.fixture
def target(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Trial]:
    """A fresh trial of the same protocol on a second database of the same kind."""
    with second_trial(tmp_path, database_url, request, _two_versions()) as fresh:
        yield fresh


def _consent(trial: Trial, screening: int, version: str, at: str, **more: Any) -> None:
    record_consent(trial.engine, who(trial, Role.STUDY_COORDINATOR), screening, form_version=version,
                   given_by="participant", obtained_by="Dr K", obtained_at=_at(at), **more)  # fmt: skip


def _written(trial: Trial) -> tuple[int, int]:
    with session_scope(trial.engine) as session:
        rows = session.execute(select(func.count()).select_from(consents)).scalar_one()
    return rows, audit.count(trial.engine)


def _screened(trial: Trial) -> int:
    return screen(trial.engine, who(trial, Role.STUDY_COORDINATOR), site="RAZ", screened_on=dt.date(2026, 2, 20),
                  values=TYPED).id  # fmt: skip


def test_a_consent_on_a_superseded_version_is_refused_and_the_day_before_accepted(trial: Trial) -> None:
    s = _screened(trial)
    before = _written(trial)
    with pytest.raises(ScreeningError) as refused:
        _consent(trial, s, "1.0", "2026-03-04T10:00")
    assert str(refused.value) == ("form_version: 1.0 was superseded by 2.0 from 2026-03-01 (consent obtained on "
                                  "2026-03-04 at the site); use 2.0")  # fmt: skip
    with pytest.raises(ScreeningError, match=r"superseded by 2\.0 from 2026-03-01 \(consent obtained on 2026-03-01 "):
        _consent(trial, s, "1.0", "2026-03-01T00:30")  # 2026-02-28 21:00 UTC: the site's day decides
    assert _written(trial) == before  # nothing written
    _consent(trial, s, "1.0", "2026-02-28T23:30")
    assert _written(trial)[0] == before[0] + 1


def test_a_re_consent_on_the_new_version_is_accepted_and_on_the_old_one_refused(trial: Trial) -> None:
    s = _screened(trial)
    _consent(trial, s, "1.0", "2026-02-28T23:30")
    enrol(trial.engine, who(trial, Role.STUDY_COORDINATOR), s)
    before = _written(trial)
    with pytest.raises(ScreeningError, match=r"^form_version: 1\.0 was superseded by 2\.0 from 2026-03-01"):
        _consent(trial, s, "1.0", "2026-03-04T10:00", kind="reconsent")
    assert _written(trial) == before
    _consent(trial, s, "2.0", "2026-03-04T10:00", kind="reconsent")
    assert _written(trial)[0] == before[0] + 1


def test_the_odm_import_checks_each_record_at_its_own_date(trial: Trial, target: Trial, tmp_path: Path) -> None:
    s = _screened(trial)
    _consent(trial, s, "1.0", "2026-02-28T23:30")  # 1.0 in use that day, 2.0 the next
    enrol(trial.engine, who(trial, Role.STUDY_COORDINATOR), s)
    _consent(trial, s, "2.0", "2026-03-04T10:00", kind="reconsent")
    text = _export(trial, tmp_path / "odm").read_text(encoding="utf-8")
    manager = who(target, Role.DATA_MANAGER)
    before = _written(target)
    reconsent = 'FormVersion="2.0"'
    assert text.count(reconsent) == 1
    moved = 'ConsentedAt="2026-02-28T20:00:00+00:00"'
    assert text.count(moved) == 1
    for case, edited, named in [
        ("the re-consent said to be on 1.0", text.replace(reconsent, 'FormVersion="1.0"'),
         "tw:Consent[1]/@FormVersion: 1.0 was superseded by 2.0 from 2026-03-01 (consent obtained on 2026-03-04 at "
         "the site); use 2.0"),
        ("the enrolment's consent moved after 2.0 came in",
         text.replace(moved, 'ConsentedAt="2026-03-02T20:00:00+00:00"'),
         "tw:Enrolment/@ConsentFormVersion: 1.0 was superseded by 2.0 from 2026-03-01 (consent obtained on 2026-03-02 "
         "at the site); use 2.0"),
    ]:  # fmt: skip
        bad = tmp_path / f"{len(case)}.odm.xml"
        bad.write_text(edited, encoding="utf-8")
        with pytest.raises(OdmImportError) as refused:
            import_odm(target.engine, manager, bad)
        assert named in str(refused.value), (case, str(refused.value))
        assert _written(target) == before, case
    good = tmp_path / "good.odm.xml"
    good.write_text(text, encoding="utf-8")
    report = import_odm(target.engine, manager, good)
    assert report.consents == 2 and report.byte_identical, report.reexport_difference


def test_protocol_check_refuses_two_consent_versions_from_one_day() -> None:
    def same_day(doc: Any) -> None:
        first = doc["consent_versions"][0]["effective_from"]
        doc["consent_versions"].append({"version": "1.1", "effective_from": first, "languages": ["fa"]})

    with pytest.raises(ProtocolError) as refused:
        load_protocol_text(mutated_text(same_day))
    assert ("consent versions 1.0 and 1.1 are both effective from 2021-03-17: one version is in use on a day"
            in str(refused.value))  # fmt: skip


def test_the_refusal_is_said_in_the_pages_language() -> None:
    message = ("form_version: 1.0 was superseded by 2.0 from 2026-03-01 (consent obtained on 2026-03-04 at the site); "
               "use 2.0")  # fmt: skip
    protocol = _two_versions().protocol
    (persian,) = say([message], page_words(protocol, "fa", *INPUTS), "fa")
    assert re.search("[\u0600-\u06ff]", persian.partition(": ")[2]) and "superseded" not in persian, persian
    assert all(part in persian for part in ("1.0", "2.0", "2026-03-01", "2026-03-04")), persian
    (english,) = say([message], page_words(protocol, "en", *INPUTS), "en")
    assert english == "Consent form version: " + message.partition(": ")[2]
