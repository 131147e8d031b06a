"""The pages' messages in the words on the page (``trialwright.domain.wording``): each page says which of its
own inputs a message may name, by the label that input shows, translated; the protocol's fields are said by their
labels in the page's language.

A refusal a service raises names a field by its id (``crp: must be a number``, ``representative_name: ...``), as
the API and the command line keep it; a page shows it as ``C-reactive protein: must be a number``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from trialwright.domain.audit_changes import AuditChange
from trialwright.domain.wording import Words, field_words, in_words, words_for
from trialwright.protocol import Protocol
from trialwright.web.i18n import N_, translations

__all__ = [
    "AUDIT_KEYS",
    "CONSENT_INPUTS",
    "CRF_INPUTS",
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
    "reason": N_("Reason for change"),
    "participant.consented_at": N_("the consent"),
    "participant.enrolled_at": N_("the enrolment"),
    "participant.randomized_at": N_("the randomization"),
}
#: The screening page's own inputs (the screening fields are the protocol's).
SCREENING_INPUTS: Mapping[str, str] = {"screened_on": N_("Date of screening"), "site": N_("Site")}
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
}
#: The withdrawal inputs of the screening page.
WITHDRAWAL_INPUTS: Mapping[str, str] = {
    "scope": N_("Withdraw from"),
    "cause": N_("Cause"),
    "withdrawn_on": N_("Date of withdrawal"),
    "reason": N_("Reason"),
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


def say(messages: Iterable[str], words: Words) -> list[str]:
    """Each message with its references in words."""
    return [in_words(m, words) for m in messages]
