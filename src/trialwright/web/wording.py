"""The pages' messages in the words on the page (``trialwright.domain.wording``): each page says which of its
own inputs a message may name, by the label that input shows, translated; the protocol's fields are said by their
labels in the page's language.

A refusal a service raises names a field by its id (``crp: must be a number``, ``representative_name: ...``), as
the API and the command line keep it; a page shows it as ``C-reactive protein: must be a number``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from trialwright.domain.audit_changes import AuditChange
from trialwright.domain.roles import Role, role_named
from trialwright.domain.wording import Words, field_words, in_words, words_for
from trialwright.protocol import Protocol
from trialwright.web.i18n import N_, text_direction, translations

__all__ = [
    "AUDIT_KEYS",
    "CONSENT_INPUTS",
    "CRF_INPUTS",
    "DSMB_INPUTS",
    "LIST_INPUTS",
    "LOCK_INPUTS",
    "LOG_INPUTS",
    "PARTICIPANT_INPUTS",
    "REGAINED_INPUTS",
    "RULES",
    "SAFETY_INPUTS",
    "SCREENING_INPUTS",
    "WITHDRAWAL_INPUTS",
    "change_words",
    "page_words",
    "say",
]

#: A case report form page's own inputs, and the participant's events its rules name.
CRF_INPUTS: Mapping[str, str] = {
    "visit_date": N_("Visit date"),
    "state": N_("Form state"),
    "role": N_("Role"),
    "text": N_("Question"),
    "answer": N_("Answer"),
    "reason": N_("Reason for change"),
    "participant.consented_at": N_("the consent"),
    "participant.enrolled_at": N_("the enrolment"),
    "participant.randomized_at": N_("the randomization"),
    "password": N_("Your password"),
}
#: The participant page's own inputs (visits held or missed, randomization, an unscheduled visit) and what its
#: refusals name.
PARTICIPANT_INPUTS: Mapping[str, str] = {
    **CRF_INPUTS,
    "label": N_("Why (unscheduled visit)"),
    "missed_reason": N_("Or: reason the visit was missed"),
    "list": N_("Allocation list"),
    "password": N_("Your password"),
    "participant": N_("Participant"),
}
#: The screening page's own inputs (the screening fields are the protocol's).
SCREENING_INPUTS: Mapping[str, str] = {
    "screened_on": N_("Date of screening"),
    "site": N_("Site"),
    "screening": N_("Screening"),
}
#: The consent and non-enrolment inputs of the screening page.
CONSENT_INPUTS: Mapping[str, str] = {
    "form_version": N_("Consent form version"),
    "given_by": N_("Consent given by"),
    "representative_name": N_("Representative's name"),
    "representative_relationship": N_("Relationship to the patient"),
    "witness": N_("Witness"),
    "obtained_by": N_("Consent obtained by"),
    "obtained_at": N_("Date and time (site time)"),
    "decision": N_("Decision"),
    "text": N_("Details (needed for other)"),
    "assent": N_("Assent"),
    "assent_obtained_by": N_("Assent sought by"),
    "assent_obtained_at": N_("Assent sought at (site time)"),
    "assent_form_version": N_("Assent form version"),
    "assent_not_sought_reason": N_("Why assent was not sought"),
    # what the consent and enrolment refusals name besides the inputs
    "kind": N_("Kind"),
    "consent": N_("Consent"),
    "eligibility": N_("Eligibility"),
    "role": N_("Role"),
    "participant": N_("Participant"),
}
#: The regained-capacity decision's inputs where their labels differ from the consent form's (its decision is the
#: participant's own): a refusal of that form names them so.
REGAINED_INPUTS: Mapping[str, str] = {"decision": N_("The participant's decision")}
#: The withdrawal inputs of the screening page.
WITHDRAWAL_INPUTS: Mapping[str, str] = {
    "scope": N_("Withdraw from"),
    "cause": N_("Cause"),
    "withdrawn_on": N_("Date of withdrawal"),
    "reason": N_("Reason"),
}
#: The lock pages' inputs (database lock, soft locks).
LOCK_INPUTS: Mapping[str, str] = {
    "role": N_("Role"),
    "reason": N_("Reason"),
    "password": N_("Your password"),
    "site": N_("Site"),
    "participant_id": N_("Participant"),
    "withheld": N_("Forms kept from masked readers"),
}
#: The allocation list page's inputs (the unblinded statistician's).
LIST_INPUTS: Mapping[str, str] = {
    "entries": N_("Entries"),
    "reason": N_("Reason"),
    "stratum": N_("Stratum"),
    "list": N_("Allocation list"),
}
#: The DSMB page's inputs (a decision on the safety pause).
DSMB_INPUTS: Mapping[str, str] = {
    "decision": N_("Decision"),
    "reason": N_("Reason"),
    "password": N_("Your password"),
    "role": N_("Role"),
}
#: The adverse event report's inputs.
SAFETY_INPUTS: Mapping[str, str] = {
    "term": N_("Adverse event (term)"),
    "expected_event": N_("Listed expected event"),
    "onset": N_("Onset"),
    "end": N_("End (empty while ongoing)"),
    "grade": N_("Severity grade"),
    "serious": N_("Serious?"),
    "seriousness_criteria": N_("Seriousness criteria (ICH E2A)"),
    "causality": N_("Relatedness"),
    "action_taken": N_("Action taken with the product"),
    "outcome": N_("Outcome"),
    "death_date": N_("Date of death"),
    "death_cause": N_("Cause of death"),
    "aware_at": N_("When the site became aware (site time)"),
    "narrative": N_("Narrative"),
    "role": N_("Role"),
}


#: The keys of audited values the audit page says in words (a key not here is shown as it is stored).
AUDIT_KEYS: Mapping[str, str] = {
    **CONSENT_INPUTS,
    "relationship": N_("Relationship to the patient"),
    "kind": N_("Kind"),
    "decision": N_("Decision"),
    "query": N_("Query"),
    "text": N_("Text"),
    "answer": N_("Answer"),
    "note": N_("Note"),
    "reason": N_("Reason"),
    "origin": N_("Origin"),
    "value": N_("Value"),
    "old_value": N_("Old value"),
    "new_value": N_("New value"),
    "status": N_("Status"),
    "unit": N_("Unit"),
    "participant_id": N_("Participant"),
    "screening": N_("Screening"),
    "visit": N_("Visit"),
    "visit_date": N_("Visit date"),
    "preparation_code": N_("Preparation code"),
    "randomization_number": N_("Randomization number"),
    "seal": N_("Allocation seal"),  # a keyed digest of the allocation: masked for every blinded reader
    "stratum": N_("Stratum"),
    "username": N_("Username"),
    "role": N_("Role"),
    "sites": N_("Sites"),
    "full_name": N_("Full name"),
    "language": N_("Language"),
    "calendar": N_("Calendar"),
    "protocol_version": N_("Protocol version"),
    "target": N_("Target"),
    "name": N_("Name"),
    "format": N_("Format"),
}


def change_words(protocol: Protocol, lang: str) -> Callable[[AuditChange], str]:
    """What says the key of an audited change on the audit page: a form value by its field's label (with its form's
    name), a screening value by the screening field's label, another key by ``AUDIT_KEYS``, else as stored."""
    gettext = translations(lang).gettext

    def words(change: AuditChange) -> str:
        if change.form is not None:
            return field_words(protocol, f"{change.form}.{change.key}", lang) or change.key
        if change.within == "values":
            return field_words(protocol, f"screening.{change.key}", lang) or change.key
        label = AUDIT_KEYS.get(change.key)
        return gettext(label) if label is not None else change.key

    return words


