"""Consent form versions: which version of the informed consent form is in use at a site on a day. Pure code.

A version (``consent_versions[]``) is in use from its ``effective_from`` (the site's local date) until a later one
comes in: a consent obtained on a version a later one had superseded by that day is refused, naming the version
to use. A consent record does not hold the language its form was read in, so a later version supersedes the earlier
one in every language; ``protocol check`` therefore refuses a later version that drops a language of the one before
it (where the earlier form would have had to stay in use for that language). Given a consent's language, the
rule supersedes within that language only: a version not in that language neither supersedes nor may be used.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from trialwright.domain.calendars import local_date

if TYPE_CHECKING:
    from trialwright.protocol import Protocol

__all__ = ["form_version_problem"]


def form_version_problem(
    protocol: Protocol, *, site: str, form_version: str, obtained_at: dt.datetime, language: str | None = None
) -> str | None:
    """Whether ``form_version`` was the consent form in use at ``site`` when consent was obtained, as
    ``form_version: why``, or None: it exists, it was in effect on that local date, and no later version had
    superseded it by then (versions are ordered by ``effective_from``; ``protocol check`` refuses two on one day).
    With the consent's ``language``, only a later version in that language supersedes it, and a version not in
    that language is refused. ``consent_problem`` and ``import odm`` (the participant's first consent,
    ``odm_import_records``) check by it (consents record no language yet: ``language`` is None there)."""
    version = next((v for v in protocol.consent_versions if v.version == form_version), None)
    if version is None:
        known = ", ".join(v.version for v in protocol.consent_versions)
        return f"form_version: unknown consent form version {form_version!r} (versions: {known})"
    if language is not None and language not in version.languages:
        return (f"form_version: {form_version} does not exist in {language} (its languages: "
                f"{', '.join(version.languages)})")  # fmt: skip
    # Dates are the site's local dates, whatever offset the time was sent with.
    obtained_on = local_date(obtained_at, protocol.site(site).timezone, "obtained_at")
    if obtained_on < version.effective_from:
        return (f"form_version: {form_version} is in use only from {version.effective_from.isoformat()} "
                f"(consent obtained on {obtained_on.isoformat()} at the site)")  # fmt: skip
    # consent is obtained on the version approved that day: a later version in effect by then supersedes this one
    # (in the consent's language, where it is known)
    later = sorted((v for v in protocol.consent_versions if version.effective_from < v.effective_from <= obtained_on
                    and (language is None or language in v.languages)),
                   key=lambda v: v.effective_from)  # fmt: skip
    if later:
        return (f"form_version: {form_version} was superseded by {later[0].version} from "
                f"{later[0].effective_from.isoformat()} (consent obtained on {obtained_on.isoformat()} at the site); "
                f"use {later[-1].version}")  # fmt: skip
    return None
