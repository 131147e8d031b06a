"""Age and sex in the exports come from where the protocol says they are recorded (``demographics:``), never
from a field's name: SDTM DM's AGE, AGEU and SEX and the FHIR Patient's gender are the first declared source's
value, its sex code written as the protocol maps it to CDISC SEX (C66731); a protocol that says nothing gets
SEX U, no AGE and no gender, and ``protocol check`` notes it; a wrong declaration is refused at load.

The expected values are read here from the stored screening values with SQL, not through the exporters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from tests.conftest import FIRST_PROTOCOL
from tests.spec.protocol.conftest import mutated_text
from trialwright.exports.fhir import FhirExporter
from trialwright.exports.sdtm import SdtmExporter
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.protocol.codes import export_gaps
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.screening_tables import participants, screenings

SECOND = FIRST_PROTOCOL.with_name("EXAMPLE-CAP-3ARM.yaml")


def _sex_coded_as_letters(doc: Any) -> None:
    """The second trial records sex at screening as w/m (its own codes), mapped to CDISC F/M; age in years."""
    sex = next(f for f in doc["eligibility"]["screening_fields"] if f["id"] == "sex")
    sex["choices"] = ["w", "m"]
    for rule in _rules(doc):
        if rule.get("field") == "sex" and rule.get("eq") == "female":
            rule["eq"] = "w"
        if rule.get("field") == "sex" and "levels" in rule:
            rule["levels"] = ["w", "m"]
    doc["demographics"] = {"age": {"from": ["screening.age"], "unit": "years"},
                           "sex": {"from": ["screening.sex"], "codes": {"w": "F", "m": "M"}}}  # fmt: skip


def _rules(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _rules(value)
    elif isinstance(node, list):
        for value in node:
            yield from _rules(value)


def _silent(doc: Any) -> None:
    doc.pop("demographics", None)
    # Its de-identification reads the age demographics declares, and an IPD shared needs de-identification.
    doc.pop("deidentification", None)
    doc["trial"]["sharing"]["ipd"]["shared"] = False


@dataclass(frozen=True)
class Exported:
    dm: pd.DataFrame
    genders: dict[str, str | None]  # participant id -> FHIR gender
    screened: dict[str, dict[str, Any]]  # participant id -> stored screening values


def _export(url: str, folder: Path, mutate: Any, protocol_path: Path) -> Exported:
    """Simulate 8 participants (the plan beside ``protocol_path``) and export SDTM and FHIR."""
    engine = make_engine(url)
    init_trial(engine, load_protocol_text(mutated_text(mutate, SECOND), source="trial.yaml"))
    simulate(engine, protocol_path, 8, seed=5)
    source = export_source(engine, get_user(engine, "sim-data-manager"))  # type: ignore[arg-type]
    for name in ("sdtm", "fhir"):
        (folder / name).mkdir()
    SdtmExporter().write(source, folder / "sdtm")
    FhirExporter().write(source, folder / "fhir")
    with session_scope(engine) as session:
        rows = session.execute(select(participants.c.participant_id, screenings.c.screening_values).join(
            screenings, screenings.c.id == participants.c.screening_id)).all()  # fmt: skip
    engine.dispose()
    genders = {}
    for path in (folder / "fhir" / "participants").glob("*.json"):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        genders[path.stem] = patient.get("gender")
    dm = pd.read_csv(folder / "sdtm" / "sdtm" / "dm.csv", dtype=str, keep_default_na=False)
    return Exported(dm, genders, {pid: json.loads(values) for pid, values in rows})


@pytest.fixture(scope="module")
def declared(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    folder = tmp_path_factory.mktemp("declared")
    plan = folder / "trial.simulation.yaml"  # beside trial.yaml, which simulate() names
    text = SECOND.with_name("EXAMPLE-CAP-3ARM.simulation.yaml").read_text(encoding="utf-8")
    for old, new in (("sex: female", "sex: w"), ("{female: 0.45, male: 0.55}", "{w: 0.45, m: 0.55}")):
        assert text.count(old) == 1
        text = text.replace(old, new)
    plan.write_text(text, "utf-8")
    return _export(module_database_url, folder, _sex_coded_as_letters, folder / "trial.yaml")


def test_dm_and_fhir_read_age_and_sex_where_the_protocol_says(declared: Exported) -> None:
    assert len(declared.dm) == len(declared.screened) > 0
    letters = {"w": "F", "m": "M"}
    genders = {"F": "female", "M": "male"}
    for row in declared.dm.itertuples():
        screened = declared.screened[row.SUBJID]
        assert screened["sex"] in letters, "the simulator drew the protocol's own codes"
        assert letters[screened["sex"]] == row.SEX
        assert float(row.AGE) == float(screened["age"]) and row.AGEU == "YEARS"
        assert declared.genders[row.SUBJID] == genders[row.SEX]


def test_without_a_demographics_section_nothing_is_guessed(database_url: str, tmp_path: Path) -> None:
    """The shipped second trial records age and sex at screening under those very names: without the section
    they are still not read (nothing is looked up by name), and protocol check says so."""
    protocol = load_protocol_text(mutated_text(_silent, SECOND)).protocol
    notes = [n for n in export_gaps(protocol) if n.startswith("SDTM DM")]
    assert notes == [
        "SDTM DM: AGE is left empty: the protocol's demographics section does not say where age is recorded",
        "SDTM DM: SEX is written U and the FHIR Patient has no gender: the protocol's demographics section does "
        "not say where sex is recorded",
    ]
    silent = _export(database_url, tmp_path, _silent, SECOND)
    assert set(silent.dm.SEX) == {"U"} and set(silent.dm.AGE) == {""} and set(silent.dm.AGEU) == {""}
    assert set(silent.genders.values()) == {None}


def _declaring(demographics: dict[str, Any]) -> Any:
    def mutate(doc: Any) -> None:
        doc["demographics"] = demographics

    return mutate


@pytest.mark.parametrize(
    ("demographics", "path", "words"),
    [
        ({"age": {"from": ["screening.years"], "unit": "years"}}, "demographics.age.from[0]",
         "unknown screening field 'years'"),
        ({"age": {"from": ["screening.sex"], "unit": "years"}}, "demographics.age.from[0]",
         "screening.sex is a choice field; this needs decimal or integer"),
        ({"sex": {"from": ["screening.sex"], "codes": {"female": "F"}}}, "demographics.sex.codes",
         "screening.sex's choice male has no CDISC SEX value"),
        ({"sex": {"from": ["outcome.sex"], "codes": {}}}, "demographics.sex.from[0]", "unknown form 'outcome'"),
        ({"sex": {"from": ["screening.sex"], "codes": {"female": "W", "male": "M"}}}, "demographics.sex.codes",
         "female: 'W' is not a term of CDISC CT SEX (C66731, SDTM CT 2025-03-28: F, INTERSEX, M, U)"),
        ({"age": {"from": ["screening.age"], "unit": "yrs"}}, "demographics.age.unit", "Input should be 'years'"),
    ],
)  # fmt: skip
def test_a_wrong_declaration_is_refused_at_load(demographics: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(_declaring(demographics), SECOND))
    found = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert found and found[0].line is not None, caught.value
