"""Blinding as the protocol declares it (``masking.blinding``): open label masks no one and has no unblinding;
single-blind masks the participant only (no system user); double- and triple-blind mask every role except those
unblinded by their work; custom masks exactly the roles it lists. Contradictions are refused by ``protocol check``
naming the line.

The first trial's file (double-blind) is rewritten three ways: open label with a usual-care arm, outcome assessors
only (custom), and the contradictions below.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from tests.spec.randomization.test_randomize_service import TYPED
from tests.trialfixtures import PASSWORD, Trial, make_trial, screener, who
from trialwright.domain.masking import BLINDED_ROLES, MASKED, UNBLINDED_ROLES, masked_roles, sees_arms
from trialwright.domain.roles import Role
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.services import analysis, exports, recruitment, safety
from trialwright.services.randomization import (
    RandomizationError,
    allocation_of,
    emergency_unblind,
    generate_list,
    randomize,
)
from trialwright.services.screening import enrol, record_consent, screen

Mutation = Callable[[Any], None]


def _registered(doc: Any, level: str | None) -> None:
    """The registry record's blinding (``trial.design.blinding``) made the masking's: the level itself, and single
    for a custom masking (one party, e.g. the outcome assessor, as registries record it)."""
    if level is not None:
        doc["trial"]["design"]["blinding"] = "single" if level == "custom" else level


def _masking(**masking: Any) -> Mutation:
    def mutate(doc: Any) -> None:
        doc["masking"] = masking
        _registered(doc, masking.get("blinding"))

    return mutate


def _unregistered(**masking: Any) -> Mutation:
    """The masking changed, the registry record left saying double-blind."""

    def mutate(doc: Any) -> None:
        doc["masking"] = masking

    return mutate


def _usual_care(doc: Any) -> None:
    """The placebo arm becomes usual care: no product, so nothing for the pharmacist to prepare (and the registry
    record says no placebo is used: protocol check refuses the record and the arms disagreeing)."""
    doc["arms"][1]["role"] = "no_intervention"
    del doc["arms"][1]["intervention"]["preparation"]
    doc["trial"]["design"]["placebo"] = False


def _open_label(doc: Any) -> None:
    """Open label, the placebo arm now usual care (nothing prepared)."""
    doc["masking"] = {"blinding": "open", "description": "Open label: usual care has no placebo."}
    _registered(doc, "open")
    _usual_care(doc)


def _assessors_only(doc: Any) -> None:
    doc["masking"] = {"blinding": "custom", "masked": ["outcome_assessor"], "masked_roles": ["outcome_assessor"]}
    _registered(doc, "custom")
    _usual_care(doc)


def _assessors_placebo(doc: Any) -> None:
    """Outcome assessors only masked, the placebo arm kept (so both arms are prepared)."""
    doc["masking"] = {"blinding": "custom", "masked": ["outcome_assessor"], "masked_roles": ["outcome_assessor"]}
    _registered(doc, "custom")


def _lot_on_the_ward(doc: Any) -> None:
    """The administration form asks ward staff (masked) for the product lot, which the pharmacist records."""
    form = next(f for f in doc["forms"] if f["id"] == "administration")
    form["fields"].insert(4, {"id": "product_lot", "label": "Product lot", "type": "text",
                              "translations": {"fa": "سری ساخت فرآورده"}})  # fmt: skip


_ADMINISTRATION = 6  # the first protocol's administration form, by position


# --- protocol check ---------------------------------------------------------------------------------------------

REFUSED: list[tuple[str, Mutation, str, str]] = [
    ("no level and no parties", _masking(description="blinded"), "masking", "declare blinding"),
    ("open label that masks someone", _masking(blinding="open", masked=["participant"]), "masking",
     "an open-label trial masks no one and unblinds no one: remove masked"),
    ("open label that names whom to notify", _masking(blinding="open", unblinding_notify=["dsmb_member"]),
     "masking", "remove unblinding_notify"),
    ("custom without its roles", _masking(blinding="custom", masked=["outcome_assessor"]), "masking",
     "blinding custom lists the masked system roles in masked_roles"),
    ("roles with a level that fixes them", _masking(blinding="double", masked_roles=["investigator"]), "masking",
     "masked_roles is for blinding custom"),
    ("single-blind that masks the investigator", _masking(blinding="single", masked=["participant", "investigator"]),
     "masking", "single-blind masks the participant only"),
    ("double-blind without the investigator", _masking(blinding="double", masked=["participant"]), "masking",
     "double-blind masks investigator too"),
    ("an unknown role", _masking(blinding="custom", masked=["outcome_assessor"], masked_roles=["assessor"]),
     "masking.masked_roles[0]", "unknown role 'assessor'"),
    ("a role unblinded by its work", _masking(blinding="custom", masked=["outcome_assessor"],
                                              masked_roles=["unblinded_pharmacist"]),
     "masking.masked_roles[0]", "the unblinded pharmacist knows the arms by their work"),
    ("a placebo arm in an open trial", _masking(blinding="open"), "arms[1].role",
     "a placebo_comparator arm in an open-label trial"),
    ("an open-label reason in a blinded trial", _masking(blinding="double", open_label_comparator="why"),
     "masking.open_label_comparator", "is for an open-label trial"),
    ("a masked form asking for the lot", _lot_on_the_ward, f"forms[{_ADMINISTRATION}].fields[4]",
     "administration.product_lot asks the staff a double-blind trial masks for the preparation attribute "
     "product_lot (of arm "),
    ("a form asking the masked assessor for the lot", lambda d: (_assessors_placebo(d), _lot_on_the_ward(d)),
     f"forms[{_ADMINISTRATION}].fields[4]",
     "administration.product_lot asks the masked outcome assessor for the preparation attribute product_lot"),
    # the registry record (masked) must not say a party is masked whom the system shows the arms (masked_roles)
    ("a registered masked investigator the system shows the arms",
     _masking(blinding="custom", masked=["outcome_assessor", "investigator"], masked_roles=["outcome_assessor"]),
     "masking.masked[1]", "the registry record says the investigator is masked, but masked_roles shows the arms to "
     "the investigator: add investigator to masked_roles, or remove investigator from masked"),
    ("a registered masked data analyst the system shows the arms",
     _masking(blinding="custom", masked=["data_analyst"], masked_roles=["outcome_assessor"]),
     "masking.masked[0]", "add blinded_statistician to masked_roles"),
    ("registered masked care providers the system shows the arms",
     _masking(blinding="custom", masked=["participant", "care_provider"], masked_roles=["outcome_assessor"]),
     "masking.masked[1]", "add investigator or study_coordinator to masked_roles"),
    # the registry record's blinding (trial.design.blinding, double-blind in the first trial) must be the masking's
    ("a double-blind record with only the outcome assessor masked",
     _unregistered(blinding="custom", masked=["outcome_assessor"], masked_roles=["outcome_assessor"]),
     "trial.design.blinding", "the registry record says double-blind, which masks the investigator, participant, "
     "but masking.blinding custom does not mask them"),
    ("a double-blind record with a single-blind masking", _unregistered(blinding="single"), "trial.design.blinding",
     "the registry record says double-blind, but masking.blinding is single"),
    ("a double-blind record with an open-label masking",
     _unregistered(blinding="open", open_label_comparator="an open comparison"), "trial.design.blinding",
     "the registry record says double-blind, but masking.blinding is open"),
    ("a triple-blind record whose custom masking shows the analyst the arms",
     lambda doc: (_unregistered(blinding="custom", masked=["participant", "investigator"],
                                masked_roles=["investigator"])(doc),
                  doc["trial"]["design"].__setitem__("blinding", "triple")),
     "trial.design.blinding", "the registry record says triple-blind, which masks the data analyst"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "mutate", "path", "words"), REFUSED, ids=[c[0] for c in REFUSED])
def test_protocol_check_refuses_a_contradictory_masking(case: str, mutate: Mutation, path: str, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate), source="trial.yaml")
    found = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert found, f"{case}: nothing at {path} saying {words!r}; got:\n{caught.value}"
    assert found[0].line is not None


@pytest.mark.parametrize(
    ("masked", "roles"),
    [
        (["outcome_assessor", "investigator"], ["outcome_assessor", "investigator"]),
        (["participant", "care_provider", "outcome_assessor"], ["study_coordinator", "outcome_assessor"]),
        (["participant", "data_analyst"], ["blinded_statistician"]),  # the participant uses no system role
    ],
)
def test_custom_masking_that_masks_every_registered_party_is_accepted(masked: list[str], roles: list[str]) -> None:
    loaded = load_protocol_text(mutated_text(_masking(blinding="custom", masked=masked, masked_roles=roles)))
    assert {r.value for r in masked_roles(loaded.protocol)} == set(roles)


def test_a_masking_stricter_than_the_registered_level_is_accepted() -> None:
    """A double-blind record whose system also masks the data analyst (triple) hides the arms from more people than
    registered, never fewer: nothing contradicts the record (a reviewer's finding: refused before)."""
    loaded = load_protocol_text(mutated_text(_unregistered(blinding="triple")))
    assert loaded.protocol.masking.blinding.value == "triple"


@pytest.mark.parametrize("registered", ["open", "single", "OPEN"])
def test_a_custom_masking_registered_open_or_single_is_accepted(registered: str) -> None:
    """Outcome assessors only, registered as open label (a PROBE design: open treatment, blinded assessment) or as
    single-blind (one party masked): the record and the masking agree."""

    def mutate(doc: Any) -> None:
        _assessors_only(doc)
        doc["trial"]["design"]["blinding"] = registered

    loaded = load_protocol_text(mutated_text(mutate))
    assert masked_roles(loaded.protocol) == frozenset({Role.OUTCOME_ASSESSOR})


def test_a_no_intervention_arm_cannot_be_hidden_in_a_double_blind_trial() -> None:
    with pytest.raises(ProtocolError, match="a no_intervention arm cannot be hidden from the participant"):
        load_protocol_text(mutated_text(_usual_care))


def test_the_lot_may_be_on_a_form_in_an_open_label_trial() -> None:
    """Open label masks nothing: a form may record the lot again."""

    def open_with_lot(doc: Any) -> None:
        _masking(blinding="open", open_label_comparator="open-label placebo")(doc)
        _lot_on_the_ward(doc)

    assert load_protocol_text(mutated_text(open_with_lot)).protocol.form("administration").field("product_lot")


def test_the_lot_may_be_on_a_form_in_a_single_blind_trial_which_masks_no_staff() -> None:
    """Walk 4 (F5): single-blind masks the participant only, who reads no form; the staff filling the form see the
    arm. The check said "asks masked staff" of staff who were not masked: it does not apply (docs/roles.md)."""

    def single_with_lot(doc: Any) -> None:
        _masking(blinding="single", masked=["participant"])(doc)
        _lot_on_the_ward(doc)

    assert load_protocol_text(mutated_text(single_with_lot)).protocol.form("administration").field("product_lot")


def test_a_no_intervention_arm_keeping_its_preparation_in_a_single_blind_trial_lists_both_problems() -> None:
    """Walk 4: only the preparation was listed; the single-blind contradiction appeared once it was fixed.
    protocol.md: `protocol check` lists every problem at once."""

    def usual_care_prepared(doc: Any) -> None:
        _masking(blinding="single", masked=["participant"])(doc)
        doc["arms"][1]["role"] = "no_intervention"

    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(usual_care_prepared), source="trial.yaml")
    said = {p.path: p.message for p in caught.value.problems}
    assert "a no_intervention arm receives no product" in said.get("arms[1].intervention.preparation", ""), said
    assert "cannot be hidden from the participant of a single-blind trial" in said.get("arms[1].role", ""), said


