"""The SDTM trial design domains as the export writes them: TV (the planned visits), TI (the eligibility criteria),
TE, TA and TS (rows from ``trialwright.exports.sdtm_design``), and what README.txt says of them (``design_lines``).
"""

from __future__ import annotations

from trialwright.exports.sdtm_build import Build, local_day
from trialwright.exports.sdtm_design import (
    design_elements,
    planned_day,
    ta_rows,
    te_rows,
    ts_left_out,
    ts_rows,
)
from trialwright.exports.sdtm_domains import TSVAL_PIECES
from trialwright.protocol import Protocol

__all__ = ["add_trial_design", "design_lines"]


def add_trial_design(build: Build) -> None:
    """TV (the planned visits) and TI (the eligibility criteria), as the protocol declares them."""
    p, study = build.protocol, {"STUDYID": build.source.trial_id, "DOMAIN": ""}
    for visit in p.visits:
        visitnum, name = build.visits[visit.id]
        if visit.kind == "event":
            start = f"When {visit.reference} happens" if visit.id == visit.reference else (
                f"When it happens ({visit.reference} day {visit.day})")  # fmt: skip
        else:
            window = f"-{visit.window.before}/+{visit.window.after}"
            start = f"Day {visit.day} from {visit.reference}, window {window} days"
        build.sinks["TV"].add({**study, "VISITNUM": visitnum, "VISIT": name, "VISITDY": planned_day(p, visit.id),
                               "ARMCD": None, "TVSTRL": start})  # fmt: skip
    for category, criteria in (("INCLUSION", p.eligibility.inclusion), ("EXCLUSION", p.eligibility.exclusion)):
        for c in criteria:
            build.sinks["TI"].add({**study, "IETESTCD": c.id, "IETEST": c.text, "IECAT": category,
                                   "TIVERS": build.source.protocol_version})  # fmt: skip
    with_arms = build.source.with_arms
    for code, rows in (("TE", te_rows(p, with_arms)), ("TA", ta_rows(p, with_arms))):
        for row in rows:
            build.sinks[code].add({**study, **row})
            if code == "TE" and row["TESTRL"] is None:  # an open-label trial's arm elements, exported blinded
                build.notes.append(f"TE {row['ETCD']}: TESTRL (and TEENRL, TEDUR where they differ too) left "
                                   "empty: the arms' elements of its epoch differ, and would tell the arms "
                                   "apart.")  # fmt: skip
    for element in design_elements(p, with_arms):
        if element.starts_at is None:  # a stand-in whose arms' elements start at different records
            build.notes.append(f"SE {element.code}: no subject has this element: the arms' elements of epoch "
                               f"{element.epoch} start at different records, which would tell the arms apart.")
    consents = [local_day(person.consented_at, build.zone(person.site)) for person in build.people.values()
                if person.consented_at is not None]  # fmt: skip
    first = min((d for d in consents if d is not None), default=None)
    for row in ts_rows(p, with_arms, len(build.people), first.isoformat() if first else None, build.notes,
                       TSVAL_PIECES):  # fmt: skip
        build.sinks["TS"].add({**study, **row})


def design_lines(p: Protocol, with_arms: bool) -> list[str]:
    """README lines on TE, TA, SE and TS."""
    if p.elements:
        masked = ("" if with_arms else " In this blinded extract TA has one path, ARMCD and ARM BLINDED (as DM), "
                  "and an epoch whose element differs by arm has the element BLINDED in TE, TA and SE (the rules the "
                  "arms' elements share), so no record tells a subject's arm.")  # fmt: skip
        design = [
            "  - TE: the protocol's elements (elements[]: code, name, start_rule, end_rule, duration). TA: each arm's "
            "elements in epoch order (TAETORD; TABRANCH the randomization on the element before the arms part). SE: "
            "each subject's elements along the allocated arm, started by the record each element's starts_at names "
            "(consent, enrolment, randomization, first dose, first date at a visit of its epoch), ended where the "
            "next begins, the last at RFPENDTC; a subject never randomized has the elements before the arms part."
            + masked
        ]
    else:
        design = ["  - TE, TA and SE: not written; the protocol declares no elements (elements[]); they are never "
                  "guessed."]
    left = "; ".join(ts_left_out(p, with_arms))
    return [
        *design,
        "  - TS: one record per value of each parameter the protocol declares (TSVAL1, TSVAL2 continue a value past "
        "200 bytes); ACTSUB counts the subjects in DM, SSTDTC is the earliest informed consent date. Left out (not "
        f"declared, no term, or withheld): {left}.",
    ]
