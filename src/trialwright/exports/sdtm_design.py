"""The SDTM trial design rows from the protocol (TE, TA, TS) and the subjects' elements (SE), SDTMIG 3.4 section 7.

TE and TA come from the protocol's ``elements`` (``trialwright.protocol.elements``); nothing is written without
them. TS holds only the parameters the protocol (or the trial's records: ACTSUB, SSTDTC) declares, each from one
named fact; a parameter it does not declare is left out and named in the README (``ts_left_out``).

Masking: a blinded extract names no arm. TA's ARMCD and ARM are BLINDED (as DM's), one path through the epochs;
an epoch whose element differs by arm has one element BLINDED (ETCD BLINDED, BLINDED2, ... for further such
epochs) in TE, TA and SE, with the rules the arms' elements share (a blinded trial's protocol must declare them
shared); TS leaves out TRT and COMPTRT (they name the arms' interventions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trialwright.exports.sdtm_domains import BLINDED_ARM, SDTMIG_VERSION
from trialwright.protocol import Protocol
from trialwright.protocol.cdisc_ct import sdtm_ct
from trialwright.protocol.ct_checks import BLINDING_EXTENDED
from trialwright.protocol.design import ArmRole
from trialwright.protocol.elements import Element, arm_path, epochs

__all__ = [
    "TS_PARAMETER_CODES",
    "SubjectElement",
    "design_elements",
    "planned_day",
    "split_text",
    "subject_elements",
    "ta_rows",
    "te_rows",
    "ts_blinding",
    "ts_parameter",
    "ts_rows",
    "visit_element",
]  # fmt: skip

#: The TSPARMCD (CDISC CT TSPARMCD, C66738) of each parameter the export can write; its TSPARM is CT's
#: (``ts_parameter``).
TS_PARAMETER_CODES = (
    "TITLE",
    "REGID",
    "SPONSOR",
    "STYPE",
    "TPHASE",
    "TINDTP",
    "INDIC",
    "OBJPRIM",
    "OUTMSPRI",
    "RANDOM",
    "INTMODEL",
    "TBLIND",
    "TCNTRL",
    "NARMS",
    "TRT",
    "COMPTRT",
    "ADDON",
    "PLANSUB",
    "AGEMIN",
    "AGEMAX",
    "SEXPOP",
    "LENGTH",
    "PCLAS",
    "FCNTRY",
    "ACTSUB",
    "SSTDTC",
    "SDTIGVER",
)


def ts_parameter(code: str) -> str:
    """TSPARM of a TSPARMCD: the TSPARM (C67152) term with the same NCI code, from the shipped SDTM CT."""
    ct = sdtm_ct()
    name = ct["TSPARM"].by_code(ct["TSPARMCD"].term(code).code)
    if name is None:
        raise KeyError(f"TSPARMCD {code}: no TSPARM with its NCI code in SDTM CT {ct.version}")
    return name.value
#: Parameters the protocol cannot declare as a fact yet (only in words or eligibility rules): left out, listed.
_NOT_DECLARED: dict[str, str] = {}
#: Parameters the protocol may declare in ``trial.design`` (left out, and listed, when it does not).
_DECLARED_IN_DESIGN = {"AGEMIN": "minimum_age", "AGEMAX": "maximum_age", "SEXPOP": "sex",
                       "LENGTH": "participation_length"}  # fmt: skip
_PHASE = {"not_applicable": "NOT APPLICABLE", "1": "PHASE I TRIAL", "1/2": "PHASE I/II TRIAL", "2": "PHASE II TRIAL",
          "2/3": "PHASE II/III TRIAL", "3": "PHASE III TRIAL", "4": "PHASE IV TRIAL"}  # fmt: skip
_BLIND = {"open": "OPEN LABEL", "single": "SINGLE BLIND", "double": "DOUBLE BLIND"}
#: A blinding C66735 has no term for, written as a sponsor extension of that extensible list (define.xml marks it
#: ``def:ExtendedValue``; walk 6 F6); ``protocol check`` notes it.
_BLIND_EXTENDED = BLINDING_EXTENDED
_INTENT = {"treatment": "TREATMENT", "prevention": "PREVENTION", "diagnostic": "DIAGNOSIS",
           "screening": "SCREENING", "supportive_care": "SUPPORTIVE CARE", "basic_science": "BASIC SCIENCE",
           "health_services_research": "HEALTH SERVICES RESEARCH"}  # fmt: skip
_MODEL = {"parallel": "PARALLEL", "crossover": "CROSS-OVER", "factorial": "FACTORIAL", "single_group": "SINGLE GROUP"}
_CONTROL = {ArmRole.PLACEBO: "PLACEBO", ArmRole.ACTIVE: "ACTIVE"}
_TSVAL_BYTES = 200


@dataclass(frozen=True, slots=True)
class _Planned:
    """One element as an export writes it: the protocol's, or the BLINDED stand-in for an epoch's arm elements."""

    code: str
    name: str
    start_rule: str | None
    end_rule: str | None
    duration: str | None
    starts_at: str | None
    epoch: str


def _planned(e: Element) -> _Planned:
    return _Planned(e.code, e.name, e.start_rule, e.end_rule, e.duration, e.starts_at, e.epoch)


def _blinded(p: Protocol) -> dict[str, _Planned]:
    """Epoch -> its BLINDED stand-in, for each epoch whose element differs by arm (rules kept when shared)."""
    out: dict[str, _Planned] = {}
    for epoch in epochs(p):
        own = [e for e in p.elements if e.epoch == epoch and e.arm is not None]
        if not own:
            continue

        def shared(attribute: str, own: list[Element] = own) -> Any:
            values = {getattr(e, attribute) for e in own}
            return values.pop() if len(values) == 1 else None

        code = BLINDED_ARM if not out else f"{BLINDED_ARM}{len(out) + 1}"
        out[epoch] = _Planned(code, BLINDED_ARM, shared("start_rule"), shared("end_rule"), shared("duration"),
                              shared("starts_at"), epoch)  # fmt: skip
    return out


def design_elements(p: Protocol, with_arms: bool) -> list[_Planned]:
    """TE's elements: the protocol's in order; in a blinded extract the arms' elements give way to their
    epoch's BLINDED stand-in."""
    if with_arms:
        return [_planned(e) for e in p.elements]
    blinded, out = _blinded(p), []
    for e in p.elements:
        if e.arm is None:
            out.append(_planned(e))
        elif blinded[e.epoch] not in out:
            out.append(blinded[e.epoch])
    return out


