"""Cross-checks of the trial's masking against its arms and roles: contradictions are refused, naming the line
(what each level of blinding masks in the system is ``trialwright.domain.masking``)."""

from __future__ import annotations

from collections.abc import Iterator

from trialwright.protocol.design import KNOWN_ROLES, LEVEL_PARTIES, ArmRole, Blinding, MaskedParty, Preparation
from trialwright.protocol.model import Protocol
from trialwright.protocol.references import Found, unknown

__all__ = [
    "DATA_ENTRY_ROLES",
    "PARTY_ROLES",
    "READINESS_READERS",
    "masked_role_names",
    "masking",
    "registered_design",
    "registered_level",
    "route_notes",
]

#: Roles that know the arms by their work: no protocol can mask them.
_UNBLINDED_BY_WORK = frozenset({"unblinded_pharmacist", "unblinded_statistician", "dsmb_member"})
#: Roles that read the audit trail (web/routes/audit.py): it shows which participants had a dose prepared.
_AUDIT_READERS = frozenset({"administrator", "data_manager", "monitor"})
#: Roles that give the participant their dose and record it (the care provider's roles, ``PARTY_ROLES``): a dose
#: prepared for some arms and none for another tells them the arm.
_CARERS = frozenset({"investigator", "study_coordinator"})
#: Arms that exist to keep the participant from knowing.
_CONCEALING = (ArmRole.PLACEBO, ArmRole.SHAM)
#: The system roles through which a registered masked party uses trialwright: the party is masked in the system only
#: if at least one of its roles is in ``masked_roles`` (the investigator and the outcome assessor are roles of their
#: own, the data analyst is the blinded statistician, the care provider is the site's clinical staff: the
#: investigator or the study coordinator). The participant does not use the system, so is masked by the trial's
#: conduct alone. Double- and triple-blind mask all of these roles; single-blind registers the participant only.
PARTY_ROLES: dict[MaskedParty, tuple[str, ...]] = {
    MaskedParty.PARTICIPANT: (),
    MaskedParty.CARE_PROVIDER: ("investigator", "study_coordinator"),
    MaskedParty.INVESTIGATOR: ("investigator",),
    MaskedParty.OUTCOME_ASSESSOR: ("outcome_assessor",),
    MaskedParty.DATA_ANALYST: ("blinded_statistician",),
}


def masking(p: Protocol) -> Iterator[Found]:
    """Every problem of the masking section."""
    m = p.masking
    for i, role in enumerate(m.unblinding_notify):
        if role not in KNOWN_ROLES:
            yield f"masking.unblinding_notify[{i}]", unknown(role, KNOWN_ROLES, "role")
    for i, role in enumerate(m.account_approvers):
        if role not in KNOWN_ROLES:
            yield f"masking.account_approvers[{i}]", unknown(role, KNOWN_ROLES, "role")
    for i, role in enumerate(m.masked_roles):
        if role not in KNOWN_ROLES:
            yield f"masking.masked_roles[{i}]", unknown(role, KNOWN_ROLES, "role")
        elif role in _UNBLINDED_BY_WORK:
            yield f"masking.masked_roles[{i}]", f"the {role.replace('_', ' ')} knows the arms by their work"
    yield from _registered_parties(p)
    for i, arm in enumerate(p.arms):
        # A cross-check, not the arm's own validator: a validator would hide every other problem of the file
        # (walk 4: the single-blind contradiction below appeared only once this one was fixed).
        if arm.role is ArmRole.NO_INTERVENTION and isinstance(arm.intervention.preparation, Preparation):
            yield f"arms[{i}].intervention.preparation", (
                "a no_intervention arm receives no product: its intervention.preparation is none"
            )
    if m.blinding is Blinding.OPEN and m.open_label_comparator is None:
        for i, arm in enumerate(p.arms):
            if arm.role in _CONCEALING:
                yield f"arms[{i}].role", (
                    f"a {arm.role.value} arm in an open-label trial: a placebo or sham exists to mask; declare the "
                    "blinding, or say why the comparator is open in masking.open_label_comparator"
                )
    if m.blinding is not Blinding.OPEN and m.open_label_comparator is not None:
        yield "masking.open_label_comparator", "is for an open-label trial (blinding: open)"
    yield from _preparations(p)
    yield from _attributes_on_forms(p)
    yield from _forms_revealing_arm(p)
    if m.blinding in (Blinding.SINGLE, Blinding.DOUBLE, Blinding.TRIPLE):
        for i, arm in enumerate(p.arms):
            if arm.role is ArmRole.NO_INTERVENTION:
                yield f"arms[{i}].role", (
                    f"a no_intervention arm cannot be hidden from the participant of a {m.blinding.value}-blind "
                    "trial: use a placebo or sham comparator, or declare blinding open or custom (e.g. outcome "
                    "assessors only)"
                )


