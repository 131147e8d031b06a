"""The ODM export and import of a consent recorded when the screening's age was different (both databases).

The first protocol given ``eligibility.assent`` from 18 years (consent from 21). RAZ-S0001, screened at 17, gets a
representative's consent with no assent (none sought at 17); the age is then corrected to 19 with the consent
recorded again with the child's assent (``update_screening``'s ``consent``), and the participant is enrolled. Every
record met the rule when it was recorded. RAZ-S0002, screened at 17, has a representative's refusal and is never
enrolled. The export writes on each consent record what was in force when it was recorded
(``ProtocolVersionInForce``, ``AgeInForce``, from the audit trail, and ``AssentRuleInForce``: the digest of the
``eligibility.assent`` rule with its age field's unit, ``assent_rule_digest``), and the import checks each record
against it, comparing rules, not version numbers:

| the file                                                          | import                                          |
|-------------------------------------------------------------------|-------------------------------------------------|
| as exported (the first record: 17; the re-consent: 19)            | imports; both records restored                  |
| the first record's AgeInForce changed to 19                       | refused naming its @Assent and the rule         |
| the first record's AssentRuleInForce another rule's (tampered)    | refused naming @AssentRuleInForce and the rule  |
| the first record's ProtocolVersionInForce another version, its    | imports: the rule decides, not the number       |
| AssentRuleInForce the imported protocol's rule                    |                                                 |
| no AssentRuleInForce, its version the imported one (a file from   | imports: that version's rule is the imported    |
| the export before it carried the digest)                          | protocol's                                      |
| no AssentRuleInForce, another version                             | refused naming @AssentRuleInForce: export again |
| no attribute anywhere (a file from an older export)               | refused naming @ProtocolVersionInForce and the  |
|                                                                   | rule (the age may have been corrected since)    |
| neither attribute on RAZ-S0002's refusal only (the age decides    | imports: checked against the file's values, as  |
| nothing for a representative's refusal)                           | before                                          |


Amended after the records (version 3.0; every record was made under the earlier version):

| the amendment                                  | import of the file into a fresh database under version 3.0     |
|------------------------------------------------|------------------------------------------------------------------|
| leaves eligibility.assent as it was            | imports: the same consent records, what was in force kept        |
| changes eligibility.assent (a second form A2)  | refused naming the representative's consent's @AssentRuleInForce |
|                                                | and eligibility.assent                                          |

The file stays valid by CDISC's ODM schema with trialwright's extension.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import fresh_database
from tests.spec.exports.test_assent_exports import _with_assent
from tests.spec.exports.test_odm_queries import _valid
from tests.spec.forms.conftest import earlier_today
from tests.spec.protocol.conftest import mutated_text
from tests.spec.screening.assent_fixtures import GIVEN, LAR
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.assent import assent_rule_digest
from trialwright.domain.roles import Role
from trialwright.exports.odm import TW_NS, OdmExporter
from trialwright.protocol import LoadedProtocol, load_protocol_text
from trialwright.services.exports import export_source
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.odm_import_consents import IN_FORCE
from trialwright.services.screening import enrol, record_consent, screen, update_screening
from trialwright.services.trial import init_trial
from trialwright.store.screening_tables import consents

TW = f"{{{TW_NS}}}"


def _amended(*, assent_changed: bool) -> LoadedProtocol:
    """``_with_assent`` amended to version 3.0; ``assent_changed``: the amendment adds an assent form (A2)."""

    def amend(doc: Any) -> None:
        doc["eligibility"]["assent"] = {"from_age": 18, "unit": "years", "age_field": "age",
                                      "form_versions": ["A1", "A2"] if assent_changed else ["A1"], "consent_age": 21}
        doc["version"] = {"number": "3.0", "date": TODAY.isoformat()}
        doc["amendments"].append({"number": 2, "date": TODAY.isoformat(), "version": "3.0",
                                  "reason": "A second assent form." if assent_changed else "A new contact address."})
        if not assent_changed:
            doc["trial"]["titles"]["public"] += " (amended)"

    return load_protocol_text(mutated_text(amend))


@pytest.fixture
def exported(database_url: str, tmp_path: Path) -> Iterator[tuple[Trial, Path]]:
    yield from _exported(database_url, tmp_path, None)


def _exported(database_url: str, tmp_path: Path, amendment: LoadedProtocol | None) -> Iterator[tuple[Trial, Path]]:
    """The module's trial exported to ODM, amended to ``amendment`` (if any) after its records."""
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
        if amendment is not None:
            init_trial(source.engine, amendment)
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
    database_url: str,
    path: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    edit: Callable[[Path], None],
    loaded: LoadedProtocol | None = None,
    whole: bool = False,
) -> list[Any]:
    """The consent records (kind and assent; ``whole``: every column but the screening's id) of a fresh database
    of ``loaded`` (``_with_assent``'s by default) the file at ``path``, edited by ``edit``, was imported into."""
    edit(path)
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    reason = request.getfixturevalue("postgres_available") if kind == "postgresql" else None
    with fresh_database(kind, tmp_path / "target", reason) as url:
        target = make_trial(url, loaded or _with_assent())
        try:
            import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
            return _consents(target) if whole else [(r[0], r[-1]) for r in _consents(target, ("kind", "assent"))]
        finally:
            target.engine.dispose()


