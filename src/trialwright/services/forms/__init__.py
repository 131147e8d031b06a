"""Data collection: visits, case report forms with their lifecycle, derived values and queries (the trial lock
and soft locks live in ``services/lock.py`` and are re-exported here). One transaction per use case; every change
is audited field by field (old value, new value, reason), and the same rules hold on every write path (page, API,
bulk import, CLI), which all call here.
"""

from __future__ import annotations

from trialwright.services.errors import FormError
from trialwright.services.forms.casebook import (
    Casebook,
    CasebookEntry,
    CasebookForm,
    CasebookOutcome,
    casebook,
    sign_casebook,
    verification_fields,
    verify_casebook,
)
from trialwright.services.forms.common import (
    DATA_ENTRY,
    QUERY_ANSWERERS,
    QUERY_RAISERS,
    READERS,
    FormView,
    ImportReport,
    ParticipantSchedule,
    QueryView,
    RefusedValues,
)
from trialwright.services.forms.log_review import verify_entries, verify_entry
from trialwright.services.forms.queries import (
    CORRECTED_NOTE,
    answer_query,
    close_query,
    get_query,
    list_queries,
    may_raise_queries,
    may_read_queries,
    page_queries,
    raise_automatic_query,
    raise_query,
)
from trialwright.services.forms.review import (
    complete_form,
    lock_form,
    sign_form,
    sign_forms,
    unlock_form,
    verify_form,
    verify_forms,
)
from trialwright.services.forms.save import (
    VisitFormSave,
    get_form,
    import_forms,
    save_form,
    save_form_in,
    save_visit_forms,
)
from trialwright.services.forms.visits import miss_visit, participant_schedule, record_visit
from trialwright.services.lock import LockState, lock_state, lock_trial, require_unlocked, unlock_trial

__all__ = [
    "CORRECTED_NOTE",
    "DATA_ENTRY",
    "QUERY_ANSWERERS",
    "QUERY_RAISERS",
    "READERS",
    "Casebook",
    "CasebookEntry",
    "CasebookForm",
    "CasebookOutcome",
    "FormError",
    "FormView",
    "ImportReport",
    "LockState",
    "ParticipantSchedule",
    "QueryView",
    "RefusedValues",
    "VisitFormSave",
    "answer_query",
    "casebook",
    "close_query",
    "complete_form",
    "get_form",
    "get_query",
    "import_forms",
    "list_queries",
    "lock_form",
    "lock_state",
    "lock_trial",
    "may_raise_queries",
    "may_read_queries",
    "miss_visit",
    "page_queries",
    "participant_schedule",
    "raise_automatic_query",
    "raise_query",
    "record_visit",
    "require_unlocked",
    "save_form",
    "save_form_in",
    "save_visit_forms",
    "sign_casebook",
    "sign_form",
    "sign_forms",
    "unlock_form",
    "unlock_trial",
    "verification_fields",
    "verify_casebook",
    "verify_entries",
    "verify_entry",
    "verify_form",
    "verify_forms",
]