def _registered_parties(p: Protocol) -> Iterator[Found]:
    """With blinding custom, each party the registry record says is masked (``masked``) must be masked in the system
    too (``masked_roles``, through ``PARTY_ROLES``): otherwise the record says a party is masked while trialwright
    shows them the arms."""
    m = p.masking
    if m.blinding is not Blinding.CUSTOM:
        return  # the other levels mask every role of their registered parties (or, single, the participant only)
    for i, party in enumerate(m.masked):
        roles = PARTY_ROLES[party]
        if roles and not set(roles) & set(m.masked_roles):
            add = " or ".join(roles)
            yield f"masking.masked[{i}]", (
                f"the registry record says the {party.value.replace('_', ' ')} is masked, but masked_roles shows the "
                f"arms to the {' and the '.join(r.replace('_', ' ') for r in roles)}: add {add} to masked_roles, or "
                f"remove {party.value} from masked"
            )


#: The registry record's words for its blinding (``trial.design.blinding``) that name one of ``masking``'s levels.
_REGISTERED_LEVELS = {b.value: b for b in (Blinding.OPEN, Blinding.SINGLE, Blinding.DOUBLE, Blinding.TRIPLE)}


def _masked_in_system(p: Protocol, party: MaskedParty) -> bool:
    """With blinding custom, whether the party is masked: the participant (who uses no system role) when the record
    lists them in ``masked``, any other party when one of its roles is in ``masked_roles``."""
    m = p.masking
    roles = PARTY_ROLES[party]
    return party in m.masked if not roles else bool(set(roles) & set(m.masked_roles))


def registered_level(p: Protocol) -> Iterator[Found]:
    """The registry record's blinding (``trial.design.blinding``) against the blinding the system applies
    (``masking.blinding``): a level open, single, double or triple must be the registered one (a triple masking
    registered double-blind adds the data analyst alone, the blinded statistician: accepted); a custom masking
    must mask the parties the registered level masks at least (double: the participant and the investigator; triple:
    and the data analyst); a custom masking registered as open (a PROBE design: open treatment, blinded outcome
    assessment) or single (one party, e.g. the outcome assessor) stands. A registry word other than these four, and
    a masking without a level (a protocol written before ``blinding``), are not compared."""
    m = p.masking
    word = p.trial.design.blinding.strip().casefold()
    registered = _REGISTERED_LEVELS.get(word)
    if registered is None or m.blinding is None:
        return
    if m.blinding is not Blinding.CUSTOM:
        declared, said = LEVEL_PARTIES[m.blinding][0], LEVEL_PARTIES[registered][0]
        # Masking fewer parties than registered contradicts the record; masking more contradicts it too, unless the
        # one party added is the data analyst (triple over a double-blind record): the participant and the
        # investigator are the trial's conduct, which the record describes (walk 5: open with masking double).
        if not declared >= said or declared - said - {MaskedParty.DATA_ANALYST}:
            yield "trial.design.blinding", (
                f"the registry record says {registered.value}{'' if registered is Blinding.OPEN else '-blind'}, "
                f"but masking.blinding is {m.blinding.value}: the record and the system's masking must agree"
            )
        return
    if registered not in (Blinding.DOUBLE, Blinding.TRIPLE):
        return  # open (a PROBE design) or single (one party, whichever) with the parties custom masks: no contradiction
    unmasked = sorted(q.value for q in LEVEL_PARTIES[registered][0] if not _masked_in_system(p, q))
    if unmasked:
        names = ", ".join(u.replace("_", " ") for u in unmasked)
        yield "trial.design.blinding", (
            f"the registry record says {registered.value}-blind, which masks the {names}, but masking.blinding custom "
            f"does not mask {'them' if len(unmasked) > 1 else 'that party'} (masked: "
            f"{', '.join(q.value for q in m.masked) or 'none'}; masked_roles: {', '.join(m.masked_roles)}): "
            "register the blinding the trial has (e.g. single for the outcome assessor only), or mask them"
        )