def test_an_open_placebo_arm_is_accepted_when_the_protocol_says_why() -> None:
    loaded = load_protocol_text(mutated_text(_masking(blinding="open", open_label_comparator="open-label placebo")))
    assert masked_roles(loaded.protocol) == frozenset()


@pytest.mark.parametrize(
    ("masking", "roles"),
    [
        ({"blinding": "open"}, frozenset()),
        ({"blinding": "single"}, frozenset()),
        ({"blinding": "double"}, BLINDED_ROLES),
        ({"blinding": "triple"}, BLINDED_ROLES),
        ({"masked": ["participant", "investigator"]}, BLINDED_ROLES),  # written before blinding existed
        ({"blinding": "custom", "masked": ["outcome_assessor"], "masked_roles": ["outcome_assessor", "monitor"]},
         frozenset({Role.OUTCOME_ASSESSOR, Role.MONITOR})),
    ],
)  # fmt: skip
def test_each_level_masks_exactly_its_roles(masking: dict[str, Any], roles: frozenset[Role]) -> None:
    def mutate(doc: Any) -> None:
        doc["masking"] = masking
        _registered(doc, masking.get("blinding"))
        if masking.get("blinding") == "open":  # (custom keeps the placebo: the masked monitor reads the audit
            _usual_care(doc)  # trail, where a usual-care arm would stand out by having no dose prepared)

    protocol = load_protocol_text(mutated_text(mutate)).protocol
    assert masked_roles(protocol) == roles
    assert not roles & UNBLINDED_ROLES  # no protocol masks those unblinded by their work
    assert all(sees_arms(protocol, r) == (r not in roles) for r in Role)


