"""Storage: engines, tables and the one migration tree. Importing it registers every table."""

from trialwright.store import (
    approval_tables,
    auth_tables,
    coding_tables,
    data_tables,
    email_tables,
    export_tables,
    log_tables,
    randomization_tables,
    safety_tables,
    screening_tables,
    sharing_tables,
    tables,
)

__all__ = [
    "approval_tables",
    "auth_tables",
    "coding_tables",
    "data_tables",
    "email_tables",
    "export_tables",
    "log_tables",
    "randomization_tables",
    "safety_tables",
    "screening_tables",
    "sharing_tables",
    "tables",
]
