"""Safety: adverse event reports and follow-ups, reporting deadlines and submissions, safety tables and
line listings, deaths into the hospital course, and the DSMB's safety pause. One transaction per use
case; every report is audited field by field; nothing here names an arm to a blinded viewer.

The package is split by capability: ``common`` (roles, views, loading), ``dsmb_pause``, ``reports``,
``reading`` (lists, pages and the overdue reports, filtered and paged in SQL through ``sql``) and ``tables``
(the safety tables, counted in SQL, and the line listing). Every public name is importable from here.
"""

from __future__ import annotations

from trialwright.services.safety.common import (
    BY_ARM,
    DECIDERS,
    DECISION_CODES,
    READERS,
    REPORTERS,
    RESPONSIBLE,
    AdverseEventView,
    DeadlineView,
    Decision,
    OverdueItem,
    ReportView,
    SafetyError,
    SafetyTables,
)
from trialwright.services.safety.dsmb_pause import (
    PAUSE_FACTS,
    check_pause,
    decisions,
    may_decide,
    pause,
    record_decision,
    saes_to_review,
)
from trialwright.services.safety.reading import get_event, list_events, overdue_for, page_events
from trialwright.services.safety.reports import follow_up, record_submission, report_event
from trialwright.services.safety.tables import export_listing, group_labels, listing_rows, safety_tables

__all__ = [
    "BY_ARM",
    "DECIDERS",
    "DECISION_CODES",
    "PAUSE_FACTS",
    "READERS",
    "REPORTERS",
    "RESPONSIBLE",
    "AdverseEventView",
    "DeadlineView",
    "Decision",
    "OverdueItem",
    "ReportView",
    "SafetyError",
    "SafetyTables",
    "check_pause",
    "decisions",
    "export_listing",
    "follow_up",
    "get_event",
    "group_labels",
    "list_events",
    "listing_rows",
    "may_decide",
    "overdue_for",
    "page_events",
    "pause",
    "record_decision",
    "record_submission",
    "report_event",
    "saes_to_review",
    "safety_tables",
]