def page_words(protocol: Protocol | None, lang: str, *inputs: Mapping[str, str], form_id: str | None = None) -> Words:
    """What says a reference on a page in ``lang``: the protocol's fields (none for a page whose messages name
    only its own inputs: ``protocol`` None), then the page's inputs, translated."""
    gettext = translations(lang).gettext
    own = {name: gettext(label) for table in inputs for name, label in table.items()}
    if protocol is None:
        return own.get
    return words_for(protocol, lang, form_id=form_id, inputs=own)


#: Rules the services word in English (``field: rule``), as message ids a page says in its language: the rule's
#: text exactly, or its pattern whose values (``%(name)s``) are said in words (a code by its label, a field by its
#: label, a form state translated), each isolated. A rule not here is said as before (``in_words``).
RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), msgid)
    for pattern, msgid in (
        # consent, assent and the age of consent (``services.screening.consent``, ``domain.assent``,
        # ``services.screening.dissent``): before the general rules below, which a few of them would also match
        (r"given without assent \(given, dissent or not_sought\)",
         N_("given without assent (given, dissent or not_sought)")),
        (r"typed without ticking the box to record the consent again with the correction; tick it to record the "
         r"consent again, or clear them",
         N_("typed without ticking the box to record the consent again with the correction; tick it to record the "
            "consent again, or clear them")),
        (r"the protocol declares no assent \(eligibility\.assent\)",
         N_("the protocol declares no assent (eligibility.assent)")),
        (r"the age at screening \((?P<field>[^()]+)\) is not recorded; it decides whether the participant's assent is "
         r"sought \(eligibility\.assent\)",
         N_("the age at screening (%(field)s) is not recorded; it decides whether the participant's assent is sought "
            "(eligibility.assent)")),
        (r"sought from (?P<least>\S+) (?P<unit>years|months) \(eligibility\.assent\.from_age\); this participant is "
         r"(?P<age>\S+) (?P<unit_age>years|months) at screening",
         N_("sought from %(least)s %(unit)s (eligibility.assent.from_age); this participant is %(age)s %(unit_age)s at "
            "screening")),
        (r"recorded only with a representative's consent \(eligibility\.assent\)",
         N_("recorded only with a representative's consent (eligibility.assent)")),
        (r"the participant is (?P<least>\S+) (?P<unit>years|months) or older \(eligibility\.assent\.from_age\); record "
         r"their assent \(given or dissent\) or why it was not sought",
         N_("the participant is %(least)s %(unit)s or older (eligibility.assent.from_age); record their assent (given "
            "or dissent) or why it was not sought")),
        (r"say why the participant's assent was not sought \(e\.g\. unable to understand\)",
         N_("say why the participant's assent was not sought (e.g. unable to understand)")),
        (r"assent was not sought", N_("assent was not sought")),
        (r"assent was (?P<answer>given|dissent), not left unsought", N_("assent was %(answer)s, not left unsought")),
        (r"name the person who sought the participant's assent",
         N_("name the person who sought the participant's assent")),
        (r"when the participant's assent was sought", N_("when the participant's assent was sought")),
        (r"must be one of (?P<choices>.+) \(eligibility\.assent\.form_versions\)",
         N_("must be one of %(choices)s (eligibility.assent.form_versions)")),
        (r"the protocol declares no assent form \(eligibility\.assent\.form_versions\)",
         N_("the protocol declares no assent form (eligibility.assent.form_versions)")),
        (r"the age at screening \((?P<field>[^()]+)\) is not recorded; it decides whether the participant may consent "
         r"for themselves \(eligibility\.assent\.consent_age\)",
         N_("the age at screening (%(field)s) is not recorded; it decides whether the participant may consent for "
            "themselves (eligibility.assent.consent_age)")),
        (r"the participant is (?P<age>\S+) (?P<unit_age>years|months) at screening, below the age of consent "
         r"\((?P<least>\S+) (?P<unit>years|months), eligibility\.assent\.consent_age\); a representative consents for "
         r"them, with their assent",
         N_("the participant is %(age)s %(unit_age)s at screening, below the age of consent (%(least)s %(unit)s, "
            "eligibility.assent.consent_age); a representative consents for them, with their assent")),
        (r"(?P<day>\d{4}-\d{2}-\d{2}) at the site is before the screening date (?P<screened>\d{4}-\d{2}-\d{2})",
         N_("%(day)s at the site is before the screening date %(screened)s")),
        (r"corrected to (?P<value>[^,]+), (?P<screening>\S+)'s consent record in force \((?P<kind>initial|reconsent), "
         r"(?P<day>\d{4}-\d{2}-\d{2})\) no longer meets the assent rule \(eligibility\.assent: (?P<inner>.+)\); "
         r"record the consent again with the correction, with the assent the corrected age needs",
         N_("corrected to %(value)s, %(screening)s's consent record in force (%(kind)s, %(day)s) no longer meets the "
            "assent rule (eligibility.assent: %(inner)s); record the consent again with the correction, with the "
            "assent the corrected age needs")),
        (r"corrected to (?P<value>[^,]+), (?P<screening>\S+)'s consent record in force \((?P<kind>initial|reconsent), "
         r"(?P<day>\d{4}-\d{2}-\d{2})\) is the participant's own, no longer allowed \((?P<inner>.+)\); record the "
         r"consent again with the correction, by a representative with the assent the corrected age needs",
         N_("corrected to %(value)s, %(screening)s's consent record in force (%(kind)s, %(day)s) is the participant's "
            "own, no longer allowed (%(inner)s); record the consent again with the correction, by a representative "
            "with the assent the corrected age needs")),
        (r"(?P<screening>\S+) is enrolled as (?P<participant>\S+); an initial consent is recorded before enrolment, "
         r"and a later one is a re-consent \(kind: reconsent\)",
         N_("%(screening)s is enrolled as %(participant)s; an initial consent is recorded before enrolment, and a "
            "later one is a re-consent (kind: reconsent)")),
        (r"(?P<screening>\S+)'s own dissent is recorded with the representative's consent; a dissent is respected and "
         r"the participant is not enrolled \(eligibility\.assent\)",
         N_("%(screening)s's own dissent is recorded with the representative's consent; a dissent is respected and the "
            "participant is not enrolled (eligibility.assent)")),
        (r"(?P<screening>\S+)'s consent in force is the participant's own: (?P<inner>.+)",
         N_("%(screening)s's consent in force is the participant's own: %(inner)s")),
        (r"(?P<screening>\S+) has no recorded consent", N_("%(screening)s has no recorded consent")),
        (r"(?P<screening>\S+) is (?P<status>not eligible|incomplete); only an eligible patient is enrolled",
         N_("%(screening)s is %(status)s; only an eligible patient is enrolled")),
        (r"must be withdraw or continue", N_("must be withdraw or continue")),
        (r"the investigator records the decision on a dissent",
         N_("the investigator records the decision on a dissent")),
        (r"the ethics committee's reason to continue, or why the participant is withdrawn",
         N_("the ethics committee's reason to continue, or why the participant is withdrawn")),
        (r"(?P<participant>\S+) has no dissent awaiting a decision",
         N_("%(participant)s has no dissent awaiting a decision")),
        (r"must be participant or representative", N_("must be participant or representative")),
        (r"must be initial, reconsent or regained_capacity", N_("must be initial, reconsent or regained_capacity")),
        (r"for (?P<kind>initial|reconsent|regained_capacity) must be one of (?P<decisions>.+)",
         N_("for %(kind)s must be one of %(decisions)s")),
        (r"a participant who regained capacity decides for themself",
         N_("a participant who regained capacity decides for themself")),
        (r"unknown consent form version (?P<value>'.*') \(versions: (?P<versions>.+)\)",
         N_("unknown consent form version %(value)s (versions: %(versions)s)")),
        (r"(?P<version>\S+) was superseded by (?P<later>\S+) from (?P<day>\d{4}-\d{2}-\d{2}) \(consent obtained on "
         r"(?P<obtained>\d{4}-\d{2}-\d{2}) at the site\); use (?P<use>\S+)",
         N_("%(version)s was superseded by %(later)s from %(day)s (consent obtained on %(obtained)s at the site); "
            "use %(use)s")),
        # a screening value for a field whose applies_if is false (``domain.eligibility.applies_if_problems``)
        (r"does not apply to this patient \(applies_if: (?P<rule>.+) is false\); leave it empty",
         N_("does not apply to this patient (applies_if: %(rule)s is false); leave it empty")),
        (r"a value is stored, and the change of (?P<fields>.+) makes it not apply to this patient \(applies_if: "
         r"(?P<rule>.+) is false\); clear (?P<self>\S+) in the same change",
         N_("a value is stored, and the change of %(fields)s makes it not apply to this patient (applies_if: "
            "%(rule)s is false); clear %(self)s in the same change")),
        (r"(?P<version>\S+) is in use only from (?P<day>\d{4}-\d{2}-\d{2}) \(consent obtained on "
         r"(?P<obtained>\d{4}-\d{2}-\d{2}) at the site\)",
         N_("%(version)s is in use only from %(day)s (consent obtained on %(obtained)s at the site)")),
        (r"the protocol declares that a participant consented for by a representative does not regain capacity during "
         r"the trial \(eligibility\.regained_capacity: false\)",
         N_("the protocol declares that a participant consented for by a representative does not regain capacity "
            "during the trial (eligibility.regained_capacity: false)")),
        (r"regained_capacity follows a representative's consent; there is none",
         N_("regained_capacity follows a representative's consent; there is none")),
        (r"name the person who obtained consent", N_("name the person who obtained consent")),
        (r"cannot be in the future", N_("cannot be in the future")),
        (r"no allocation list yet; the unblinded statistician generates it",
         N_("no allocation list yet; the unblinded statistician generates it")),
        (r"say why the unscheduled visit took place", N_("say why the unscheduled visit took place")),
        (r"re-enter your own password to sign", N_("re-enter your own password to sign")),
        (r"re-enter your own password to confirm", N_("re-enter your own password to confirm")),
        (r"re-enter your own password to sign the decision", N_("re-enter your own password to sign the decision")),
        (r"needed when a legally authorised representative consents",
         N_("needed when a legally authorised representative consents")),
        (r"needed when a representative consents", N_("needed when a representative consents")),
        (r"is required; one of (?P<choices>.+)", N_("is required; choose one of %(choices)s")),
        (r"the form is (?P<state>draft|complete|verified|signed|locked); a change needs a reason for change "
         r"\(changed: (?P<fields>.+)\)",
         N_("the form is %(state)s; a change needs a reason for change (changed: %(fields)s)")),
        # a coherence breach (``domain.coherence``): on a form page, and on the lock pages as a blocker
        (r"(?P<moment>.+) is before the consent \((?P<earlier>.+)\); nothing is recorded about a participant before "
         r"they consent \(built-in rule\)",
         N_("%(moment)s is before the consent (%(earlier)s); nothing is recorded about a participant before they "
            "consent (built-in rule)")),
        (r"(?P<moment>.+) is before the randomization \((?P<earlier>.+)\); no treatment is given before "
         r"randomization \(built-in rule\)",
         N_("%(moment)s is before the randomization (%(earlier)s); no treatment is given before randomization "
            "(built-in rule)")),
        (r"(?P<moment>.+) is before the dose was prepared \((?P<earlier>.+)\); no treatment is given before its "
         r"preparation \(built-in rule\)",
         N_("%(moment)s is before the dose was prepared (%(earlier)s); no treatment is given before its preparation "
            "(built-in rule)")),
        (r"(?P<moment>.+) is before (?P<field>.+) \((?P<earlier>[^()]+)\); the protocol says it is not before "
         r"(?P<ref>\S+) \(not_before\)",
         N_("%(moment)s is before %(field)s (%(earlier)s); the protocol says it is not before %(ref)s (not_before)")),
        (r"(?P<value>[^,]+), derived from (?P<fields>.+), is outside the hard limits (?P<range>.+); correct the "
         r"values it is derived from",
         N_("%(value)s, derived from %(fields)s, is outside the hard limits %(range)s; correct the values it is "
            "derived from")),
        # the forms, screening, consent, enrolment, randomization, safety, pharmacy, lock and DSMB pages' rules
        (r"must be a date written YYYY-MM-DD", N_("must be a date written YYYY-MM-DD")),
        (r"must be a date written YYYY-MM-DD, not (?P<value>.*)",
         N_("must be a date written YYYY-MM-DD, not %(value)s")),
        (r"must be a date and time, YYYY-MM-DDTHH:MM", N_("must be a date and time, YYYY-MM-DDTHH:MM")),
        (r"must be a number, not (?P<value>.*)", N_("must be a number, not %(value)s")),
        (r"must be a whole number", N_("must be a whole number")),
        (r"must be a whole number, not (?P<value>.*)", N_("must be a whole number, not %(value)s")),
        (r"must be a whole number 1-5, not (?P<value>.*)", N_("must be a whole number 1-5, not %(value)s")),
        (r"(?P<value>.+) is outside the accepted range (?P<range>.+)",
         N_("%(value)s is outside the accepted range %(range)s")),
        (r"(?P<day>\d{4}-\d{2}-\d{2}) is before enrolment on (?P<enrolled>\d{4}-\d{2}-\d{2})",
         N_("%(day)s is before enrolment on %(enrolled)s")),
        (r"(?P<day>\d{4}-\d{2}-\d{2}) is before enrolment on (?P<enrolled>\d{4}-\d{2}-\d{2}) at the site",
         N_("%(day)s is before enrolment on %(enrolled)s at the site")),
        (r"(?P<day>\d{4}-\d{2}-\d{2}) is after (?P<participant>\S+)'s death on (?P<died>\d{4}-\d{2}-\d{2}) "
         r"\((?P<source>.+)\); a participant who has died is not withdrawn",
         N_("%(day)s is after %(participant)s's death on %(died)s (%(source)s); a participant who has died is not "
            "withdrawn")),
        (r"must be one of (?P<choices>.+)", N_("must be one of %(choices)s")),
        (r"(?P<value>'.*') is not one of (?P<choices>.+)", N_("%(value)s is not one of %(choices)s")),
        (r"required; enter a value or record it as not done with a reason \(also missing: nothing else\)",
         N_("required; enter a value or record it as not done with a reason (also missing: nothing else)")),
        (r"required; enter a value or record it as not done with a reason \(also missing: (?P<fields>.+)\)",
         N_("required; enter a value or record it as not done with a reason (also missing: %(fields)s)")),
        (r"a (?P<state>draft|complete|verified|signed|locked) form cannot be (?P<done>\w+) \(only a form that is "
         r"(?P<states>.+)\)",
         N_("a %(state)s form cannot be %(done)s (only a form that is %(states)s)")),
        (r"is required", N_("is required")),
        (r"is required: yes or no", N_("is required: yes or no")),
        (r"is required: when the site became aware of the event",
         N_("is required: when the site became aware of the event")),
        (r"is required: the adverse event's name", N_("is required: the adverse event's name")),
        (r"(?P<participant>\S+) is already enrolled", N_("%(participant)s is already enrolled")),
        (r"(?P<participant>\S+) is randomized already", N_("%(participant)s is randomized already")),
        (r"an allocation list exists already; it is never regenerated",
         N_("an allocation list exists already; it is never regenerated")),
        (r"write the answer", N_("write the answer")),
        (r"write the question", N_("write the question")),
        (r"say why the list is extended", N_("say why the list is extended")),
        (r"say why the database is unlocked", N_("say why the database is unlocked")),
        (r"say why the soft lock is lifted", N_("say why the soft lock is lifted")),
        # the unmasked reviewer's review of the forms kept from masked readers (``services.readiness``)
        (r"the trial masks your role; only an unmasked reader of the lock readiness may review the forms kept from "
         r"masked readers \(they reveal the arm\)",
         N_("the trial masks your role; only an unmasked reader of the lock readiness may review the forms kept from "
            "masked readers (they reveal the arm)")),
        (r"no form is kept from a masked reader of the lock readiness \(no form reveals the arm, or no reader is "
         r"masked\): there is nothing to review",
         N_("no form is kept from a masked reader of the lock readiness (no form reveals the arm, or no reader is "
            "masked): there is nothing to review")),
        (r"you see only some sites' forms; the review is of every site's forms kept from masked readers",
         N_("you see only some sites' forms; the review is of every site's forms kept from masked readers")),
        (r"say what you reviewed and found", N_("say what you reviewed and found")),
        (r"wrong password; a review of the forms kept from masked readers needs your current password",
         N_("wrong password; a review of the forms kept from masked readers needs your current password")),
        (r"the forms changed while they were being reviewed; review them again",
         N_("the forms changed while they were being reviewed; review them again")),
        (r"the forms kept from masked readers \((?P<forms>[^)]*)\) are not ready: (?P<n>\d+) blockers? on them: "
         r"(?P<listed>.+)",
         N_("the forms kept from masked readers (%(forms)s) are not ready: %(n)s blockers on them: %(listed)s")),
        # a change while the trial is locked, or its participant or site soft-locked (``services.lock``)
        (r"the database is locked \(since (?P<at>[0-9: -]+) UTC, by (?P<by>\S+)\); the data manager unlocks it "
         r"with a reason",
         N_("the database is locked (since %(at)s UTC, by %(by)s); the data manager unlocks it with a reason")),
        (r"(?P<target>\S+) is soft-locked \(since (?P<at>[0-9: -]+) UTC, by (?P<by>\S+): (?P<reason>.*)\); nothing "
         r"there can be changed until the data manager unlocks it with a reason",
         N_("%(target)s is soft-locked (since %(at)s UTC, by %(by)s: %(reason)s); nothing there can be changed until "
            "the data manager unlocks it with a reason")),
        # a log's entries (``services.logs``, ``services.log_views``)
        (r"is required; give a value, or record it as not done with a reason",
         N_("is required; give a value, or record it as not done with a reason")),
        (r"an entry that is ongoing has no end date; clear the end date, or record that it is not ongoing",
         N_("an entry that is ongoing has no end date; clear the end date, or record that it is not ongoing")),
        (r"(?P<moment>[^()]+) is before (?P<field>[^ ()]+) \((?P<earlier>[^()]+)\)",
         N_("%(moment)s is before %(field)s (%(earlier)s)")),
        (r"amending entry (?P<n>\d+) of (?P<log>\S+) needs a reason",
         N_("amending entry %(n)s of %(log)s needs a reason")),
        (r"removing entry (?P<n>\d+) of (?P<log>\S+) needs a reason",
         N_("removing entry %(n)s of %(log)s needs a reason")),
        (r"entry (?P<n>\d+) of (?P<log>\S+) was removed \((?P<reason>.*)\); add a new one",
         N_("entry %(n)s of %(log)s was removed (%(reason)s); add a new one")),
        (r"entry (?P<n>\d+) of (?P<log>\S+) was removed already \((?P<reason>.*)\)",
         N_("entry %(n)s of %(log)s was removed already (%(reason)s)")),
        (r"nothing changes in entry (?P<n>\d+) of (?P<log>\S+)", N_("nothing changes in entry %(n)s of %(log)s")),
        (r"(?P<participant>\S+) has no entry (?P<n>\d+) in log (?P<log>\S+)",
         N_("%(participant)s has no entry %(n)s in log %(log)s")),
        (r"the page did not say which version of entry (?P<n>\d+) of (?P<log>\S+) you changed; open the "
         r"participant's page again",
         N_("the page did not say which version of entry %(n)s of %(log)s you changed; open the participant's page "
            "again")),
        (r"entry (?P<n>\d+) of (?P<log>\S+) was changed after you read it \(you read version (?P<read>\d+); it is at "
         r"version (?P<stored>\d+), changed by (?P<by>\S+) at (?P<at>[0-9: -]+) UTC\); read it again and make your "
         r"change from there",
         N_("entry %(n)s of %(log)s was changed after you read it (you read version %(read)s; it is at version "
            "%(stored)s, changed by %(by)s at %(at)s UTC); read it again and make your change from there")),
        (r"(?P<day>\d{4}-\d{2}-\d{2}) is in the future \(today is (?P<today>\d{4}-\d{2}-\d{2}) at the site\)",
         N_("%(day)s is in the future (today is %(today)s at the site)")),
        # the data access register's (``services.sharing``)
        (r"the written request must give the reasons for needing the data, in at least (?P<least>\d+) characters "
         r"\(it has (?P<n>\d+)\)",
         N_("the written request must give the reasons for needing the data, in at least %(least)s characters "
            "(it has %(n)s)")),
        (r"(?P<day>\d{4}-\d{2}-\d{2}) is before the first randomization on (?P<first>\d{4}-\d{2}-\d{2}) at the "
         r"site; a trial's primary publication cannot precede its first randomization",
         N_("%(day)s is before the first randomization on %(first)s at the site; a trial's primary publication "
            "cannot precede its first randomization")),
        (r"no participant is randomized yet; a trial's primary publication cannot precede its first randomization",
         N_("no participant is randomized yet; a trial's primary publication cannot precede its first "
            "randomization")),
        (r"none declared, so k-anonymity cannot be assessed and the package is issued only when it passes; declare "
         r"the values that could single a person out \(an amendment\)",
         N_("none declared, so k-anonymity cannot be assessed and the package is issued only when it passes; declare "
            "the values that could single a person out (an amendment)")),
        # a form kept from a masked role (``services.forms.kept_from``): the form by its id, as the rule names it
        (r"(?P<form>\S+) reveals the arm and is kept from the roles this trial masks \(reveals_arm\)",
         N_("%(form)s reveals the arm and is kept from the roles this trial masks (reveals_arm)")),
        # arms asked by a masked role (``domain.masking.arms_refused``): before the role rule, which it ends with
        (r"(?P<role>an? .+?) is masked in this trial \(masking\.blinding: (?P<blinding>[^()]+)\) and may not see "
         r"the arms; only (?P<roles>an? .+?) may (?P<what>.+)",
         N_("%(role)s is masked in this trial (masking.blinding: %(blinding)s) and may not see the arms; only "
            "%(roles)s may %(what)s")),
        # ... its rare branches: a protocol without masking.blinding (masked as double), no role that may see them
        (r"(?P<role>an? .+?) is masked in this trial \(masking\.blinding not declared: masked as double\) and may "
         r"not see the arms; only (?P<roles>an? .+?) may (?P<what>.+)",
         N_("%(role)s is masked in this trial (masking.blinding not declared: masked as double) and may not see the "
            "arms; only %(roles)s may %(what)s")),
        (r"(?P<role>an? .+?) is masked in this trial \(masking\.blinding: (?P<blinding>[^()]+)\) and may not see "
         r"the arms; no role may (?P<what>.+) in this trial",
         N_("%(role)s is masked in this trial (masking.blinding: %(blinding)s) and may not see the arms; no role may "
            "%(what)s in this trial")),
        (r"(?P<role>an? .+?) is masked in this trial \(masking\.blinding not declared: masked as double\) and may "
         r"not see the arms; no role may (?P<what>.+) in this trial",
         N_("%(role)s is masked in this trial (masking.blinding not declared: masked as double) and may not see the "
            "arms; no role may %(what)s in this trial")),
        # a role rule (``domain.roles.only_roles_may``): the roles by their names, what they may do in words
        (r"only (?P<roles>an? .+?) may (?P<what>.+)", N_("only %(roles)s may %(what)s")),
        # a preparation's attribute (``domain.preparation``): its label said as the reference before the rule is
        (r"(?P<self>[^:;()]+) is required", N_("%(self)s is required")),
    )
)  # fmt: skip
#: A log page's own references (``services.logs``' refusals name them).
LOG_INPUTS: Mapping[str, str] = {"sequence": N_("Entry"), "values": N_("Values"), "version": N_("Version")}