def te_rows(p: Protocol, with_arms: bool) -> Iterator[dict[str, Any]]:
    for e in design_elements(p, with_arms):
        yield {"ETCD": e.code, "ELEMENT": e.name, "TESTRL": e.start_rule, "TEENRL": e.end_rule, "TEDUR": e.duration}


def _path(p: Protocol, arm: str | None) -> list[_Planned]:
    """An arm's planned elements in epoch order; arm None: the blinded path (its arm elements BLINDED)."""
    if arm is not None:
        return [_planned(e) for e in arm_path(p, arm)]
    blinded = _blinded(p)
    common = {e.epoch: e for e in p.elements if e.arm is None}
    # as ``arm_path``: an epoch with no element (a protocol whose visits declare epochs but no elements) has no row
    return [_planned(common[epoch]) if epoch in common else blinded[epoch] for epoch in epochs(p)
            if epoch in common or epoch in blinded]  # fmt: skip


def ta_rows(p: Protocol, with_arms: bool) -> Iterator[dict[str, Any]]:
    """Each arm's elements in epoch order (TAETORD); blinded: one path with ARMCD/ARM BLINDED. TABRANCH on the
    element at whose end a randomized trial allocates the arm (the last before the first arm element)."""
    arms = [(a.code, a.name) for a in p.arms] if with_arms else [(BLINDED_ARM, BLINDED_ARM)]
    first_own = next((i for i, epoch in enumerate(epochs(p)) if any(e.epoch == epoch and e.arm for e in p.elements)),
                     None)  # fmt: skip
    randomized = p.trial.design.allocation == "randomized"
    for code, name in arms:
        for order, e in enumerate(_path(p, code if with_arms else None), start=1):
            branch = (f"Randomized to {name}" if with_arms and randomized and first_own is not None
                      and order == first_own else None)  # fmt: skip
            yield {"ARMCD": code, "ARM": name, "TAETORD": float(order), "ETCD": e.code, "ELEMENT": e.name,
                   "TABRANCH": branch, "TATRANS": None, "EPOCH": e.epoch}  # fmt: skip


def planned_day(p: Protocol, visit_id: str) -> float | None:
    """VISITDY: the visit's planned study day from RFSTDTC (day 1, no day 0), when the visit is counted from the
    event RFSTDTC is taken from (the treatment record's visit when the protocol records treatment, else
    randomization) and is scheduled (or is that event itself); None otherwise."""
    treatment = p.analysis_plan.treatment if p.analysis_plan else None
    reference = treatment.visit if treatment else "randomization"
    visit = p.visit(visit_id)
    if visit.reference != reference or (visit.kind == "event" and visit.id != reference):
        return None
    return float(visit.day + 1 if visit.day >= 0 else visit.day)


@dataclass(frozen=True, slots=True)
class SubjectElement:
    """One SE record before its study days: the element, its planned order and epoch, start and end."""

    code: str
    name: str
    order: float
    epoch: str
    start: str
    end: str | None