def test_double_blind_fills_in_the_parties_it_masks() -> None:
    protocol = load_protocol_text(mutated_text(_masking(blinding="double"))).protocol
    assert [p.value for p in protocol.masking.masked] == [
        "participant", "care_provider", "investigator", "outcome_assessor"
    ]  # fmt: skip


# --- the trial run as declared ----------------------------------------------------------------------------------


def _enrolled(trial: Trial) -> str:
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    s = screen(trial.engine, admin, site="RAZ", screened_on=dt.datetime.now(dt.UTC).date(), values=TYPED)
    record_consent(trial.engine, admin, s.id, form_version="1.0", given_by="participant", obtained_by="Dr K",
                   obtained_at=dt.datetime.now(dt.UTC))  # fmt: skip
    participant = enrol(trial.engine, admin, s.id).participant
    assert participant is not None
    return participant.participant_id


def _trial(database_url: str, mutate: Mutation) -> Trial:
    trial = make_trial(database_url, load_protocol_text(mutated_text(mutate)))
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=7)
    return trial


@pytest.fixture
def open_trial(database_url: str) -> Iterator[Trial]:
    trial = _trial(database_url, _open_label)
    yield trial
    trial.engine.dispose()


def test_in_an_open_label_trial_every_role_sees_the_arm_and_nothing_is_masked(open_trial: Trial) -> None:
    pid = _enrolled(open_trial)
    investigator = who(open_trial, Role.INVESTIGATOR)
    done = randomize(open_trial.engine, investigator, pid)
    assert done.arm in ("EXO", "PBO")
    for role in (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER, Role.ADMINISTRATOR):
        shown = allocation_of(open_trial.engine, who(open_trial, role), pid)
        assert shown is not None and shown.arm == done.arm, role
    with pytest.raises(RandomizationError, match="nothing to unblind"):
        emergency_unblind(open_trial.engine, investigator, pid, reason="rash", password=PASSWORD)
    # Reports, tables and exports by arm for every reader, with no unblinding step.
    run = analysis.analysis_data(open_trial.engine, who(open_trial, Role.BLINDED_STATISTICIAN))
    assert run.grouping.value == "by_arm"
    assert safety.safety_tables(open_trial.engine, who(open_trial, Role.INVESTIGATOR)).grouping == "by_arm"
    assert recruitment.recruitment_status(open_trial.engine, who(open_trial, Role.STUDY_COORDINATOR)).arms
    source = exports.export_source(open_trial.engine, who(open_trial, Role.DATA_MANAGER), with_arms=True)
    assert {p.arm for p in source.participants() if p.participant_id == pid} == {done.arm}


