"""Central randomization with a sealed list: generating the list, and randomizing one participant.

The unblinded statistician generates the list once (stratified permuted blocks or simple randomization; the
seed comes from the operating system unless given, and only its SHA-256 is kept). Randomizing takes the
next unused entry of the participant's stratum inside one transaction that holds the randomization
lock (a PostgreSQL advisory lock; SQLite's IMMEDIATE transaction), so concurrent requests never share,
skip or repeat an entry and a participant is randomized at most once. Every step is audited without an
arm; what a viewer sees of the arm is decided by the masking policy.
"""

from __future__ import annotations

from trialwright.services.randomization.allocate import (
    ParticipantRow,
    RandomizationPreview,
    allocation_of,
    page_participants,
    participant_rows,
    preview_randomization,
    randomize,
    stratum_for,
)
from trialwright.services.randomization.common import (
    PARTICIPANT_READERS,
    RANDOMIZERS,
    AllocationTampered,
    PreparationRefused,
    RandomizationError,
    Randomized,
    StratumExhausted,
)
from trialwright.services.randomization.lists import (
    ListRecord,
    StratumBalance,
    StratumStatus,
    balance,
    export_list,
    extend_list,
    generate_list,
    list_exists,
    list_records,
    list_status,
)
from trialwright.services.randomization.pharmacy import (
    AttributeSpec,
    Instruction,
    PreparationState,
    QueueItem,
    RecordedValue,
    page_preparation_queue,
    preparation_counts,
    preparation_queue,
    prepare,
    what_to_prepare,
)
from trialwright.services.randomization.unblinding import (
    Notification,
    UnblindingRecord,
    count_notifications_for,
    emergency_unblind,
    may_unblind,
    notifications_for,
    unblinded_participants,
    unblinding_log,
)

__all__ = [
    "PARTICIPANT_READERS",
    "RANDOMIZERS",
    "AllocationTampered",
    "AttributeSpec",
    "Instruction",
    "ListRecord",
    "Notification",
    "ParticipantRow",
    "PreparationRefused",
    "PreparationState",
    "QueueItem",
    "RandomizationError",
    "RandomizationPreview",
    "Randomized",
    "RecordedValue",
    "StratumBalance",
    "StratumExhausted",
    "StratumStatus",
    "UnblindingRecord",
    "allocation_of",
    "balance",
    "count_notifications_for",
    "emergency_unblind",
    "export_list",
    "extend_list",
    "generate_list",
    "list_exists",
    "list_records",
    "list_status",
    "may_unblind",
    "notifications_for",
    "page_participants",
    "page_preparation_queue",
    "participant_rows",
    "preparation_counts",
    "preparation_queue",
    "prepare",
    "preview_randomization",
    "randomize",
    "stratum_for",
    "unblinded_participants",
    "unblinding_log",
    "what_to_prepare",
]
