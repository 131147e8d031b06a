"""A participant who regains capacity decides once for themself; a second regained-capacity decision after that is
refused (walk finding 6: consents 3 and 4 were both `regained_capacity, continue, given by participant`, minutes
apart). What the participant decides later is a re-consent or a withdrawal. The rule is `consent_problem`'s, so
`record_consent` and `import odm` refuse alike.

| records before (who gave each)               | a regained_capacity decision                              |
|----------------------------------------------|-----------------------------------------------------------|
| representative                               | accepted                                                  |
| representative, participant (regained)       | refused: the participant already decided for themself     |
| representative, participant, representative  | accepted (capacity lost again, a representative consented)|
| participant                                  | refused: no representative's consent to follow            |
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.trialfixtures import first_protocol
from trialwright.services.screening.consent import consent_problem

ALREADY = ("kind: the participant already decided for themself after the representative's consent; a later change "
           "is a reconsent or a withdrawal, not another regained_capacity decision")
NONE = "kind: regained_capacity follows a representative's consent; there is none"


@pytest.mark.parametrize(("earlier", "problem"), [
    (["representative"], None),
    (["representative", "participant"], ALREADY),
    (["representative", "participant", "representative"], None),
    (["participant"], NONE),
])  # fmt: skip
def test_one_regained_capacity_decision_per_representative_consent(earlier: list[str], problem: str | None) -> None:
    now = dt.datetime.now(dt.UTC)
    found = consent_problem(
        first_protocol().protocol, site="RAZ", screened_on=(now - dt.timedelta(days=2)).date(), form_version="1.0",
        given_by="participant", obtained_at=now, representative_name=None, representative_relationship=None,
        kind="regained_capacity", decision="continue", earlier_given_by=earlier,
    )  # fmt: skip
    assert found == problem