def test_with_outcome_assessors_only_masked_the_investigator_sees_and_the_assessor_does_not(
    database_url: str,
) -> None:
    trial = _trial(database_url, _assessors_only)
    try:
        pid = _enrolled(trial)
        investigator = who(trial, Role.INVESTIGATOR)
        done = randomize(trial.engine, investigator, pid)
        assert done.arm in ("EXO", "PBO")
        assessor = allocation_of(trial.engine, who(trial, Role.OUTCOME_ASSESSOR), pid)
        assert assessor is not None and assessor.arm == MASKED
        with pytest.raises(RandomizationError, match="nothing to unblind"):  # the investigator knows already
            emergency_unblind(trial.engine, investigator, pid, reason="rash", password=PASSWORD)
        # The data manager is not masked here: the export may carry the arms.
        source = exports.export_source(trial.engine, who(trial, Role.DATA_MANAGER), with_arms=True)
        assert {p.arm for p in source.participants() if p.participant_id == pid} == {done.arm}
        # The analysis (docs/analysis.md, "With blinding: custom"): the blinded statistician sees arms on the pages,
        # yet no one compares the arms before the lock, the unblinded statistician included.
        assert sees_arms(load_protocol_text(mutated_text(_assessors_only)).protocol, Role.BLINDED_STATISTICIAN)
        for role in (Role.BLINDED_STATISTICIAN, Role.UNBLINDED_STATISTICIAN):
            assert analysis.analysis_data(trial.engine, who(trial, role)).grouping.value != "by_arm"
            with pytest.raises(analysis.AnalysisError, match="runs only after the database lock"):
                analysis.analysis_data(trial.engine, who(trial, role), unblinded=True)
    finally:
        trial.engine.dispose()


def test_in_a_double_blind_trial_the_investigator_sees_masked_until_an_emergency_unblinding(
    database_url: str,
) -> None:
    trial = _trial(database_url, lambda doc: None)
    try:
        pid = _enrolled(trial)
        investigator = who(trial, Role.INVESTIGATOR)
        assert randomize(trial.engine, investigator, pid).arm == MASKED
        assert emergency_unblind(trial.engine, investigator, pid, reason="anaphylaxis", password=PASSWORD).arm in (
            "EXO", "PBO"
        )  # fmt: skip
        with pytest.raises(exports.ExportError, match="with_arms: a data manager is masked in this trial"):
            exports.export_source(trial.engine, who(trial, Role.DATA_MANAGER), with_arms=True)
    finally:
        trial.engine.dispose()
