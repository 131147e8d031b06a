"""Every consent record in the ODM export and back (both databases), not only the one a participant was enrolled on.

A trial whose protocol has two consent form versions (1.0, and 2.0 in use since 2022), through the services:

| screening | consent records, by id                                                   | enrolled |
|-----------|--------------------------------------------------------------------------|----------|
| RAZ-S0001 | a representative consents (witnessed); the participant, having regained  | RAZ-001  |
|           | capacity, decides to continue                                            |          |
| RAZ-S0002 | the participant consents on 1.0; re-consents on the new version 2.0      | RAZ-002  |
|           | (today; every other record is of the screening day in 2021, on 1.0)      |          |
| RAZ-S0003 | the participant refuses at screening                                     | never    |
| RAZ-S0004 | a representative consents; the participant, having regained capacity,   | RAZ-003  |
|           | withdraws (withdrawn from every scope)                                   |          |

In the file: the consent each participant was enrolled on stays on ``tw:Enrolment`` (with its id, ``ConsentId``); every
other record is a ``tw:Consent`` with every column of its row (``Id``, ``FormVersion``, ``GivenBy``, representative and
relationship, ``Witness``, ``ObtainedBy``, ``ObtainedAt``, ``Kind``, ``Decision``, ``RecordedAt``, ``RecordedBy``), in
the participant's ``tw:Enrolment``, or, for a screening never enrolled (the refusal), in a ``tw:Screening`` in
``ClinicalData`` with the screening's number, date and values. The file is valid against CDISC's ODM 1.3.2 schema with
the extension and names no arm. Export -> import -> export is byte-identical, and the ``consents`` table comes back row
for row, ids included.

Refused, naming the element or attribute and the rule, nothing written:

| the file edited                                        | refused at                                            |
|--------------------------------------------------------|-------------------------------------------------------|
| a consent's ObtainedAt that is not a time              | tw:Consent[1]/@ObtainedAt: ... is not a date and time |
| a consent's RecordedAt at +03:30 (the same instant)    | tw:Consent[1]/@RecordedAt: not as the export writes   |
| a consent without RecordedBy (the rest there)          | tw:Consent[1]/@RecordedBy: required                   |
| a representative's consent without the relationship    | (on tw:Enrolment) @RepresentativeRelationship         |
| a regained-capacity decision by a representative       | tw:Consent[1]/@GivenBy                                |
| a refusal with the decision continue                   | tw:Consent[1]/@Decision                               |
| a form version the protocol does not have              | tw:Consent[1]/@FormVersion                            |
| two records with the same id                           | @Id: consent record N appears twice                   |
| an attribute the export never writes                   | tw:Consent[1]/@Note: the export never writes it       |
| the refused screening renamed to an enrolled one's     | tw:Screening[1]/@ScreeningNumber: ... participant     |
| the refused screening at a site the protocol lacks     | tw:Screening[1]/@ScreeningNumber: not a screening ... |
| a tw:Consent left without ids in the file (ConsentId   | @Id: present, but .../@ConsentId is absent            |
| taken off every tw:Enrolment)                          |                                                       |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.spec.exports.test_odm_queries import _export, _taken, _valid
from tests.spec.protocol.conftest import mutated_text
from tests.spec.randomization.test_randomize_service import TYPED
from tests.trialfixtures import Trial, first_protocol, make_trial, second_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import ODM_NS, TW_NS, OdmExporter
from trialwright.protocol.loader import LoadedProtocol, load_protocol_text
from trialwright.services import audit
from trialwright.services.exports import export_source
from trialwright.services.odm_import import NOT_RESTORED, OdmImportError, import_odm
from trialwright.services.replay import replay
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import consents, screenings, withdrawals

ODM, TW = f"{{{ODM_NS}}}", f"{{{TW_NS}}}"
NEW_VERSION_FROM = dt.date(2022, 1, 1)
#: The screenings and every record on 1.0 are of a day 1.0 was in use (a consent on 1.0 once 2.0 is in use is refused).
SCREENED_AT = dt.datetime(2021, 6, 1, 8, 0, tzinfo=dt.UTC)


def _two_versions() -> LoadedProtocol:
    def amend(doc: Any) -> None:
        doc["consent_versions"].append({"version": "2.0", "effective_from": NEW_VERSION_FROM.isoformat(),
                                        "languages": ["fa"]})  # fmt: skip

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


def _consents(trial: Trial) -> None:
    """The four screenings of the module's table, through the services."""
    e, coordinator = trial.engine, who(trial, Role.STUDY_COORDINATOR)
    now = dt.datetime.now(dt.UTC)
    lar = {"given_by": "representative", "representative_name": "Maryam Rahimi",
           "representative_relationship": "daughter", "witness": 'Nurse "S." & <ward 3>'}  # fmt: skip

    def consent(screening: int, minutes: int, **given: Any) -> None:
        given = {"form_version": "1.0", "given_by": "participant", "obtained_by": "Dr K", **given}
        # each record on the version in use when it was obtained: 1.0 on the screening day, 2.0 today
        at = (now if given["form_version"] == "2.0" else SCREENED_AT) - dt.timedelta(minutes=minutes)
        record_consent(e, coordinator, screening, obtained_at=at, **given)

    screened_on = SCREENED_AT.date()
    one = screen(e, coordinator, site="RAZ", screened_on=screened_on, values=TYPED).id
    consent(one, 50, **lar)
    enrol(e, coordinator, one)
    consent(one, 40, kind="regained_capacity", decision="continue", obtained_by="Dr M")
    two = screen(e, coordinator, site="RAZ", screened_on=screened_on, values=TYPED).id
    consent(two, 45)
    enrol(e, coordinator, two)
    consent(two, 30, form_version="2.0", kind="reconsent", witness="Nurse N")
    three = screen(e, coordinator, site="RAZ", screened_on=screened_on, values=TYPED).id
    consent(three, 35, decision="refuse")
    four = screen(e, coordinator, site="RAZ", screened_on=screened_on, values=TYPED).id
    consent(four, 25, **lar)
    enrol(e, coordinator, four)
    consent(four, 20, kind="regained_capacity", decision="withdraw")


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    """The consents table whole, ids included, each with its screening's number rather than its database id."""
    c, s = consents.c, screenings.c
    query = (
        select(s.site, s.number, *(col for col in c if col.name != "screening_id"))
        .join(screenings, s.id == c.screening_id)
        .order_by(c.id)
    )
    with session_scope(engine) as session:
        return [tuple(r) for r in session.execute(query)]