def subject_elements(
    p: Protocol,
    arm: str | None,
    randomized: bool,
    starts: Mapping[str, str | None],
    epoch_starts: Mapping[str, str | None],
    end: str | None,
) -> list[SubjectElement]:
    """A subject's elements from the dates their records hold: along the allocated arm's path (blinded: the
    BLINDED path; never randomized: the common elements before the first arm element), each element the
    subject has a start date for; an element ends where the next one begins, the last at ``end`` (the end of
    participation). ``starts``: the subject's dates by starts_at event; ``epoch_starts``: the first date
    recorded at each epoch's visits."""
    path = _path(p, arm)
    if arm is None and not randomized:
        blinded = {e.code for e in _blinded(p).values()}
        stop = next((i for i, e in enumerate(path) if e.code in blinded), len(path))
        path = path[:stop]
    begun = [(order, e, epoch_starts.get(e.epoch) if e.starts_at == "epoch_visit" else starts.get(e.starts_at or ""))
             for order, e in enumerate(path, start=1)]  # fmt: skip
    begun = [(order, e, start) for order, e, start in begun if start]
    out = []
    for i, (order, e, start) in enumerate(begun):
        assert start is not None
        finish = begun[i + 1][2] if i + 1 < len(begun) else end
        out.append(SubjectElement(e.code, e.name, float(order), e.epoch, start, finish))
    return out


def visit_element(elements: Sequence[SubjectElement], start: dt.date, planned: str | None) -> SubjectElement | None:
    """The subject's SE element a visit starting on ``start`` (SVSTDTC, a date) starts in, for SV's EPOCH and
    TAETORD (SDTMIG 3.4 SV assumption 11: the values at the start of the visit). The elements whose dates span the
    visit's (SESTDTC's date <= SVSTDTC <= SEENDTC's date; no SEENDTC: open): the one, if one; on a day two elements
    share (one ends and the next begins that day, at a time or at that visit), the date cannot place the visit's
    start, and the one of the visit's planned epoch (``planned``, the protocol's) is taken; None if neither is."""
    day = start.isoformat()
    spanning = [e for e in elements if e.start[:10] <= day and (e.end is None or day <= e.end[:10])]
    if len(spanning) > 1:
        spanning = [e for e in spanning if e.epoch == planned]
    return spanning[0] if len(spanning) == 1 else None


def split_text(text: str) -> list[str]:
    """TSVAL, TSVAL1, ... (and SUPP-- QVAL): pieces of at most 200 bytes that joined are the text exactly
    (SDTMIG 3.4 TS: text over 200 characters continues in TSVAL1-TSVALn). Each piece is as long as 200 bytes allow
    but ends and begins with a character that is not white space: a cut beside a space would start a piece with it
    (a leading blank, FDA FB1501, CORE-000867) or end one with it (SAS transport drops trailing blanks, so the
    joined text would lose it); so a cut falls inside a word, never at the space between two. A value whose
    200-byte window has no such place (a run of white space as long) is refused."""
    pieces, rest = [], text
    while len(rest.encode()) > _TSVAL_BYTES:
        cut = len(rest.encode()[:_TSVAL_BYTES].decode(errors="ignore"))
        while cut > 0 and (rest[cut - 1].isspace() or rest[cut].isspace()):
            cut -= 1
        if cut == 0:
            raise ValueError(f"text {text[:40]!r}...: no place within 200 bytes to cut it between two characters "
                             "that are not white space")  # fmt: skip
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return [*pieces, rest]


