"""A later consent form version supersedes the earlier one in every language, so it must exist in each of them.

A consent record does not hold the language its form was read in. A version is in use until a later one comes in
(``domain.consent.form_version_problem``, ``test_consent_version_in_use.py``), so with 1.0 in ``[fa, en]`` and 2.0
in ``[fa]`` an English speaker's consent on 1.0 after 2.0's date was refused although no English 2.0 exists: the
rule left them no form. ``protocol check`` now refuses that protocol, naming file, line, field and rule:

| consent_versions                                   | protocol check                                          |
|----------------------------------------------------|---------------------------------------------------------|
| 1.0 ``[fa, en]``, then 2.0 ``[fa]``                | refused at ``consent_versions[1].languages``: drops en  |
| 1.0 ``[fa, en]``, then 2.0 ``[fa, en]``            | accepted; a consent on 1.0 after 2.0's date refused,    |
|                                                    | on 2.0 accepted (both databases)                        |
| 1.0 ``[fa]``, then 2.0 ``[fa, en]`` (adds one)     | accepted                                                |

Given a consent's language (``language``: no consent records one yet, so only the rule itself is asked here), a later
version supersedes only within that language: 1.0 stays in use for English where 2.0 is Persian only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.spec.protocol.conftest import mutated_text
from tests.spec.screening.test_screening_consent_enrolment import TYPED
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import ProtocolError, load_protocol
from trialwright.protocol.loader import load_protocol_text
from trialwright.services.screening import ScreeningError, record_consent, screen

TEHRAN = ZoneInfo("Asia/Tehran")


def _versions(first: list[str], second: list[str]) -> str:
    """The first trial's protocol with consent form 1.0 in ``first`` and 2.0 (from 2026-03-01) in ``second``."""

    def amend(doc: Any) -> None:
        doc["consent_versions"][0]["languages"] = first
        doc["consent_versions"].append({"version": "2.0", "effective_from": "2026-03-01", "languages": second})

    return mutated_text(amend)


def test_a_later_version_that_drops_a_language_is_refused_naming_file_line_field_and_rule(tmp_path: Path) -> None:
    path = tmp_path / "protocol.yaml"
    text = _versions(["fa", "en"], ["fa"])
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    rows = text.splitlines()
    second = next(n for n, row in enumerate(rows) if row.strip() == "- version: '2.0'")
    line = next(n for n, row in enumerate(rows[second:], start=second + 1) if row.strip() == "languages:")
    said = [m for m in str(refused.value).splitlines() if "consent_versions[1].languages" in m]
    assert said == [
        f"{path}:{line}: consent_versions[1].languages: consent version 2.0 drops en of 1.0: a later version "
        "supersedes the earlier one in every language (a consent does not record its language), so from 2026-03-01 "
        "no en form would be in use; list en in 2.0's languages (the form translated)"
    ]


def test_a_later_version_in_every_language_of_the_earlier_one_is_accepted() -> None:
    assert [v.languages for v in load_protocol_text(_versions(["fa", "en"], ["fa", "en"])).protocol.consent_versions] \
        == [["fa", "en"], ["fa", "en"]]  # fmt: skip
    assert load_protocol_text(_versions(["fa"], ["fa", "en"])).protocol.consent_versions[1].languages == ["fa", "en"]


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url, load_protocol_text(_versions(["fa", "en"], ["fa", "en"])))
    yield t
    t.engine.dispose()


def test_with_both_languages_kept_the_earlier_version_is_superseded_for_every_consent(trial: Trial) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    s = screen(trial.engine, coordinator, site="RAZ", screened_on=dt.date(2026, 2, 20), values=TYPED).id
    at = dt.datetime(2026, 3, 4, 10, 0, tzinfo=TEHRAN)
    with pytest.raises(ScreeningError, match=r"^form_version: 1\.0 was superseded by 2\.0 from 2026-03-01"):
        record_consent(trial.engine, coordinator, s, form_version="1.0", given_by="participant", obtained_by="Dr K",
                       obtained_at=at)  # fmt: skip
    record_consent(trial.engine, coordinator, s, form_version="2.0", given_by="participant", obtained_by="Dr K",
                   obtained_at=at)  # fmt: skip


def test_given_its_language_a_consent_is_superseded_only_within_that_language() -> None:
    from trialwright.domain.consent import form_version_problem  # the rule's home (it lived in services)

    # The protocol check's refusal aside (built past it): 1.0 in Persian and English, 2.0 in Persian only.
    protocol = load_protocol_text(_versions(["fa", "en"], ["fa", "en"])).protocol
    first, second = protocol.consent_versions
    protocol = protocol.model_copy(
        update={"consent_versions": [first, second.model_copy(update={"languages": ["fa"]})]}
    )
    at = dt.datetime(2026, 3, 4, 10, 0, tzinfo=TEHRAN)

    def problem(version: str, language: str | None) -> str | None:
        return form_version_problem(protocol, site="RAZ", form_version=version, obtained_at=at, language=language)

    assert problem("1.0", "en") is None  # no English 2.0: 1.0 stays in use for English
    assert problem("1.0", "fa") == (
        "form_version: 1.0 was superseded by 2.0 from 2026-03-01 (consent obtained on 2026-03-04 at the site); use 2.0"
    )
    assert problem("2.0", "en") == "form_version: 2.0 does not exist in en (its languages: fa)"
    assert problem("2.0", "fa") is None
    assert problem("1.0", None) == problem("1.0", "fa")  # no language recorded: superseded in every language
