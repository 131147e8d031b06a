"""Screening, informed consent and enrolment: the use cases from first assessment to a participant id.

Every patient assessed gets a screening number per site; the eligibility decision is re-evaluated on
every change and stored with the values and the protocol version behind it. Consent is recorded from
the participant or a legally authorised representative (LAR); a participant who regains capacity records
their own decision. Enrolment issues the participant id (site code and sequence, RAZ-001) only to an
eligible, consented patient, once. Every step is audited. Site-scoped users reach only their sites'
screenings; another site's record answers exactly as a missing one does.

The package is split by capability: ``common`` (errors, views, look-ups), ``log`` (screening and its values),
``consent`` (consent and enrolment), ``withdrawal`` and ``reading`` (the log read and paged in SQL, one statement
per kind of row a page shows). Every public name is importable from here.
"""

from __future__ import annotations

from trialwright.services.screening.common import (
    ConsentView,
    NonEnrolmentReason,
    NotFound,
    ParticipantView,
    ScreeningError,
    ScreeningValueError,
    ScreeningView,
    WithdrawalCause,
    WithdrawalScope,
    check_participant,
    participant_row,
    screening_id_of,
)
from trialwright.services.screening.common import (
    _decision_detail as _decision_detail,  # for the ODM import and randomization
)
from trialwright.services.screening.common import (
    _dump as _dump,  # for the ODM import and randomization
)
from trialwright.services.screening.common import (
    _typed_values as _typed_values,  # for the ODM import and randomization
)
from trialwright.services.screening.consent import enrol, record_consent
from trialwright.services.screening.log import screen, set_non_enrolment, update_screening
from trialwright.services.screening.reading import (
    ReconsentDue,
    count_enrolled,
    get_screening,
    list_screenings,
    page_screenings,
    reconsent_needed,
)
from trialwright.services.screening.withdrawal import refuse_withdrawn, require_scope, withdraw, withdrawn_on

__all__ = [
    "ConsentView",
    "NonEnrolmentReason",
    "NotFound",
    "ParticipantView",
    "ReconsentDue",
    "ScreeningError",
    "ScreeningValueError",
    "ScreeningView",
    "WithdrawalCause",
    "WithdrawalScope",
    "check_participant",
    "count_enrolled",
    "enrol",
    "get_screening",
    "list_screenings",
    "page_screenings",
    "participant_row",
    "reconsent_needed",
    "record_consent",
    "refuse_withdrawn",
    "require_scope",
    "screen",
    "screening_id_of",
    "set_non_enrolment",
    "update_screening",
    "withdraw",
    "withdrawn_on",
]
