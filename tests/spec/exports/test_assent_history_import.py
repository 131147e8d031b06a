"""The ODM export and import of a consent recorded when the screening's age was different (both databases).

The first protocol given ``eligibility.assent`` from 18 years (consent from 21). RAZ-S0001, screened at 17, gets a
representative's consent with no assent (none sought at 17); the age is then corrected to 19 with the consent
recorded again with the child's assent (``update_screening``'s ``consent``), and the participant is enrolled. Every
record met the rule when it was recorded. RAZ-S0002, screened at 17, has a representative's refusal and is never
enrolled. The export writes on each consent record what was in force when it was recorded
(``ProtocolVersionInForce``, ``AgeInForce``, from the audit trail), and the import checks each record against it:

| the file                                                          | import                                          |
|-------------------------------------------------------------------|-------------------------------------------------|
| as exported (the first record: 17; the re-consent: 19)            | imports; both records restored                  |
| the first record's AgeInForce changed to 19                       | refused naming its @Assent and the rule         |
| the first record's ProtocolVersionInForce another version         | refused naming @ProtocolVersionInForce          |
| neither attribute anywhere (a file from an older export)          | refused naming @ProtocolVersionInForce and the  |
|                                                                   | rule (the age may have been corrected since)    |
| neither attribute on RAZ-S0002's refusal only (the age decides    | imports: checked against the file's values, as  |
| nothing for a representative's refusal)                           | before                                          |

The file stays valid by CDISC's ODM schema with trialwright's extension.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import fresh_database
from tests.spec.exports.test_assent_exports import _with_assent
from tests.spec.exports.test_odm_queries import _valid
from tests.spec.forms.conftest import earlier_today
from tests.spec.screening.assent_fixtures import GIVEN, LAR
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import TW_NS, OdmExporter
from trialwright.services.exports import export_source
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.screening import enrol, record_consent, screen, update_screening
from trialwright.store.screening_tables import consents

TW = f"{{{TW_NS}}}"


@pytest.fixture
def exported(database_url: str, tmp_path: Path) -> Iterator[tuple[Trial, Path]]:
    source = make_trial(database_url, _with_assent())
    try:
        coordinator, investigator = who(source, Role.STUDY_COORDINATOR), who(source, Role.INVESTIGATOR)
        sid = screen(source.engine, coordinator, site="RAZ", screened_on=TODAY, values={**TYPED, "age": 17}).id
        record_consent(source.engine, investigator, sid, **LAR, obtained_at=earlier_today(30))
        at = earlier_today(10)
        update_screening(source.engine, investigator, sid, values={"age": 19}, reason="typed wrong",
                         consent={**LAR, "obtained_at": at, "kind": "reconsent", **GIVEN, "assent_obtained_at": at})
        assert enrol(source.engine, coordinator, sid).participant is not None
        refused = screen(source.engine, coordinator, site="RAZ", screened_on=TODAY, values={**TYPED, "age": 17}).id
        record_consent(source.engine, investigator, refused, **LAR, obtained_at=earlier_today(20), decision="refuse")
        folder = tmp_path / "odm"
        folder.mkdir()
        OdmExporter().write(export_source(source.engine, who(source, Role.DATA_MANAGER)), folder)
        (path,) = [p for p in folder.iterdir() if p.name.endswith(".xml") and "define" not in p.name]
        yield source, path
    finally:
        source.engine.dispose()


def _records(path: Path) -> list[ET.Element]:
    """Every consent record of the file in order: a participant's tw:Enrolment and tw:Consent, a tw:Screening's."""
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    return [e for e in root.iter() if e.tag in (f"{TW}Enrolment", f"{TW}Consent")]


def _import(
    database_url: str, path: Path, tmp_path: Path, request: pytest.FixtureRequest, edit: Callable[[Path], None]
) -> list[tuple[str, str | None]]:
    edit(path)
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    reason = request.getfixturevalue("postgres_available") if kind == "postgresql" else None
    with fresh_database(kind, tmp_path / "target", reason) as url:
        target = make_trial(url, _with_assent())
        try:
            import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
            with target.engine.connect() as c:
                return [(r.kind, r.assent) for r in c.execute(select(consents).order_by(consents.c.id))]
        finally:
            target.engine.dispose()


def _edited(change: Callable[[list[ET.Element]], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        ET.register_namespace("tw", TW_NS)
        tree = ET.parse(path)  # noqa: S314 - our own file
        change([e for e in tree.getroot().iter() if e.tag in (f"{TW}Enrolment", f"{TW}Consent")])
        tree.write(path, encoding="utf-8", xml_declaration=True)

    return edit


def _unchanged(path: Path) -> None:
    return None


def test_each_consent_record_carries_what_was_in_force_and_the_file_is_valid(
    exported: tuple[Trial, Path], tmp_path: Path
) -> None:
    _, path = exported
    version = _with_assent().protocol.version.number
    found = [(e.get("Kind") or e.get("ConsentKind"), e.get("Decision") or "consent", e.get("AgeInForce"),
              e.get("ProtocolVersionInForce")) for e in _records(path)]  # fmt: skip
    assert sorted(found) == sorted([("initial", "consent", "17", version), ("reconsent", "consent", "19", version),
                                    ("initial", "refuse", "17", version)])  # fmt: skip
    assert _valid(path, tmp_path) == []


def test_a_consent_recorded_before_an_age_correction_imports(
    exported: tuple[Trial, Path], database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _, path = exported
    restored = _import(database_url, path, tmp_path, request, _unchanged)
    assert sorted(restored, key=str) == sorted([("initial", None), ("reconsent", "given"), ("initial", None)], key=str)


def _first_consent(records: list[ET.Element]) -> ET.Element:
    return next(e for e in records if (e.get("Kind") or e.get("ConsentKind")) == "initial" and e.get("Decision")
                != "refuse" and e.get("AgeInForce") == "17")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda rs: _first_consent(rs).set("AgeInForce", "19"),
         r"/@Assent: the participant is 18 years or older \(eligibility\.assent\.from_age\)"),
        (lambda rs: _first_consent(rs).set("ProtocolVersionInForce", "0.9"),
         r"/@ProtocolVersionInForce: the record was recorded under protocol version 0\.9"),
        (lambda rs: [e.attrib.pop(n, None) for e in rs for n in ("AgeInForce", "ProtocolVersionInForce")],
         r"/@ProtocolVersionInForce: required: the record is checked by eligibility\.assent against the age \(age\)"),
    ],
    ids=["age-changed", "another-version", "older-export"],
)
def test_a_record_is_checked_against_what_was_in_force(
    exported: tuple[Trial, Path],
    database_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    change: Callable[[list[ET.Element]], None],
    refusal: str,
) -> None:
    _, path = exported
    with pytest.raises(OdmImportError, match=refusal):
        _import(database_url, path, tmp_path, request, _edited(change))


def test_an_older_file_imports_where_the_age_decides_nothing(
    exported: tuple[Trial, Path], database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _, path = exported

    def strip_refusal(records: list[ET.Element]) -> None:
        (refusal,) = [e for e in records if e.get("Decision") == "refuse"]
        for name in ("AgeInForce", "ProtocolVersionInForce"):
            del refusal.attrib[name]

    assert len(_import(database_url, path, tmp_path, request, _edited(strip_refusal))) == 3
