"""The pharmacist's preparation record is what each arm's protocol declares (both databases).

The first trial declares, for the exosome arm, the lot (text), the volume drawn up (decimal, mL, 2 to 5) and the
particle count (decimal, 0 to 1e12); for the placebo, the lot and the volume. A usual-care arm has nothing to
prepare. The values are the unblinded pharmacist's alone: the audit trail, read by blinded roles, holds the
preparation code and that the dose was prepared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.spec.masking.test_blinding_as_declared import _open_label, _usual_care
from tests.spec.protocol.conftest import mutated_text
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.preparation import PreparationError, validate_preparation
from trialwright.domain.roles import Role
from trialwright.protocol import ProtocolError, load_protocol, load_protocol_text
from trialwright.protocol.design import Preparation
from trialwright.services import audit
from trialwright.services.randomization import (
    PreparationRefused,
    RandomizationError,
    generate_list,
    preparation_queue,
    prepare,
    randomize,
    what_to_prepare,
)
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import preparations

EXOSOMES = {"product_lot": "EXO-2021-07", "volume_ml": "3.5", "particles": "5e10"}
PLACEBO = {"product_lot": "PBS-2021-02", "volume_ml": 3.5}


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=3)
    yield t
    t.engine.dispose()


def _codes_by_arm(trial: Trial, arms: int = 2) -> dict[str, str]:
    """Randomize participants until each arm has one; arm name -> preparation code (as the pharmacist reads)."""
    found: dict[str, str] = {}
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    while len(found) < arms:
        code = randomize(trial.engine, who(trial, Role.INVESTIGATOR), enrolled(trial)).preparation_code
        found.setdefault(what_to_prepare(trial.engine, pharmacist, code).arm, code)
    return found


def test_each_arm_records_exactly_what_it_declares(trial: Trial) -> None:
    codes = _codes_by_arm(trial)
    exo, pbo = codes["hUCMSC-Exos + standard care"], codes["Placebo (PBS) + standard care"]
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    asked = {
        code: [(a.id, a.type, a.unit, a.limits) for a in what_to_prepare(trial.engine, pharmacist, code).attributes]
        for code in (exo, pbo)
    }
    assert asked[exo] == [
        ("product_lot", "text", None, None),
        ("volume_ml", "decimal", "mL", "2 to 5 mL"),
        ("particles", "decimal", "particles", "0 to 1e+12 particles"),
    ]
    assert asked[pbo] == asked[exo][:2]  # no particle count for a placebo

    done = prepare(trial.engine, pharmacist, exo, EXOSOMES)
    assert [(v.id, v.value, v.unit) for v in done.recorded] == [
        ("product_lot", "EXO-2021-07", None),
        ("volume_ml", 3.5, "mL"),
        ("particles", 5e10, "particles"),
    ]
    assert done.prepared and done.prepared_by == pharmacist.username
    prepare(trial.engine, pharmacist, pbo, PLACEBO)
    with session_scope(trial.engine) as session:
        stored = dict(session.execute(select(preparations.c.preparation_code, preparations.c.attributes)).all())
    assert json.loads(stored[exo]) == {"product_lot": "EXO-2021-07", "volume_ml": 3.5, "particles": 5e10}
    assert json.loads(stored[pbo]) == {"product_lot": "PBS-2021-02", "volume_ml": 3.5}
    with pytest.raises(RandomizationError, match="prepared already"):
        prepare(trial.engine, pharmacist, exo, EXOSOMES)


REFUSED: list[tuple[str, dict[str, Any], list[str]]] = [
    ("a volume above the limit", {**EXOSOMES, "volume_ml": "6"},
     ["volume_ml: 6 mL is outside the hard limits 2 to 5 mL"]),
    ("a volume that is no number", {**EXOSOMES, "volume_ml": "lots"}, ["volume_ml: must be a number, not 'lots'"]),
    ("a volume in another unit", {**EXOSOMES, "volume_ml": {"value": 0.003, "unit": "L"}},
     ["volume_ml: is recorded in mL, not in 'L' (values are never converted)"]),
    ("no lot", {**EXOSOMES, "product_lot": " "}, ["product_lot: Product lot is required"]),
    ("a lot that is a number", {**EXOSOMES, "product_lot": 7}, ["product_lot: must be text, not 7"]),
    ("a negative particle count", {**EXOSOMES, "particles": -1},
     ["particles: -1 particles is outside the hard limits 0 to 1e+12 particles"]),
    ("an undeclared attribute and a missing one", {"product_lot": "L", "volume_ml": 3, "colour": "clear"},
     ["colour: not an attribute of this preparation (attributes: product_lot, volume_ml, particles)",
      "particles: Particle count is required"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "values", "problems"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_value_that_breaks_its_declaration_is_refused_by_name_and_rule(
    trial: Trial, case: str, values: dict[str, Any], problems: list[str]
) -> None:
    exo = _codes_by_arm(trial)["hUCMSC-Exos + standard care"]
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    with pytest.raises(PreparationRefused) as refused:
        prepare(trial.engine, pharmacist, exo, values)
    assert list(refused.value.problems) == problems, case
    assert not what_to_prepare(trial.engine, pharmacist, exo).prepared  # nothing stored


@pytest.mark.covers("REG-5")
def test_blinded_roles_never_see_the_values(trial: Trial) -> None:
    """The audit entry holds the code and that it was prepared: the same words for every arm."""
    codes = _codes_by_arm(trial)
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    prepare(trial.engine, pharmacist, codes["hUCMSC-Exos + standard care"], EXOSOMES)
    prepare(trial.engine, pharmacist, codes["Placebo (PBS) + standard care"], PLACEBO)
    entries = audit.entries(trial.engine, action_prefix="dose.prepared")
    assert sorted(json.loads(e.new_value or "{}")["preparation_code"] for e in entries) == sorted(codes.values())
    for entry in entries:
        assert set(json.loads(entry.new_value or "{}")) == {"preparation_code", "prepared"}
        shown = str(entry)
        assert not any(word in shown for word in ("EXO-2021", "PBS-2021", "3.5", "5e+10", "50000000000"))
    for role in (Role.INVESTIGATOR, Role.DATA_MANAGER, Role.STUDY_COORDINATOR, Role.MONITOR):
        for call in (lambda r: what_to_prepare(trial.engine, who(trial, r), codes["Placebo (PBS) + standard care"]),
                     lambda r: preparation_queue(trial.engine, who(trial, r))):  # fmt: skip
            with pytest.raises(RandomizationError, match="only the unblinded pharmacist"):
                call(role)


@pytest.fixture
def open_trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url, load_protocol_text(mutated_text(_open_label)))
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=3)
    yield t
    t.engine.dispose()


def test_an_arm_with_nothing_to_prepare_has_no_preparation_step(open_trial: Trial) -> None:
    """Open label, usual care: its code exists (every entry of the list has one, so a code never tells an arm),
    but the pharmacist has nothing to prepare for it and nothing can be recorded."""
    codes = _codes_by_arm(open_trial)
    usual, exo = codes["Placebo (PBS) + standard care"], codes["hUCMSC-Exos + standard care"]
    pharmacist = who(open_trial, Role.UNBLINDED_PHARMACIST)
    instruction = what_to_prepare(open_trial.engine, pharmacist, usual)
    assert not instruction.to_prepare and instruction.attributes == () and not instruction.prepared
    with pytest.raises(RandomizationError, match="has nothing to prepare"):
        prepare(open_trial.engine, pharmacist, usual, {})
    queue = {q.preparation_code: q for q in preparation_queue(open_trial.engine, pharmacist)}
    assert queue[usual].to_prepare is False and queue[exo].to_prepare is True
    assert preparation_queue(open_trial.engine, pharmacist)[-1].to_prepare is False  # listed after the doses
    assert what_to_prepare(open_trial.engine, pharmacist, exo).to_prepare


# --- the declaration, checked before the trial starts ------------------------------------------------------------


def test_a_no_intervention_arm_cannot_declare_a_preparation() -> None:
    def mutate(doc: Any) -> None:
        _open_label(doc)
        doc["arms"][1]["intervention"]["preparation"] = {"attributes": [{"id": "lot", "label": "Lot", "type": "text"}]}

    with pytest.raises(ProtocolError, match="a no_intervention arm receives no product"):
        load_protocol_text(mutated_text(mutate))


def test_a_blinded_trial_cannot_leave_one_arm_unprepared() -> None:
    def mutate(doc: Any) -> None:
        doc["arms"][1]["intervention"]["preparation"] = "none"

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate))
    assert [p.path for p in caught.value.problems] == ["arms[1].intervention.preparation"]
    assert "the missing dose would tell the arm" in caught.value.problems[0].message


def test_a_masked_reader_of_the_audit_trail_refuses_a_usual_care_arm_beside_a_prepared_one() -> None:
    def mutate(doc: Any) -> None:
        _usual_care(doc)
        doc["masking"] = {"blinding": "custom", "masked": ["outcome_assessor"], "masked_roles": ["data_manager"]}

    with pytest.raises(ProtocolError, match="the audit trail, read by the masked data manager"):
        load_protocol_text(mutated_text(mutate))


@pytest.mark.parametrize(
    ("attribute", "words"),
    [
        ({"id": "lot", "label": "Lot", "type": "text", "unit": "mL"}, "only for integer and decimal attributes"),
        ({"id": "n", "label": "N", "type": "date"}, "integer"),
    ],
)
def test_an_attribute_is_declared_consistently(attribute: dict[str, Any], words: str) -> None:
    def mutate(doc: Any) -> None:
        doc["arms"][0]["intervention"]["preparation"] = {"attributes": [attribute]}

    with pytest.raises(ProtocolError, match=words):
        load_protocol_text(mutated_text(mutate))


def test_without_a_declaration_a_product_is_prepared_by_who_and_when_only() -> None:
    """The example protocol declares no preparation: each dose is recorded by who and when, and no value is asked
    that the protocol does not name (today's lot, volume and particle count would be a guess for an inhaler)."""
    example = load_protocol(Path(__file__).resolve().parents[3] / "protocols" / "EXAMPLE-CAP-3ARM.yaml").protocol
    assert [a.preparation() for a in example.arms] == [Preparation(), Preparation(), Preparation()]
    assert validate_preparation(Preparation(), {}) == {}
    with pytest.raises(PreparationError, match="lot: not an attribute of this preparation"):
        validate_preparation(Preparation(), {"lot": "x"})


@pytest.mark.parametrize("carer", ["investigator", "study_coordinator"])
def test_a_masked_carer_refuses_an_arm_given_nothing_beside_a_prepared_one(carer: str) -> None:
    """Custom blinding that masks who gives and records the dose (the care provider's roles): a participant given
    nothing beside participants given a prepared dose tells them the arm, as in a double-blind trial."""

    def mutate(doc: Any) -> None:
        _usual_care(doc)
        doc["masking"] = {"blinding": "custom", "masked": ["care_provider"], "masked_roles": [carer]}

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate))
    said = [p.message for p in caught.value.problems if p.path.endswith("intervention.preparation")]
    assert said and f"each dose is given and recorded by the masked {carer.replace('_', ' ')}" in said[0], str(caught)
    # A usual-care arm can declare no preparation (refused), so the advice is a comparator that masks, or less masking.
    assert said[0].endswith("use a placebo or sham comparator, or mask only e.g. the outcome assessors"), said[0]


def test_a_treatment_form_kept_from_the_masked_carer_lets_an_arm_be_given_nothing() -> None:
    """Where the treatment form reveals the arm (``reveals_arm``: kept from masked readers), the masked investigator
    reads no dose in the system: only a masked reader of the audit trail would refuse the unprepared arm."""

    def mutate(doc: Any) -> None:
        _usual_care(doc)
        doc["masking"] = {"blinding": "custom", "masked": ["investigator"], "masked_roles": ["investigator"]}
        doc["trial"]["design"]["blinding"] = "single"  # the registry's word for one masked party
        treatment_form = doc["analysis_plan"]["treatment"]["form"]
        next(f for f in doc["forms"] if f["id"] == treatment_form)["reveals_arm"] = True

    assert load_protocol_text(mutated_text(mutate)).protocol.masking.masked_roles == ["investigator"]
