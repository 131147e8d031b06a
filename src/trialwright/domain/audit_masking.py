"""The audit trail under the masking policy: which audited values may reveal an arm, and an entry as one viewer
may read it.

The trail is read by roles a blinded trial keeps from the arms (administrator, data manager, monitor), so it
holds what those roles see on the pages anyway (screening and form values, queries, adverse events) and, for
the rest, the fact that something happened. Some values written by or about the unblinded roles can still tell
an arm or help guess one: a preparation attribute (lot, volume drawn up, particle count: they differ by
product; databases made before the attributes moved to the pharmacy record hold them in ``dose.prepared``),
the reason an investigator gave for an emergency unblinding, the DSMB's reasons, and the allocation list's
method (block sizes), seed hash and checksums (a guessable seed or a short extension can be recomputed from
them). Each is classified here ``ARM_REVEALING``; everything a blinded reader may see is ``VISIBLE``.

A value is named by the action of its entry and a key: a key of the JSON object in ``old_value``,
``new_value`` or ``detail``; the column's own name for a value that is not an object; ``reason`` for the
reason given. ``present_entry`` shows a viewer an entry with every arm-revealing value replaced by ``masked``
unless ``may_see_allocation`` lets them see that participant's arm; a value this module does not classify is
masked too, so a new kind of value is hidden until someone decides otherwise (a spec test fails until then).

An entry's hash is a SHA-256 of all its fields and of the entry before's hash, so a reader who knows every field
but a masked one could find a value of few possibilities (a count, a lot, an arm) by trying each against the hash,
or against the next entry's: an entry shown to such a reader carries neither its hash nor the one before's
(``mask_entry``: the page and the API show none anyway; ``audit show --json`` would), and an export without the arms
carries no entry's hash at all (``services.export_audit``). The chain is verified by ``audit verify``, on the
database, never by such a reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from enum import StrEnum
from typing import Final

from trialwright.domain.audit import AuditEntry
from trialwright.domain.masking import MASKED, Viewer, may_see_allocation

__all__ = [
    "AUDITED",
    "COLUMNS",
    "MASKED_COLUMNS",
    "OTHER",
    "Shown",
    "audited_keys",
    "classify",
    "mask_entry",
    "mask_value",
    "present_entry",
]


class Shown(StrEnum):
    """Who may read an audited value."""

    #: Every role that reads the audit trail (the pages show it to them anyway).
    VISIBLE = "visible"
    #: Only a viewer who may see the participant's arm (for an entry about no participant: the unblinded roles).
    ARM_REVEALING = "arm_revealing"


A = Shown.ARM_REVEALING

#: The columns whose values are classified (``reason`` is a column too, classified under its own name).
COLUMNS: Final = ("old_value", "new_value", "detail")
#: The columns masking may change.
MASKED_COLUMNS: Final = (*COLUMNS, "reason")

#: Any other key of this action (``*``): e.g. every preparation attribute a protocol declares.
OTHER: Final = "*"


def _visible(keys: str) -> dict[str, Shown]:
    return dict.fromkeys(keys.split(), Shown.VISIBLE)


def _each(actions: str, keys: Mapping[str, Shown]) -> dict[str, Mapping[str, Shown]]:
    return dict.fromkeys(actions.split(), keys)


#: The user.* and api.token_* actions' values: names, roles, sites, counts and reasons about accounts.
_ACCOUNTS = _visible(
    "username role sites full_name active reason channel why attempt after_failures locked_until token_id name "
    "language calendar old_value new_value request kind requested_by approved_by notified sponsor rule approvers "
    "state expires_at with purpose sessions_ended style"
)
_FORM = _visible("old_value new_value value status unit entered components reason visit because meaning")

#: Every audited value by action and key (see the module docstring).
AUDITED: Final[Mapping[str, Mapping[str, Shown]]] = {
    # --- trial and protocol: public or administrative -------------------------------------------------------
    "schema.upgraded": _visible("old_value new_value"),
    # The audit key's check value (an HMAC of a fixed label, never the key), backups and restores.
    "audit.keyed": _visible("key_check"),
    # A pending entry the chainer refused: its pending id and why (altered, unsigned, replayed), none of its content.
    "audit.pending_rejected": _visible("pending_id reason"),
    # A full `audit verify`'s outcome: whether the chain held, what was wrong, how many entries, the replay's result.
    "audit.verified": _visible("chain_ok problem entries replay_ok replay_disagreements"),
    # The head's hash is the hash of whichever entry was last: one with a masked value must not be shown by it.
    **_each(
        "backup.taken backup.restored",
        {**_visible("folder head_seq database_sha256 taken_at database os_user"), "head_hash": A},
    ),
    "trial.created": _visible("trial_id"),
    "protocol.loaded": _visible("old_value version sha256 reason"),
    **_each("site.added site.changed", _visible("name timezone")),
    # --- accounts and access -----------------------------------------------------------------------------------
    **_each(
        "user.created user.disabled user.password_reset user.password_changed user.preferences_changed "
        "user.email_changed user.sites_changed "
        "user.sign_in_failed user.sign_in_refused user.locked_out user.signed_in user.signed_out "
        "user.session_expired api.token_issued api.token_revoked api.token_used user.enabled user.password_set "
        "user.request_made user.request_approved user.request_rejected user.set_password_token_issued "
        "user.reentry_failed user.reentry_refused",
        _ACCOUNTS,
    ),
    "api.token_refused": _visible("path token source"),
    "api.token_refusals": _visible("source refusals window_from window_seconds paths"),
    "access.denied": _visible("path method what username"),
    "access.csrf_refused": _visible("path token"),
    # --- screening, consent, enrolment, withdrawal: shown on the screening and participant pages --------------
    "screening.created": _visible("values decision screening protocol_version"),
    "screening.changed": _visible("values decision screening reason"),
    "screening.not_enrolled": _visible("reason text screening"),
    **_each(
        "consent.consent consent.refuse consent.continue consent.withdraw",
        _visible(
            "form_version given_by representative_name relationship witness obtained_by obtained_at kind screening "
            "reason"
        ),
    ),
    "participant.enrolled": _visible("participant_id screening"),
    "participant.withdrawn": _visible("scope cause withdrawn_on reason"),
    # --- randomization: the number, stratum and preparation code are on every participant page ---------------
    "participant.randomized": {
        **_visible("randomization_number preparation_code stratum"),
        # An HMAC over the allocation keyed by the sealed seed: opaque, but computed from the arm.
        "seal": A,
        # Written by no version so far; named so that a trail that ever holds them masks them by rule.
        "arm": A,
        "decision": A,
    },
    # The statistician's list: that it was made and its size; its method (block sizes), seed hash and checksum
    # would help recompute it (a seed given by hand is guessable; a short extension has few permutations).
    "randomization.list_generated": {**_visible("entries generator"), "method": A, "seed_sha256": A, "checksum": A},
    "randomization.list_extended": {
        **_visible("stratum extension"),
        "entries": A,  # whole blocks: tells block sizes
        "checksum": A,
        "seed_sha256": A,
        "reason": A,  # the unblinded statistician's words
    },
    "randomization.list_exported": _visible("entries"),
    # An allocation entry that failed its keyed digest: which entry (the list is the statistician's) and why.
    "randomization.allocation_refused": {"allocation_entry": A, "reason": Shown.VISIBLE},
    # The pharmacy record: that the code was prepared; never what (older databases hold the lot and volume here).
    "dose.prepared": {**_visible("preparation_code prepared"), OTHER: A},
    # Emergency unblinding: that it happened is on the participant page; why, and whom it notified, is not.
    "participant.unblinded": {"reason": A, "notified": A, "arm": A},
    # --- data collection: the values blinded staff enter and read on the form pages ----------------------------
    "form.started": _FORM,
    **_each("visit.held visit.missed", _visible("old_value new_value visit label reason")),
    **_each(
        "form.value_entered form.value_changed form.value_derived form.completed form.verified form.signed "
        "form.reopened form.locked form.unlocked form.signature_voided form.verification_voided form.field_verified",
        _FORM,
    ),
    "form.bulk_import": _visible("rows saved rejected"),
    # Log entries (concomitant medications, medical history): entered and read by blinded staff like form values.
    **_each("log.entry_added log.value_entered log.value_changed log.entry_removed", _FORM | _visible("sequence")),
    **_each(
        "log.coded log.recoded log.coding_voided",
        _visible("dictionary version verbatim code name path reason sequence"),
    ),
    # A log entry's source data verification and signature, and their voiding by a change (who, when, why).
    **_each("log.entry_verified log.entry_signed", _visible("sequence version meaning")),
    **_each("log.verification_voided log.signature_voided", _visible("by at reason sequence")),
    "query.raised": _visible("query text origin sequence"),
    "query.answered": _visible("old_value query answer"),
    "query.closed": _visible("old_value query note"),
    "import.odm": _visible(
        "visit_date label state version values lock participants file sha256 visit visits forms states reason "
        "recorded items users randomization sequence removed_reason review coding log_entries query queries "
        # an adverse event's (``services.odm_import_ae``): its row, reports, submissions, and the count in the summary
        "ae_number created reports submissions adverse_events "
        # the consent's details and who recorded the withdrawals (on the participant's entry), and a DSMB decision's
        # (``services.odm_import_records``: never its reason, which the file does not hold)
        "consent withdrawals dsmb_decision dsmb_decisions "
        # every consent record, and a screening never enrolled as restored (``services.odm_import_consents``): its
        # number, date, values and why not enrolled, as blinded staff read them on the screening pages; no arm
        "consents screening "
        # the audit entries about an enrolled screening before its enrolment (``screening.*``, ``consent.*``), each an
        # AuditRecord as recorded and its action (``services.odm_import``): who did what and when, made before any
        # arm was allocated, no value
        "screening_earlier "
        # the trial lock's and soft locks' changes with their AuditRecords (``services.odm_import_locks``): no arm
        "locks "
        # a form value's earlier records with the values they set and their actions (``services.odm_import_history``):
        # form values, as blinded staff read them on the form pages; a query's earlier records with their actions
        # (``query.raised``, ``query.answered``, ``query.closed``): who did what to it and when, no arm
        "history "
        # the elements' own earlier records, each an AuditRecord as recorded and the action it recorded
        # (``services.odm_import_elements``): who did what and when, no value
        "earlier"
    ),
    # --- locks -------------------------------------------------------------------------------------------------
    # An override: the blockers left open outside the forms that reveal the arm, those forms (``uncounted``) and the
    # forms kept from a masked locker (``withheld``), all the protocol's or the same whatever the arms hold; the
    # blockers an unmasked locker overrode on those forms are a count that may differ by arm.
    **_each(
        "trial.locked trial.unlocked lock.soft_locked lock.soft_unlocked",
        {
            **_visible("locked reason override open_blockers scope target withheld uncounted"),
            "revealing_open_blockers": A,
        },
    ),
    # An unmasked reviewer's review of the forms kept from masked readers: which forms and the protocol version are
    # the protocol's (the same whatever the data); the reviewer's reason may speak of what the forms hold (a
    # dressing, a dose), so only a reader who sees the arms reads it.
    "lock.withheld_reviewed": {**_visible("forms protocol_version"), "reason": A},
    # --- safety: reports are read by the blinded team; the DSMB's words may speak of the arms -------------------
    **_each("ae.reported ae.followed_up", _visible("old_value new_value reason")),
    "ae.submitted": _visible("submitted_at due_at note"),
    "safety.decision": {**_visible("paused decision related_saes"), "reason": A},
    "safety.listing_exported": _visible("rows by_arm"),
    # --- medical coding: the dictionary and the terms coded, never an arm ----------------------------------------
    "coding.dictionary_loaded": _visible("dictionary version files counts"),
    **_each(
        "ae.coded ae.recoded",
        _visible(
            "dictionary version verbatim llt_code llt_name pt_code pt_name hlt_code hlt_name hlgt_code hlgt_name "
            "soc_code soc_name reason"
        ),
    ),
    # --- analysis, exports and data sharing ----------------------------------------------------------------
    **_each("analysis.run analysis.unblinded_run", _visible("grouping snapshot_sha256 audit_seq participants")),
    "analysis.plan": {
        **_visible("outcome variable effect power alpha pilot_n sd"),
        "n_per_arm_upper_sd_ancova": A,  # from the SD within arms when the unblinded statistician plans
    },
    # withheld: the forms kept from the exporter's masked role (their ids, as the protocol names them)
    "export.written": _visible("format folder files with_arms withheld"),
    # The REST API's export jobs: asked for, failed (the rule: never an arm), downloaded, deleted, expired.
    "export.requested": _visible("job format with_arms"),
    "export.failed": _visible("job format error requested_by"),
    "export.done": _visible("job format file sha256"),
    "export.discarded": _visible("job format reason"),
    "export.downloaded": _visible("job format file sha256"),
    "export.deleted": _visible("job format state"),
    "export.expired": _visible("jobs retention_hours"),
    "sharing.publication_recorded": _visible("citation published_on"),
    "sharing.request_recorded": _visible("request requester purpose"),
    **_each(
        "sharing.request_approved sharing.request_rejected sharing.ipd_issuing sharing.ipd_not_issued "
        "sharing.ipd_issued",
        _visible("old_value new_value reason request folder files"),
    ),
}


def classify(action: str, key: str) -> Shown | None:
    """How the value under ``key`` of an ``action`` entry is shown; None when no one has classified it."""
    keys = AUDITED.get(action)
    if keys is None:
        return None
    return keys.get(key, keys.get(OTHER))


def _loads(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def audited_keys(entry: AuditEntry) -> Iterator[str]:
    """The keys under which ``entry`` holds a value (see the module docstring)."""
    for column in COLUMNS:
        raw = getattr(entry, column)
        if raw is None:
            continue
        value = _loads(raw)
        if isinstance(value, dict):
            yield from value
        else:
            yield column
    if entry.reason is not None:
        yield "reason"


def _hidden(action: str, key: str) -> bool:
    return classify(action, key) is not Shown.VISIBLE


_MASKED_JSON = json.dumps(MASKED)


def present_entry(viewer: Viewer, entry: AuditEntry) -> AuditEntry:
    """``entry`` as ``viewer`` may read it: arm-revealing (and unclassified) values replaced by ``masked``. A viewer
    kept from the arms in general gets no hash even on an entry about a participant unblinded to them: the hashes
    chain, so those around it would let them try the values of a neighbouring entry they may not read."""
    if not may_see_allocation(viewer, entry.participant):
        return mask_entry(entry)
    if viewer.blinded:
        return replace(entry, hash=MASKED, prev_hash=MASKED)
    return entry


def mask_entry(entry: AuditEntry) -> AuditEntry:
    """``entry`` with every arm-revealing (or unclassified) value replaced by ``masked``, for any blinded reader, and
    its hash and the one before's too (the module's note: the hashes would let a reader try values against them)."""
    changes: dict[str, str | None] = {"hash": MASKED, "prev_hash": MASKED}
    for column in MASKED_COLUMNS:
        raw = getattr(entry, column)
        shown = mask_value(entry.action, column, raw)
        if shown is not raw:
            changes[column] = shown
    return replace(entry, **changes)  # type: ignore[arg-type]


#: Each action's keys every role may read (``Shown.VISIBLE``), for ``mask_value`` to let a value whose keys are all
#: among them through without looking at each key.
_VISIBLE_KEYS: Final[Mapping[str, frozenset[str]]] = {
    action: frozenset(k for k, shown in keys.items() if k != OTHER and shown is Shown.VISIBLE)
    for action, keys in AUDITED.items()
}
_NONE: Final = frozenset[str]()


def mask_value(action: str, column: str, raw: str | None) -> str | None:
    """One column of an entry of ``action`` as ``mask_entry`` shows it: ``raw`` itself when nothing in it is
    hidden, else the text with every arm-revealing (or unclassified) value replaced by ``masked``. For a reader of
    a few columns of many entries (the ODM export), without an entry object each."""
    if raw is None:
        return None
    if column == "reason":
        return MASKED if _hidden(action, "reason") else raw
    if column not in COLUMNS:
        raise ValueError(f"column: {column!r} holds no audited value (masked: {', '.join(MASKED_COLUMNS)})")
    value = _loads(raw)
    if isinstance(value, dict):
        if _VISIBLE_KEYS.get(action, _NONE).issuperset(value):  # every key visible: shown as it is
            return raw
        shown = {k: (MASKED if _hidden(action, k) else v) for k, v in value.items()}
        if shown != value:
            return json.dumps(shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return raw
    return _MASKED_JSON if _hidden(action, column) else raw
