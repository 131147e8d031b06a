"""The trial's elements (SDTM TE, TA and SE): the planned stages a participant passes through, each in one epoch.

Optional; without it the SDTM export writes no TE, TA or SE rows (and says so in its README)::

    elements:
      - {code: SCRN, name: Screening, epoch: SCREENING, starts_at: consent,
         start_rule: Informed consent, end_rule: Start of the infusion}
      - {code: EXO, name: Exosomes, epoch: TREATMENT, arm: EXO, starts_at: first_dose,
         start_rule: Start of the infusion, end_rule: Day 1 visit}
      - {code: PBO, name: Placebo, epoch: TREATMENT, arm: PBO, starts_at: first_dose, ...}
      - {code: FU, name: Follow-up, epoch: FOLLOW-UP, starts_at: epoch_visit,
         start_rule: Day 1 visit, end_rule: End of participation}

An element without ``arm`` is every arm's; an arm's own element stands for that arm in its epoch. Every epoch
the visits declare has, for each arm, exactly one element, so each arm's elements in epoch order are its TA
rows (TAETORD 1, 2, ...). ``starts_at`` says which recorded date begins the element for a participant (SE): the
consent, enrolment, randomization, the first dose recorded on the treatment form, or the first date recorded at
a visit of the element's epoch; an element ends where the participant's next one begins, the last at the end of
participation. In a blinded trial the elements of one epoch that differ by arm must share their rules, duration
and start, or SE's dates would tell the arms apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from trialwright.protocol.base import Code, Duration, ProtocolModel
from trialwright.protocol.references import Found, dupes, unknown

if TYPE_CHECKING:
    from trialwright.protocol.model import Protocol

__all__ = ["Element", "arm_path", "element_checks", "epochs"]

StartEvent = Literal["consent", "enrolment", "randomization", "first_dose", "epoch_visit"]


class Element(ProtocolModel):
    """One planned element of the trial (SDTM TE), in one epoch, for every arm or one."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9]{0,7}$", description="Element code (SDTM ETCD, 8 characters).")
    name: str = Field(min_length=1, max_length=40, description="Name of the element (SDTM ELEMENT).")
    epoch: str = Field(
        pattern=r"^[A-Z][A-Z0-9 -]{0,39}$", description="The epoch it belongs to, as the visits declare it (EPOCH)."
    )
    arm: Code | None = Field(
        default=None, description="The arm whose element this is in its epoch; left out: every arm's."
    )
    start_rule: str = Field(min_length=1, description="The condition that begins the element (SDTM TESTRL).")
    end_rule: str | None = Field(default=None, description="The condition that ends it (SDTM TEENRL).")
    duration: Duration | None = Field(
        default=None,
        description="Its planned duration, ISO 8601 (e.g. P7D; SDTM TEDUR); an end_rule, a duration or both.",
    )
    starts_at: StartEvent = Field(
        description="The recorded date that begins it for a participant (SDTM SE): consent, enrolment, "
        "randomization, first_dose (the treatment form's start) or epoch_visit (the first date recorded at a "
        "visit of its epoch)."
    )


def epochs(p: Protocol) -> list[str]:
    """The epochs in the order their first visits come."""
    return list(dict.fromkeys(v.epoch for v in p.visits if v.epoch is not None))


def arm_path(p: Protocol, arm: str) -> list[Element]:
    """The arm's elements in epoch order (its TA rows): in each epoch, its own element, else the common one."""
    path = []
    for epoch in epochs(p):
        own = [e for e in p.elements if e.epoch == epoch and e.arm == arm]
        path += own or [e for e in p.elements if e.epoch == epoch and e.arm is None]
    return path


def element_checks(p: Protocol) -> Iterator[Found]:
    """Codes unique; each element's epoch declared by the visits and its arm a protocol arm; an end rule or a
    duration; exactly one element per arm in every epoch; a first_dose start needs the treatment record; in a
    blinded trial an epoch's arm elements share their rules, duration and start."""
    if not p.elements:
        return
    yield from dupes("elements", (e.code for e in p.elements), "element code")
    declared, arms = epochs(p), {a.code for a in p.arms}
    if not declared:
        yield "elements", "elements need the visits' epochs (visits[].epoch): an element belongs to one epoch"
        return
    treatment = p.analysis_plan.treatment if p.analysis_plan else None
    for i, e in enumerate(p.elements):
        if e.epoch not in declared:
            yield f"elements[{i}].epoch", unknown(e.epoch, declared, "epoch")
        if e.arm is not None and e.arm not in arms:
            yield f"elements[{i}].arm", unknown(e.arm, arms, "arm")
        if e.end_rule is None and e.duration is None:
            yield f"elements[{i}]", "an element declares its end_rule, its duration or both (SDTM TEENRL/TEDUR)"
        if e.starts_at == "first_dose" and treatment is None:
            yield f"elements[{i}].starts_at", "first_dose needs the treatment record (analysis_plan.treatment)"
    blinded = p.masking.blinding is None or p.masking.blinding.value != "open"
    for epoch in declared:
        here = [e for e in p.elements if e.epoch == epoch]
        common, own = [e for e in here if e.arm is None], [e for e in here if e.arm is not None]
        if len(common) > 1 or (common and own):
            yield "elements", f"epoch {epoch}: more than one element for an arm ({', '.join(e.code for e in here)})"
        elif not here:
            yield "elements", f"epoch {epoch}: no element; every epoch of the visits has one for each arm"
        elif own and (missing := sorted(arms - {e.arm for e in own})):
            yield "elements", f"epoch {epoch}: no element for arm(s) {', '.join(missing)}"
        elif len(own) != len({e.arm for e in own}):
            yield "elements", f"epoch {epoch}: an arm has more than one element"
        elif blinded and len({(e.start_rule, e.end_rule, e.duration, e.starts_at) for e in own}) > 1:
            yield (
                "elements",
                (
                    f"epoch {epoch}: a blinded trial's arm elements share start_rule, end_rule, duration and "
                    "starts_at (their dates would tell the arms apart)"
                ),
            )