def _preparations(p: Protocol) -> Iterator[Found]:
    """An arm with nothing to prepare beside arms that are prepared tells the arm to whoever sees doses prepared:
    the participant and those caring for them (single, double, triple; under custom blinding, a masked investigator
    or study coordinator, who give and record each dose), or a masked reader of the audit trail."""
    m = p.masking
    if not any(a.preparation() for a in p.arms):
        return
    if m.blinding in (Blinding.SINGLE, Blinding.DOUBLE, Blinding.TRIPLE):
        for i, arm in enumerate(p.arms):
            # A no_intervention arm is refused above, with its own reason.
            if arm.role is not ArmRole.NO_INTERVENTION and arm.preparation() is None:
                yield f"arms[{i}].intervention.preparation", (
                    f"nothing to prepare for one arm of a {m.blinding.value}-blind trial whose other arms are "
                    "prepared: the missing dose would tell the arm; declare what its pharmacist prepares"
                )
    elif m.blinding is Blinding.CUSTOM:
        # A masked carer reads the dose on the treatment form (and the kit check's refusals); a treatment form that
        # reveals the arm is kept from them, so only the readers of the audit trail see a dose prepared.
        treatment = p.analysis_plan.treatment if p.analysis_plan else None
        form = next((f for f in p.forms if treatment is not None and f.id == treatment.form), None)
        carers = [] if form is not None and form.reveals_arm else sorted(_CARERS & set(m.masked_roles))
        readers = sorted(_AUDIT_READERS & set(m.masked_roles))
        if carers:
            why = (
                f"each dose is given and recorded by the masked {', '.join(r.replace('_', ' ') for r in carers)} "
                "(the treatment form, the kit check), so a participant given none would tell the arm"
            )
        elif readers:
            why = (
                f"the audit trail, read by the masked {', '.join(r.replace('_', ' ') for r in readers)}, records "
                "each dose prepared and so would tell the arm"
            )
        else:
            return
        for i, arm in enumerate(p.arms):
            if arm.preparation() is None:
                advice = (
                    "use a placebo or sham comparator, or mask only e.g. the outcome assessors"
                    if arm.role is ArmRole.NO_INTERVENTION
                    else "declare what its pharmacist prepares"
                )
                yield f"arms[{i}].intervention.preparation", (
                    f"nothing to prepare for this arm while others are prepared: {why}; {advice}"
                )


def _attributes_on_forms(p: Protocol) -> Iterator[Found]:
    """A preparation attribute is the unblinded pharmacist's record because its value may differ by arm (a lot,
    a particle count): where staff are kept from the arms (double, triple, custom), no form, which they fill and
    read, asks for it again.

    Open label and single-blind mask no system user: the staff who fill and read the form see the arm already, and
    the participant, the one masked party of a single-blind trial, reads no form in trialwright (docs/roles.md). A
    form may then record the attribute again; keeping it from the participant is the trial's conduct, as every other
    sign of the arm at the bedside is."""
    m = p.masking
    if m.blinding in (Blinding.OPEN, Blinding.SINGLE):
        return
    if m.blinding is Blinding.CUSTOM:
        who = "the masked " + ", ".join(r.replace("_", " ") for r in m.masked_roles)
    elif m.blinding is None:  # parties listed without a level: masked as double-blind (domain/masking.py)
        who = "masked staff"
    else:
        who = f"the staff a {m.blinding.value}-blind trial masks"
    attributes = {a.id: arm.code for arm in p.arms if (prep := arm.preparation()) for a in prep.attributes}
    for i, form in enumerate(p.forms):
        for j, f in enumerate(form.fields):
            if f.id in attributes:
                yield f"forms[{i}].fields[{j}]", (
                    f"{form.id}.{f.id} asks {who} for the preparation attribute {f.id} (of arm "
                    f"{attributes[f.id]}), the unblinded pharmacist's record: a value that may differ by arm "
                    "(a lot, a count) would tell the arm; keep it in the preparation only"
                )