#: The words of an age's unit and of a kind of consent record, as a consent rule names them (``kind``, ``unit``).
_CONSENT_WORDS: Mapping[str, str] = {
    "years": N_("years"), "months": N_("months"), "initial": N_("initial"), "reconsent": N_("reconsent"),
    "regained_capacity": N_("regained capacity"),
}  # fmt: skip

_FSI, _PDI = "\u2068", "\u2069"
#: A role as the role rule names it ("a monitor") -> its name, the message id a page translates.
_ROLE_NAMES: Mapping[str, str] = {role_named(r): r.label for r in Role}


def _rule_said(
    rule: str,
    words: Words,
    gettext: Callable[[str], str],
    choices: Mapping[str, str],
    rtl: bool,
    head: str = "",
    values_said: Mapping[str, Callable[[str], str]] | None = None,
) -> str:
    def iso(text: str) -> str:
        return f"{_FSI}{text}{_PDI}" if rtl else text

    comma = "، " if rtl else ", "
    form = head.split(".", 1)[0] if "." in head else ""

    def field(ref: str) -> str:  # a field by its label (on the head's form when it names none), or an event's words
        return words(ref) or (form and words(f"{form}.{ref}")) or gettext(ref)

    for pattern, msgid in RULES:
        match = pattern.fullmatch(rule)
        if match is None:
            continue
        values = match.groupdict()
        for name, value in values.items():
            if name == "choices":
                values[name] = comma.join(iso(choices.get(c) or words(c) or c) for c in value.split(", "))
            elif name == "fields":
                values[name] = comma.join(iso(field(f)) for f in value.split(", "))
            elif name == "state":
                values[name] = gettext(value)
            elif name == "states":
                values[name] = comma.join(gettext(s) for s in value.split(", "))
            elif name == "done":
                values[name] = gettext(value)
            elif name in ("roles", "role") and gettext(msgid) == msgid:  # the rule's own language: said as written
                values[name] = value
            elif name in ("roles", "role"):
                named = [_ROLE_NAMES.get(r.strip()) for r in re.split(r", | or ", value)]
                if None in named:
                    return ""
                said = [gettext(n) for n in named if n is not None]
                values[name] = said[0] if len(said) == 1 else f"{comma.join(said[:-1])}{gettext(' or ')}{said[-1]}"
            elif name == "what":
                if rtl and gettext(value) == value:  # an action not in the catalog: the rule is said as before
                    return ""
                values[name] = gettext(value)
            elif name == "self" and gettext(msgid) == msgid:  # the rule's own language: said as written
                values[name] = value
            elif name == "self":
                values[name] = iso(words(head) or value)
            elif name in ("field", "ref"):
                values[name] = iso(field(value))
            elif name in ("unit", "unit_age", "kind"):  # an age's unit, a kind of consent record: said in words
                values[name] = gettext(_CONSENT_WORDS.get(value, value))
            elif name == "status":  # a screening's decision
                values[name] = gettext(value)
            elif name == "answer":
                values[name] = gettext(f"assent {value}")
            elif name == "decisions":
                values[name] = comma.join(iso(gettext(d)) for d in value.split(", "))
            elif name == "inner":  # a rule within the rule (the assent rule a correction breaks): said the same way
                inner_head, _, inner_rule = value.partition(": ")
                inner = _rule_said(inner_rule, words, gettext, choices, rtl, inner_head, values_said)
                if not inner:
                    return ""
                values[name] = f"{iso(field(inner_head))}: {inner}"
            else:  # a value: said by the page when it says how (a date, a number, a log), else as written
                sayer = (values_said or {}).get(name)
                values[name] = iso(sayer(value) if sayer else value)
        return gettext(msgid) % values if values else gettext(msgid)
    return ""


def say(
    messages: Iterable[str],
    words: Words,
    lang: str = "en",
    *,
    choices: Mapping[str, str] | None = None,
    values_said: Mapping[str, Callable[[str], str]] | None = None,
) -> list[str]:
    """Each message with its references in words; in ``lang``, a rule of ``RULES`` is said in that language (its
    codes by ``choices``: code -> the words the page shows; a value named in ``values_said`` by that function, e.g.
    a date in the reader's calendar or a log by its name), and on a right-to-left page the field's label is
    isolated (FSI ... PDI) so that the rule after it keeps its order."""
    gettext = translations(lang).gettext
    rtl = text_direction(lang) == "rtl"
    out = []
    for message in messages:
        head, colon, rule = message.partition(": ")
        said = _rule_said(rule, words, gettext, choices or {}, rtl, head, values_said) if colon else ""
        if not said:
            out.append(in_words(message, words))
            continue
        names = ", ".join(words(n.strip()) or n.strip() for n in head.split(","))
        out.append(f"{_FSI}{names}{_PDI}: {said}" if rtl else f"{names}: {said}")
    return out