def _consents(trial: Trial, columns: tuple[str, ...] | None = None) -> list[tuple[Any, ...]]:
    """Every consent record of ``trial`` in id order, by ``columns`` (every column but the screening's id)."""
    names = columns or tuple(c.name for c in consents.c if c.name != "screening_id")
    with trial.engine.connect() as c:
        return [tuple(r) for r in c.execute(select(*(consents.c[n] for n in names)).order_by(consents.c.id))]


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
        (lambda rs: _first_consent(rs).set("AssentRuleInForce", "sha256:" + "0" * 64),
         r"/@AssentRuleInForce: the record was recorded under protocol version \S+ by an eligibility\.assent rule "
         r"\(sha256:0{64}\) other than the imported protocol's"),
        (lambda rs: [_first_consent(rs).set("ProtocolVersionInForce", "0.9"),
                     _first_consent(rs).attrib.pop("AssentRuleInForce")],
         r"/@AssentRuleInForce: required: the record was recorded under protocol version 0\.9, and this file does "
         r"not carry the eligibility\.assent rule in force then \(written before the export did: it predates "
         r"AssentRuleInForce\).*export the trial again"),
        (lambda rs: [e.attrib.pop(n, None) for e in rs for n in IN_FORCE],
         r"/@ProtocolVersionInForce: required: the record is checked by eligibility\.assent against the age \(age\)"
         r".*it predates ProtocolVersionInForce, AgeInForce and AssentRuleInForce.*export the trial again"),
    ],
    ids=["age-changed", "tampered-rule", "no-rule-another-version", "older-export"],
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
        for name in IN_FORCE:
            del refusal.attrib[name]

    assert len(_import(database_url, path, tmp_path, request, _edited(strip_refusal))) == 3


@pytest.mark.parametrize(
    "change",
    [
        lambda rs: _first_consent(rs).set("ProtocolVersionInForce", "0.9"),
        lambda rs: [e.attrib.pop("AssentRuleInForce") for e in rs],
    ],
    ids=["another-version-same-rule", "no-rule-same-version"],
)
def test_the_rule_in_force_decides_not_the_version_number(
    exported: tuple[Trial, Path],
    database_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    change: Callable[[list[ET.Element]], None],
) -> None:
    """A record whose AssentRuleInForce is the imported protocol's imports whatever version it names; a file from
    the export before it carried AssentRuleInForce imports where its version is the imported protocol's."""
    _, path = exported
    restored = _import(database_url, path, tmp_path, request, _edited(change))
    assert sorted(restored, key=str) == sorted([("initial", None), ("reconsent", "given"), ("initial", None)], key=str)


def test_an_amended_trial_whose_assent_rule_stood_round_trips(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Amended to 3.0 after its records, eligibility.assent as it was: every record names version 2.0 and the rule
    that is still the protocol's; a fresh database under 3.0 imports the file with the same consent records."""
    amended = _amended(assent_changed=False)
    assert assent_rule_digest(amended.protocol) == assent_rule_digest(_with_assent().protocol)
    for source, path in _exported(database_url, tmp_path, amended):
        restored = _import(database_url, path, tmp_path, request, _unchanged, amended, whole=True)
        assert restored == _consents(source) and len(restored) == 3
        records = _records(path)
        assert {e.get("ProtocolVersionInForce") for e in records} == {_with_assent().protocol.version.number}
        assert {e.get("AssentRuleInForce") for e in records} == {assent_rule_digest(amended.protocol)}
        assert _valid(path, tmp_path) == []


def test_an_amendment_that_changed_the_assent_rule_after_the_record_is_refused(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    amended = _amended(assent_changed=True)
    before = assent_rule_digest(_with_assent().protocol)
    for _, path in _exported(database_url, tmp_path, amended):
        assert {e.get("AssentRuleInForce") for e in _records(path)} == {before}
        refusal = (rf"tw:Enrolment/@AssentRuleInForce: the record was recorded under protocol version \S+ by an "
                   rf"eligibility\.assent rule \({before}\) other than the imported protocol's \(version 3\.0: "
                   rf"{assent_rule_digest(amended.protocol)}\).*refused, never guessed")
        with pytest.raises(OdmImportError, match=refusal):
            _import(database_url, path, tmp_path, request, _unchanged, amended)