def _withdrawals(engine: Engine) -> list[tuple[Any, ...]]:
    with session_scope(engine) as session:
        return [tuple(r) for r in session.execute(select(*(c for c in withdrawals.c if c.name != "id")))]


def test_every_consent_record_is_in_the_file_valid_and_naming_no_arm(trial: Trial, tmp_path: Path) -> None:
    _consents(trial)
    path = _export(trial, tmp_path / "odm")
    assert _valid(path, tmp_path) == []
    text = path.read_text(encoding="utf-8")
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    rows = {r[2]: r for r in _rows(trial.engine)}  # by id
    assert len(rows) == 7
    names = [col.name for col in consents.c if col.name != "screening_id"]
    enrolled_on = {}
    written: dict[int, dict[str, str]] = {}
    for subject in root.iter(f"{ODM}SubjectData"):
        enrolment = subject.find(f"{TW}Enrolment")
        assert enrolment is not None
        enrolled_on[subject.get("SubjectKey")] = int(enrolment.get("ConsentId", "0"))
        written |= {int(c.get("Id", "0")): dict(c.attrib) for c in enrolment.findall(f"{TW}Consent")}
    clinical = root.find(f"{ODM}ClinicalData")
    assert clinical is not None
    (refused,) = clinical.findall(f"{TW}Screening")
    assert refused.get("ScreeningNumber") == "RAZ-S0003"
    assert refused.get("ScreenedOn") == next(root.iter(f"{TW}Enrolment")).get("ScreenedOn")  # all screened that day
    written |= {int(c.get("Id", "0")): dict(c.attrib) for c in refused.findall(f"{TW}Consent")}
    assert enrolled_on == {"RAZ-001": 1, "RAZ-002": 3, "RAZ-003": 6}
    assert sorted(written) == [2, 4, 5, 7]  # every other record, once
    attrs = {"form_version": "FormVersion", "given_by": "GivenBy", "representative_name": "RepresentativeName",
             "representative_relationship": "RepresentativeRelationship", "witness": "Witness",
             "obtained_by": "ObtainedBy", "kind": "Kind", "decision": "Decision",
             "recorded_by": "RecordedBy"}  # fmt: skip
    for n, attributes in written.items():
        row = dict(zip(names, rows[n][2:], strict=True))
        for column, name in attrs.items():
            assert attributes.get(name) == row[column], (n, name)
        assert dt.datetime.fromisoformat(attributes["ObtainedAt"]) == row["obtained_at"]
        assert dt.datetime.fromisoformat(attributes["RecordedAt"]) == row["recorded_at"]
    assert [(written[n]["Kind"], written[n]["Decision"]) for n in (2, 4, 5, 7)] == [
        ("regained_capacity", "continue"), ("reconsent", "consent"), ("initial", "refuse"),
        ("regained_capacity", "withdraw"),
    ]  # fmt: skip
    assert written[4]["FormVersion"] == "2.0"
    tags = [c.tag for c in clinical]
    assert tags.index(f"{TW}Screening") > max(i for i, t in enumerate(tags) if t == f"{ODM}SubjectData")
    for arm in first_protocol().protocol.arms:  # the blind: no arm code or name
        assert not re.search(rf"\b{arm.code}\b", text) and arm.name not in text, arm.code


