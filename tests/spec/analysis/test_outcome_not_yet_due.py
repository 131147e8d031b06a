"""CONSORT counts a participant whose primary outcome visit is not yet due as "outcome not yet due", never as
missed (walk 4, F7: a participant whose week 12 was months away was counted as "Outcome not recorded").

The first trial's primary outcome (TNF-alpha at day 7 counted from the infusion, window 1 day after) in the ITT
set; each participant infused on day 1 (so day 7 is day 8 from randomization and its window closes on day 9):

| participant | day-7 visit        | data cut-off (days from randomization) | CONSORT                                  |
|-------------|--------------------|----------------------------------------|------------------------------------------|
| P-000/P-004 | held, value        | 20                                     | analysed                                 |
| P-001       | not held           | 5 (window in the future)               | outcome not yet due                      |
| P-002       | not held           | 9 (the window's last day)              | outcome not yet due                      |
| P-003       | not held           | 10 (window closed)                     | outcome not recorded                     |
| P-005       | held, no value     | 5                                      | outcome not recorded (the visit held)    |
| P-006       | recorded missed    | 5                                      | outcome not recorded (the visit missed)  |
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.spec.protocol.conftest import mutated_text
from trialwright.analysis import sentences
from trialwright.analysis.dataset import AnalysisData, Grouping, Screened, Subject
from trialwright.analysis.engine import analyse
from trialwright.protocol import load_protocol_text
from trialwright.web.i18n import translations

GROUPS = ("Placebo (PBS) + standard care", "hUCMSC-derived exosomes + standard care")
NOT_DUE = "Outcome not yet due (its visit's window had not closed by the data cut-off)"
MISSING = "Outcome not recorded (visit missed or value missing)"


def _subject(i: int, arm: int, followed: int, day7: float | None, held: bool, missed: bool = False) -> Subject:
    values: dict[str, dict[str, Any]] = {"baseline": {"labs.tnf_alpha": 10.0 + i, "labs.crp": 5.0 + i}}
    if held:
        values["day7"] = {} if day7 is None else {"labs.tnf_alpha": day7, "labs.crp": day7}
    return Subject(
        participant_id=f"P-{i:03d}", site="RAZ", stratum="site=RAZ", group=GROUPS[arm], treated=True,
        treated_group=GROUPS[arm], per_protocol=True, not_per_protocol=(), withdrawn=(), emergency_unblinded=False,
        values=values, events=(), treatment_day=1, followed_days=followed,
        visit_days={"baseline": 0, **({"day7": 8} if held else {})},
        missed_visits=frozenset({"day7"} if missed else ()),
    )  # fmt: skip


def test_an_outcome_not_yet_due_is_its_own_consort_category_never_missing() -> None:
    protocol = load_protocol_text(mutated_text(lambda doc: None)).protocol
    people = (
        _subject(0, 0, 20, 7.0, True),
        _subject(1, 0, 5, None, False),
        _subject(2, 1, 9, None, False),
        _subject(3, 1, 10, None, False),
        _subject(4, 1, 20, 6.0, True),
        _subject(5, 0, 5, None, True),
        _subject(6, 1, 5, None, False, missed=True),
    )
    screened = Screened(7, 7, 0, 0, {}, 7, 0, 7, 1.0)
    data = AnalysisData(
        trial_id=protocol.trial_id, protocol_version=protocol.version.number, grouping=Grouping.BY_ARM,
        groups=GROUPS, subjects=people, screened=screened, taken_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        audit_seq=1, below_limit_rule="half_limit",
    )  # fmt: skip
    report = analyse(protocol, data, software_version="test", unblinded=True)
    tnf = next(o for o in report.outcomes if o.outcome_id == "tnf_alpha")
    assert {x.participant_id: x.cause for x in tnf.excluded} == {
        "P-001": "not_due",
        "P-002": "not_due",
        "P-003": "missing",
        "P-005": "missing",
        "P-006": "missing",
    }
    flows = {a.label: {r.label: r.count for r in a.excluded_from_analysis} for a in report.consort.arms}
    assert flows[GROUPS[0]] == {NOT_DUE: 1, MISSING: 1}  # P-001 not due; P-005 held without a value
    assert flows[GROUPS[1]] == {NOT_DUE: 1, MISSING: 2}  # P-002 on its window's last day; P-003 after it, P-006
    assert NOT_DUE in report.consort.summary()
    assert translations("fa").gettext(NOT_DUE) != NOT_DUE


def test_the_listed_reason_of_an_outcome_not_yet_due_says_why_in_english_and_persian() -> None:
    """Walk 7 (F7): results.json listed such a participant "no fatigue.total at week12" while its cause was
    ``not_due``; the reason now says why, as CONSORT does, and a reason for a missed outcome stays as it was."""
    protocol = load_protocol_text(mutated_text(lambda doc: None)).protocol
    people = (
        _subject(0, 0, 20, 7.0, True),
        _subject(1, 0, 5, None, False),
        _subject(2, 1, 9, None, False),
        _subject(3, 1, 10, None, False),
        _subject(4, 1, 20, 6.0, True),
        _subject(6, 1, 5, None, False, missed=True),
    )
    data = AnalysisData(
        trial_id=protocol.trial_id, protocol_version=protocol.version.number, grouping=Grouping.BY_ARM,
        groups=GROUPS, subjects=people, screened=Screened(6, 6, 0, 0, {}, 6, 0, 6, 1.0),
        taken_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), audit_seq=1, below_limit_rule="half_limit",
    )  # fmt: skip
    report = analyse(protocol, data, software_version="test", unblinded=True)
    tnf = next(o for o in report.outcomes if o.outcome_id == "tnf_alpha")
    not_due = "labs.tnf_alpha at day7 not yet due (its window had not closed by the data cut-off)"
    assert {x.participant_id: (x.cause, x.reason) for x in tnf.excluded} == {
        "P-001": ("not_due", not_due),
        "P-002": ("not_due", not_due),
        "P-003": ("missing", "no labs.tnf_alpha at day7"),
        "P-006": ("missing", "no labs.tnf_alpha at day7"),
    }
    # every outcome at day 7 says the same of the same people (continuous, binary, ordinal, counts)
    for outcome in report.outcomes:
        for x in outcome.excluded:
            assert ("not yet due" in x.reason) == (x.cause == "not_due"), (outcome.outcome_id, x)
    # in Persian, from the catalog (the reader's report reads the English sentence back)
    fa = translations("fa").gettext
    said = sentences.again(not_due, fa, lambda name, english: english)
    message = "%(variable)s at %(visit)s not yet due (its window had not closed by the data cut-off)"
    assert said == fa(message) % {"variable": "labs.tnf_alpha", "visit": "day7"} and fa(message) != message
    assert "هنوز نرسیده" in said and fa(NOT_DUE) != NOT_DUE
