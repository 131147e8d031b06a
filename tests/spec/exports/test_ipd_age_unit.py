"""The shared data set bands the age in the unit the protocol declares for it (demographics.age.unit), and says
that unit; an age whose unit nobody declared is refused, never banded as if in years (a new user's walk: a
paediatric trial's ages in months were banded, and labelled, as years)."""

from __future__ import annotations

import pytest

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.exports.ipd import IpdError, age_unit
from trialwright.protocol import ProtocolError, load_protocol_text

TEXT = FIRST_PROTOCOL.read_text(encoding="utf-8")
YEARS = "age: {from: [demographics.age_at_enrolment, screening.age], unit: years}"


def test_the_bands_are_in_the_unit_demographics_declares() -> None:
    assert YEARS in TEXT
    assert age_unit(load_protocol_text(TEXT).protocol) == "years"
    assert age_unit(load_protocol_text(TEXT.replace(YEARS, YEARS.replace("years", "months"))).protocol) == "months"


def test_a_stored_version_whose_age_has_no_declared_unit_is_refused_not_banded_as_years() -> None:
    """``protocol check`` refuses such a file (tests/spec/protocol/test_broken_protocols.py); a version stored
    before that rule reaches the IPD and is refused there, naming the field and the rule."""
    text = TEXT.replace(YEARS, "age: {from: [screening.age], unit: years}")
    refused = r"deidentification\.age_field: demographics\.age_at_enrolment is not one of"
    with pytest.raises(ProtocolError, match=refused):
        load_protocol_text(text)
    stored = load_protocol_text(text, stored=True).protocol  # the trial keeps loading
    with pytest.raises(IpdError, match=r"deidentification.age_field: demographics.age_at_enrolment is not one of "
                                       r"demographics.age's fields \(from\), which declare the age's unit"):
        age_unit(stored)