def test_export_import_export_is_byte_identical_and_every_consent_row_comes_back_with_its_id(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    _consents(trial)
    path = _export(trial, tmp_path / "odm")
    report = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert report.byte_identical, report.reexport_difference
    assert (report.consents, report.screenings) == (7, 1)
    assert "consents:       7" in report.summary()
    assert _rows(target.engine) == _rows(trial.engine)
    assert _withdrawals(target.engine) == _withdrawals(trial.engine)
    made = dataclasses.replace(export_source(target.engine, who(target, Role.DATA_MANAGER)), taken_at=_taken(path))
    (tmp_path / "again").mkdir()
    again = OdmExporter().write(made, tmp_path / "again")[0]
    assert again.read_bytes() == path.read_bytes()
    chain = audit.verify(target.engine)
    assert chain.ok, chain.message
    replayed = replay(target.engine)
    assert replayed.ok, replayed.message
    # a consent recorded in the imported trial takes the next id, after the source's
    record_consent(target.engine, who(target, Role.STUDY_COORDINATOR), 1, form_version="2.0", given_by="participant",
                   obtained_by="Dr K", obtained_at=dt.datetime.now(dt.UTC), kind="reconsent")  # fmt: skip
    assert [r[2] for r in _rows(target.engine)] == [1, 2, 3, 4, 5, 6, 7, 8]
    text = " ".join(NOT_RESTORED)
    assert "consent records other than the one" not in text


def _edit(pattern: str, replacement: str | Callable[[re.Match[str]], str], count: int = 1) -> Callable[[str], str]:
    def edit(text: str) -> str:
        changed, n = re.subn(pattern, replacement, text, count=count)
        assert n, f"the export has no {pattern!r} to edit"
        return changed

    return edit


def _tehran(m: re.Match[str]) -> str:
    moment = dt.datetime.fromisoformat(m.group(2)).astimezone(dt.timezone(dt.timedelta(hours=3, minutes=30)))
    return f'{m.group(1)}"{moment.isoformat()}"'


REFUSED = [
    ("ObtainedAt not a time", _edit(r'(<tw:Consent [^>]*ObtainedAt=)"[^"]*"', r'\1"yesterday"'),
     ["tw:Consent[1]/@ObtainedAt: 'yesterday' is not a date and time"]),
    ("RecordedAt at +03:30", _edit(r'(<tw:Consent [^>]*RecordedAt=)"([^"]*)"', _tehran),
     ["tw:Consent[1]/@RecordedAt", "is not written as the export writes a time"]),
    ("no RecordedBy", _edit(r'(<tw:Consent [^>]*) RecordedBy="[^"]*"', r"\1"), ["tw:Consent[1]/@RecordedBy: required"]),
    ("regained capacity by a representative", _edit(r'(<tw:Consent [^>]*)GivenBy="participant"',
                                                    r'\1GivenBy="representative" RepresentativeName="A" '
                                                    r'RepresentativeRelationship="son"'),
     ["tw:Consent[1]/@GivenBy: a participant who regained capacity decides for themself"]),
    ("a refusal that continues",
     _edit(r'(<tw:Consent [^>]*Kind="initial" )Decision="refuse"', r'\1Decision="continue"'),
     ["tw:Screening[1]/tw:Consent[1]/@Decision: for initial must be one of consent, refuse"]),
    ("unknown form version", _edit(r'(<tw:Consent [^>]*)FormVersion="[^"]*"', r'\1FormVersion="9.9"'),
     ["tw:Consent[1]/@FormVersion: unknown consent form version '9.9'"]),
    ("consent before its screening", _edit(r'(<tw:Consent [^>]*ObtainedAt=)"[^"]*"', r'\1"2021-05-02T12:00:00+00:00"'),
     ["tw:Consent[1]/@ObtainedAt: 2021-05-02 at the site is before the screening date",
      "(the rule recording it applies)"]),
    ("the same id twice", _edit(r'(<tw:Consent )Id="[^"]*"', r'\1Id="1"'), ["@Id: consent record 1 appears twice"]),
    ("an attribute never written", _edit(r"<tw:Consent ", '<tw:Consent Note="x" '),
     ["tw:Consent[1]/@Note: the export never writes it"]),
    ("the refusal's screening an enrolled one's", _edit(r'ScreeningNumber="RAZ-S0003"', 'ScreeningNumber="RAZ-S0001"'),
     ["tw:Screening[1]/@ScreeningNumber: RAZ-S0001 is the screening of a participant of the file"]),
    ("the refusal's screening at no site", _edit(r'ScreeningNumber="RAZ-S0003"', 'ScreeningNumber="XYZ-S0003"'),
     ["tw:Screening[1]/@ScreeningNumber: 'XYZ-S0003' is not a screening of a site of the protocol"]),
    ("no ConsentId anywhere", _edit(r' ConsentId="[^"]*"', "", count=0),
     ["tw:Consent[1]/@Id: present, but", "/tw:Enrolment/@ConsentId is absent", "some but not all is refused"]),
]  # fmt: skip


def test_what_cannot_be_restored_exactly_is_refused_by_name_and_nothing_is_written(
    trial: Trial, tmp_path: Path, target: Trial
) -> None:
    _consents(trial)
    text = _export(trial, tmp_path / "odm").read_text(encoding="utf-8")
    manager = who(target, Role.DATA_MANAGER)
    before = (_rows(target.engine), audit.count(target.engine))
    for case, change, named in REFUSED:
        bad = tmp_path / f"{case.replace(' ', '-')}.odm.xml"
        bad.write_text(change(text), encoding="utf-8")
        with pytest.raises(OdmImportError) as refused:
            import_odm(target.engine, manager, bad)
        for words in named:
            assert words in str(refused.value), (case, str(refused.value))
        assert (_rows(target.engine), audit.count(target.engine)) == before, case


def test_the_consent_records_an_import_keeps_are_read_by_blinded_roles_as_kept() -> None:
    """A screening never enrolled and a participant's other consents, as ``import.odm`` keeps them, hold screening
    values and consent details taken before any randomization: no arm, so a blinded reader sees them unmasked
    (review: they were unclassified, so masked)."""
    import json as _json

    from trialwright.domain.audit_masking import mask_value

    raw = _json.dumps({"screening": {"screened_on": "2026-12-01", "values": {"age": 61}},
                       "consents": [{"id": 3, "decision": "refuse", "given_by": "participant"}]})  # fmt: skip
    assert mask_value("import.odm", "new_value", raw) == raw