def ts_rows(
    p: Protocol, with_arms: bool, subjects: int, first_consent: str | None, notes: list[str], pieces: int
) -> Iterator[dict[str, Any]]:
    """TS: one record per value of each parameter the protocol declares (TSSEQ numbering a parameter's values);
    a value needing more than ``pieces`` TSVAL variables is left out and noted."""
    d = p.trial.design
    values: list[tuple[str, str, str | None, str | None]] = [("TITLE", p.trial.titles.scientific, None, None)]
    values.append(("REGID", p.trial_id, p.trial_id, next(i.registry for i in p.trial.ids if i.primary)))
    values += [("SPONSOR", s.organisation, None, None) for s in p.trial.sponsors]
    values.append(("STYPE", "INTERVENTIONAL", None, None))
    values += [("TPHASE", _PHASE[p.trial.phase.value], None, None)] if p.trial.phase.value in _PHASE else []
    values += [("TINDTP", _INTENT[d.purpose], None, None)] if d.purpose in _INTENT else []
    values += [("INDIC", c.description, c.icd10, "ICD-10") for c in p.trial.conditions]
    values.append(("OBJPRIM", p.trial.summary.aim, None, None))
    values += [("OUTMSPRI", o.description, None, None) for o in p.primary_outcomes]
    if d.allocation in {"randomized", "non_randomized"}:
        values.append(("RANDOM", "Y" if d.allocation == "randomized" else "N", None, None))
    values += [("INTMODEL", _MODEL[d.assignment], None, None)] if d.assignment in _MODEL else []
    values += [("TBLIND", blind, None, None)] if (blind := ts_blinding(p)) is not None else []
    values += [("TCNTRL", c, None, None) for c in dict.fromkeys(_CONTROL[a.role] for a in p.arms if a.role in _CONTROL)]
    values.append(("NARMS", str(len(p.arms)), None, None))
    if with_arms:
        values += [("TRT", n, None, None) for n in dict.fromkeys(a.intervention.name for a in p.arms
                                                                  if a.role is ArmRole.EXPERIMENTAL)]  # fmt: skip
        values += [("COMPTRT", n, None, None) for n in dict.fromkeys(a.intervention.name for a in p.arms
                                                                      if a.role is ArmRole.ACTIVE)]  # fmt: skip
        if (pclas := d.pharmacologic_class) is not None:
            values.append(("PCLAS", pclas.name, pclas.code, pclas.terminology))
    if all(a.intervention.background_therapy for a in p.arms):
        values.append(("ADDON", "Y", None, None))
    values.append(("PLANSUB", str(p.sample_size.target), None, None))
    for code, declared in _DECLARED_IN_DESIGN.items():
        value = getattr(d, declared)
        values += [(code, str(value), None, None)] if value is not None else []
    values += [("FCNTRY", c, None, None) for c in dict.fromkeys(s.country for s in p.sites if s.country)]
    values.append(("ACTSUB", str(subjects), None, None))
    values += [("SSTDTC", first_consent, None, None)] if first_consent else []
    values.append(("SDTIGVER", SDTMIG_VERSION, None, None))
    seq: dict[str, int] = {}
    for code, value, coded, reference in values:
        try:
            parts = split_text(value)
        except ValueError as exc:
            notes.append(f"TS {code}: left out, {exc}")
            continue
        if len(parts) > pieces:
            notes.append(f"TS {code}: left out, its value is longer than the {pieces} TSVAL variables hold")
            continue
        seq[code] = seq.get(code, 0) + 1
        row = {"TSSEQ": float(seq[code]), "TSGRPID": None, "TSPARMCD": code, "TSPARM": ts_parameter(code),
               "TSVAL": parts[0], "TSVALNF": None, "TSVALCD": coded, "TSVCDREF": reference,
               "TSVCDVER": None}  # fmt: skip
        row.update({f"TSVAL{i}": part for i, part in enumerate(parts[1:], start=1)})
        yield row


def ts_blinding(p: Protocol) -> str | None:
    """TS TBLIND's value: the C66735 term of ``masking.blinding``, its sponsor extension (triple), or None."""
    blinding = p.masking.blinding.value if p.masking.blinding else None
    return _BLIND.get(blinding or "") or _BLIND_EXTENDED.get(blinding or "")


def ts_left_out(p: Protocol, with_arms: bool) -> list[str]:
    """The TS parameters the export leaves out for this protocol and extract, each with why."""
    d = p.trial.design
    out = [f"{code}: {why}" for code, why in _NOT_DECLARED.items()]
    out += [
        f"{code}: {ts_parameter(code)} (the protocol does not declare trial.design.{field})"
        for code, field in {**_DECLARED_IN_DESIGN, "PCLAS": "pharmacologic_class"}.items()
        if getattr(d, field) is None
    ]
    blinding = p.masking.blinding.value if p.masking.blinding else "not declared"
    checks = (
        ("TPHASE", p.trial.phase.value in _PHASE, f"phase {p.trial.phase.value} has no CDISC term"),
        ("TINDTP", d.purpose in _INTENT, f"purpose {d.purpose!r} has no mapped CDISC term"),
        ("INTMODEL", d.assignment in _MODEL, f"assignment {d.assignment!r} has no mapped CDISC term"),
        ("TBLIND", ts_blinding(p) is not None, f"blinding {blinding} has no CDISC C66735 term"),
        ("TCNTRL", any(a.role in _CONTROL for a in p.arms), "no placebo or active comparator arm"),
        ("ADDON", all(a.intervention.background_therapy for a in p.arms), "not every arm declares a background "
         "therapy"),
        ("TRT", with_arms, "withheld in a blinded extract (names an arm's intervention)"),
        ("PCLAS", d.pharmacologic_class is None or with_arms,
         "withheld in a blinded extract (the investigational product's class, as TRT)"),
        ("COMPTRT", with_arms and any(a.role is ArmRole.ACTIVE for a in p.arms),
         "withheld in a blinded extract" if not with_arms else "no active comparator arm"),
    )  # fmt: skip
    return out + [f"{code}: {why}" for code, present, why in checks if not present]