#: The masked parties who see how a dose is given: the participant and those caring for them at the bedside.
_AT_THE_BEDSIDE = frozenset({MaskedParty.PARTICIPANT, MaskedParty.CARE_PROVIDER})


def route_notes(p: Protocol) -> tuple[str, ...]:
    """A note (for ``protocol check``, not a refusal: the pharmacy can give a double dummy) when a trial that masks
    the participant or the care provider gives its arms by different routes: each arm's route, and that the blind
    needs a double-dummy or a matching administration."""
    masked = _AT_THE_BEDSIDE & set(p.masking.masked)
    routes = {a.code: a.intervention.route.strip() for a in p.arms}
    if not masked or len({r.casefold() for r in routes.values()}) < 2:
        return ()
    parties = " and the ".join(sorted(m.value.replace("_", " ") for m in masked))
    listed = "; ".join(f"arm {code}: {route}" for code, route in routes.items())
    return (
        f"Blinding: the arms are given by different routes ({listed}) while the {parties} "
        f"{'is' if len(masked) == 1 else 'are'} masked: the blind needs a double-dummy (each participant receives "
        "every route, a placebo by all but their arm's) or a matching administration",
    )


def masked_role_names(p: Protocol) -> frozenset[str]:
    """The system roles this masking keeps from the arms, by name (``trialwright.domain.masking.masked_roles`` is
    the policy itself; this is its reading for the protocol's own checks, which come before the domain)."""
    m = p.masking
    if m.blinding in (Blinding.OPEN, Blinding.SINGLE):
        return frozenset()
    if m.blinding is Blinding.CUSTOM:
        return frozenset(m.masked_roles)
    return frozenset(KNOWN_ROLES) - _UNBLINDED_BY_WORK


#: The roles that fill forms (``services.forms.common.DATA_ENTRY``; a spec holds the two equal).
DATA_ENTRY_ROLES: tuple[str, ...] = ("investigator", "study_coordinator", "outcome_assessor")
#: The roles that read the lock readiness report (``services.readiness.READERS``; a spec holds the two equal): it
#: keeps a form that reveals the arm from a masked reader, whose lock then needs one of them unmasked to review it.
READINESS_READERS: tuple[str, ...] = ("data_manager", "monitor")
#: The role that runs the analysis and reads its report in a masked trial (``services.analysis.ANALYSTS``, less the
#: unblinded statistician, who knows the arms).
_MASKED_ANALYST = "blinded_statistician"


