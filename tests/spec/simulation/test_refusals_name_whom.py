"""The simulation's summary names whom each refusal concerns: every refusal it counts under a rule is listed with
the participant's number (or "screening N" for a screened patient not enrolled), and the summary's lines say the
rule and the first few participants named, in English and in Persian (the catalog's words). On both databases.

Planted: an IL-6 effect far beyond the field's hard limit (200,000 pg/mL) in the experimental arm (EXO) only, so
the range rule refuses follow-up IL-6 values of EXO participants and never of the control arm's; the allocation
table, read independently, says who is in which arm."""

from __future__ import annotations

import re
from types import SimpleNamespace

from babel.messages.pofile import read_po
from sqlalchemy import select

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.protocol import load_protocol
from trialwright.services.simulation import refusal_lines, simulate
from trialwright.services.trial import init_trial
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import participants
from trialwright.web.i18n import catalog_path, translations

with catalog_path("fa").open("rb") as _handle:
    FA = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}


def test_each_refusal_names_the_participant_and_the_rule_in_english_and_persian(database_url: str) -> None:
    engine = make_engine(database_url)
    init_trial(engine, load_protocol(FIRST_PROTOCOL))
    summary = simulate(engine, FIRST_PROTOCOL, None, seed=5, enrolled=8, effects={"labs.il6": 1_000_000.0})
    with session_scope(engine) as session:
        arm = {r.participant_id: r.arm for r in session.execute(select(allocation_entries).where(
            allocation_entries.c.participant_id.is_not(None)))}  # fmt: skip
        enrolled = set(session.execute(select(participants.c.participant_id)).scalars())
    # every refusal counted is named, each by someone of the trial
    assert summary.refused == sum(summary.refusals.values()) == sum(len(w) for w in summary.refused_whom.values())
    assert summary.refusals.keys() == summary.refused_whom.keys()
    for rule, whom in summary.refused_whom.items():
        assert len(whom) == summary.refusals[rule]
        assert all(w in enrolled or re.fullmatch(r"screening \d+", w) for w in whom), (rule, whom)
    (rule,) = [r for r in summary.refusals if r.startswith("il6: … pg/mL is outside the accepted range")]
    named = set(summary.refused_whom[rule])
    assert named and {arm[p] for p in named} == {"EXO"}  # the planted arm's participants, none of the control's
    # the lines: the rule and whom, the first five named (then how many more)
    shown = sorted(named, key=summary.refused_whom[rule].index)
    line = next(line for line in refusal_lines(summary) if rule in line)
    more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
    assert line == f"{summary.refusals[rule]} refused, {rule}: {', '.join(shown[:5])}{more}"
    persian = next(line for line in refusal_lines(summary, gettext=translations("fa").gettext) if rule in line)
    more_fa = " " + FA["and %(n)s more"] % {"n": len(shown) - 5} if len(shown) > 5 else ""
    assert persian == FA["%(n)s refused, %(rule)s: %(whom)s"] % {
        "n": summary.refusals[rule], "rule": rule, "whom": ", ".join(shown[:5]) + more_fa}  # fmt: skip
    assert "بار رد شد" in persian and all(p in persian for p in shown[:5])


def test_a_screening_is_named_by_its_number_in_english_and_persian() -> None:
    from trialwright.services.simulation import SimulationSummary

    counts = dict.fromkeys(("screened", "enrolled", "randomized", "by_representative", "withdrawn", "forms_saved",
                            "forms_completed", "forms_signed", "visits_missed", "adverse_events", "serious", "deaths",
                            "pauses_resumed", "list_extensions"), 0)  # fmt: skip
    summary = SimulationSummary(**counts, not_enrolled={}, refused=1, refusals={"a rule": 1},
                                refused_whom={"a rule": ("screening 12",)}, seconds=1.0)  # fmt: skip
    assert refusal_lines(summary) == ["1 refused, a rule: screening 12"]
    assert refusal_lines(summary, gettext=translations("fa").gettext) == ["1 بار رد شد، a rule: غربالگری 12"]


def test_a_series_refused_whole_counts_each_of_its_participants_within_the_first_five() -> None:
    """A signing series refused as a whole names each of its participants in one entry; the line names the first
    five participants, not the first five entries, and says how many more people there are."""
    series = "P-001, P-002, P-003, P-004, P-005, P-006"
    summary = SimpleNamespace(refusals={"signature: refused": 2}, refused_whom={"signature: refused": (series, series)})
    assert refusal_lines(summary) == ["2 refused, signature: refused: P-001, P-002, P-003, P-004, P-005 and 1 more"]  # type: ignore[arg-type]
