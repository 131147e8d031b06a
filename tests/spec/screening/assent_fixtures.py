"""The consent-with-assent set-up the screening chapter's specs share: the first protocol given
``eligibility.assent: {from_age: 18, unit: years, age_field: age, form_versions: [A1], consent_age: 21}``, a trial
of it (``kids``), and a representative's consent with the child's assent given or a dissent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import Trial, make_trial
from trialwright.protocol import LoadedProtocol, load_protocol_text

__all__ = ["DISSENT", "GIVEN", "LAR", "kids", "kids_protocol", "with_assent"]

#: A representative's consent (the mother's), obtained by Dr K; the caller adds when.
LAR = {"form_version": "1.0", "given_by": "representative", "representative_name": "Maryam Ahmadi",
       "representative_relationship": "mother", "obtained_by": "Dr K"}  # fmt: skip
#: The child's assent, given (the caller adds when).
GIVEN = {"assent": "given", "assent_obtained_by": "Dr K", "assent_form_version": "A1"}
#: The child's dissent (the caller adds when).
DISSENT = {"assent": "dissent", "assent_obtained_by": "Dr K", "assent_form_version": "A1"}


def with_assent(document: Any, **rule: Any) -> None:
    """The protocol document given the assent rule (``rule`` changes or adds to it)."""
    document["eligibility"]["assent"] = {"from_age": 18, "unit": "years", "age_field": "age", "form_versions": ["A1"],
                                         "consent_age": 21, **rule}  # fmt: skip


def kids_protocol() -> LoadedProtocol:
    """The first protocol with the assent rule."""
    return load_protocol_text(mutated_text(with_assent))


@pytest.fixture
def kids(database_url: str) -> Iterator[Trial]:
    """A trial of the first protocol with the assent rule, on each database."""
    trial = make_trial(database_url, kids_protocol())
    try:
        yield trial
    finally:
        trial.engine.dispose()