def _forms_revealing_arm(p: Protocol) -> Iterator[Found]:
    """A form whose values differ by arm (``reveals_arm``) is kept from every masked role; nothing that masked roles
    see may read it. Refused: the declaration in a trial that masks no role (nothing to keep it from) or that masks
    every role that fills forms (no one could fill it), and anything outside the form that reads one of its fields
    and is shown to masked roles: a derived field of another form (its value would carry the arm onto a form masked
    staff read; a derived field of the form itself is kept with it), a data check (its query is on the
    participant's list, read by masked staff), and an outcome's estimand while the blinded statistician, who runs
    the analysis, is masked. The lock readiness report keeps the form from a masked reader (data manager, monitor)
    and says its lock needs an unmasked reviewer: refused only when every reader of it is masked (no one could
    review the form before the lock). A log cannot reveal the arm (``logs[].reveals_arm``): its entries are read on
    paths that do not keep it."""
    for i, log in enumerate(p.logs):
        if log.reveals_arm:  # a log's entries are read on paths that do not ask kept_forms: refused, never leaked
            yield f"logs[{i}].reveals_arm", (
                f"the {log.id} log cannot be kept from masked roles yet (its entries are on the participant page, "
                "exports and the audit trail for every reader): record what differs by arm on a form that "
                "reveals the arm"
            )
    revealing = {form.id for form in p.forms if form.reveals_arm}
    if not revealing:
        return
    masked = masked_role_names(p)
    blinding = p.masking.blinding.value if p.masking.blinding else "none"
    for i, form in enumerate(p.forms):
        if not form.reveals_arm:
            continue
        if not masked:
            yield f"forms[{i}].reveals_arm", (
                f"{form.id} reveals the arm, but this trial masks no role (blinding: {blinding}): there is no one "
                "to keep it from; remove reveals_arm, or mask the roles it must be kept from"
            )
        elif masked >= set(DATA_ENTRY_ROLES):
            yield f"forms[{i}].reveals_arm", (
                f"{form.id} reveals the arm, but every role that fills forms "
                f"({', '.join(r.replace('_', ' ') for r in DATA_ENTRY_ROLES)}) is masked: no one could fill it; "
                "unmask the staff who fill it (blinding custom, masked_roles), or remove reveals_arm"
            )
    if not masked:
        return
    if masked >= set(READINESS_READERS):  # the report keeps it from each of them: no one could review it
        for i, form in enumerate(p.forms):
            if form.reveals_arm:
                yield f"forms[{i}].reveals_arm", (
                    f"{form.id} reveals the arm, but every reader of the lock readiness report "
                    f"({' and '.join(r.replace('_', ' ') for r in READINESS_READERS)}) is masked: the report keeps "
                    "the form from them, so no one could review it before the lock; unmask one of them (blinding "
                    "custom, masked_roles), or remove reveals_arm"
                )

    def reads(refs: list[str]) -> list[str]:
        return [ref for ref in refs if ref.partition(".")[0] in revealing]

    for i, form in enumerate(p.forms):
        if form.id in revealing:
            continue
        for j, f in enumerate(form.fields):
            if f.derived is None:
                continue
            if found := reads([s if "." in s else f"{form.id}.{s}" for s in f.derived.sources]):
                yield f"forms[{i}].fields[{j}].derived", (
                    f"{form.id}.{f.id} is derived from {', '.join(found)}, on a form that reveals the arm, but "
                    f"{form.id} is read by masked roles: its value would tell them the arm; derive it on the form "
                    "that reveals the arm, or from other fields"
                )
    for i, check in enumerate(p.data_checks):
        if found := reads([*check.left, *check.right, *([check.field] if check.field else [])]):
            yield f"data_checks[{i}]", (
                f"check {check.id} reads {', '.join(found)}, on a form that reveals the arm: its query would show "
                "masked roles a value that differs by arm; check other fields, or remove the check"
            )
    if _MASKED_ANALYST in masked:
        for i, outcome in enumerate(p.outcomes):
            if found := reads(list(outcome.estimand.variable.fields)):
                yield f"outcomes[{i}].estimand.variable.fields", (
                    f"outcome {outcome.id} is estimated from {', '.join(found)}, on a form that reveals the arm, "
                    "while the blinded statistician, who runs the analysis, is masked: the analysis would tell "
                    "them the arm; measure the outcome on another form"
                )


#: The registry record's assignment (``trial.design.assignment``) the engine runs: every participant is allocated once
#: to one of two or more arms and stays in it (no periods, no second factor, no single group).
RUN_ASSIGNMENTS = ("parallel",)


def registered_design(p: Protocol) -> Iterator[Found]:
    """The registry record's design (``trial.design``) against what the protocol declares: ``placebo`` true needs a
    placebo (or sham) comparator arm and false allows no placebo comparator arm; ``assignment`` must be one the
    engine runs (``RUN_ASSIGNMENTS``). Each contradiction is its own problem, listed with every other one."""
    d = p.trial.design
    placebos = [i for i, arm in enumerate(p.arms) if arm.role is ArmRole.PLACEBO]
    if not d.placebo and placebos:
        arms = ", ".join(p.arms[i].code for i in placebos)
        yield "trial.design.placebo", (
            f"the registry record says no placebo is used, but arm {arms} is a placebo_comparator: set placebo: true, "
            "or give the arm the role it has"
        )
    if d.placebo and not any(arm.role in _CONCEALING for arm in p.arms):
        yield "trial.design.placebo", (
            "the registry record says a placebo is used, but no arm is a placebo_comparator (or sham_comparator): "
            "set placebo: false, or give the placebo arm role placebo_comparator"
        )
    if d.assignment not in RUN_ASSIGNMENTS:
        yield "trial.design.assignment", (
            f"{d.assignment!r}: trialwright runs parallel arms only (each participant allocated once to one arm and "
            "kept in it; no crossover periods, factorial cells or single group): write parallel for such a trial "
            "(the word the SDTM export maps); a trial of another design cannot be run here"
        )
